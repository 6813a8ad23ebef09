import Foundation
import Shared
import SharedIO
import Synchronization
import TestSupport
import Testing

@testable import Orchestrator

/// The job's waits (gate, node Ready, soak) in-process on a clock that moves
/// only when the job sleeps: what took the bed real minutes, in milliseconds.
@Suite struct JobWaitTests {
    static func context(
        clock: SteppingJobClock, poll: Duration = .seconds(5)
    ) async throws -> (JobContext, JobStore) {
        let path = try TestEnvironment.makeDirectory("waits").appendingPathComponent("jobs.sqlite").path
        let store = try await JobStore(path: path)
        let request = ExecuteRequest(targetVersion: try KubeVersion(strictRelease: "1.34.5"), kind: .patch)
        let job = try await store.create(request, at: clock.now()).get()
        let context = JobContext(
            id: job.id, request: request, store: store, control: JobControl(), pollInterval: poll, clock: clock)
        return (context, store)
    }

    static func events(_ store: JobStore, _ context: JobContext) async throws -> [JobEvent] {
        try await store.events(of: context.id, after: 0, limit: 1000)
    }

    @Test func aGateThatNeverOpensGivesUpAtItsDeadline() async throws {
        let clock = SteppingJobClock()
        let start = clock.now()
        let (job, store) = try await Self.context(clock: clock)
        let checks = Mutex(0)
        await #expect {
            try await job.wait(
                for: "halt-on-alert gate (upgrade_gate=true) to open", stage: .workers, timeout: .seconds(1800)
            ) {
                checks.withLock { $0 += 1 }
                return "firing: NodeNotReady"
            }
        } throws: { error in
            "\(error)" == "waited 30 min for halt-on-alert gate (upgrade_gate=true) to open; still firing: NodeNotReady"
        }
        #expect(clock.now() - start == 1800)
        #expect(checks.withLock { $0 } == 1 + 360, "one check now, then one every 5 s")
        let events = try await Self.events(store, job)
        let started = try #require(events.first { $0.kind == .waitStarted })
        #expect(started.deadline == start + 1800)
        #expect(events.filter { $0.kind == .waitUpdated }.map(\.message) == ["firing: NodeNotReady"])
        #expect(events.last?.message == "halt-on-alert gate (upgrade_gate=true) to open: gave up after 30 min")
        #expect(events.last?.time == start + 1800)
    }

    @Test func aWaitRecordsEachNewReasonOnceAndEndsWhenTheCheckClears() async throws {
        let clock = SteppingJobClock()
        let (job, store) = try await Self.context(clock: clock)
        let answers = Mutex(["NotReady", "NotReady", "NotReady (kubelet starting)", "NotReady (kubelet starting)"])
        try await job.wait(
            for: "worker-1 to be Ready at v1.34.5", stage: .workers, node: "worker-1", timeout: .seconds(300)
        ) {
            answers.withLock { $0.isEmpty ? nil : $0.removeFirst() }
        }
        let events = try await Self.events(store, job).filter { $0.node == "worker-1" }
        #expect(events.map(\.kind) == [.waitStarted, .waitUpdated, .waitUpdated, .waitEnded])
        #expect(
            events.map(\.message).dropFirst() == [
                "NotReady", "NotReady (kubelet starting)", "worker-1 to be Ready at v1.34.5: done after 20 s",
            ])
    }

    @Test func anAbortStopsAWaitWithinASliceOfItsPoll() async throws {
        let clock = SteppingJobClock()
        let (job, _) = try await Self.context(clock: clock, poll: .seconds(30))
        let checks = Mutex(0)
        await #expect(throws: JobStop.aborted) {
            try await job.wait(for: "the soak of worker-2", stage: .workers, timeout: .seconds(600)) {
                let count = checks.withLock {
                    $0 += 1; return $0
                }
                if count == 3 { job.control.stop(.aborted) }
                return "watching"
            }
        }
        // Two full polls, then 100 ms into the third sleep at most.
        #expect(clock.slept <= .seconds(60) + .milliseconds(100), "\(clock.slept)")
    }

    @Test func aShutdownLetsAFinishingWaitGoOnButAnAbortStopsIt() async throws {
        let clock = SteppingJobClock()
        let (job, _) = try await Self.context(clock: clock)
        job.control.stop(.shutdown)
        let checks = Mutex(0)
        try await job.wait(
            for: "worker-3 to be Ready", stage: .workers, timeout: .seconds(300), finishingOnShutdown: true
        ) {
            checks.withLock {
                $0 += 1; return $0
            } < 4 ? "NotReady" : nil
        }
        await #expect(throws: JobStop.shutdown) {
            try await job.wait(for: "the gate", stage: .workers, timeout: .seconds(300)) { "closed" }
        }
        job.control.stop(.aborted)
        await #expect(throws: JobStop.aborted) {
            try await job.wait(
                for: "worker-3 again", stage: .workers, timeout: .seconds(300), finishingOnShutdown: true
            ) {
                "NotReady"
            }
        }
    }
}

import Foundation
import Logging
import Shared
import SharedIO
import Synchronization
import TestSupport
import Testing

@testable import Orchestrator

/// The coordinator's one-job-at-a-time stage loop in-process, over a
/// pipeline that records what it is asked and waits on the job's clock.
@Suite struct StageLoopTests {
    /// A pipeline of stand-ins: each stage says done, a chosen one fails,
    /// and `holding` waits on a gate that never opens.
    final class RecordingPipeline: Pipeline {
        let calls = Mutex<[String]>([])
        let failing: UpgradeStage?
        let holding: UpgradeStage?

        init(failing: UpgradeStage? = nil, holding: UpgradeStage? = nil) {
            self.failing = failing
            self.holding = holding
        }

        func beforeStage(_ stage: UpgradeStage, job: JobContext) async throws {
            calls.withLock { $0.append("gate \(stage.rawValue)") }
        }

        func begin(job: JobContext) async throws { calls.withLock { $0.append("begin") } }

        func run(_ stage: UpgradeStage, job: JobContext) async throws -> StageOutcome {
            calls.withLock { $0.append(stage.rawValue) }
            if stage == failing { throw JobFailure("\(stage.rawValue) broke") }
            if stage == holding {
                // A day long, each check a millisecond of real time: an abort
                // sent a few milliseconds in lands long before the deadline.
                try await job.wait(for: "the gate to open", stage: stage, timeout: .seconds(86400)) {
                    try? await Task.sleep(for: .milliseconds(1))
                    return "closed"
                }
            }
            return stage == .containerd ? .skipped("nothing to do") : .done("\(stage.rawValue) done")
        }

        func end(job: JobContext, state: JobState, reason: String?) async -> JSONValue? {
            calls.withLock { $0.append("end \(state.rawValue)") }
            return .object(["ended": .string(state.rawValue)])
        }
    }

    struct Running {
        let coordinator: JobCoordinator
        let store: JobStore
        let task: Task<Void, any Error>
        let clock: SteppingJobClock
    }

    static func start(_ pipeline: RecordingPipeline) async throws -> Running {
        let path = try TestEnvironment.makeDirectory("stages").appendingPathComponent("jobs.sqlite").path
        let store = try await JobStore(path: path)
        let clock = SteppingJobClock()
        let coordinator = JobCoordinator(
            store: store, pipeline: pipeline, admit: { _ in .accepted }, log: Logger.silent,
            pollInterval: .seconds(5), clock: clock)
        let task = Task { try await coordinator.run() }
        try await poll(until: "the coordinator leading") { await coordinator.leading }
        return Running(coordinator: coordinator, store: store, task: task, clock: clock)
    }

    static func request(_ stages: String = "all") throws -> ExecuteRequest {
        ExecuteRequest(
            targetVersion: try KubeVersion(strictRelease: "1.34.5"), kind: .patch,
            stages: try StageSelection(parsing: stages))
    }

    static func waitFor(_ state: JobState, _ id: Int64, in store: JobStore) async throws -> JobRecord {
        var reached: JobRecord?
        try await poll(until: "job \(id) becoming \(state.rawValue)") {
            reached = try await store.job(id)
            if let job = reached, job.state != state, job.state.isFinished {
                throw FixtureError("job \(id) is \(job.state.rawValue), not \(state.rawValue): \(job.progress)")
            }
            return reached?.state == state
        }
        guard let reached else { throw FixtureError("job \(id) vanished") }
        return reached
    }

    @Test func theSelectedStagesRunInOrderEachAfterItsGate() async throws {
        let pipeline = RecordingPipeline()
        let running = try await Self.start(pipeline)
        defer { running.task.cancel() }
        guard
            case let .queued(job) = try await running.coordinator.submit(
                try Self.request("preflight,containerd,workers"))
        else { throw FixtureError("not queued") }
        let done = try await Self.waitFor(.succeeded, job.id, in: running.store)
        #expect(
            pipeline.calls.withLock { $0 } == [
                "gate preflight", "begin", "preflight", "gate containerd", "containerd", "gate workers", "workers",
                "end succeeded",
            ])
        #expect(done.result == .object(["ended": .string("succeeded")]))
        let events = try await running.store.events(of: job.id, after: 0, limit: 100)
        #expect(
            events.filter { $0.kind == .stageNotSelected }.compactMap(\.stage) == [
                .snapshot, .repo, .master, .postflight,
            ])
        #expect(events.filter { $0.kind == .stageSkipped }.map(\.message) == ["nothing to do"])
    }

    @Test func aFailingStageFailsTheJobAndAResumeRunsTheStagesAgain() async throws {
        let pipeline = RecordingPipeline(failing: .master)
        let running = try await Self.start(pipeline)
        defer { running.task.cancel() }
        guard case let .queued(job) = try await running.coordinator.submit(try Self.request("preflight,master,workers"))
        else { throw FixtureError("not queued") }
        let failed = try await Self.waitFor(.failed, job.id, in: running.store)
        #expect(pipeline.calls.withLock { $0 }.suffix(2) == ["master", "end failed"])
        let events = try await running.store.events(of: job.id, after: 0, limit: 100)
        #expect(events.contains { $0.kind == .stageFailed && $0.stage == .master && $0.message == "master broke" })
        #expect(failed.result == .object(["ended": .string("failed")]))
        #expect(!pipeline.calls.withLock { $0 }.contains("workers"), "nothing after the failed stage")

        pipeline.calls.withLock { $0 = [] }
        guard case .accepted = try await running.coordinator.resume(job.id) else { throw FixtureError("not resumed") }
        _ = try await Self.waitFor(.failed, job.id, in: running.store)
        #expect(
            pipeline.calls.withLock { $0 } == [
                "gate preflight", "begin", "preflight", "gate master", "master", "end failed",
            ], "a resume runs every selected stage again from live state")
    }

    @Test func anAbortDuringADayLongWaitLandsAtItsNextSafePoint() async throws {
        let pipeline = RecordingPipeline(holding: .workers)
        let running = try await Self.start(pipeline)
        defer { running.task.cancel() }
        guard case let .queued(job) = try await running.coordinator.submit(try Self.request()) else {
            throw FixtureError("not queued")
        }
        try await poll(until: "the workers stage starting") { pipeline.calls.withLock { $0.contains("workers") } }
        guard case .accepted = try await running.coordinator.abort(job.id) else { throw FixtureError("not aborted") }
        let aborted = try await Self.waitFor(.aborted, job.id, in: running.store)
        #expect(aborted.result == .object(["ended": .string("aborted")]))
        #expect(pipeline.calls.withLock { $0 }.last == "end aborted")
        #expect(!pipeline.calls.withLock { $0 }.contains("postflight"))
        let events = try await running.store.events(of: job.id, after: 0, limit: 1000)
        #expect(events.last?.message == "aborted at a safe point in workers")
        #expect(running.clock.slept < .seconds(86400), "stopped long before the wait's deadline")
    }
}

import Foundation
import Shared
import SharedIO
import Synchronization
import TestSupport
import Testing

@testable import ClusterSim
@testable import Orchestrator

/// Maintenance windows on the job's clock, in process: the simulated
/// cluster's time starts on Friday 2027-01-15 at 08:00 UTC, and a wait of
/// an hour passes in a moment.
@Suite struct MaintenanceWindowJobTests {
    static let friday = Int64(1_800_000_000)

    static func options(_ windows: String..., estimate: Int = 60) throws -> InProcessOrchestrator.Options {
        var options = InProcessOrchestrator.Options()
        options.maintenance = MaintenanceSchedule(
            windows: try windows.map { try MaintenanceWindow.parse($0) { _ in .utc } })
        options.nodeEstimate = .seconds(estimate)
        return options
    }

    static func started(_ events: [JobEvent]) -> [String: Double] {
        Dictionary(
            events.filter { $0.kind == .nodeStarted }.compactMap { event in event.node.map { ($0, event.time) } }
        ) { first, _ in first }
    }

    /// A 12-minute window fits the master and two workers (each soaked
    /// 5 min, their work a few simulated seconds); worker-3's forecast (the
    /// longest worker so far and its soak) does not fit in the 2 minutes
    /// left, so the job parks after worker-2 and goes on when the 09:00
    /// window opens.
    @Test func aWindowThatClosesParksTheJobAfterTheLastFinishedNodeUntilTheNext() async throws {
        let options = try Self.options("Fri 08:00 12m UTC", "Fri 09:00 1h UTC")
        try await InProcessOrchestrator.with(scenario: PipelineInProcessTests.cluster(), options: options) {
            orchestrator in
            // The plan walks its forecast through the windows: before any
            // node is timed, the master at 1 min and the workers at 6 min
            // (--node-estimate and the soak) park once, before worker-2.
            let planner = Planner(pipeline: orchestrator.pipeline, policy: DetectionPolicy(), store: orchestrator.jobs)
            let plan = try await planner.forecast(
                target: try KubeVersion(strictRelease: "1.34.5"), now: orchestrator.clock.now())
            #expect(plan.maintenance?.windowsNeeded == 2, "\(plan.maintenance?.verdict ?? "none")")
            #expect(plan.maintenance?.ends == Self.friday + 3600 + 720, "\(plan.maintenance?.verdict ?? "none")")
            #expect(
                plan.maintenance?.verdict.hasSuffix(
                    "; the whole job (about 19 min) takes 2 windows, parking between them, ending about Fri 2027-01-15 09:12 UTC"
                ) == true, "\(plan.maintenance?.verdict ?? "none")")
            let id = try await orchestrator.execute()
            _ = try await orchestrator.waitFor(.succeeded, id)
            let events = try await orchestrator.events(id)
            let parks = events.filter { $0.kind == .waitStarted && $0.message.hasPrefix("maintenance window") }
            #expect(parks.count == 1, "\(parks.map(\.message))")
            let park = try #require(parks.first)
            #expect(park.node == "worker-3")
            #expect(park.deadline == Double(Self.friday + 3600))
            #expect(
                park.message.hasPrefix(
                    "maintenance window to open: parked after worker-2: worker-3 does not fit (its forecast is the longest worker so far and the soak): it needs 6 min and the window closes at Fri 2027-01-15 08:12 UTC ("
                ), "\(park.message)")
            #expect(
                park.message.hasSuffix("it continues when the next window opens at Fri 2027-01-15 09:00 UTC"),
                "\(park.message)")
            let starts = Self.started(events)
            #expect(starts["worker-2"]! < Double(Self.friday + 720))
            #expect(starts["worker-3"]! >= Double(Self.friday + 3600))
            #expect(
                events.contains {
                    $0.kind == .waitEnded && $0.node == "worker-3"
                        && $0.message.hasSuffix("of waiting, until Fri 2027-01-15 10:00 UTC")
                })
            #expect(try await orchestrator.nodeStates().values.allSatisfy { $0 == "1.34.5" })
            let titles = orchestrator.notices.all.map(\.title)
            #expect(titles.contains("Parked until the next maintenance window"))
            #expect(titles.contains("Maintenance window open: the job continues"))
        }
    }

    /// A node cordoned by someone else while the job is parked before it is
    /// judged as it is when the window opens: the job does not take that
    /// cordon for its own, and leaves the node cordoned.
    @Test func aNodeCordonedDuringTheParkIsReadAgainAndLeftCordoned() async throws {
        let options = try Self.options("Fri 08:00 12m UTC", "Fri 09:00 1h UTC")
        try await InProcessOrchestrator.with(scenario: PipelineInProcessTests.cluster(), options: options) {
            orchestrator in
            let notices = orchestrator.notices
            let store = orchestrator.store
            orchestrator.once(when: { notices.all.contains { $0.title == "Parked until the next maintenance window" } })
            {
                _ = try? await store.patch(
                    .nodes, namespace: nil, name: "worker-3",
                    patch: .object(["spec": .object(["unschedulable": .bool(true)])]),
                    strategic: true, status: false)
            }
            let id = try await orchestrator.execute()
            _ = try await orchestrator.waitFor(.succeeded, id)
            let events = try await orchestrator.events(id)
            #expect(
                events.contains {
                    $0.node == "worker-3"
                        && $0.message == "worker-3 was already cordoned by someone else; it stays cordoned afterwards"
                }, "\(events.map(\.message))")
            #expect(try await orchestrator.nodeStates()["worker-3"] == "1.34.5, cordoned")
        }
    }

    /// Dispatched at 08:00 with the window at 10:00: the job waits, seen as
    /// a wait with its end, then runs; nothing is read or changed before.
    @Test func aJobDispatchedOutsideTheWindowsWaitsForTheNext() async throws {
        let options = try Self.options("Fri 10:00 2h UTC")
        try await InProcessOrchestrator.with(scenario: PipelineInProcessTests.cluster(), options: options) {
            orchestrator in
            let id = try await orchestrator.execute()
            _ = try await orchestrator.waitFor(.succeeded, id)
            let events = try await orchestrator.events(id)
            let wait = try #require(events.first { $0.kind == .waitStarted })
            #expect(wait.stage == .master && wait.node == nil)
            #expect(
                wait.message
                    == "maintenance window to open: waiting for a maintenance window (outside the maintenance windows); the job starts at Fri 2027-01-15 10:00 UTC"
            )
            #expect(wait.deadline == Double(Self.friday + 7200))
            #expect(Self.started(events).values.allSatisfy { $0 >= Double(Self.friday + 7200) })
            #expect(events.contains { $0.message == "maintenance window open until Fri 2027-01-15 12:00 UTC" })
        }
    }

    /// An abort while the job waits for its window ends it at once, with
    /// nothing changed.
    @Test func anAbortWhileWaitingForTheWindowStopsTheJob() async throws {
        let options = try Self.options("Sat 02:00 4h UTC")
        try await InProcessOrchestrator.with(scenario: PipelineInProcessTests.cluster(), options: options) {
            orchestrator in
            let notices = orchestrator.notices
            let coordinator = orchestrator.coordinator
            orchestrator.once(when: { notices.all.contains { $0.title == "Waiting for the maintenance window" } }) {
                _ = try? await coordinator.abort(1)
            }
            let id = try await orchestrator.execute()
            _ = try await orchestrator.waitFor(.aborted, id)
            #expect(orchestrator.nodes.scriptRuns.isEmpty)
            #expect(orchestrator.clock.slept < .seconds(60))
            #expect(try await orchestrator.nodeStates().values.allSatisfy { $0 == PipelineInProcessTests.untouched })
        }
    }

    /// A dry run waits for nothing: it forecasts each node (the estimate,
    /// the soak) on its own clock and says where a real run would wait.
    @Test func aDryRunSaysWhereARealRunWouldWaitWithoutWaiting() async throws {
        let options = try Self.options("Fri 08:00 15m UTC", "Fri 09:00 1h UTC")
        try await InProcessOrchestrator.with(scenario: PipelineInProcessTests.cluster(), options: options) {
            orchestrator in
            let id = try await orchestrator.execute(dryRun: true)
            _ = try await orchestrator.waitFor(.succeeded, id)
            let would = try await orchestrator.events(id).filter { $0.message.hasPrefix("a real run would wait") }
            #expect(
                would.map(\.message) == [
                    "a real run would wait here: parked after worker-2: worker-3 does not fit (its forecast is --node-estimate and the soak): it needs 6 min and the window closes at Fri 2027-01-15 08:15 UTC (2 min left); it continues when the next window opens at Fri 2027-01-15 09:00 UTC"
                ])
            #expect(orchestrator.clock.slept < .seconds(300))
        }
    }

    /// A node that fits in no window fails the job before anything changes.
    @Test func aWindowShorterThanOneNodeFailsTheJobBeforeAnyChange() async throws {
        let options = try Self.options("daily 02:00 10m UTC", estimate: 1200)
        try await InProcessOrchestrator.with(scenario: PipelineInProcessTests.cluster(), options: options) {
            orchestrator in
            let id = try await orchestrator.execute()
            _ = try await orchestrator.waitFor(.failed, id)
            #expect(
                try await orchestrator.failure(id)
                    == "the job cannot start in any maintenance window: it needs 20 min, longer than any maintenance window in the next 400 days (the longest lasts 10 min); lengthen a window (--maintenance-window) or correct --node-estimate"
            )
            #expect(orchestrator.nodes.scriptRuns.isEmpty)
        }
    }
}

/// `--max-unavailable-workers`: workers in batches, in process.
@Suite struct WorkerBatchJobTests {
    /// Four workers, `web` with one pod on each of the first two: two
    /// workers at a time while the budget allows two disruptions.
    static func cluster(maxUnavailable: Int) -> String {
        """
        {"nodes":[{"name":"master","roles":["control-plane"],"kubeletVersion":"1.34.3"},
                  {"name":"worker-1","kubeletVersion":"1.34.3"},{"name":"worker-2","kubeletVersion":"1.34.3"},
                  {"name":"worker-3","kubeletVersion":"1.34.3"},{"name":"worker-4","kubeletVersion":"1.34.3"}],
         "workloads":[{"kind":"ReplicaSet","name":"web","replicas":2,"labels":{"app":"web"},"nodes":["worker-1","worker-2"]}],
         "budgets":[{"name":"web-pdb","maxUnavailable":\(maxUnavailable),"selector":{"app":"web"}}]}
        """
    }

    /// `start worker-1`, `done worker-1`, … in the order the workers' node events were written.
    static func workerOrder(_ events: [JobEvent]) -> [String] {
        events.compactMap { event -> String? in
            guard event.stage == .workers, let node = event.node else { return nil }
            switch event.kind {
            case .nodeStarted: return "start \(node)"
            case .nodeSucceeded: return "done \(node)"
            default: return nil
            }
        }
    }

    static func options() -> InProcessOrchestrator.Options {
        var options = InProcessOrchestrator.Options()
        options.maxUnavailableWorkers = 2
        return options
    }

    /// Each batch's two workers start before either is done, and are soaked together.
    @Test func aBatchOfTwoUpgradesTwoWorkersAtOnceWhileTheBudgetHolds() async throws {
        try await InProcessOrchestrator.with(scenario: Self.cluster(maxUnavailable: 2), options: Self.options()) {
            orchestrator in
            // The nodes the gauges name at every sleep of the job, and at
            // the sleeps of a batch's soak.
            let named = Mutex<Set<Set<String>>>([])
            let soaking = Mutex<Set<Set<String>>>([])
            orchestrator.clock.onSleep { _ in
                let nodes = orchestrator.gauges.current.nodes
                named.withLock { _ = $0.insert(nodes) }
                if let wait = try? await orchestrator.jobs.job(1)?.progress.wait, wait.what.hasPrefix("soak of") {
                    soaking.withLock { _ = $0.insert(nodes) }
                }
            }
            let id = try await orchestrator.execute()
            _ = try await orchestrator.waitFor(.succeeded, id)
            // Both nodes of a batch at once, through its soak; none once the job ended.
            #expect(named.withLock { $0.contains(["worker-1", "worker-2"]) }, "\(named.withLock { $0 })")
            #expect(
                soaking.withLock { $0 } == [["worker-1", "worker-2"], ["worker-3", "worker-4"]],
                "\(soaking.withLock { $0 })")
            #expect(orchestrator.gauges.current.nodes.isEmpty)
            let events = try await orchestrator.events(id)
            let order = Self.workerOrder(events)
            #expect(Array(order.prefix(2)).sorted() == ["start worker-1", "start worker-2"], "\(order)")
            #expect(Array(order[4..<6]).sorted() == ["start worker-3", "start worker-4"], "\(order)")
            #expect(events.contains { $0.message == "batch of 2: worker-1, worker-2, at the same time" })
            let soaks = events.filter { $0.kind == .waitEnded && $0.message.hasPrefix("soak of") }.map(\.message)
            #expect(
                soaks == ["soak of worker-1, worker-2: clean for 5 min", "soak of worker-3, worker-4: clean for 5 min"])
            #expect(try await orchestrator.nodeStates().values.allSatisfy { $0 == "1.34.5" })
        }
    }

    /// A budget allowing one disruption keeps worker-2 out of worker-1's
    /// batch (both hold a web pod), and says so.
    @Test func aBudgetThatAllowsOneKeepsTheBatchToOne() async throws {
        try await InProcessOrchestrator.with(scenario: Self.cluster(maxUnavailable: 1), options: Self.options()) {
            orchestrator in
            let id = try await orchestrator.execute()
            _ = try await orchestrator.waitFor(.succeeded, id)
            let events = try await orchestrator.events(id)
            #expect(
                events.contains {
                    $0.node == "worker-2"
                        && $0.message
                            == "worker-2 waits for the next batch: with worker-1 PodDisruptionBudget default/web-pdb allows 1 disruption, the batch would need 2 at once"
                }, "\(events.map(\.message))")
            let order = Self.workerOrder(events)
            #expect(Array(order.prefix(2)) == ["start worker-1", "done worker-1"], "\(order)")
            #expect(try await orchestrator.nodeStates().values.allSatisfy { $0 == "1.34.5" })
        }
    }
}

/// The plan's duration forecast against the run it forecasts.
@Suite struct DurationForecastTests {
    /// Node scripts that take 90 s each and 2-minute soaks: after one
    /// upgrade, the plan of the next forecasts its time within a quarter of
    /// what the run then takes.
    @Test func thePlansDurationIsWithinAQuarterOfTheRunsTime() async throws {
        var options = InProcessOrchestrator.Options()
        options.soak = .seconds(120)
        try await InProcessOrchestrator.with(scenario: PipelineInProcessTests.cluster(), options: options) {
            orchestrator in
            orchestrator.nodes.scriptDuration.withLock { $0 = .seconds(90) }
            let first = try await orchestrator.execute("1.34.4")
            _ = try await orchestrator.waitFor(.succeeded, first)
            let planner = Planner(pipeline: orchestrator.pipeline, policy: DetectionPolicy(), store: orchestrator.jobs)
            let plan = try await planner.forecast(
                target: try KubeVersion(strictRelease: "1.34.5"), now: orchestrator.clock.now())
            let duration = try #require(plan.duration)
            #expect(duration.basis.contains("a worker 4 min from job 1's longest worker and the soak"), "\(duration)")
            // Node by node: each worker's soak on top of its work.
            #expect(duration.nodes.map(\.name) == ["master", "worker-1", "worker-2", "worker-3"])
            #expect(duration.nodes.map(\.role) == [.master, .worker, .worker, .worker])
            let master = duration.nodes[0].seconds
            #expect(duration.nodes.dropFirst().allSatisfy { $0.seconds >= master + 120 - 5 }, "\(duration.nodes)")
            let second = try await orchestrator.execute("1.34.5")
            let done = try await orchestrator.waitFor(.succeeded, second)
            let measured = try #require(done.result?[dotted: "total_seconds"]?.doubleValue)
            #expect(measured > 600, "four nodes of 90 s and three soaks of 2 min: \(measured) s")
            #expect(
                abs(duration.seconds - measured) <= 0.25 * measured,
                "forecast \(duration.seconds) s, the run \(measured) s")
        }
    }
}

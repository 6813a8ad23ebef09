import Foundation
import Shared
import SharedIO
import Synchronization
import TestSupport
import Testing

@testable import Orchestrator

/// The whole pipeline in this process: the coordinator's stage loop, the
/// node steps, drains against the simulator's store (served on loopback to
/// the real Kubernetes client), simulated nodes, a stub gate, and a clock
/// on which every soak, drain timeout and gate wait passes at once. These
/// are the waits the test bed used to prove on real time.
@Suite struct PipelineInProcessTests {
    /// A master and three workers; `extra` goes inside the document.
    static func cluster(workloads: String = "", budgets: String = "", faults: String = "") -> String {
        """
        {"nodes":[{"name":"master","roles":["control-plane"],"kubeletVersion":"1.34.3"},
                  {"name":"worker-1","kubeletVersion":"1.34.3"},
                  {"name":"worker-2","kubeletVersion":"1.34.3"},
                  {"name":"worker-3","kubeletVersion":"1.34.3"}],
         "workloads":[{"kind":"ReplicaSet","name":"web","replicas":3,"labels":{"app":"web"}}\(workloads)],
         "budgets":[{"name":"web-pdb","maxUnavailable":1,"selector":{"app":"web"}}\(budgets)],
         "faults":{\(faults)}}
        """
    }

    static let untouched = "1.34.3"

    @Test func aPatchUpgradeTakesEveryNodeToTheTargetWithItsSoaks() async throws {
        try await InProcessOrchestrator.with(scenario: Self.cluster()) { orchestrator in
            let id = try await orchestrator.execute()
            _ = try await orchestrator.waitFor(.succeeded, id)
            #expect(
                orchestrator.nodes.scriptRuns == [
                    "master: --role master --release 1.34.5", "worker-1: --role worker --release 1.34.5",
                    "worker-2: --role worker --release 1.34.5", "worker-3: --role worker --release 1.34.5",
                ])
            #expect(
                try await orchestrator.nodeStates() == [
                    "master": "1.34.5", "worker-1": "1.34.5", "worker-2": "1.34.5", "worker-3": "1.34.5",
                ])
            let soaks = try await orchestrator.events(id).filter {
                $0.kind == .waitEnded && $0.message.hasPrefix("soak")
            }
            #expect(soaks.map(\.message) == (1...3).map { "soak of worker-\($0): clean for 5 min" })
            #expect(orchestrator.clock.slept >= .seconds(900), "three soaks of 5 min on the job's clock")
            #expect(orchestrator.notices.all.last?.title == "Upgrade to 1.34.5 succeeded")
        }
    }

    /// With etcd unreadable, the datastore check (here the quorum gate
    /// before the master; pre-flight reads it the same way) fails on the
    /// membership read and asks nothing more of it: against a dead member
    /// each further etcdctl call would wait out its own command timeout.
    @Test func anUnreadableEtcdFailsTheDatastoreCheckAfterOneRead() async throws {
        try await InProcessOrchestrator.with(scenario: Self.cluster()) { orchestrator in
            orchestrator.nodes.etcdUnreadable.withLock { $0 = true }
            let id = try await orchestrator.execute()
            _ = try await orchestrator.waitFor(.failed, id)
            let failure = try await orchestrator.events(id).first { $0.kind == .jobFailed }?.message ?? ""
            #expect(failure.contains("etcdctl member list exited 1"), "\(failure)")
            let etcd = orchestrator.nodes.commands.filter { $0.words.contains("etcdctl") }
            #expect(etcd.filter { $0.words.contains("member") }.count == 1)
            #expect(!etcd.contains { $0.words.contains("health") }, "\(etcd.map(\.words))")
            #expect(orchestrator.nodes.scriptRuns.isEmpty)
        }
    }

    /// An abort during worker-1's soak stops the job there: worker-1 is
    /// done and uncordoned, the others untouched.
    @Test func anAbortDuringASoakStopsBeforeTheNextNode() async throws {
        try await InProcessOrchestrator.with(scenario: Self.cluster()) { orchestrator in
            let nodes = orchestrator.nodes
            let coordinator = orchestrator.coordinator
            orchestrator.once(when: { nodes.scriptRuns.count == 2 }) { _ = try? await coordinator.abort(1) }
            let id = try await orchestrator.execute()
            _ = try await orchestrator.waitFor(.aborted, id)
            let events = try await orchestrator.events(id)
            #expect(events.last?.message == "aborted at a safe point in workers")
            #expect(events.contains { $0.kind == .waitStarted && $0.message.hasPrefix("soak of worker-1") })
            #expect(
                try await orchestrator.nodeStates() == [
                    "master": "1.34.5", "worker-1": "1.34.5", "worker-2": Self.untouched, "worker-3": Self.untouched,
                ])
            #expect(orchestrator.clock.slept < .seconds(300), "stopped inside the soak, not after it")
        }
    }

    /// An alert that fires during worker-1's soak fails the job before
    /// worker-2; once it clears, the resumed job skips what is done.
    @Test func aGateAlertDuringASoakStopsBeforeTheNextNodeAndResumeFinishesTheRest() async throws {
        try await InProcessOrchestrator.with(scenario: Self.cluster()) { orchestrator in
            let nodes = orchestrator.nodes
            let alerts = orchestrator.alerts
            orchestrator.once(when: { nodes.scriptRuns.count == 2 }) { alerts.fire("NodeLatencyHigh") }
            let id = try await orchestrator.execute()
            _ = try await orchestrator.waitFor(.failed, id)
            let failure = try await orchestrator.failure(id)
            #expect(failure.hasPrefix("soak of worker-1 stopped after "), "\(failure)")
            #expect(failure.hasSuffix("halt-on-alert gate closed: firing: NodeLatencyHigh"), "\(failure)")
            #expect(orchestrator.notices.all.map(\.title).contains("Blocked: soak of worker-1 found a regression"))
            #expect(try await orchestrator.nodeStates()["worker-2"] == Self.untouched)

            alerts.clear()
            #expect(try await orchestrator.coordinator.resume(id) != nil)
            _ = try await orchestrator.waitFor(.succeeded, id)
            let events = try await orchestrator.events(id)
            let after = events[(events.lastIndex { $0.kind == .jobResumed } ?? 0)...]
            #expect(after.filter { $0.kind == .nodeSkipped }.map(\.node) == ["master", "worker-1"])
            #expect(after.filter { $0.kind == .nodeStarted }.map(\.node) == ["worker-2", "worker-3"])
            #expect(orchestrator.nodes.scriptRuns.count == 4, "no node's script ran twice")
        }
    }

    /// `--canary-rollback`: the alert during worker-1's soak takes worker-1
    /// back to 1.34.3 before the job stops (without the gate, which is
    /// closed), uncordoned; the job's failure says both. Resumed once the
    /// alert clears, the job upgrades worker-1 again.
    @Test func aCanaryWhoseSoakFindsARegressionIsRolledBackBeforeTheJobStops() async throws {
        var options = InProcessOrchestrator.Options()
        options.canaryRollback = true
        try await InProcessOrchestrator.with(scenario: Self.cluster(), options: options) { orchestrator in
            let nodes = orchestrator.nodes
            let alerts = orchestrator.alerts
            orchestrator.once(when: { nodes.scriptRuns.count == 2 }) { alerts.fire("NodeLatencyHigh") }
            let id = try await orchestrator.execute()
            let failed = try await orchestrator.waitFor(.failed, id)
            let failure = try await orchestrator.failure(id)
            #expect(failure.hasPrefix("soak of worker-1 stopped after "), "\(failure)")
            #expect(
                failure.hasSuffix(
                    "halt-on-alert gate closed: firing: NodeLatencyHigh; canary rollback: worker-1 was reverted to "
                        + "1.34.3 (update_k8s.sh --role worker --release 1.34.3 --rollback)"), "\(failure)")
            #expect(
                try await orchestrator.nodeStates() == [
                    "master": "1.34.5", "worker-1": "1.34.3", "worker-2": Self.untouched, "worker-3": Self.untouched,
                ])
            #expect(nodes.scriptRuns.last == "worker-1: --role worker --release 1.34.3 --rollback")
            let line = failed.result?[dotted: "nodes"]?.arrayValue?.first {
                $0[dotted: "name"]?.stringValue == "worker-1"
            }
            #expect(line?[dotted: "after"]?.stringValue == "1.34.3")
            #expect(line?[dotted: "outcome"]?.stringValue == "upgraded, then rolled back: its soak found a regression")

            alerts.clear()
            #expect(try await orchestrator.coordinator.resume(id) != nil)
            _ = try await orchestrator.waitFor(.succeeded, id)
            #expect(try await orchestrator.nodeStates().values.allSatisfy { $0 == "1.34.5" })
            #expect(nodes.scriptRuns.filter { $0 == "worker-1: --role worker --release 1.34.5" }.count == 2)
        }
    }

    /// A gate closed before a node is waited out; one that stays closed
    /// fails the job at the gate's deadline, with the node untouched.
    @Test func aClosedGateIsWaitedForAndOneThatNeverOpensFailsAtItsDeadline() async throws {
        var options = InProcessOrchestrator.Options()
        options.soak = .zero
        try await InProcessOrchestrator.with(scenario: Self.cluster(), options: options) { orchestrator in
            let alerts = orchestrator.alerts
            let clock = orchestrator.clock
            // After worker-1: an alert for 10 min of the job's clock; after
            // worker-2: one that never clears.
            let opensAt = Mutex<Double?>(nil)
            orchestrator.nodes.onScript { node in
                if node == "worker-1" {
                    alerts.fire("EtcdHighLatency")
                    opensAt.withLock { $0 = clock.now() + 600 }
                }
                if node == "worker-2" {
                    opensAt.withLock { $0 = nil }
                    alerts.fire("NodeDown")
                }
            }
            clock.onSleep { now in
                if let at = opensAt.withLock({ $0 }), now >= at { alerts.clear() }
            }
            let id = try await orchestrator.execute()
            _ = try await orchestrator.waitFor(.failed, id)
            let gateWaits = try await orchestrator.events(id).filter {
                $0.kind == .waitEnded && $0.message.hasPrefix("halt-on-alert gate")
            }
            #expect(gateWaits.map(\.node) == ["worker-2", "worker-3"])
            #expect(gateWaits.first?.message.hasSuffix("to open: done after 10 min") == true, "\(gateWaits)")
            let failure = try await orchestrator.failure(id)
            #expect(failure.hasPrefix("waited 30 min for halt-on-alert gate"), "\(failure)")
            #expect(failure.hasSuffix("firing: NodeDown"), "\(failure)")
            let titles = orchestrator.notices.all.map(\.title)
            #expect(titles.contains("Blocked before worker-2") && titles.contains("Blocked before worker-3"))
            #expect(try await orchestrator.nodeStates()["worker-3"] == Self.untouched)
        }
    }

    /// A budget that never allows the eviction fails the drain at its
    /// timeout, naming the pod and the budget; the node stays cordoned by
    /// the job (for the operator), and the gauge names what blocks.
    @Test func aBudgetThatCanNeverBeMetFailsTheDrainNamingThePodAndTheBudget() async throws {
        let scenario = Self.cluster(
            workloads: #",{"kind":"ReplicaSet","name":"db","replicas":1,"labels":{"app":"db"},"nodes":["worker-1"]}"#,
            budgets: #",{"name":"db-pdb","minAvailable":1,"selector":{"app":"db"}}"#)
        try await InProcessOrchestrator.with(scenario: scenario) { orchestrator in
            let id = try await orchestrator.execute()
            _ = try await orchestrator.waitFor(.failed, id)
            let failure = try await orchestrator.failure(id)
            #expect(
                failure.hasPrefix("drain of worker-1 timed out after 10 min; still on the node: default/db-"),
                "\(failure)")
            #expect(failure.contains("held by PodDisruptionBudget default/db-pdb (0 disruptions allowed"), "\(failure)")
            let states = try await orchestrator.nodeStates()
            #expect(states["worker-1"] == "\(Self.untouched), cordoned")
            #expect(states["worker-2"] == Self.untouched)
            #expect(orchestrator.nodes.scriptRuns == ["master: --role master --release 1.34.5"])
            let blocked = orchestrator.gauges.current.drainBlocked
            #expect(
                blocked.count == 1 && blocked.first?.budget == "default/db-pdb" && blocked.first?.node == "worker-1")
            let titles = orchestrator.notices.all.map(\.title)
            #expect(titles.contains("worker-1 failed") && titles.last == "Job failed", "\(titles)")
        }
    }

    /// A node whose kubelet never reports Ready after its restart fails the
    /// job at the node-ready timeout; no further node is touched.
    @Test func aNodeThatNeverTurnsReadyFailsTheJobAndNoFurtherNodeIsTouched() async throws {
        try await InProcessOrchestrator.with(scenario: Self.cluster(faults: #""neverReadyNodes":["worker-2"]"#)) {
            orchestrator in
            let id = try await orchestrator.execute()
            _ = try await orchestrator.waitFor(.failed, id)
            let failure = try await orchestrator.failure(id)
            #expect(failure.hasPrefix("waited 10 min for worker-2 to be Ready with kubelet at 1.34.5"), "\(failure)")
            #expect(failure.contains("Ready=Unknown"), "\(failure)")
            let states = try await orchestrator.nodeStates()
            #expect(states["worker-1"] == "1.34.5" && states["worker-3"] == Self.untouched, "\(states)")
        }
    }

    /// A node script that fails fails its node and the job; resumed once
    /// the node is mended, the job redoes only that node and what follows.
    @Test func aFailedNodeScriptIsRedoneOnResumeAndNothingBeforeIt() async throws {
        try await InProcessOrchestrator.with(scenario: Self.cluster()) { orchestrator in
            orchestrator.nodes.failing.withLock { $0 = ["worker-2"] }
            let id = try await orchestrator.execute()
            _ = try await orchestrator.waitFor(.failed, id)
            #expect(try await orchestrator.failure(id).contains("on worker-2 exited 1"))
            orchestrator.nodes.failing.withLock { $0 = [] }
            _ = try await orchestrator.coordinator.resume(id)
            _ = try await orchestrator.waitFor(.succeeded, id)
            #expect(
                orchestrator.nodes.scriptRuns.map { $0.split(separator: ":")[0] } == [
                    "master", "worker-1", "worker-2", "worker-2", "worker-3",
                ])
        }
    }

    /// `k8s-upgrade rollback`: one worker of a finished upgrade goes back
    /// to its release before the job, the one its first run found even
    /// after a resume re-planned from live state. The rollback does not
    /// wait for a firing alert (that is why one rolls back) and does not
    /// soak; it cordons, drains, runs the distribution's rollback step and
    /// uncordons. A node someone else cordoned stays cordoned; the other
    /// nodes and the upgrade job stay as they were.
    @Test func aRollbackTakesOneWorkerBackToItsReleaseBeforeTheJob() async throws {
        try await InProcessOrchestrator.with(scenario: Self.cluster()) { orchestrator in
            orchestrator.nodes.failing.withLock { $0 = ["worker-2"] }
            let id = try await orchestrator.execute()
            _ = try await orchestrator.waitFor(.failed, id)
            orchestrator.nodes.failing.withLock { $0 = [] }
            _ = try await orchestrator.coordinator.resume(id)
            let upgraded = try await orchestrator.waitFor(.succeeded, id)
            let lines = upgraded.result?[dotted: "nodes"]?.arrayValue ?? []
            #expect(
                lines.map { "\($0[dotted: "name"]?.stringValue ?? ""): \($0[dotted: "before"]?.stringValue ?? "")" }
                    == ["master: 1.34.3", "worker-1: 1.34.3", "worker-2: 1.34.3", "worker-3: 1.34.3"],
                "the resumed run's report keeps each node's version before the job")

            orchestrator.alerts.fire("KubeNodeNotReady")
            let slept = orchestrator.clock.slept
            guard
                case let .queued(rollback) = try await orchestrator.coordinator.rollback(
                    id, RollbackRequest(node: "worker-1"))
            else { throw FixtureError("the rollback was not queued") }
            #expect(rollback.request.rollback == .init(job: id, node: "worker-1"))
            let done = try await orchestrator.waitFor(.succeeded, rollback.id)
            #expect(orchestrator.nodes.scriptRuns.last == "worker-1: --role worker --release 1.34.3 --rollback")
            #expect(
                try await orchestrator.nodeStates() == [
                    "master": "1.34.5", "worker-1": "1.34.3", "worker-2": "1.34.5", "worker-3": "1.34.5",
                ])
            let events = try await orchestrator.events(rollback.id).map(\.message)
            #expect(events.contains("cordon worker-1") && events.contains("uncordon worker-1"), "\(events)")
            #expect(events.contains { $0.hasPrefix("rolling back worker-1 (worker): 1.34.5 → 1.34.3") }, "\(events)")
            #expect(events.contains("worker-1 drained: 2 pods evicted"), "\(events)")
            #expect(events.first == "queued: rollback of worker-1 to 1.34.3 (undoing job 1), stages: workers")
            #expect(
                try await orchestrator.events(rollback.id).allSatisfy { $0.kind != .waitStarted },
                "no gate wait and no soak")
            #expect(orchestrator.clock.slept - slept < .seconds(60), "no gate wait and no soak")
            let line = done.result?[dotted: "nodes"]?.arrayValue?.first
            #expect(line?[dotted: "before"]?.stringValue == "1.34.5" && line?[dotted: "after"]?.stringValue == "1.34.3")
            #expect(line?[dotted: "outcome"]?.stringValue == "rolled back")
            #expect(orchestrator.notices.all.last?.title == "Rollback of worker-1 to 1.34.3 succeeded")

            // Cordoned by someone else: rolled back, and left cordoned.
            _ = try await orchestrator.cluster.client.mergePatch(
                "/api/v1/nodes/worker-3", .object(["spec": .object(["unschedulable": .bool(true)])]))
            guard
                case let .queued(other) = try await orchestrator.coordinator.rollback(
                    id, RollbackRequest(node: "worker-3"))
            else { throw FixtureError("the second rollback was not queued") }
            _ = try await orchestrator.waitFor(.succeeded, other.id)
            #expect(try await orchestrator.nodeStates()["worker-3"] == "1.34.3, cordoned")
            #expect(
                try await orchestrator.events(other.id).contains {
                    $0.message == "worker-3 left cordoned: this tool did not cordon it"
                })

            // Again: nothing to do. A control plane, a rollback job: refused.
            guard
                case let .queued(again) = try await orchestrator.coordinator.rollback(
                    id, RollbackRequest(node: "worker-1"))
            else { throw FixtureError("the repeated rollback was not queued") }
            _ = try await orchestrator.waitFor(.succeeded, again.id)
            #expect(orchestrator.nodes.scriptRuns.count == 7, "no script ran for a worker already back")
            guard
                case let .refused(master) = try await orchestrator.coordinator.rollback(
                    id, RollbackRequest(node: "master"))
            else { throw FixtureError("a control plane's rollback was queued") }
            #expect(master.contains("goes back through a restore of its etcd snapshot"), "\(master)")
            guard
                case .refused = try await orchestrator.coordinator.rollback(
                    rollback.id, RollbackRequest(node: "worker-1"))
            else { throw FixtureError("a rollback's rollback was queued") }
            guard case .notFound = try await orchestrator.coordinator.rollback(99, RollbackRequest(node: "worker-1"))
            else { throw FixtureError("job 99 was found") }
        }
    }

    /// A dry run reads everything and changes nothing: the node script
    /// runs with --dry-run, cordons, evictions and soaks are recorded as
    /// "would …", and no time is spent soaking.
    @Test func aDryRunChangesNothingAndRecordsWhatItWouldDo() async throws {
        try await InProcessOrchestrator.with(scenario: Self.cluster()) { orchestrator in
            let id = try await orchestrator.execute(dryRun: true)
            _ = try await orchestrator.waitFor(.succeeded, id)
            #expect(orchestrator.nodes.scriptRuns.allSatisfy { $0.hasSuffix("--dry-run") })
            #expect(orchestrator.nodes.scriptRuns.count == 4)
            #expect(try await orchestrator.nodeStates().values.allSatisfy { $0 == Self.untouched })
            let would = try await orchestrator.events(id).filter { $0.kind == .wouldChange }.map(\.message)
            #expect(would.contains("would cordon worker-1") && would.contains("would soak worker-1 for 5 min"))
            #expect(would.contains { $0.hasPrefix("would evict default/web-") })
            #expect(orchestrator.clock.slept == .zero)
        }
    }

    /// A dropped session is re-attached to the same run after a pause on
    /// the job's clock, and a run that stopped without a status is started
    /// again under the same run ID; the job goes on.
    @Test func aDroppedSessionAndAKilledRunAreFollowedToTheEnd() async throws {
        try await InProcessOrchestrator.with(scenario: Self.cluster()) { orchestrator in
            orchestrator.nodes.interruptions.withLock { $0 = ["worker-1": [.sessionDrops, .stopsWithoutStatus]] }
            let id = try await orchestrator.execute()
            _ = try await orchestrator.waitFor(.succeeded, id)
            let warnings = try await orchestrator.events(id).filter { $0.kind == .warning }.map(\.message)
            let run = NodeRun.id(job: id, purpose: "worker-1.34.5", node: "worker-1")
            #expect(
                warnings.contains {
                    $0.hasPrefix("the SSH session to worker-1 ended")
                        && $0.hasSuffix("re-attaching to run \(run) in 2 s (try 1)")
                }, "\(warnings)")
            #expect(warnings.contains { $0.hasPrefix("run \(run) on worker-1 stopped without an exit status") })
            let tries = orchestrator.nodes.commands.filter { $0.node == "worker-1" && $0.words.contains("--role") }
            #expect(tries.count == 3)
            #expect(tries.allSatisfy { SimulatedNodes.value(after: "--run-id", in: $0.words) == run })
        }
    }

    /// Re-attaching stops once the script timeout leaves too little time
    /// to follow the run, and says the run may still be going.
    @Test func reattachingGivesUpWhenTheScriptTimeoutLeavesTooLittleTime() async throws {
        var options = InProcessOrchestrator.Options()
        options.scriptTimeout = .seconds(40)
        try await InProcessOrchestrator.with(scenario: Self.cluster(), options: options) { orchestrator in
            orchestrator.nodes.interruptions.withLock { $0 = ["worker-1": Array(repeating: .sessionDrops, count: 5)] }
            let id = try await orchestrator.execute()
            _ = try await orchestrator.waitFor(.failed, id)
            let failure = try await orchestrator.failure(id)
            #expect(
                failure.contains("gave up re-attaching to run job-\(id)-worker-1.34.5-worker-1 after 3 tries"),
                "\(failure)")
            #expect(failure.hasSuffix("the run may still be going on the node"))
            // 2 s and 4 s of pauses on the job's clock; the third would leave less than 30 s.
            #expect(
                orchestrator.nodes.commands.filter { $0.node == "worker-1" && $0.words.contains("--role") }.count == 3)
        }
    }

    /// kubeadm's steps under another name, without containerd or an apt
    /// repository: what a distribution behind the seam looks like to the
    /// stage loop.
    struct NoPackages: Distribution {
        let base = KubeadmApt()
        var name: String { "test-dist" }
        var package: String { base.package }
        var offeredListing: [String] { base.offeredListing }
        func offer(in listing: String, running: KubeVersion, node: String) throws(PlanError) -> Offer {
            try base.offer(in: listing, running: running, node: node)
        }
        func offers(_ target: KubeVersion, in listing: String) -> Bool { base.offers(target, in: listing) }
        var datastore: String { base.datastore }
        var datastoreProbes: [[String]] { base.datastoreProbes }
        func datastoreHealth(_ outputs: [ProbeOutput], nodes: [NodeFacts]) throws(PlanError) -> DatastoreHealth {
            try base.datastoreHealth(outputs, nodes: nodes)
        }
        var quorumFromAnotherMember: Bool { false }
        var datastoreSize: [String] { base.datastoreSize }
        func datastoreBytes(_ output: String) throws(PlanError) -> Int { try base.datastoreBytes(output) }
        var snapshotExtension: String { base.snapshotExtension }
        func snapshotSave(to path: String) -> [String] { base.snapshotSave(to: path) }
        func snapshotStatus(of path: String) -> [String] { base.snapshotStatus(of: path) }
        func snapshotSummary(_ output: String) throws(PlanError) -> String { try base.snapshotSummary(output) }
        var certificateCheck: [String]? { nil }
        func dataFolders(for kind: UpgradeKind) -> [String] { [] }
        func nodeStep(role: NodeRole, target: KubeVersion) -> [String] { base.nodeStep(role: role, target: target) }
        func revertStep(role: NodeRole, to release: KubeVersion) -> [String]? { nil }
        func workerRollbackStep(to release: KubeVersion) -> [String] { base.workerRollbackStep(to: release) }
        func controlPlaneRestoreGuidance(_ point: RestorePoint) -> [String] { base.controlPlaneRestoreGuidance(point) }
        func apiServerPod(on node: String) -> String? { base.apiServerPod(on: node) }
        var hold: UpdaterHold? { nil }
        func notApplicable(_ stage: UpgradeStage) -> String? {
            switch stage {
            case .containerd: "the runtime ships with the distribution"
            case .repo: "no package repository to point at the next minor"
            default: nil
            }
        }
    }

    /// Stages a distribution does not use are skipped with its reason; the
    /// stage names stay the API's.
    @Test func stagesADistributionDoesNotUseAreSkippedWithItsReason() async throws {
        var options = InProcessOrchestrator.Options()
        options.distribution = NoPackages()
        options.soak = .zero
        try await InProcessOrchestrator.with(scenario: Self.cluster(), options: options) { orchestrator in
            let id = try await orchestrator.execute("1.35.1", kind: .minor, stages: "containerd,repo,master,workers")
            _ = try await orchestrator.waitFor(.succeeded, id)
            let skipped = try await orchestrator.events(id).filter { $0.kind == .stageSkipped }
            #expect(skipped.map(\.stage) == [.containerd, .repo])
            #expect(
                skipped.map(\.message) == [
                    "not used by test-dist: the runtime ships with the distribution",
                    "not used by test-dist: no package repository to point at the next minor",
                ])
            #expect(!orchestrator.nodes.commands.contains { $0.words.contains("--repo-minor") })
            #expect(try await orchestrator.nodeStates().values.allSatisfy { $0 == "1.35.1" })
        }
    }

    /// Where a job can stop on a fault, and how the fault is mended.
    enum Fault: String, CaseIterable, Sendable {
        case quorum, unreachable, script, gate
    }

    /// A job that fails at each kind of step resumes, once the fault is
    /// mended, to the end, and no node's script runs twice but the one that failed.
    @Test(arguments: Fault.allCases)
    func aJobFailedAtAStepResumesToTheEndWithoutRedoingANode(fault: Fault) async throws {
        var options = InProcessOrchestrator.Options()
        options.soak = .zero
        try await InProcessOrchestrator.with(scenario: Self.cluster(), options: options) { orchestrator in
            let nodes = orchestrator.nodes
            let alerts = orchestrator.alerts
            let expected: String
            switch fault {
            case .quorum:
                nodes.etcdDown.withLock { $0 = ["master"] }
                expected = "master was not touched: the single etcd member is not healthy"
            case .unreachable:
                nodes.unreachable.withLock { $0 = ["worker-2"] }
                expected = "worker-2 cannot be reached over SSH, so nothing was changed on it"
            case .script:
                nodes.failing.withLock { $0 = ["worker-2"] }
                expected = "on worker-2 exited 1"
            case .gate:
                nodes.onScript { node in if node == "worker-1" { alerts.fire("NodeDown") } }
                expected = "waited 30 min for halt-on-alert gate"
            }
            let id = try await orchestrator.execute()
            _ = try await orchestrator.waitFor(.failed, id)
            let failure = try await orchestrator.failure(id)
            #expect(failure.contains(expected), "\(fault): \(failure)")
            #expect(try await orchestrator.nodeStates()["worker-3"] == Self.untouched, "\(fault)")
            nodes.etcdDown.withLock { $0 = [] }
            nodes.unreachable.withLock { $0 = [] }
            nodes.failing.withLock { $0 = [] }
            alerts.clear()
            _ = try await orchestrator.coordinator.resume(id)
            _ = try await orchestrator.waitFor(.succeeded, id)
            var runs: [String: Int] = [:]
            for run in nodes.scriptRuns { runs[String(run.split(separator: ":")[0]), default: 0] += 1 }
            let twice: [String: Int] = fault == .script ? ["worker-2": 2] : [:]
            #expect(
                runs == ["master": 1, "worker-1": 1, "worker-2": 1, "worker-3": 1].merging(twice) { $1 },
                "\(fault)")
            #expect(try await orchestrator.nodeStates().values.allSatisfy { $0 == "1.34.5" }, "\(fault)")
        }
    }

    /// An abort lands at the safe point of the wait it meets: the gate's,
    /// or a drain waiting for a pod's graceful deletion (the node stays
    /// cordoned by the job, its script not run).
    @Test func anAbortLandsInAGateWaitAndInADrain() async throws {
        var options = InProcessOrchestrator.Options()
        options.soak = .zero
        try await InProcessOrchestrator.with(scenario: Self.cluster(), options: options) { orchestrator in
            let alerts = orchestrator.alerts
            let coordinator = orchestrator.coordinator
            orchestrator.nodes.onScript { node in if node == "worker-1" { alerts.fire("NodeDown") } }
            let nodes = orchestrator.nodes
            orchestrator.once(when: { nodes.scriptRuns.count == 2 }) { _ = try? await coordinator.abort(1) }
            let id = try await orchestrator.execute()
            _ = try await orchestrator.waitFor(.aborted, id)
            let events = try await orchestrator.events(id)
            #expect(events.contains { $0.kind == .waitStarted && $0.message.hasPrefix("halt-on-alert gate") })
            #expect(try await orchestrator.nodeStates()["worker-2"] == Self.untouched)
        }
        let slow = Self.cluster(
            workloads:
                #",{"kind":"ReplicaSet","name":"slow","replicas":1,"labels":{"app":"slow"},"nodes":["worker-1"],"terminationGracePeriodSeconds":120}"#
        )
        try await InProcessOrchestrator.with(scenario: slow, options: options) { orchestrator in
            let nodes = orchestrator.nodes
            let coordinator = orchestrator.coordinator
            orchestrator.once(when: { nodes.commands.contains { $0.node == "worker-1" && $0.words == ["true"] } }) {
                _ = try? await coordinator.abort(1)
            }
            let id = try await orchestrator.execute()
            _ = try await orchestrator.waitFor(.aborted, id)
            #expect(try await orchestrator.nodeStates()["worker-1"] == "\(Self.untouched), cordoned")
            #expect(orchestrator.nodes.scriptRuns == ["master: --role master --release 1.34.5"])
            #expect(orchestrator.clock.slept < .seconds(120), "stopped inside the graceful deletion")
        }
    }
}

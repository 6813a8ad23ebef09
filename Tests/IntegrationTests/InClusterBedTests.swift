import Foundation
import Shared
import SharedIO
import TestSupport
import Testing

extension TestBedSuites {
    /// The orchestrator as a pod of the cluster it upgrades (`testbed.sh up
    /// --orchestrator`): on the master, where deploy/'s affinity puts it,
    /// evicted or deleted like any pod, replaced after a delay, and expected
    /// to carry its job through all of that by itself.
    @Suite("the orchestrator living in the cluster it upgrades", .serialized)
    struct InClusterBedTests {
        typealias Pipeline = PipelineBedTests

        /// The pod object in the simulator, or nil when it is gone.
        static func podObject(_ bed: TestBed, _ name: String) async throws -> JSONValue? {
            let text = try await bed.kubectl("get", "pods", "-n", "k8s-upgrade", "-o", "json")
            return try JSONValue.parse(text)[dotted: "items"]?.arrayValue?.first {
                $0[dotted: "metadata.name"]?.stringValue == name
            }
        }

        static func expectEveryNodeAtTarget(_ bed: TestBed, _ version: String = "v1.34.5") async throws {
            let nodes = try await Pipeline.nodes(bed)
            #expect(nodes.count == 5)
            for (name, node) in nodes {
                #expect(
                    node == Pipeline.NodeState(version: version, unschedulable: false, cordonedBy: nil), "\(name)")
            }
        }

        /// No node was finished twice: one `node_succeeded` each, resumes included.
        static func expectEachNodeFinishedOnce(_ job: JSONValue) {
            let finished = Pipeline.events(job).filter { $0.kind == "node_succeeded" }.map(\.node)
            #expect(finished.sorted() == (["master"] + Pipeline.workers).sorted(), "\(finished)")
        }

        /// Waits until the job's newest events show `predicate`.
        static func waitForEvent(
            _ server: RunningOrchestrator, timeout: Double = 60,
            _ predicate: @escaping ((kind: String, node: String, stage: String, message: String)) -> Bool
        ) async throws {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if let job = try? await server.json("/jobs/1?events_limit=1000"),
                    Pipeline.events(job).contains(where: predicate)
                {
                    return
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            throw FixtureError("the awaited event never came")
        }

        /// Seconds from each `job_interrupted` to the `job_resumed` after it.
        static func restartCosts(_ job: JSONValue) -> [Double] {
            let events = job[dotted: "events.items"]?.arrayValue ?? []
            var costs: [Double] = []
            var interrupted: Double?
            for event in events {
                let text = event[dotted: "time"]?.stringValue ?? ""
                let time =
                    (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text))?
                    .timeIntervalSince1970 ?? 0
                switch event[dotted: "kind"]?.stringValue {
                case "job_interrupted": interrupted = interrupted ?? time
                case "job_resumed":
                    if let start = interrupted { costs.append(time - start) }
                    interrupted = nil
                default: break
                }
            }
            return costs
        }

        // MARK: - 1. A weekly run with the orchestrator on the master

        @Test func aWeeklyRunUpgradesTheMasterTheOrchestratorRunsOnWithoutEvictingIt() async throws {
            let bed = try await TestBed.start(extra: ["--orchestrator", "--soak", "1"])
            let server = try bed.orchestrator
            let before = try await bed.waitForOrchestratorPod(starts: 1)
            #expect(before.node == "master")
            try await Pipeline.detect(bed, dispatchingTo: server)
            let done = try await server.waitForJob(1, state: "succeeded", timeout: 180)

            let after = try bed.orchestratorPod()
            #expect(after.starts == 1, "the orchestrator was restarted: \(after)")
            #expect(after.pod == before.pod)
            let pod = try await Self.podObject(bed, before.pod)
            #expect(pod != nil && pod?[dotted: "metadata.deletionTimestamp"] == nil, "\(String(describing: pod))")
            #expect(pod?[dotted: "spec.nodeName"]?.stringValue == "master")
            let left = Pipeline.events(done).filter { $0.message.hasPrefix("leaving k8s-upgrade/\(before.pod) on") }
            #expect(left.map(\.node) == ["master"], "\(left)")
            #expect(left.first?.message.hasSuffix("the orchestrator itself, left running on purpose") == true)
            let master = done[dotted: "result.nodes"]?.arrayValue?.first { $0[dotted: "name"]?.stringValue == "master" }
            #expect(
                master?[dotted: "pods_left_on_purpose"]?.arrayValue?.first?.stringValue == "k8s-upgrade/\(before.pod)")
            #expect(master?[dotted: "outcome"]?.stringValue == "upgraded")
            try await Self.expectEveryNodeAtTarget(bed)
            Self.expectEachNodeFinishedOnce(done)
            // The stalled-rollout gauges: progress was pushed, and no node is left marked cordoned.
            try await Pipeline.expectGauge(bed, "k8s_upgrade_in_flight", "0")
            let pushed = try await bed.http.send(
                HTTPRequest(url: (bed.environment["TESTBED_PUSHGATEWAY_URL"] ?? "") + "/metrics")
            ).text
            #expect(pushed.contains("\nk8s_upgrade_last_progress_timestamp_seconds{"))
            #expect(!pushed.contains("\nk8s_upgrade_node_cordoned_since_timestamp_seconds{"))
            try await bed.down()
        }

        // MARK: - 2. The pod deleted mid-drain, then mid-soak

        @Test func aPodDeletedMidDrainAndAgainMidSoakIsReplacedAndTheJobResumesByItself() async throws {
            let bed = try await TestBed.start(extra: ["--orchestrator", "--soak", "3"])
            let server = try bed.orchestrator
            let first = try await bed.waitForOrchestratorPod(starts: 1)
            try await Pipeline.execute(server, #"{"target_version":"1.34.5","kind":"patch"}"#)

            try await Self.waitForEvent(server) { $0.message == "draining worker-2" }
            _ = try await bed.kubectl("delete", "pod", "-n", "k8s-upgrade", first.pod, "--wait=false")
            let second = try await bed.waitForOrchestratorPod(starts: 2)
            #expect(second.pod != first.pod)

            try await Self.waitForEvent(server) {
                $0.kind == "wait_started" && $0.message.hasPrefix("soak of worker-3")
            }
            _ = try await bed.kubectl("delete", "pod", "-n", "k8s-upgrade", second.pod, "--wait=false")
            try await bed.waitForOrchestratorPod(starts: 3)

            let done = try await server.waitForJob(1, state: "succeeded", timeout: 180)
            let events = Pipeline.events(done)
            let resumed = events.filter { $0.kind == "job_resumed" }.map(\.message)
            #expect(
                resumed == [
                    "resumed after the service restarted (restart 1 of this job)",
                    "resumed after the service restarted (restart 2 of this job)",
                ])
            #expect(events.filter { $0.kind == "job_interrupted" }.count == 2)
            Self.expectEachNodeFinishedOnce(done)
            try await Self.expectEveryNodeAtTarget(bed)
            let titles = try await Pipeline.slack(bed)
            #expect(titles.filter { $0 == "Job 1 resumed after the service restarted" }.count == 2, "\(titles)")
            print("restart cost (interrupted → resumed), seconds:", Self.restartCosts(done))
            try await bed.down()
        }

        @Test func aReplacementStartedWhileTheOldPodFinishesItsNodeStepWaitsForTheLease() async throws {
            let bed = try await TestBed.start(
                extra: ["--orchestrator", "--soak", "1", "--orchestrator-restart-delay", "0.5"])
            let server = try bed.orchestrator
            let first = try await bed.waitForOrchestratorPod(starts: 1)
            // worker-2's packages take 4 s to install: its node step is not a safe point.
            let slow = try await bed.ssh("worker-2").run(#"echo 4 > "$K8S_NODE_ROOT/var/lib/testbed/install-seconds""#)
            #expect(slow.exitStatus == 0)
            try await Pipeline.execute(server, #"{"target_version":"1.34.5","kind":"patch"}"#)
            try await Self.waitForEvent(server) { $0.kind == "output" && $0.node == "worker-2" }
            _ = try await bed.kubectl("delete", "pod", "-n", "k8s-upgrade", first.pod, "--wait=false")
            let second = try await bed.waitForOrchestratorPod(starts: 2)
            #expect(second.pod != first.pod)

            let done = try await server.waitForJob(1, state: "succeeded", timeout: 180)
            Self.expectEachNodeFinishedOnce(done)
            try await Self.expectEveryNodeAtTarget(bed)
            let events = Pipeline.events(done)
            // The old pod finished worker-2's node script before it stopped.
            let interrupted = events.firstIndex { $0.kind == "job_interrupted" } ?? events.endIndex
            #expect(
                events[..<interrupted].contains {
                    $0.node == "worker-2" && $0.message.contains("done: worker at 1.34.5")
                }, "the old pod did not finish its node step")
            // The replacement ran beside it and touched no job until the
            // old pod gave the leader lease up.
            let log = try String(
                contentsOf: bed.directory.appendingPathComponent("logs/orchestrator.log"), encoding: .utf8
            ).split(separator: "\n")
            let waiting = log.firstIndex {
                $0.contains(#""msg":"waiting for the leader lease before touching any job""#)
                    && $0.contains(#""holder":"\#(first.pod)""#)
            }
            let released = log.firstIndex { $0.contains(#""msg":"released the leader lease""#) }
            let took = log.firstIndex { $0.contains(#""msg":"took the leader lease""#) && $0.contains("released") }
            #expect(waiting != nil && released != nil && took != nil, "\(log.suffix(30))")
            if let waiting, let released, let took { #expect(waiting < released && released < took) }
            try await bed.down()
        }

        // MARK: - 3. SIGKILL and a lost store mid-upgrade

        @Test func aReplacementWithAnEmptyStoreAdoptsTheUpgradeFromTheAnnotations() async throws {
            let bed = try await TestBed.start(extra: ["--orchestrator", "--soak", "1"])
            let server = try bed.orchestrator
            let pod = try await bed.waitForOrchestratorPod(starts: 1)
            try await Pipeline.execute(server, #"{"target_version":"1.34.5","kind":"patch"}"#)
            // worker-2 mid-upgrade: drained, its node script running.
            try await Self.waitForEvent(server) { $0.kind == "output" && $0.node == "worker-2" }
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: pod.store + suffix) }
            kill(pod.pid, SIGKILL)
            try await bed.waitForOrchestratorPod(starts: 2)

            let done = try await server.waitForJob(1, state: "succeeded", timeout: 180)
            let events = Pipeline.events(done)
            #expect(
                events.first?.message.hasPrefix("adopted from the in-flight annotations of namespace k8s-upgrade")
                    == true)
            #expect(events.contains { $0.kind == "job_resumed" })
            // The adopted job finished the rest; worker-2's cordon (by job-1) was recognised as its own.
            let finished = Set(events.filter { $0.kind == "node_succeeded" }.map(\.node))
            #expect(finished.contains("worker-2") && finished.contains("worker-4"), "\(finished)")
            try await Self.expectEveryNodeAtTarget(bed)
            let annotations = try await Pipeline.namespaceAnnotations(bed)
            #expect(annotations.keys.filter { $0.hasPrefix("k8s-upgrade.io/") }.isEmpty, "\(annotations)")
            try await bed.down()
        }

        // MARK: - 4. The API server away while kubeadm restarts it

        /// The API retry waits of a job: (stage, message) of each
        /// `wait_started` and `wait_ended` about the Kubernetes API.
        static func apiWaits(_ job: JSONValue) -> [(kind: String, stage: String, message: String)] {
            Pipeline.events(job).filter {
                ["wait_started", "wait_ended"].contains($0.kind)
                    && $0.message.hasPrefix("the Kubernetes API to answer ")
            }.map { ($0.kind, $0.stage, $0.message) }
        }

        @Test func aTwentySecondAPIOutageDuringTheMastersUpgradeIsWaitedOut() async throws {
            let bed = try await TestBed.start(extra: ["--orchestrator", "--soak", "1", "--api-outage", "20"])
            let server = try bed.orchestrator
            try await bed.waitForOrchestratorPod(starts: 1)
            try await Pipeline.execute(server, #"{"target_version":"1.34.5","kind":"patch"}"#)
            let done = try await server.waitForJob(1, state: "succeeded", timeout: 240)

            let waits = Self.apiWaits(done)
            #expect(waits.first?.kind == "wait_started" && waits.first?.stage == "master", "\(waits)")
            // The calls after the master's node script met the outage and
            // were retried until it was over (it started during the script).
            let ended = waits.filter { $0.kind == "wait_ended" }.map(\.message)
            #expect(!ended.isEmpty && ended.allSatisfy { $0.contains(": done after ") }, "\(ended)")
            let longest =
                ended.compactMap { message -> Int? in
                    guard let range = message.range(of: ": done after ") else { return nil }
                    return Int(message[range.upperBound...].prefix { $0.isNumber })
                }.max() ?? 0
            #expect((8...25).contains(longest), "\(ended)")
            let tries = Pipeline.events(done).filter { $0.kind == "wait_updated" && $0.message.hasPrefix("try ") }
            #expect(tries.contains { $0.message.hasSuffix(": connection refused") }, "\(tries.map(\.message))")
            let proxy = try String(
                contentsOf: bed.directory.appendingPathComponent("logs/api-proxy.log"), encoding: .utf8)
            #expect(proxy.contains("outage: connections refused for"), "\(proxy)")
            #expect(try bed.orchestratorPod().starts == 1)
            try await Self.expectEveryNodeAtTarget(bed)
            Self.expectEachNodeFinishedOnce(done)
            try await bed.down()
        }

        @Test func anOutageLongerThanTheRetryBudgetFailsTheStepNamingTheCall() async throws {
            // A 5 min outage against a budget of 8 s (the default 2 min,
            // shortened so the test does not wait it out).
            let bed = try await TestBed.start(extra: ["--api-outage", "300"])
            let server = try await OrchestratorFixture(bed: bed, extra: ["--soak", "0", "--api-retry-budget", "8"])
                .launch()
            try await Pipeline.execute(server, #"{"target_version":"1.34.5","kind":"patch"}"#)
            let failed = try await server.waitForJob(1, state: "failed", timeout: 120)
            let events = Pipeline.events(failed)
            let failure = events.last { $0.kind == "job_failed" }
            #expect(failure?.stage == "master")
            let reason = failure?.message ?? ""
            #expect(reason.contains("Kubernetes API GET /api/v1/"), "\(reason)")
            #expect(reason.contains(": no answer after 8 s and "), "\(reason)")
            #expect(reason.contains("connection refused"), "\(reason)")
            let waits = Self.apiWaits(failed)
            #expect(
                waits.contains { $0.kind == "wait_ended" && $0.message.contains(": gave up after 8 s (") }, "\(waits)")
            // The workers were never touched.
            #expect(!events.contains { $0.kind == "node_started" && $0.node.hasPrefix("worker") })
            _ = try await server.stop(signal: SIGTERM)
            try await bed.down()
        }

        // MARK: - 5. A crash loop stops the self-resume and fires the alert

        @Test func aCrashLoopingServiceStopsResumingTheJobAndTheAlertFires() async throws {
            let bed = try await TestBed.start(extra: ["--orchestrator", "--soak", "30"])
            let server = try bed.orchestrator
            try await bed.waitForOrchestratorPod(starts: 1)
            try await Pipeline.execute(server, #"{"target_version":"1.34.5","kind":"patch"}"#)
            try await Self.waitForEvent(server) {
                $0.kind == "wait_started" && $0.message.hasPrefix("soak of worker-1")
            }
            // Three kills within a minute, each after the replacement resumed the job.
            for start in 1...3 {
                let pod = try await bed.waitForOrchestratorPod(starts: start)
                if start > 1 { try await server.waitForJob(1, state: "running", timeout: 60) }
                kill(pod.pid, SIGKILL)
            }
            try await bed.waitForOrchestratorPod(starts: 4)
            let failed = try await server.waitForJob(1, state: "failed", timeout: 60)
            let reason = Pipeline.events(failed).last { $0.kind == "job_failed" }?.message ?? ""
            #expect(reason.hasPrefix("interrupted 3 times in a row within 15 min"), "\(reason)")
            #expect(Pipeline.events(failed).filter { $0.kind == "job_resumed" }.count == 2)
            try await Pipeline.expectGauge(bed, "k8s_upgrade_crash_loop", "1")
            let prometheus = Prometheus(baseURL: bed.environment["TESTBED_PROMETHEUS_URL"] ?? "")
            let deadline = Date().addingTimeInterval(30)
            var firing = false
            while Date() < deadline, !firing {
                firing = ((try? await prometheus.alerts()) ?? []).contains {
                    $0.name == "K8sUpgradeCrashLoop" && $0.state == "firing"
                }
                if !firing { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(firing, "K8sUpgradeCrashLoop did not fire")
            let titles = try await Pipeline.slack(bed)
            #expect(titles.contains("Job 1 failed: the service keeps restarting"), "\(titles)")
            try await bed.down()
        }
    }
}

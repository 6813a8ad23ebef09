import Foundation
import Shared
import SharedIO
import TestSupport
import Testing

extension TestBedSuites {
    /// MicroK8s on the test bed: every node's sshd real, its snap, microk8s
    /// and dqlite the bed's fakes with snapd's outputs and exit codes
    /// (testbed/node-tools), the service run with --distribution microk8s,
    /// the API simulator judged by kubectl, the bed's real Prometheus.
    @Suite("MicroK8s end to end", .serialized)
    struct MicroK8sBedTests {
        typealias Pipeline = PipelineBedTests

        /// What the node's snap holds: version, revision, tracking, held.
        struct SnapState: Equatable, CustomStringConvertible {
            var version: String
            var tracking: String
            var held: Bool

            var description: String { "\(version) on \(tracking)\(held ? ", held" : "")" }
        }

        static func snap(_ bed: TestBed, _ node: String) throws -> SnapState {
            let folder = bed.directory.appendingPathComponent("nodes/\(node)/var/lib/testbed/snap")
            func read(_ name: String) throws -> String {
                try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
            return SnapState(
                version: try read("version"), tracking: try read("tracking"),
                held: FileManager.default.fileExists(atPath: folder.appendingPathComponent("held").path))
        }

        static func knob(_ bed: TestBed, _ node: String, _ name: String) throws {
            try Data().write(
                to: bed.directory.appendingPathComponent("nodes/\(node)/var/lib/testbed/snap/\(name)"))
        }

        /// The detector as the weekly CronJob runs it for MicroK8s, asking
        /// `snap info microk8s` on cp-1 and dispatching to `server`.
        static func detect(_ bed: TestBed, dispatchingTo server: RunningOrchestrator) async throws {
            let env = bed.environment
            let detector = TestEnvironment.productsDirectory.appendingPathComponent("k8s-version-check").path
            let detected = try await offThePool {
                try TestEnvironment.execute(
                    detector,
                    [
                        "--distribution", "microk8s", "--kubeconfig", env["KUBECONFIG"] ?? "", "--master-address",
                        "127.0.0.1:\(try bed.sshPort(of: "cp-1"))", "--ssh-user", env["TESTBED_SSH_USER"] ?? "",
                        "--ssh-key-file", env["TESTBED_SSH_KEY"] ?? "", "--known-hosts-file",
                        env["TESTBED_KNOWN_HOSTS"] ?? "", "--allow-minor", "true",
                        "--pushgateway-url", env["TESTBED_PUSHGATEWAY_URL"] ?? "", "--orchestrator-url",
                        server.baseURL, "--orchestrator-token-file", server.tokenFile,
                    ])
            }
            #expect(detected.status == 0, "\(detected.stderr)")
        }

        /// Makes the node NotReady as the API shows a node whose kubelite
        /// (kubelet, API server and dqlite in one process) stopped.
        static func stopKubelite(_ bed: TestBed, _ node: String) async throws {
            _ = try await bed.kubectl(
                "patch", "node", node, "--subresource=status", "--type=strategic", "-p",
                #"{"status":{"conditions":[{"type":"Ready","status":"Unknown","reason":"NodeStatusUnknown","message":"Kubelet stopped posting node status."}]}}"#
            )
            try "\(node)\n".write(
                to: bed.directory.appendingPathComponent("dqlite/down"), atomically: true, encoding: .utf8)
        }

        static func started(_ job: JSONValue) -> [String] {
            Pipeline.events(job).filter { $0.kind == "node_started" }.map(\.node)
        }

        // MARK: - 1. Patch, then minor, dispatched by the detector

        @Test func theDetectorDispatchesThePatchThenTheMinorAndEveryNodeGetsThereVotersFirst() async throws {
            let bed = try await TestBed.start(scenario: "microk8s-ha")
            let server = try await OrchestratorFixture(bed: bed, extra: ["--soak", "0", "--allow-minor", "true"])
                .launch()
            try await Self.detect(bed, dispatchingTo: server)
            let patch = try await server.waitForJob(1, state: "succeeded", timeout: 120)
            #expect(patch[dotted: "request.target_version"]?.stringValue == "1.34.5")
            #expect(Self.started(patch) == ["cp-1", "cp-2", "cp-3", "worker-1"])
            let events = Pipeline.events(patch)
            #expect(
                Set(events.filter { $0.message.hasPrefix("set snapd's refresh hold of microk8s on") }.map(\.node))
                    == Set(bed.nodes))
            #expect(
                events.filter { $0.kind == "info" && $0.message.hasPrefix("dqlite: 3 of 3 members healthy") }.map(
                    \.node) == ["cp-1", "cp-2", "cp-3"])
            #expect(
                events.filter { $0.message.hasPrefix("a write through the API succeeded after") }.map(\.node) == [
                    "cp-1", "cp-2", "cp-3",
                ])
            let snapshot = patch[dotted: "result.snapshot"]?.stringValue ?? ""
            #expect(snapshot.hasPrefix("dqlite backup of 6 files"), "\(snapshot)")
            let path = patch[dotted: "result.snapshot_path"]?.stringValue ?? ""
            #expect(path.hasSuffix(".tar.gz") && FileManager.default.fileExists(atPath: path), "\(path)")
            for node in bed.nodes {
                #expect(try Self.snap(bed, node) == SnapState(version: "v1.34.5", tracking: "1.34/stable", held: true))
            }

            try await Self.detect(bed, dispatchingTo: server)
            let minor = try await server.waitForJob(2, state: "succeeded", timeout: 120)
            #expect(minor[dotted: "request.target_version"]?.stringValue == "1.35.2")
            #expect(minor[dotted: "request.kind"]?.stringValue == "minor")
            #expect(Self.started(minor) == ["cp-1", "cp-2", "cp-3", "worker-1"])
            for node in bed.nodes {
                #expect(try Self.snap(bed, node) == SnapState(version: "v1.35.2", tracking: "1.35/stable", held: true))
            }
            let nodes = try await Pipeline.nodes(bed)
            #expect(nodes.values.allSatisfy { $0.version == "v1.35.2" && !$0.unschedulable }, "\(nodes)")
            let annotations = try await Pipeline.namespaceAnnotations(bed)
            #expect(annotations.keys.filter { $0.hasPrefix("k8s-upgrade.io/") }.isEmpty, "\(annotations)")
            _ = try await server.stop(signal: SIGTERM)
        }

        // MARK: - 2. A voter down

        /// cp-2's kubelite is down before the run: pre-flight fails naming
        /// it; with pre-flight skipped, the quorum gate before cp-1, read
        /// through cp-3, stops the job before any control plane is touched.
        @Test func withAVoterDownNoControlPlaneIsTouchedAndTheVoterIsNamed() async throws {
            let bed = try await TestBed.start(scenario: "microk8s-ha")
            try await Self.stopKubelite(bed, "cp-2")
            let before = try bed.nodes.map { try Self.snap(bed, $0) }
            let server = try await OrchestratorFixture(bed: bed, extra: ["--soak", "0"]).launch()
            try await Pipeline.execute(server, #"{"target_version":"1.34.5","kind":"patch"}"#)
            let preflight = try await server.waitForJob(1, state: "failed", timeout: 90)
            let reason = preflight[dotted: "error"]?.stringValue ?? ""
            #expect(reason.hasPrefix("preflight failed: "), "\(reason)")
            #expect(reason.contains("dqlite health: failed: ") && reason.contains("cp-2"), "\(reason)")
            #expect(Self.started(preflight).isEmpty)

            try await Pipeline.execute(
                server, #"{"target_version":"1.34.5","kind":"patch","stages":"master,workers"}"#)
            let gate = try await server.waitForJob(2, state: "failed", timeout: 90)
            let error = gate[dotted: "error"]?.stringValue ?? ""
            #expect(
                error.hasPrefix("cp-1 was not touched: dqlite would lose its quorum while cp-1's member restarts"),
                "\(error)")
            #expect(error.contains("cp-2"), "\(error)")
            #expect(Self.started(gate).isEmpty)
            #expect(try bed.nodes.map { try Self.snap(bed, $0) }.map(\.version) == before.map(\.version))
            let nodes = try await Pipeline.nodes(bed)
            #expect(nodes.values.allSatisfy { $0.version == "v1.34.3" && !$0.unschedulable }, "\(nodes)")
            _ = try await server.stop(signal: SIGTERM)
        }

        // MARK: - 3. A failed refresh, reverted; resume finishes

        @Test func aWorkersFailedRefreshIsRevertedAndHeldAndResumeFinishes() async throws {
            let bed = try await TestBed.start(scenario: "microk8s")
            try Self.knob(bed, "worker-1", "fail-next-refresh")
            let server = try await OrchestratorFixture(bed: bed, extra: ["--soak", "0", "--auto-resume", "false"])
                .launch()
            try await Pipeline.execute(server, #"{"target_version":"1.34.5","kind":"patch"}"#)
            let failed = try await server.waitForJob(1, state: "failed", timeout: 120)
            let error = failed[dotted: "error"]?.stringValue ?? ""
            #expect(error.contains("on worker-1 exited 1"), "\(error)")
            #expect(error.contains("worker-1 was reverted to 1.34.3"), "\(error)")
            #expect(Self.started(failed) == ["cp-1", "worker-1"])
            #expect(
                try Self.snap(bed, "worker-1") == SnapState(version: "v1.34.3", tracking: "1.34/stable", held: true))
            #expect(try Self.snap(bed, "worker-2").version == "v1.34.3")
            let slack = try await Pipeline.slack(bed)
            #expect(slack.contains { $0.contains("worker-1: reverting to 1.34.3") }, "\(slack)")
            #expect(slack.contains { $0.contains("worker-1 reverted") }, "\(slack)")

            #expect(try await server.request("POST", "/jobs/1/resume").status == 202)
            let done = try await server.waitForJob(1, state: "succeeded", timeout: 120)
            #expect(Self.started(done).suffix(2) == ["worker-1", "worker-2"])
            for node in bed.nodes {
                #expect(try Self.snap(bed, node) == SnapState(version: "v1.34.5", tracking: "1.34/stable", held: true))
            }
            let nodes = try await Pipeline.nodes(bed)
            #expect(nodes.values.allSatisfy { $0.version == "v1.34.5" && !$0.unschedulable }, "\(nodes)")
            _ = try await server.stop(signal: SIGTERM)
        }

        // MARK: - 4. A hold lifted mid-run

        /// worker-2's hold is lifted while worker-1 soaks: before worker-2
        /// the drift is reported and the hold set again; the gauge reaches
        /// the Pushgateway and the bed's Prometheus fires the alert.
        @Test func aHoldLiftedMidRunIsReportedAsDriftAndSetAgain() async throws {
            let bed = try await TestBed.start(scenario: "microk8s")
            let server = try await OrchestratorFixture(bed: bed, extra: ["--soak", "3"]).launch()
            try await Pipeline.execute(server, #"{"target_version":"1.34.5","kind":"patch"}"#)
            try await Pipeline.waitFor(server, wait: "soak of worker-1")
            #expect(try Self.snap(bed, "worker-2").held)
            try FileManager.default.removeItem(
                at: bed.directory.appendingPathComponent("nodes/worker-2/var/lib/testbed/snap/held"))
            let done = try await server.waitForJob(1, state: "succeeded", timeout: 120)
            let drift = Pipeline.events(done).filter { $0.kind == "warning" && $0.message.contains("(drift)") }
            #expect(
                drift.map(\.message) == [
                    "snapd's refresh hold of microk8s was lifted on worker-2 during the run (drift); set again"
                ])
            #expect(drift.map(\.node) == ["worker-2"])
            #expect(try Self.snap(bed, "worker-2").held)
            try await Pipeline.expectGauge(bed, "k8s_upgrade_hold_lifted", "1")
            let query =
                (bed.environment["TESTBED_PROMETHEUS_URL"] ?? "") + "/api/v1/query?query="
                + #"ALERTS{alertname="K8sUpgradeHoldLifted",alertstate="firing"}"#.addingPercentEncoding(
                    withAllowedCharacters: .alphanumerics)!
            var firing: [String] = []
            for _ in 0..<100 where firing.isEmpty {
                let answer = try JSONValue.parse(try await bed.http.send(HTTPRequest(url: query)).text)
                firing = (answer[dotted: "data.result"]?.arrayValue ?? []).compactMap {
                    $0[dotted: "metric.node"]?.stringValue
                }
                if firing.isEmpty { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(firing == ["worker-2"])
            let slack = try await Pipeline.slack(bed)
            #expect(slack.contains { $0.contains("worker-2: the refresh hold was lifted") }, "\(slack)")
            _ = try await server.stop(signal: SIGTERM)
        }

        // MARK: - 5. Dry run

        /// Every read real (snap info, snap list, dqlite, du), nothing
        /// changed: every file of every node, snap state included, is
        /// byte-identical, and no hold or backup was made.
        @Test func aDryRunReadsEverythingAndLeavesEveryNodeByteIdentical() async throws {
            let bed = try await TestBed.start(scenario: "microk8s-ha")
            let before = try Pipeline.nodeFiles(bed)
            let server = try await OrchestratorFixture(bed: bed, extra: ["--soak", "0"]).launch()
            try await Pipeline.execute(server, #"{"target_version":"1.34.5","kind":"patch","dry_run":true}"#)
            let done = try await server.waitForJob(1, state: "succeeded", timeout: 90)
            let events = Pipeline.events(done)
            #expect(
                Set(events.filter { $0.message.hasPrefix("would set snapd's refresh hold of microk8s on") }.map(\.node))
                    == Set(bed.nodes))
            #expect(events.contains { $0.message.hasPrefix("dqlite health: passed: 3 of 3 members healthy") })
            #expect(events.contains { $0.message.hasPrefix("updater hold: passed: ") })
            #expect(
                events.filter {
                    $0.kind == "would_change"
                        && $0.message.hasPrefix("would run on ")
                        && $0.message.contains("update_k8s.sh --snap microk8s --channel 1.34/stable --release 1.34.5")
                }.map(\.node) == ["cp-1", "cp-2", "cp-3", "worker-1"])
            #expect(!events.contains { $0.message.contains("(drift)") })
            let after = try Pipeline.nodeFiles(bed)
            #expect(after.keys.sorted() == before.keys.sorted())
            #expect(after.filter { before[$0.key] != $0.value }.keys.sorted() == [])
            _ = try await server.stop(signal: SIGTERM)
        }
    }
}

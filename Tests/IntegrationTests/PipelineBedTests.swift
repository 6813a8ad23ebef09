import Foundation
import Shared
import SharedIO
import TestSupport
import Testing

extension TestBedSuites {
    /// The whole pipeline on the test bed: real sshd, etcd, Prometheus,
    /// Pushgateway, the API simulator judged by kubectl, short soaks.
    @Suite("the upgrade pipeline end to end", .serialized)
    struct PipelineBedTests {
        // MARK: - What the tests read

        struct NodeState: Equatable {
            var version: String
            var unschedulable: Bool
            var cordonedBy: String?
        }

        static func nodes(_ bed: TestBed) async throws -> [String: NodeState] {
            let text = try await bed.kubectl("get", "nodes", "-o", "json")
            let list = try JSONValue.parse(text)
            var nodes: [String: NodeState] = [:]
            for item in list[["items"]]?.arrayValue ?? [] {
                nodes[item[["metadata", "name"]]?.stringValue ?? ""] = NodeState(
                    version: item[["status", "nodeInfo", "kubeletVersion"]]?.stringValue ?? "",
                    unschedulable: item[["spec", "unschedulable"]]?.boolValue ?? false,
                    cordonedBy: item[["metadata", "annotations", "k8s-upgrade.io/cordoned-by"]]?.stringValue)
            }
            return nodes
        }

        static func namespaceAnnotations(_ bed: TestBed) async throws -> [String: String] {
            try JSONValue.parse(try await bed.kubectl("get", "namespace", "k8s-upgrade", "-o", "json"))
                .stringMap("metadata.annotations")
        }

        /// The header of every Slack message, oldest first.
        static func slack(_ bed: TestBed) async throws -> [String] {
            let response = try await bed.http.send(
                HTTPRequest(url: (bed.environment["TESTBED_WEBHOOK_URL"] ?? "") + "/_messages"))
            return (try JSONValue.parse(response.text).arrayValue ?? []).compactMap {
                $0[["body", "blocks"]]?.arrayValue?.first?[["text", "text"]]?.stringValue
            }
        }

        /// A gauge of the `k8s-version-upgrade` group on the Pushgateway, once it equals `value`.
        static func expectGauge(_ bed: TestBed, _ series: String, _ value: String) async throws {
            let url = (bed.environment["TESTBED_PUSHGATEWAY_URL"] ?? "") + "/metrics"
            var last = ""
            for _ in 0..<50 {
                last = try await bed.http.send(HTTPRequest(url: url)).text
                let line = last.split(separator: "\n").first {
                    $0.hasPrefix(series + "{") && $0.contains("job=\"k8s-version-upgrade\"")
                }
                if let line, line.split(separator: " ").last.map(String.init) == value { return }
                try await Task.sleep(for: .milliseconds(100))
            }
            Issue.record("\(series) never became \(value); the Pushgateway has:\n\(last.split(separator: "\n").filter { $0.hasPrefix("k8s_upgrade") }.joined(separator: "\n"))")
        }

        /// Every file of every node root (package state, apt source, manifests), with its content.
        static func nodeFiles(_ bed: TestBed) throws -> [String: Data] {
            let root = bed.directory.appendingPathComponent("nodes")
            var files: [String: Data] = [:]
            let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey])
            while let url = walker?.nextObject() as? URL {
                guard (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true,
                    !url.path.contains("/ssh/")
                else { continue }
                files[url.path] = try Data(contentsOf: url)
            }
            return files
        }

        static func events(_ job: JSONValue) -> [(kind: String, node: String, stage: String, message: String)] {
            (job[dotted: "events.items"]?.arrayValue ?? []).map {
                (
                    $0[dotted: "kind"]?.stringValue ?? "", $0[dotted: "node"]?.stringValue ?? "",
                    $0[dotted: "stage"]?.stringValue ?? "", $0[dotted: "message"]?.stringValue ?? ""
                )
            }
        }

        static func execute(_ server: RunningOrchestrator, _ body: String) async throws {
            let response = try await server.request("POST", "/execute", body: body)
            #expect(response.status == 202, "\(response.text)")
        }

        /// Waits until the job's current wait is `prefix…`.
        static func waitFor(_ server: RunningOrchestrator, wait prefix: String, timeout: Double = 60) async throws {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                let job = try await server.json("/jobs/1")
                if job[dotted: "wait.what"]?.stringValue?.hasPrefix(prefix) == true { return }
                if job[dotted: "state"]?.stringValue != "running" { throw FixtureError("job ended: \(JobText.json(job))") }
                try await Task.sleep(for: .milliseconds(50))
            }
            throw FixtureError("the job never waited for \(prefix)")
        }

        static let workers = ["worker-1", "worker-2", "worker-3", "worker-4"]

        // MARK: - 1. Patch upgrade, dispatched by the detector

        @Test func aPatchUpgradeDispatchedByTheDetectorUpgradesEveryNode() async throws {
            let bed = try await TestBed.start()
            let server = try await OrchestratorFixture(bed: bed, extra: ["--soak", "1"]).launch()
            let env = bed.environment
            let detector = TestEnvironment.productsDirectory.appendingPathComponent("k8s-version-check").path
            let detected = try await offThePool {
                try TestEnvironment.execute(
                    detector,
                    [
                        "--kubeconfig", env["KUBECONFIG"] ?? "", "--master-address",
                        "127.0.0.1:\(try bed.sshPort(of: "master"))", "--ssh-user", env["TESTBED_SSH_USER"] ?? "",
                        "--ssh-key-file", env["TESTBED_SSH_KEY"] ?? "", "--known-hosts-file",
                        env["TESTBED_KNOWN_HOSTS"] ?? "", "--repo-base", env["TESTBED_REPO_BASE"] ?? "",
                        "--pushgateway-url", env["TESTBED_PUSHGATEWAY_URL"] ?? "", "--orchestrator-url",
                        server.baseURL, "--orchestrator-token-file", server.tokenFile,
                    ])
            }
            #expect(detected.status == 0, "\(detected.stderr)")
            let done = try await server.waitForJob(1, state: "succeeded", timeout: 120)
            #expect(done[dotted: "request.target_version"]?.stringValue == "1.34.5")

            let nodes = try await Self.nodes(bed)
            #expect(nodes.count == 5)
            for (name, node) in nodes {
                #expect(node == NodeState(version: "v1.34.5", unschedulable: false, cordonedBy: nil), "\(name)")
            }
            let annotations = try await Self.namespaceAnnotations(bed)
            #expect(annotations.keys.filter { $0.hasPrefix("k8s-upgrade.io/") }.isEmpty, "\(annotations)")
            try await Self.expectGauge(bed, "k8s_upgrade_in_flight", "0")
            try await Self.expectGauge(bed, "k8s_upgrade_snapshot_taken", "1")

            // The snapshot is on the master, and verified in the report.
            let path = done[dotted: "result.snapshot_path"]?.stringValue ?? ""
            #expect(path.hasPrefix((env["TESTBED_BACKUP_DIR"] ?? "") + "/k8s-upgrade-pre-1.34.5-"))
            #expect(path.hasSuffix(".db"))
            let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            #expect(size > 0)
            #expect(done[dotted: "result.snapshot"]?.stringValue?.contains("keys") == true)
            let reported = done[dotted: "result.nodes"]?.arrayValue ?? []
            #expect(reported.map { $0[dotted: "name"]?.stringValue ?? "" } == ["master"] + Self.workers)
            #expect(reported.allSatisfy { $0[dotted: "outcome"]?.stringValue == "upgraded" })
            #expect(reported.dropFirst().allSatisfy { ($0[dotted: "pods_evicted"]?.intValue ?? 0) > 0 })

            // Slack heard every transition, in order (the last one may still be on its way).
            var titles = try await Self.slack(bed)
            for _ in 0..<50 where titles.last != "Upgrade to 1.34.5 succeeded" {
                try await Task.sleep(for: .milliseconds(100))
                titles = try await Self.slack(bed)
            }
            let expected = [
                "Upgrade to 1.34.5 started (patch, stages all)", "Stage preflight started", "Stage preflight done",
                "Stage snapshot started", "Stage snapshot done", "Stage containerd started", "Stage containerd skipped",
                "Stage repo started", "Stage repo skipped", "Stage master started",
                "master: upgrading 1.34.3 → 1.34.5", "master done", "Stage master done", "Stage workers started",
            ]
            #expect(Array(titles.prefix(expected.count)) == expected, "\(titles)")
            let workerTitles = titles.filter { title in Self.workers.contains { title.hasPrefix($0) } }
            #expect(
                workerTitles == Self.workers.flatMap { ["\($0): upgrading 1.34.3 → 1.34.5", "\($0) done"] },
                "\(workerTitles)")
            #expect(
                Array(titles.suffix(3)) == [
                    "Stage postflight started", "Stage postflight done", "Upgrade to 1.34.5 succeeded",
                ])
            _ = try await server.stop(signal: SIGTERM)
        }

        // MARK: - 2. Minor upgrade with the repository rewrite

        @Test func aMinorUpgradePointsEveryNodeAtTheNextRepositoryFirst() async throws {
            let bed = try await TestBed.start(runningVersion: "1.34.5")
            let server = try await OrchestratorFixture(bed: bed, extra: ["--soak", "0"]).launch()
            try await Self.execute(server, #"{"target_version":"1.35.2","kind":"minor"}"#)
            let done = try await server.waitForJob(1, state: "succeeded", timeout: 120)
            let stages = done[dotted: "stages"]?.arrayValue?.map { $0[dotted: "status"]?.stringValue ?? "" }
            #expect(stages == ["succeeded", "succeeded", "skipped", "succeeded", "succeeded", "succeeded", "succeeded"])
            for node in bed.nodes {
                let source = try String(
                    contentsOf: bed.directory.appendingPathComponent("nodes/\(node)/etc/apt/sources.list.d/kubernetes.list"),
                    encoding: .utf8)
                #expect(source.contains("/core:/stable:/v1.35/deb/"), "\(node): \(source)")
            }
            #expect(try await Self.nodes(bed).values.allSatisfy { $0.version == "v1.35.2" && !$0.unschedulable })
            let version = try JSONValue.parse(try await bed.kubectl("version", "-o", "json"))
            #expect(version[dotted: "serverVersion.gitVersion"]?.stringValue == "v1.35.2")
            _ = try await server.stop(signal: SIGTERM)
        }

        // MARK: - 3. HA: control planes one at a time, then workers

        @Test func anHAClusterUpgradesItsControlPlanesOneAtATimeThenItsWorkers() async throws {
            let bed = try await TestBed.start(scenario: "ha")
            let server = try await OrchestratorFixture(bed: bed, extra: ["--soak", "0"]).launch()
            try await Self.execute(server, #"{"target_version":"1.34.5","kind":"patch"}"#)
            let done = try await server.waitForJob(1, state: "succeeded", timeout: 120)
            let events = Self.events(done)
            let order = events.filter { $0.kind == "node_started" || $0.kind == "node_succeeded" }.map {
                "\($0.kind == "node_started" ? "+" : "-")\($0.node)"
            }
            #expect(
                order == ["cp-1", "cp-2", "cp-3", "worker-1", "worker-2", "worker-3"].flatMap { ["+\($0)", "-\($0)"] })
            let applies = events.filter { $0.kind == "output" && $0.message.contains("kubeadm upgrade apply") }
            #expect(Set(applies.map(\.node)) == ["cp-1"])
            let nodeUpgrades = events.filter { $0.kind == "output" && $0.message == "+ kubeadm upgrade node" }
            #expect(Set(nodeUpgrades.map(\.node)) == ["cp-2", "cp-3", "worker-1", "worker-2", "worker-3"])
            #expect(
                events.filter { $0.kind == "info" && $0.message.hasPrefix("etcd: ") }.map(\.node) == [
                    "cp-1", "cp-2", "cp-3",
                ])
            #expect(try await Self.nodes(bed).values.allSatisfy { $0.version == "v1.34.5" && !$0.unschedulable })
            _ = try await server.stop(signal: SIGTERM)
        }

        // MARK: - 4. Dry run

        @Test func aDryRunReadsEverythingChangesNothingAndShowsThePlan() async throws {
            let bed = try await TestBed.start()
            let server = try await OrchestratorFixture(bed: bed).launch()
            let nodesBefore = try await Self.nodes(bed)
            let annotationsBefore = try await Self.namespaceAnnotations(bed)
            let filesBefore = try Self.nodeFiles(bed)
            try await Self.execute(server, #"{"target_version":"1.34.5","kind":"patch","dry_run":true}"#)
            let done = try await server.waitForJob(1, state: "succeeded", timeout: 60)
            #expect(try await Self.nodes(bed) == nodesBefore)
            #expect(try await Self.namespaceAnnotations(bed) == annotationsBefore)
            let filesAfter = try Self.nodeFiles(bed)
            #expect(filesAfter.keys.sorted() == filesBefore.keys.sorted())
            #expect(filesAfter.filter { filesBefore[$0.key] != $0.value }.keys.sorted() == [])

            let events = Self.events(done)
            #expect(events.contains { $0.kind == "info" && $0.message.hasPrefix("plan: 1. master: 1.34.3 → 1.34.5") })
            let would = events.filter { $0.kind == "would_change" }.map(\.message)
            #expect(would.contains("would annotate namespace k8s-upgrade: in-flight=true, target=1.34.5"))
            #expect(would.contains { $0.hasPrefix("would run on master: ") && $0.contains("snapshot save") })
            #expect(would.contains("would run on master: update_k8s.sh --role master --release 1.34.5"))
            for worker in Self.workers {
                #expect(would.contains("would cordon \(worker)"))
                #expect(would.contains("would run on \(worker): update_k8s.sh --role worker --release 1.34.5"))
                #expect(would.contains("would uncordon \(worker)"))
            }
            #expect(would.contains { $0.hasPrefix("would evict default/web-") && $0.contains("default/web-pdb") })
            // The node script ran in its own dry-run mode: a read that prints the commands.
            #expect(events.contains { $0.kind == "output" && $0.node == "worker-1" && $0.message.contains("apt-get install") })
            _ = try await server.stop(signal: SIGTERM)
        }
    }
}

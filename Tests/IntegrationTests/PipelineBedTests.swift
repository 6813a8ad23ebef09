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
            Issue.record(
                "\(series) never became \(value); the Pushgateway has:\n\(last.split(separator: "\n").filter { $0.hasPrefix("k8s_upgrade") }.joined(separator: "\n"))"
            )
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
                if Self.hasEnded(job) { throw FixtureError("job ended: \(JobText.json(job))") }
                try await Task.sleep(for: .milliseconds(50))
            }
            throw FixtureError("the job never waited for \(prefix)")
        }

        /// A job read just after `POST /execute` may still be queued; only a
        /// finished one has ended.
        static func hasEnded(_ job: JSONValue) -> Bool {
            job[dotted: "state"]?.stringValue.flatMap(JobState.init(rawValue:))?.isFinished ?? true
        }

        static let workers = ["worker-1", "worker-2", "worker-3", "worker-4"]

        /// Runs the detector against the bed, dispatching to `server`, as the
        /// weekly CronJob does, asking `master`'s package source; `extra`
        /// are further options (MicroK8s: `--distribution microk8s`).
        static func detect(
            _ bed: TestBed, dispatchingTo server: RunningOrchestrator, master: String = "master", extra: [String] = []
        ) async throws {
            let env = bed.environment
            let detector = TestEnvironment.productsDirectory.appendingPathComponent("k8s-version-check").path
            let detected = try await offThePool {
                try TestEnvironment.execute(
                    detector,
                    [
                        "--kubeconfig", env["KUBECONFIG"] ?? "", "--master-address",
                        "127.0.0.1:\(try bed.sshPort(of: master))", "--ssh-user", env["TESTBED_SSH_USER"] ?? "",
                        "--ssh-key-file", env["TESTBED_SSH_KEY"] ?? "", "--known-hosts-file",
                        env["TESTBED_KNOWN_HOSTS"] ?? "", "--repo-base", env["TESTBED_REPO_BASE"] ?? "",
                        "--pushgateway-url", env["TESTBED_PUSHGATEWAY_URL"] ?? "", "--orchestrator-url",
                        server.baseURL, "--orchestrator-token-file", server.tokenFile,
                    ] + extra)
            }
            #expect(detected.status == 0, "\(detected.stderr)")
        }

        // MARK: - 1. Patch upgrade, dispatched by the detector

        @Test func aPatchUpgradeDispatchedByTheDetectorUpgradesEveryNode() async throws {
            let bed = try await TestBed.start()
            let server = try await OrchestratorFixture(bed: bed, extra: ["--soak", "1"]).launch()
            let env = bed.environment
            try await Self.detect(bed, dispatchingTo: server)
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
            // The copy restored into a throw-away etcd here (the real etcd):
            // the bed's namespaces are in it, at the snapshot's revision.
            let rehearsal = done[dotted: "result.snapshot_rehearsal"]?.stringValue ?? ""
            #expect(rehearsal.hasPrefix("restore rehearsed: "), "\(rehearsal)")
            #expect(rehearsal.contains("(sample: /registry/namespaces/default, "), "\(rehearsal)")
            let snapshotRevision =
                done[dotted: "result.snapshot"]?.stringValue?.split(separator: ",")
                .first { $0.contains("revision") }?.split(separator: " ").last.map(String.init) ?? "?"
            #expect(rehearsal.contains(" keys, revision \(snapshotRevision), in "), "\(rehearsal)")
            // Copied off the master (over SCP) to the orchestrator's folder,
            // the same bytes under the same sha256 at both ends.
            let copy = done[dotted: "result.snapshot_copy"]?.stringValue ?? ""
            #expect(
                copy == bed.directory.appendingPathComponent("backup-copies").path + "/"
                    + (path.split(separator: "/").last.map(String.init) ?? ""))
            let copied = try Data(contentsOf: URL(fileURLWithPath: copy))
            #expect(copied == (try Data(contentsOf: URL(fileURLWithPath: path))))
            let sha256 = try TestEnvironment.execute("/usr/bin/sha256sum", [copy]).stdout.prefix(64)
            #expect(done[dotted: "result.snapshot_sha256"]?.stringValue == String(sha256))
            #expect(
                Self.events(done).contains {
                    $0.message.hasPrefix("snapshot copied off master to \(copy): sha256 \(sha256) on both ends")
                })
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

            // `k8s-upgrade rollback`: worker-3 back at 1.34.3, its packages
            // held, Ready and uncordoned; the other nodes stay at 1.34.5.
            let rollback = try await server.cli("rollback", "1", "--node", "worker-3", "--follow", "--interval", "0.2")
            #expect(rollback.status == 0, "\(rollback.stdout)\n\(rollback.stderr)")
            #expect(
                rollback.stdout.hasPrefix("job 2 queued: rollback of worker-3 to 1.34.3 (undoing job 1)"),
                "\(rollback.stdout)")
            #expect(rollback.stdout.contains("worker-3 (worker): 1.34.5 → 1.34.3, rolled back"), "\(rollback.stdout)")
            let after = try await Self.nodes(bed)
            #expect(after["worker-3"] == NodeState(version: "v1.34.3", unschedulable: false, cordonedBy: nil))
            #expect(after.filter { $0.value.version == "v1.34.5" }.count == 4, "\(after)")
            let holds = try await bed.ssh("worker-3").run("apt-mark showhold; dpkg-query -W kubelet")
            #expect(holds.stdoutText.hasPrefix("kubeadm\nkubectl\nkubelet\nkubelet\t1.34.3-"), "\(holds.stdoutText)")
            #expect(try await Self.namespaceAnnotations(bed).keys.filter { $0.hasPrefix("k8s-upgrade.io/") }.isEmpty)
            titles = try await Self.slack(bed)
            for _ in 0..<50 where titles.last != "Rollback of worker-3 to 1.34.3 succeeded" {
                try await Task.sleep(for: .milliseconds(100))
                titles = try await Self.slack(bed)
            }
            #expect(titles.contains("Rollback of worker-3 to 1.34.3 started"), "\(titles)")
            #expect(titles.last == "Rollback of worker-3 to 1.34.3 succeeded", "\(titles)")
            _ = try await server.stop(signal: SIGTERM)
        }

        /// `--canary-rollback`: the gate's alert fires during the first
        /// worker's soak; that worker goes back to 1.34.3 (held packages,
        /// Ready, uncordoned) before the job fails, so every worker runs one
        /// version again; the others were never touched.
        @Test func aCanaryWhoseSoakSeesAnAlertIsRolledBackBeforeTheJobFails() async throws {
            let bed = try await TestBed.start()
            let server = try await OrchestratorFixture(
                bed: bed, extra: ["--soak", "60", "--canary-rollback", "true"]
            ).launch()
            try await Self.execute(server, #"{"target_version":"1.34.5","kind":"patch","stages":"master,workers"}"#)
            try await Self.waitFor(server, wait: "soak of worker-1", timeout: 90)
            try await bed.setGateBlocker(true)
            let failed = try await server.waitForJob(1, state: "failed", timeout: 90)
            try await bed.setGateBlocker(false)
            let error = failed[dotted: "error"]?.stringValue ?? ""
            #expect(error.hasPrefix("soak of worker-1 stopped after "), "\(error)")
            #expect(
                error.contains("halt-on-alert gate closed: firing: TestbedGateBlocker; canary rollback: "), "\(error)")
            #expect(
                error.hasSuffix(
                    "worker-1 was reverted to 1.34.3 (update_k8s.sh --role worker --release 1.34.3 --rollback)"),
                "\(error)")
            let nodes = try await Self.nodes(bed)
            #expect(nodes["master"]?.version == "v1.34.5")
            for worker in Self.workers {
                #expect(nodes[worker] == NodeState(version: "v1.34.3", unschedulable: false), "\(worker)")
            }
            let held = try await bed.ssh("worker-1").run("apt-mark showhold; dpkg-query -W kubelet")
            #expect(held.stdoutText.hasPrefix("kubeadm\nkubectl\nkubelet\nkubelet\t1.34.3-"), "\(held.stdoutText)")
            let line = failed[dotted: "result.nodes"]?.arrayValue?.first {
                $0[dotted: "name"]?.stringValue == "worker-1"
            }
            #expect(line?[dotted: "outcome"]?.stringValue == "upgraded, then rolled back: its soak found a regression")
            _ = try await server.stop(signal: SIGTERM)
        }

        // MARK: - 2. Minor upgrade with the repository rewrite

        @Test func aMinorUpgradePointsEveryNodeAtTheNextRepositoryFirst() async throws {
            let bed = try await TestBed.start(runningVersion: "1.34.5")
            let server = try await OrchestratorFixture(bed: bed, extra: ["--soak", "0", "--allow-minor", "true"])
                .launch()
            try await Self.execute(server, #"{"target_version":"1.35.2","kind":"minor"}"#)
            let done = try await server.waitForJob(1, state: "succeeded", timeout: 120)
            let stages = done[dotted: "stages"]?.arrayValue?.map { $0[dotted: "status"]?.stringValue ?? "" }
            #expect(
                stages == ["succeeded", "succeeded", "skipped", "succeeded", "succeeded", "succeeded", "succeeded"])
            for node in bed.nodes {
                let source = try String(
                    contentsOf: bed.directory.appendingPathComponent(
                        "nodes/\(node)/etc/apt/sources.list.d/kubernetes.list"),
                    encoding: .utf8)
                #expect(source.contains("/core:/stable:/v1.35/deb/"), "\(node): \(source)")
            }
            #expect(try await Self.nodes(bed).values.allSatisfy { $0.version == "v1.35.2" && !$0.unschedulable })
            let version = try JSONValue.parse(try await bed.kubectl("version", "-o", "json"))
            #expect(version[dotted: "serverVersion.gitVersion"]?.stringValue == "v1.35.2")
            _ = try await server.stop(signal: SIGTERM)
        }

        // MARK: - 2b. Workers with the real apt and dpkg

        /// The package state of a real-apt worker: its holds, then each
        /// package's installed version, as dpkg records them.
        static func packages(_ bed: TestBed, _ node: String) async throws -> String {
            try await bed.ssh(node).run(
                "apt-mark showhold | paste -sd,; dpkg-query -W kubeadm kubelet kubectl | paste -sd,"
            )
            .stdoutText
        }

        /// The whole pipeline against workers whose apt-get, apt-cache,
        /// apt-mark and dpkg are the real ones (Debian 12 roots, a signed
        /// repository of real packages): a patch, a rollback of one worker
        /// (a downgrade of held packages), and a minor upgrade that points
        /// each worker's real apt at the next minor's repository first.
        @Test func workersWithTheRealAptArePatchedRolledBackAndMovedToTheNextMinor() async throws {
            let bed = try await TestBed.start(extra: ["--real-apt-workers"])
            // Patches without drains: the packages are what this test is about.
            let server = try await OrchestratorFixture(
                bed: bed, extra: ["--soak", "0", "--allow-minor", "true", "--patch-drain", "false"]
            ).launch()
            try await Self.execute(server, #"{"target_version":"1.34.5","kind":"patch"}"#)
            _ = try await server.waitForJob(1, state: "succeeded", timeout: 120)
            func state(_ version: String) -> String {
                "kubeadm,kubectl,kubelet\nkubeadm\t\(version),kubectl\t\(version),kubelet\t\(version)\n"
            }
            for worker in Self.workers {
                let packages = try await Self.packages(bed, worker)
                #expect(packages == state("1.34.5-1.1"), "\(worker)")
            }

            let rollback = try await server.cli("rollback", "1", "--node", "worker-3", "--follow", "--interval", "0.2")
            #expect(rollback.status == 0, "\(rollback.stdout)\n\(rollback.stderr)")
            let rolledBack = try await Self.packages(bed, "worker-3")
            #expect(rolledBack == state("1.34.3-1.1"))
            #expect(try await Self.nodes(bed)["worker-3"]?.version == "v1.34.3")

            try await Self.execute(server, #"{"target_version":"1.35.1","kind":"minor"}"#)
            let minor = try await server.waitForJob(3, state: "succeeded", timeout: 120)
            #expect(minor[dotted: "result.nodes"]?.arrayValue?.count == 5)
            for worker in Self.workers {
                let packages = try await Self.packages(bed, worker)
                #expect(packages == state("1.35.1-1.1"), "\(worker)")
                let source = try await bed.ssh(worker).run("cat /etc/apt/sources.list.d/kubernetes.list").stdoutText
                #expect(source.contains("/core:/stable:/v1.35/deb/ /"), "\(worker): \(source)")
            }
            #expect(try await Self.nodes(bed).values.allSatisfy { $0.version == "v1.35.1" && !$0.unschedulable })

            // The workers' roots share the cached template's /usr by hard
            // links: their upgrades replaced files, never wrote into one.
            let template = URL(fileURLWithPath: bed.environment["TESTBED_REAL_APT_TEMPLATE"] ?? "")
            let kubelet = try String(
                contentsOf: template.appendingPathComponent("usr/bin/kubelet"), encoding: .utf8)
            #expect(kubelet.contains("v1.34.3"), "\(kubelet)")
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

        /// Three real etcd members, cp-3's down before the run. A bare
        /// majority is healthy, but restarting cp-1's member would leave one
        /// of three: the job stops before touching any control plane. The
        /// stages skip pre-flight, so the check before each node is the judge.
        @Test func withOneDatastoreMemberDownNoControlPlaneIsTouched() async throws {
            let bed = try await TestBed.start(scenario: "ha")
            try bed.stopDatastoreMember(of: "cp-3")
            let server = try await OrchestratorFixture(bed: bed, extra: ["--soak", "0"]).launch()
            try await Self.execute(server, #"{"target_version":"1.34.5","kind":"patch","stages":"master,workers"}"#)
            let failed = try await server.waitForJob(1, state: "failed", timeout: 90)
            let error = failed[dotted: "error"]?.stringValue ?? ""
            #expect(
                error.hasPrefix(
                    "cp-1 was not touched: etcd would lose its quorum while cp-1's member restarts: "
                        + "1 of the 2 other members healthy, and 3 members need 2; unhealthy: cp-3 (https://127.0.0.1:"),
                "\(error)")
            #expect(!Self.events(failed).contains { $0.kind == "node_started" })
            let nodes = try await Self.nodes(bed)
            #expect(nodes.values.allSatisfy { $0 == NodeState(version: "v1.34.3", unschedulable: false) }, "\(nodes)")
            _ = try await server.stop(signal: SIGTERM)
        }

        /// cp-3's member dies while cp-1 is upgraded: the check before cp-2
        /// stops the job there, with cp-1 done and cp-2 untouched.
        @Test func anDatastoreMemberLostAfterTheFirstControlPlaneStopsTheJobBeforeTheSecond() async throws {
            let bed = try await TestBed.start(scenario: "ha")
            try await Self.slowInstalls(bed, "cp-1", seconds: 3)
            let server = try await OrchestratorFixture(bed: bed, extra: ["--soak", "0"]).launch()
            try await Self.execute(server, #"{"target_version":"1.34.5","kind":"patch"}"#)
            try await Self.waitForOutput(server, node: "cp-1", containing: "installing kubeadm")
            try bed.stopDatastoreMember(of: "cp-3")
            let failed = try await server.waitForJob(1, state: "failed", timeout: 90)
            let error = failed[dotted: "error"]?.stringValue ?? ""
            #expect(
                error.hasPrefix("cp-2 was not touched: etcd would lose its quorum while cp-2's member restarts")
                    && error.contains("unhealthy: cp-3 ("), "\(error)")
            let nodes = try await Self.nodes(bed)
            #expect(nodes["cp-1"] == NodeState(version: "v1.34.5", unschedulable: false))
            #expect(nodes["cp-2"] == NodeState(version: "v1.34.3", unschedulable: false))
            #expect(nodes["cp-3"] == NodeState(version: "v1.34.3", unschedulable: false))
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
            #expect(would.contains("would annotate namespace k8s-upgrade: in-flight=true, job=1, target=1.34.5"))
            #expect(would.contains { $0.hasPrefix("would run on master: ") && $0.contains("snapshot save") })
            #expect(would.contains("would run on master: update_k8s.sh --role master --release 1.34.5"))
            for worker in Self.workers {
                #expect(would.contains("would cordon \(worker)"))
                #expect(would.contains("would run on \(worker): update_k8s.sh --role worker --release 1.34.5"))
                #expect(would.contains("would uncordon \(worker)"))
            }
            #expect(would.contains { $0.hasPrefix("would evict default/web-") && $0.contains("default/web-pdb") })
            // The node script ran in its own dry-run mode: a read that prints the commands.
            #expect(
                events.contains {
                    $0.kind == "output" && $0.node == "worker-1"
                        && $0.message.contains("apt-get -o DPkg::Lock::Timeout=300 install")
                })
            _ = try await server.stop(signal: SIGTERM)
        }

        // MARK: - Scenarios with faults

        /// The default cluster as a scenario file, plus `extra` JSON members.
        static func scenario(_ extra: String) throws -> String {
            let nodes = (["master"] + workers).map { name in
                name == "master"
                    ? #"{"name":"master","roles":["control-plane"],"kubeletVersion":"1.34.3"}"#
                    : #"{"name":"\#(name)","kubeletVersion":"1.34.3"}"#
            }
            let text = """
                {"nodes":[\(nodes.joined(separator: ","))],
                 "workloads":[{"kind":"DaemonSet","namespace":"kube-system","name":"kube-proxy","labels":{"k8s-app":"kube-proxy"}},
                              {"kind":"ReplicaSet","name":"web","replicas":4,"labels":{"app":"web"}}\(extra)}
                """
            let file = try TestEnvironment.makeDirectory("scenario").appendingPathComponent("scenario.json")
            try text.write(to: file, atomically: true, encoding: .utf8)
            return file.path
        }

        // MARK: - Two budgets over one pod

        /// The eviction API answers 500 for a pod that two budgets cover, and
        /// keeps answering it: the node fails at once naming both (it was
        /// retried as an outage for the whole API retry budget). The second
        /// budget selects by matchExpressions, which attribution honours.
        @Test func aPodUnderTwoBudgetsFailsItsNodeAtOnceNamingBoth() async throws {
            let file = try Self.scenario(
                #",{"kind":"ReplicaSet","name":"db","replicas":1,"labels":{"app":"db"},"nodes":["worker-1"]}],"#
                    + #""budgets":[{"name":"db-pdb","minAvailable":0,"selector":{"app":"db"}}]"#)
            let bed = try await TestBed.start(scenario: file)
            let second = bed.directory.appendingPathComponent("db-tier.yaml")
            try """
            apiVersion: policy/v1
            kind: PodDisruptionBudget
            metadata: {name: db-tier, namespace: default}
            spec:
              maxUnavailable: 1
              selector:
                matchExpressions: [{key: app, operator: In, values: [db, cache]}]

            """.write(to: second, atomically: true, encoding: .utf8)
            _ = try await bed.kubectl("create", "--validate=false", "-f", second.path)
            let server = try await OrchestratorFixture(bed: bed, extra: ["--soak", "0"]).launch()
            // The drain forecast sees it first: pre-flight refuses, nothing is touched.
            try await Self.execute(server, #"{"target_version":"1.34.5","kind":"patch"}"#)
            let refused = try await server.waitForJob(1, state: "failed", timeout: 60)
            let reason = refused[dotted: "error"]?.stringValue ?? ""
            #expect(
                reason.hasPrefix(
                    "preflight failed: drain forecast: failed: 1 blockers on worker-1: worker-1: default/db-")
                    && reason.contains(
                        ": covered by PodDisruptionBudgets default/db-pdb and default/db-tier; the eviction API refuses it; clear them, or accept them with accept_blockers (--accept-blockers)"
                    ), "\(reason)")
            #expect(
                try await Self.nodes(bed).values.allSatisfy {
                    $0 == NodeState(version: "v1.34.3", unschedulable: false)
                })
            // Accepted, the job meets it at worker-1's drain.
            let started = Date()
            try await Self.execute(server, #"{"target_version":"1.34.5","kind":"patch","accept_blockers":true}"#)
            let failed = try await server.waitForJob(2, state: "failed", timeout: 60)
            #expect(Date().timeIntervalSince(started) < 90, "failed at once, not after the 120 s API retry budget")
            let error = failed[dotted: "error"]?.stringValue ?? ""
            #expect(
                error.contains("cannot evict default/db-") && error.contains("more than one PodDisruptionBudget")
                    && error.contains("PodDisruptionBudget default/db-pdb and PodDisruptionBudget default/db-tier"),
                "\(error)")
            let nodes = try await Self.nodes(bed)
            #expect(nodes["worker-1"] == NodeState(version: "v1.34.3", unschedulable: true, cordonedBy: "job-2"))
            #expect(nodes["worker-2"] == NodeState(version: "v1.34.3", unschedulable: false))
            _ = try await server.stop(signal: SIGTERM)
        }

        // MARK: - The drain forecast against the drain

        /// A budget that allows no disruption and a pod whose replacement has
        /// no room: `GET /plan` names both on worker-1; a job refuses at
        /// pre-flight before touching anything; with `accept_blockers` it
        /// meets exactly them: the drain times out on the budget's pod, and
        /// the big pod's replacement is Pending.
        @Test func thePlanNamesTheBlockersARunThenMeets() async throws {
            let allocatable = #""allocatable":{"cpu":"2","memory":"4Gi","pods":"110"}"#
            let text = """
                {"nodes":[{"name":"master","roles":["control-plane"],"kubeletVersion":"1.34.3"},
                          {"name":"worker-1","kubeletVersion":"1.34.3",\(allocatable)},
                          {"name":"worker-2","kubeletVersion":"1.34.3",\(allocatable)}],
                 "workloads":[{"kind":"DaemonSet","namespace":"kube-system","name":"kube-proxy","labels":{"k8s-app":"kube-proxy"}},
                              {"kind":"ReplicaSet","name":"big","replicas":2,"labels":{"app":"big"},
                               "nodes":["worker-1","worker-2"],"requests":{"cpu":"1500m","memory":"1Gi"}},
                              {"kind":"ReplicaSet","name":"db","replicas":1,"labels":{"app":"db"},"nodes":["worker-1"]}],
                 "budgets":[{"name":"db-pdb","minAvailable":1,"selector":{"app":"db"}}]}
                """
            let file = try TestEnvironment.makeDirectory("scenario").appendingPathComponent("scenario.json")
            try text.write(to: file, atomically: true, encoding: .utf8)
            let bed = try await TestBed.start(scenario: file.path)
            let server = try await OrchestratorFixture(bed: bed, extra: ["--soak", "0", "--drain-timeout", "5"])
                .launch()

            let plan = try await server.json("/plan?target=1.34.5")
            #expect(plan[dotted: "ready"] == .bool(false))
            let nodes = plan[dotted: "drain.nodes"]?.arrayValue ?? []
            #expect(nodes.compactMap { $0[dotted: "name"]?.stringValue } == ["master", "worker-1", "worker-2"])
            let blockers =
                nodes.first { $0[dotted: "name"]?.stringValue == "worker-1" }?[dotted: "blockers"]?.arrayValue ?? []
            #expect(blockers.count == 2, "\(JobText.json(plan))")
            let room = blockers.first { $0[dotted: "budget"] == .null }
            let budget = blockers.first { $0[dotted: "budget"]?.stringValue == "default/db-pdb" }
            #expect(
                room?[dotted: "text"]?.stringValue?.contains(
                    "(cpu 1500m, memory 1Gi) fits on no other schedulable node (master: taint node-role.kubernetes.io/control-plane:NoSchedule not tolerated; worker-2: cpu 500m, memory 3Gi free, 108 pods); its replacement would stay Pending"
                ) == true, "\(blockers)")
            let heldPod = try #require(budget?[dotted: "pod"]?.stringValue)
            #expect(heldPod.hasPrefix("default/db-"))
            // The API, asked with a dry-run eviction, refuses the db pod too.
            let worker1 = nodes.first { $0[dotted: "name"]?.stringValue == "worker-1" }
            #expect(
                worker1?[dotted: "api_confirmation"]?.stringValue == "the API's dry-run evictions: 1 of 1 as forecast",
                "\(worker1 ?? .null)")
            let lines = plan[dotted: "lines"]?.arrayValue?.compactMap(\.stringValue) ?? []
            #expect(lines.contains("drain forecast (each node in turn):"), "\(lines)")

            // Without consent: refused at pre-flight, nothing touched.
            try await Self.execute(server, #"{"target_version":"1.34.5","kind":"patch"}"#)
            let refused = try await server.waitForJob(1, state: "failed", timeout: 60)
            #expect(
                refused[dotted: "error"]?.stringValue?.hasPrefix(
                    "preflight failed: drain forecast: failed: 3 blockers on worker-1, worker-2: ") == true,
                "\(refused[dotted: "error"] ?? .null)")
            #expect(try await Self.nodes(bed).values.allSatisfy { $0.version == "v1.34.3" && !$0.unschedulable })

            // With consent: the drain of worker-1 meets the budget the plan named.
            try await Self.execute(server, #"{"target_version":"1.34.5","kind":"patch","accept_blockers":true}"#)
            let failed = try await server.waitForJob(2, state: "failed", timeout: 120)
            let error = failed[dotted: "error"]?.stringValue ?? ""
            #expect(error.hasPrefix("drain of worker-1 timed out after 5 s; still on the node: \(heldPod)"), "\(error)")
            #expect(error.contains("held by PodDisruptionBudget default/db-pdb"), "\(error)")
            // The report keeps the forecast beside the node's outcome.
            let line = failed[dotted: "result.nodes"]?.arrayValue?.first {
                $0[dotted: "name"]?.stringValue == "worker-1"
            }
            let predicted = line?[dotted: "predicted_blockers"]?.arrayValue?.compactMap(\.stringValue) ?? []
            #expect(
                predicted.count == 2
                    && predicted.contains { $0.hasPrefix("\(heldPod): PodDisruptionBudget default/db-pdb") })
            let pods = try JSONValue(
                parsing: Array(try await bed.kubectl("get", "pods", "-l", "app=big", "-o", "json").utf8))
            let phases = (pods[dotted: "items"]?.arrayValue ?? []).compactMap {
                $0[dotted: "status.phase"]?.stringValue
            }
            #expect(phases.sorted() == ["Pending", "Running"], "the replacement the plan said has no room: \(phases)")
            _ = try await server.stop(signal: SIGTERM)
        }

        // (A gate alert during a soak, a budget that can never be met, a node
        // that never turns Ready and an abort during a soak are waits: they
        // run in-process, in OrchestratorTests/PipelineInProcessTests.)

        // MARK: - 8b. A node that reports another machine's address

        @Test func aNodeWhoseAddressLeadsToAnotherMachineIsRefusedByItsNameBeforeItIsCordoned() async throws {
            let bed = try await TestBed.start()
            // Every node's key under the node's name, as the runbook shows.
            var lines = ""
            for node in bed.nodes {
                let key = try String(
                    contentsOf: bed.directory.appendingPathComponent("nodes/\(node)/ssh/host_ed25519.pub"),
                    encoding: .utf8
                ).split(separator: " ")
                lines += "\(node) \(key[0]) \(key[1])\n"
            }
            let byName = bed.directory.appendingPathComponent("known_hosts_by_name")
            try lines.write(to: byName, atomically: true, encoding: .utf8)
            // worker-1's address leads to worker-2's sshd: by the address
            // alone, worker-2 would be upgraded in worker-1's place.
            let server = try await OrchestratorFixture(
                bed: bed,
                extra: [
                    "--soak", "0", "--known-hosts-file", byName.path, "--node-address",
                    "worker-1=127.0.0.1:\(try bed.sshPort(of: "worker-2"))",
                ]
            ).launch()
            try await Self.execute(server, #"{"target_version":"1.34.5","kind":"patch","stages":"master,workers"}"#)
            let failed = try await server.waitForJob(1, state: "failed", timeout: 60)
            let error = failed[dotted: "error"]?.stringValue ?? ""
            #expect(error.contains("worker-1 cannot be reached over SSH, so nothing was changed on it"), "\(error)")
            #expect(
                error.contains("HOST KEY CHANGED") && error.contains("for worker-1 (looked up by its name)"), "\(error)"
            )
            let nodes = try await Self.nodes(bed)
            for node in Self.workers {
                #expect(nodes[node] == NodeState(version: "v1.34.3", unschedulable: false), "\(node)")
            }
            _ = try await server.stop(signal: SIGTERM)
        }

        // MARK: - Stages that skip the control plane

        /// `preflight,workers` on a cluster whose control plane still runs
        /// 1.34.3: a worker's kubelet at 1.34.5 would be newer than every API server.
        @Test func workersAloneNeverGetAheadOfTheAPIServer() async throws {
            let bed = try await TestBed.start()
            let server = try await OrchestratorFixture(bed: bed, extra: ["--soak", "0"]).launch()
            try await Self.execute(server, #"{"target_version":"1.34.5","kind":"patch","stages":"preflight,workers"}"#)
            let failed = try await server.waitForJob(1, state: "failed", timeout: 60)
            let error = failed[dotted: "error"]?.stringValue ?? ""
            #expect(
                error.contains(
                    "worker-1 was not touched: kubelet on worker-1 would run 1.34.5, newer than the API server 1.34.3")
                    && error.contains("(master runs 1.34.3): run the master stage"), "\(error)")
            #expect(!Self.events(failed).contains { $0.kind == "output" }, "no node script ran")
            let nodes = try await Self.nodes(bed)
            #expect(nodes.values.allSatisfy { $0 == NodeState(version: "v1.34.3", unschedulable: false) }, "\(nodes)")
            _ = try await server.stop(signal: SIGTERM)
        }

        /// Retention after a new snapshot: the newest --snapshot-keep stay,
        /// a killed save's .part goes, other files stay.
        @Test func oldSnapshotsAndKilledSavesArePrunedAfterANewOne() async throws {
            let bed = try await TestBed.start()
            let folder = URL(fileURLWithPath: bed.environment["TESTBED_BACKUP_DIR"] ?? "")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let old = [
                "k8s-upgrade-pre-1.34.3-1700000000.db", "k8s-upgrade-pre-1.34.4-1700000100.db",
                "k8s-upgrade-pre-1.34.4-1700000200.db.part", "notes.txt",
            ]
            for name in old { try Data("old".utf8).write(to: folder.appendingPathComponent(name)) }
            let copies = bed.directory.appendingPathComponent("backup-copies")
            try FileManager.default.createDirectory(at: copies, withIntermediateDirectories: true)
            for name in old { try Data("old".utf8).write(to: copies.appendingPathComponent(name)) }
            let server = try await OrchestratorFixture(bed: bed, extra: ["--snapshot-keep", "2"]).launch()
            try await Self.execute(server, #"{"target_version":"1.34.5","kind":"patch","stages":"preflight,snapshot"}"#)
            let done = try await server.waitForJob(1, state: "succeeded", timeout: 60)
            let path = done[dotted: "result.snapshot_path"]?.stringValue ?? ""
            // Pre-flight read etcd's database size and the free space on the master.
            #expect(
                Self.events(done).contains {
                    $0.message.hasPrefix("disk space: passed: \(folder.path) ")
                        && $0.message.contains(", /var/lib/etcd ") && $0.message.contains("for an etcd database of ")
                }, "\(Self.events(done).map(\.message))")
            let left = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
            #expect(
                left
                    == [
                        "k8s-upgrade-pre-1.34.4-1700000100.db", URL(fileURLWithPath: path).lastPathComponent,
                        "notes.txt",
                    ].sorted(), "\(left)")
            #expect(
                Self.events(done).contains {
                    $0.message.hasSuffix(
                        "removed k8s-upgrade-pre-1.34.4-1700000200.db.part, k8s-upgrade-pre-1.34.3-1700000000.db")
                })
            // The copies off the master follow the same retention.
            let copiesLeft = try FileManager.default.contentsOfDirectory(atPath: copies.path).sorted()
            #expect(copiesLeft == left, "\(copiesLeft)")

            // A snapshot cut short on the master (fault knob): etcd 3.4's
            // `snapshot status` refuses it, or takes it (where the cut leaves
            // a readable page layout) and its restore rehearsal refuses it;
            // either way the job fails in the snapshot stage, no copy is
            // kept and no node is touched.
            try Data().write(to: bed.directory.appendingPathComponent("nodes/master/var/lib/testbed/snapshot-truncate"))
            try await Self.execute(
                server, #"{"target_version":"1.34.5","kind":"patch","stages":"snapshot,master,workers"}"#)
            let truncated = try await server.waitForJob(2, state: "failed", timeout: 60)
            let error = truncated[dotted: "error"]?.stringValue ?? ""
            let refusedOnTheMaster =
                error.hasPrefix("the etcd snapshot \(folder.path)/k8s-upgrade-pre-1.34.5-")
                && error.contains(" could not be verified: ")
            let refusedByTheRehearsal =
                error.hasPrefix("the snapshot \(copies.path)/k8s-upgrade-pre-1.34.5-")
                && error.contains(" does not restore, so it was removed and no node was touched: ")
            #expect(refusedOnTheMaster || refusedByTheRehearsal, "\(error)")
            let stages = truncated[dotted: "stages"]?.arrayValue ?? []
            #expect(
                stages.first { $0[dotted: "status"]?.stringValue == "failed" }?[dotted: "name"]?.stringValue
                    == "snapshot", "\(stages)")
            #expect(!Self.events(truncated).contains { $0.kind == "node_started" || $0.message.hasPrefix("cordon ") })
            #expect(try FileManager.default.contentsOfDirectory(atPath: copies.path).sorted() == copiesLeft)
            let nodes = try await Self.nodes(bed)
            #expect(nodes.values.allSatisfy { $0 == NodeState(version: "v1.34.3", unschedulable: false) }, "\(nodes)")
            _ = try await server.stop(signal: SIGTERM)
        }

        /// `k8s-upgrade rollback JOB --node master` on the bed's single
        /// master: refused until confirmed, then the job's snapshot restored
        /// into the master's real etcd (the static pods stopped, the member
        /// restarted on the restored data), the packages and manifests back
        /// at 1.34.3: a ConfigMap created before the upgrade is there, one
        /// created after it is gone (the simulator keeps ConfigMaps in etcd).
        @Test func theSingleMasterGoesBackThroughItsSnapshotOnceConfirmed() async throws {
            let bed = try await TestBed.start()
            func configMap(_ name: String) async throws {
                let file = bed.directory.appendingPathComponent("\(name).json")
                try Data(
                    #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"\#(name)","namespace":"default"},"data":{"a":"1"}}"#
                        .utf8
                ).write(to: file)
                _ = try await bed.kubectl("create", "--validate=false", "-f", file.path)
            }
            func configMaps() async throws -> String {
                try await bed.kubectl("get", "configmaps", "-o", "jsonpath={.items[*].metadata.name}")
            }
            try await configMap("before-upgrade")
            let server = try await OrchestratorFixture(bed: bed, extra: ["--soak", "0"]).launch()
            try await Self.execute(
                server, #"{"target_version":"1.34.5","kind":"patch","stages":"preflight,snapshot,master"}"#)
            let upgrade = try await server.waitForJob(1, state: "succeeded", timeout: 60)
            let snapshot = upgrade[dotted: "result.snapshot_path"]?.stringValue ?? ""
            try await configMap("after-upgrade")
            #expect(try await configMaps() == "after-upgrade before-upgrade")

            let unconfirmed = try await server.request("POST", "/jobs/1/rollback", body: #"{"node":"master"}"#)
            #expect(unconfirmed.status == 422)
            #expect(
                unconfirmed.text.contains(
                    "taking master back to 1.34.3 restores job 1's etcd snapshot \(snapshot): every change made to "
                        + "the cluster since that snapshot is lost"), "\(unconfirmed.text)")
            let confirmed = try await server.request(
                "POST", "/jobs/1/rollback", body: #"{"node":"master","confirm_restore":true}"#)
            #expect(confirmed.status == 202, "\(confirmed.text)")
            let restore = try await server.waitForJob(2, state: "succeeded", timeout: 90)
            let output = Self.events(restore).filter { $0.kind == "output" }.map(\.message)
            #expect(output.contains { $0.hasPrefix("==> snapshot SHA-256 ") && $0.hasSuffix(", as recorded") })
            #expect(output.contains("==> waiting up to 120 s for etcd and the API server to stop"), "\(output)")
            #expect(output.contains("==> done: master at 1.34.3, etcd restored from \(snapshot)"), "\(output)")
            #expect(!Self.events(restore).contains { $0.message.hasPrefix("cordon ") }, "a restore cordons nothing")

            #expect(try await configMaps() == "before-upgrade")
            let nodes = try await Self.nodes(bed)
            #expect(nodes.values.allSatisfy { $0 == NodeState(version: "v1.34.3", unschedulable: false) }, "\(nodes)")
            let version = try await bed.kubectl("version", "-o", "json")
            #expect(version.contains(#""gitVersion": "v1.34.3""#), "\(version)")
            let master = bed.directory.appendingPathComponent("nodes/master")
            for package in ["kubeadm", "kubelet", "kubectl"] {
                let installed = try String(
                    contentsOf: master.appendingPathComponent("var/lib/testbed/installed/\(package)"), encoding: .utf8)
                #expect(installed == "1.34.3-1.1\n", "\(package)")
                #expect(
                    FileManager.default.fileExists(
                        atPath: master.appendingPathComponent("var/lib/testbed/holds/\(package)").path))
            }
            let kept = try FileManager.default.contentsOfDirectory(
                atPath: master.appendingPathComponent("var/lib").path)
            #expect(kept.contains { $0.hasPrefix("etcd.before-restore-") }, "the replaced data folder is kept: \(kept)")

            // Again, on a master already at 1.34.3: the script runs (a datastore
            // may still need restoring there), finds the restore done, and
            // stops nothing; nothing goes back a second time.
            try await configMap("after-restore")
            let again = try await server.request(
                "POST", "/jobs/1/rollback", body: #"{"node":"master","confirm_restore":true}"#)
            #expect(again.status == 202, "\(again.text)")
            let repeated = try await server.waitForJob(3, state: "succeeded", timeout: 30)
            let said = Self.events(repeated).filter { $0.kind == "output" }.map(\.message)
            #expect(said.contains("==> already restored from \(snapshot) and at 1.34.3"), "\(said)")
            #expect(!said.contains { $0.contains("stopping") || $0.contains("restoring") }, "\(said)")
            #expect(try await configMaps() == "after-restore before-upgrade")
            _ = try await server.stop(signal: SIGTERM)
        }

        /// A new job on a cluster another job left mid-upgrade keeps that
        /// job's pre-upgrade snapshot as the rollback point: a snapshot of
        /// the mixed state is not one.
        @Test func aNewJobOnAHalfDoneClusterKeepsTheSnapshotFromBeforeTheFirstChange() async throws {
            let bed = try await TestBed.start()
            let fixture = try OrchestratorFixture(bed: bed, extra: ["--soak", "3", "--auto-resume", "false"])
            let first = try await fixture.launch()
            try await Self.execute(first, #"{"target_version":"1.34.5","kind":"patch"}"#)
            try await Self.waitFor(first, wait: "soak of worker-1")
            #expect(try await first.stop(signal: SIGKILL) == 128 + SIGKILL)
            let snapshot = try await Self.namespaceAnnotations(bed)["k8s-upgrade.io/snapshot-path"] ?? ""
            #expect(snapshot.hasSuffix(".db"))

            let second = try await fixture.launch()
            let created = try await second.request(
                "POST", "/execute", body: #"{"target_version":"1.34.5","kind":"patch"}"#)
            #expect(created.status == 202, "\(created.text)")
            let done = try await second.waitForJob(2, state: "succeeded", timeout: 120)
            #expect(done[dotted: "result.snapshot_path"]?.stringValue == snapshot)
            #expect(
                Self.events(done).contains {
                    $0.message.hasPrefix(
                        "keeping the pre-upgrade snapshot \(snapshot) that job 1 took before the first change it left half-done"
                    )
                }, "\(Self.events(done).map(\.message))")
            _ = try await second.stop(signal: SIGTERM)
        }

        /// A resume that fails before it changes anything (etcd went down
        /// meanwhile) leaves a cluster with mixed versions marked in flight:
        /// it cleared the mark and the gauge, as if nothing were half-done.
        @Test func aResumeThatFailsAtOnceKeepsAMixedClusterMarkedInFlight() async throws {
            let bed = try await TestBed.start()
            let fixture = try OrchestratorFixture(bed: bed, extra: ["--soak", "3", "--auto-resume", "false"])
            let first = try await fixture.launch()
            try await Self.execute(first, #"{"target_version":"1.34.5","kind":"patch"}"#)
            try await Self.waitFor(first, wait: "soak of worker-1")
            #expect(try await first.stop(signal: SIGKILL) == 128 + SIGKILL)
            let pid = try String(contentsOf: bed.directory.appendingPathComponent("pids/etcd.pid"), encoding: .utf8)
            kill(-(Int32(pid.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0), SIGKILL)

            let second = try await fixture.launch()
            #expect(try await second.request("POST", "/jobs/1/resume").status == 202)
            let failed = try await second.waitForJob(1, state: "failed", timeout: 90)
            #expect(failed[dotted: "error"]?.stringValue?.contains("etcd") == true)
            let annotations = try await Self.namespaceAnnotations(bed)
            #expect(annotations["k8s-upgrade.io/in-flight"] == "true", "\(annotations)")
            #expect(annotations["k8s-upgrade.io/job"] == "1")
            #expect(annotations["k8s-upgrade.io/snapshot-path"]?.hasSuffix(".db") == true)
            let metrics = try await bed.http.send(
                HTTPRequest(url: (bed.environment["TESTBED_PUSHGATEWAY_URL"] ?? "") + "/metrics")
            ).text
            #expect(
                metrics.split(separator: "\n").contains {
                    $0.hasPrefix("k8s_upgrade_in_flight{") && $0.hasSuffix(" 1")
                },
                "the gauge stays 1")
            _ = try await second.stop(signal: SIGTERM)
        }

        // MARK: - 9. etcd down

        @Test func withEtcdDownNoNodeIsTouched() async throws {
            let bed = try await TestBed.start()
            let pid = try String(contentsOf: bed.directory.appendingPathComponent("pids/etcd.pid"), encoding: .utf8)
            let etcd = Int32(pid.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            kill(-etcd, SIGKILL)
            let server = try await OrchestratorFixture(bed: bed, extra: ["--soak", "0"]).launch()
            try await Self.execute(server, #"{"target_version":"1.34.5","kind":"patch"}"#)
            let preflight = try await server.waitForJob(1, state: "failed", timeout: 60)
            #expect(preflight[dotted: "error"]?.stringValue?.contains("etcd health: failed") == true)
            // Without pre-flight, the snapshot stage stops the job before any node.
            try await Self.execute(
                server, #"{"target_version":"1.34.5","kind":"patch","stages":"snapshot,master,workers,postflight"}"#)
            let snapshot = try await server.waitForJob(2, state: "failed", timeout: 60)
            let error = snapshot[dotted: "error"]?.stringValue ?? ""
            #expect(error.hasPrefix("etcd snapshot on master failed"), "\(error)")
            let failedStage = snapshot[dotted: "stages"]?.arrayValue?.first {
                $0[dotted: "status"]?.stringValue == "failed"
            }
            #expect(failedStage?[dotted: "name"]?.stringValue == "snapshot")
            let nodes = try await Self.nodes(bed)
            #expect(nodes.values.allSatisfy { $0 == NodeState(version: "v1.34.3", unschedulable: false) })
            #expect(try await Self.namespaceAnnotations(bed)["k8s-upgrade.io/in-flight"] == nil)
            _ = try await server.stop(signal: SIGTERM)
        }

        // MARK: - 9b. The node script outlives its SSH session and its orchestrator

        /// Makes every install on `node` take `seconds`, as a slow mirror does.
        static func slowInstalls(_ bed: TestBed, _ node: String, seconds: Int) async throws {
            let set = try await bed.ssh(node).run(
                #"echo \#(seconds) >"$K8S_NODE_ROOT/var/lib/testbed/install-seconds""#)
            #expect(set.exitStatus == 0)
        }

        /// Waits until the job has recorded output of `node` containing `text`.
        static func waitForOutput(
            _ server: RunningOrchestrator, node: String, containing text: String, timeout: Double = 60
        ) async throws {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                let job = try await server.json("/jobs/1")
                if events(job).contains(where: { $0.kind == "output" && $0.node == node && $0.message.contains(text) })
                {
                    return
                }
                if Self.hasEnded(job) { throw FixtureError("job ended: \(JobText.json(job))") }
                try await Task.sleep(for: .milliseconds(50))
            }
            throw FixtureError("no output of \(node) with \(text)")
        }

        /// The run of worker-1's node step on worker-1: how many attempts,
        /// and how often its log says it installed kubeadm.
        static func worker1Run(_ bed: TestBed) async throws -> (attempts: String, kubeadmInstalls: Int) {
            let run = #""$K8S_NODE_ROOT/var/lib/k8s-upgrade/runs/job-1-worker-1.34.5-worker-1""#
            let ssh = try bed.ssh("worker-1")
            let attempts = try await ssh.run("cat \(run)/attempt").stdoutText
            let log = try await ssh.run("cat \(run)/log.*").stdoutText
            return (attempts, log.components(separatedBy: "==> installing kubeadm").count - 1)
        }

        @Test func aSessionCutMidScriptIsReattachedAndTheScriptRunsOnce() async throws {
            let bed = try await TestBed.start()
            try await Self.slowInstalls(bed, "worker-1", seconds: 2)
            let server = try await OrchestratorFixture(bed: bed, extra: ["--soak", "0"]).launch()
            try await Self.execute(server, #"{"target_version":"1.34.5","kind":"patch"}"#)
            try await Self.waitForOutput(server, node: "worker-1", containing: "installing kubeadm")
            #expect(try bed.cutSSHSessions(of: "worker-1") >= 1)
            let done = try await server.waitForJob(1, state: "succeeded", timeout: 120)
            let events = Self.events(done).filter { $0.node == "worker-1" }
            #expect(
                events.contains {
                    $0.kind == "warning" && $0.message.contains("the SSH session to worker-1 ended")
                        && $0.message.contains("re-attaching to run job-1-worker-1.34.5-worker-1 in 2 s (try 1)")
                }, "\(events.map(\.message))")
            #expect(events.contains { $0.message.hasSuffix("attempt 1 is still running") })
            // Each line of the script's output once in the job, though it was followed twice.
            #expect(
                events.filter { $0.kind == "output" && $0.message == "==> installing kubeadm 1.34.5-1.1" }.count == 1)
            let run = try await Self.worker1Run(bed)
            #expect(run.attempts == "1\n" && run.kubeadmInstalls == 1, "\(run)")
            let nodes = try await Self.nodes(bed)
            #expect(nodes.values.allSatisfy { $0 == NodeState(version: "v1.34.5", unschedulable: false) })
            _ = try await server.stop(signal: SIGTERM)
        }

        @Test func anOrchestratorKilledMidScriptFindsTheScriptStillRunningWhenResumed() async throws {
            let bed = try await TestBed.start()
            try await Self.slowInstalls(bed, "worker-1", seconds: 4)
            let fixture = try OrchestratorFixture(bed: bed, extra: ["--soak", "0", "--auto-resume", "false"])
            let first = try await fixture.launch()
            try await Self.execute(first, #"{"target_version":"1.34.5","kind":"patch"}"#)
            try await Self.waitForOutput(first, node: "worker-1", containing: "installing kubeadm")
            #expect(try await first.stop(signal: SIGKILL) == 128 + SIGKILL)

            let second = try await fixture.launch()
            #expect(try await second.request("POST", "/jobs/1/resume").status == 202)
            let done = try await second.waitForJob(1, state: "succeeded", timeout: 120)
            let events = Self.events(done).filter { $0.node == "worker-1" }
            #expect(
                events.contains {
                    $0.message.hasPrefix("update_k8s.sh: re-attaching to run job-1-worker-1.34.5-worker-1: attempt 1 ")
                }, "\(events.map(\.message))")
            let run = try await Self.worker1Run(bed)
            #expect(run.attempts == "1\n" && run.kubeadmInstalls == 1, "one run, not a second beside it: \(run)")
            let nodes = try await Self.nodes(bed)
            #expect(nodes.values.allSatisfy { $0 == NodeState(version: "v1.34.5", unschedulable: false) })
            _ = try await second.stop(signal: SIGTERM)
        }

        // MARK: - 10. Killed mid-workers

        @Test func killedMidWorkersAndResumedItFinishesWithoutRedoingANode() async throws {
            let bed = try await TestBed.start()
            let fixture = try OrchestratorFixture(bed: bed, extra: ["--soak", "3", "--auto-resume", "false"])
            let first = try await fixture.launch()
            try await Self.execute(first, #"{"target_version":"1.34.5","kind":"patch"}"#)
            try await Self.waitFor(first, wait: "soak of worker-2")
            #expect(try await first.stop(signal: SIGKILL) == 128 + SIGKILL)
            #expect(try await Self.namespaceAnnotations(bed)["k8s-upgrade.io/in-flight"] == "true")

            let second = try await fixture.launch()
            #expect(try await second.json("/jobs/1")[dotted: "state"]?.stringValue == "interrupted")
            let firstSnapshot = try await Self.namespaceAnnotations(bed)["k8s-upgrade.io/snapshot-path"] ?? ""
            #expect(firstSnapshot.hasSuffix(".db"))
            #expect(try await second.request("POST", "/jobs/1/resume").status == 202)
            let done = try await second.waitForJob(1, state: "succeeded", timeout: 90)
            let started = Self.events(done).filter { $0.kind == "node_started" }.map(\.node)
            #expect(started == ["master"] + Self.workers, "each node upgraded once")
            // The rollback point stays the one taken before the first change:
            // the resume took no second snapshot (it replaced it before).
            #expect(done[dotted: "result.snapshot_path"]?.stringValue == firstSnapshot)
            #expect(
                Self.events(done).contains {
                    $0.message.hasPrefix("keeping the pre-upgrade snapshot \(firstSnapshot) that this job took")
                })
            let backups = try FileManager.default.contentsOfDirectory(
                atPath: bed.environment["TESTBED_BACKUP_DIR"] ?? ""
            ).filter { $0.hasPrefix("k8s-upgrade-pre-") }
            #expect(backups == [URL(fileURLWithPath: firstSnapshot).lastPathComponent], "\(backups)")
            let nodes = try await Self.nodes(bed)
            #expect(nodes.values.allSatisfy { $0 == NodeState(version: "v1.34.5", unschedulable: false) })
            #expect(try await Self.namespaceAnnotations(bed)["k8s-upgrade.io/in-flight"] == nil)
            _ = try await second.stop(signal: SIGTERM)
        }
    }
}

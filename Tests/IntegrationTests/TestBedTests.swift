import Foundation
import Shared
import SharedIO
import TestSupport
import Testing

extension TestBedSuites {
    @Suite("the test bed", .serialized)
    struct TestBedTests {
        /// Whether a process runs; a zombie waiting for its adoptive parent counts as ended.
        static func isRunning(_ pid: Int32) -> Bool {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return false }
            return stat[stat.index(after: close)...].split(separator: " ").first != "Z"
        }

        /// The upgrade steps of a worker, as the kubeadm documentation gives them.
        static let workerUpgrade = Data(
            """
            set -euo pipefail
            release=$1
            revision=$(apt-cache madison kubeadm | awk -v r="$release" '$3 ~ "^"r"-" { print $3; exit }')
            sudo apt-mark unhold kubeadm kubelet kubectl
            sudo apt-get update
            sudo apt-get install -y "kubeadm=$revision"
            sudo kubeadm upgrade node
            sudo apt-get install -y "kubelet=$revision" "kubectl=$revision"
            sudo apt-mark hold kubeadm kubelet kubectl
            sudo systemctl daemon-reload
            sudo systemctl restart kubelet

            """.utf8)

        @Test func aWorkerUpgradedOverSSHShowsItsNewVersionInKubectl() async throws {
            let bed = try await TestBed.start()
            let result = try await bed.ssh("worker-2").run("bash -s -- 1.34.4", stdin: Self.workerUpgrade)
            #expect(result.exitStatus == 0, "\(result.stderrText)")
            #expect(result.stdoutText.contains("Setting up kubelet (1.34.4-2.1) ..."))
            let nodes = try await bed.kubectl("get", "nodes", "--no-headers")
            let versions = Dictionary(
                uniqueKeysWithValues: nodes.split(separator: "\n").map { line in
                    let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                    return (String(fields[0]), String(fields[4]))
                })
            #expect(versions["worker-2"] == "v1.34.4")
            #expect(versions.filter { $0.key != "worker-2" }.values.allSatisfy { $0 == "v1.34.3" })
        }

        /// Two on-demand K3s snapshots asked within one second get names of
        /// their own, so the second's record is its own: the first, recorded
        /// as failed (fault knob), once stood for both.
        @Test func twoK3sSnapshotsWithinOneSecondAreRecordedApart() async throws {
            let bed = try await TestBed.start(scenario: "k3s-etcd")
            let knob = bed.directory.appendingPathComponent("nodes/server-1/var/lib/testbed/etcd-snapshot-record-error")
            try Data("snapshot upload failed: disk full".utf8).write(to: knob)
            func save() async throws -> String {
                let said = try await bed.ssh("server-1").run("k3s etcd-snapshot save --name twice").stderrText
                return said.split(separator: "\"").dropFirst().first?.split(separator: " ").dropFirst().first
                    .map(String.init) ?? said
            }
            let first = try await save()
            try FileManager.default.removeItem(at: knob)
            let second = try await save()
            #expect(first != second && first.hasPrefix("twice-server-1-") && second.hasPrefix("twice-server-1-"))
            let ready = try await bed.kubectl(
                "get", "etcdsnapshotfiles", "local-\(second)", "-o", "jsonpath={.status.readyToUse}")
            #expect(ready == "true", "\(second)")
        }

        @Test func heldPackagesAndUnknownVersionsAreRefusedLikeApt() async throws {
            let bed = try await TestBed.start()
            let ssh = try bed.ssh("worker-1")
            let held = try await ssh.run("sudo apt-get install -y kubeadm=1.34.5-1.1")
            #expect(held.exitStatus == 100)
            #expect(held.stderrText.contains("Held packages were changed"))
            let missing = try await ssh.run(
                "sudo apt-mark unhold kubeadm && sudo apt-get install -y kubeadm=1.34.9-1.1")
            #expect(missing.exitStatus == 100)
            #expect(missing.stderrText.contains("Version '1.34.9-1.1' for 'kubeadm' was not found"))
            let unknown = try await ssh.run("kubeadm upgrade frobnicate")
            #expect(unknown.exitStatus == 1)
        }

        @Test func madisonOnTheMasterAgreesWithTheRepository() async throws {
            let bed = try await TestBed.start()
            let madison = MadisonListing(
                parsing: try await bed.ssh("master").run("apt-cache madison kubeadm").stdoutText)
            #expect(madison.problems.isEmpty)
            let base = try #require(bed.environment["TESTBED_REPO_BASE"])
            let packages = try await bed.http.send(HTTPRequest(url: base + "/v1.34/deb/Packages"))
            let index = PackagesIndex(parsing: packages.text)
            #expect(
                Set(madison.entries.map(\.version.text))
                    == Set(index.packages.filter { $0.name == "kubeadm" }.map(\.version.text)))
            #expect(madison.newest(of: "kubeadm")?.version.text == "1.34.5-1.1")
            #expect(
                madison.entry(of: "kubeadm", release: KubeVersion(major: 1, minor: 34, patch: 4))?.version.text
                    == "1.34.4-2.1")

            let next = try await bed.http.send(HTTPRequest(method: "HEAD", url: base + "/v1.35/deb/Release"))
            #expect(next.status == 200)
            let nextIndex = PackagesIndex(
                parsing: try await bed.http.send(HTTPRequest(url: base + "/v1.35/deb/Packages")).text)
            #expect(nextIndex.releases(of: "kubeadm").first == KubeVersion(major: 1, minor: 35, patch: 2))
            let unpublished = try await bed.http.send(HTTPRequest(method: "HEAD", url: base + "/v1.36/deb/Release"))
            #expect(unpublished.status == 403)
        }

        @Test func kubeadmUpgradeApplyMovesTheAPIServer() async throws {
            // An outage long enough that kubectl, started after the apply's
            // SSH session ends, still meets it on a loaded machine (2 s did not, in CI).
            let bed = try await TestBed.start(extra: ["--api-outage", "8"])
            let master = try bed.ssh("master")
            let tooHigh = try await master.run("sudo kubeadm upgrade apply v1.35.0 -y")
            #expect(tooHigh.exitStatus == 1)
            #expect(tooHigh.stderrText.contains("higher than the kubeadm version"))
            let apply = try await master.run(
                "sudo apt-mark unhold kubeadm && sudo apt-get install -y kubeadm=1.34.5-1.1 && sudo kubeadm upgrade apply v1.34.5 -y"
            )
            #expect(apply.exitStatus == 0, "\(apply.stderrText)")
            #expect(apply.stdoutText.contains(#"SUCCESS! Your cluster was upgraded to "v1.34.5". Enjoy!"#))
            // The API server restarted: clients are refused until the outage ends.
            #expect(bed.apiOutageEnd() > Date().timeIntervalSince1970)
            await #expect(throws: (any Error).self) { try await bed.kubectl("get", "nodes") }
            try await bed.waitOutAPIOutage()
            let version = try await bed.kubectl("version", "-o", "json")
            #expect(version.contains(#""gitVersion": "v1.34.5""#))
        }

        @Test func downLeavesNoProcessBehind() async throws {
            let bed = try await TestBed.start(scenario: "ha")
            #expect(bed.nodes == ["cp-1", "cp-2", "cp-3", "worker-1", "worker-2", "worker-3"])
            let pids = bed.pids()
            // simulator, API proxy, repository, three etcd members, the static pods' watcher, Pushgateway,
            // Prometheus, webhook receiver, six sshd
            #expect(pids.count == 16)
            #expect(pids.allSatisfy(Self.isRunning))
            try await bed.down()
            #expect(!pids.contains(where: Self.isRunning))
            #expect(!FileManager.default.fileExists(atPath: bed.directory.path))
        }

        @Test func aPushedGateMetricFiresAnAlertInPrometheusAndClears() async throws {
            let bed = try await TestBed.start()
            let pushgateway = try #require(bed.environment["TESTBED_PUSHGATEWAY_URL"])
            let prometheus = try #require(bed.environment["TESTBED_PROMETHEUS_URL"])
            let group = pushgateway + "/metrics/job/testbed-gates"
            let push = try await bed.http.send(
                HTTPRequest(method: "PUT", url: group, body: Data("testbed_gate_blocker{reason=\"test\"} 1\n".utf8)))
            #expect(push.isSuccess)

            func firing() async throws -> [String] {
                let response = try await bed.http.send(HTTPRequest(url: prometheus + "/api/v1/alerts"))
                let document = try JSONSerialization.jsonObject(with: response.body) as? [String: Any]
                let alerts = ((document?["data"] as? [String: Any])?["alerts"] as? [[String: Any]]) ?? []
                return alerts.filter { $0["state"] as? String == "firing" }.compactMap {
                    ($0["labels"] as? [String: String]).map { "\($0["alertname"] ?? "")/\($0["upgrade_gate"] ?? "")" }
                }
            }
            let rules = try await bed.http.send(HTTPRequest(url: prometheus + "/api/v1/rules")).text
            for name in ["TestbedGateBlocker", "K8sVersionSkew", "EtcdPreUpgradeSnapshotMissing"] {
                #expect(rules.contains(#""name":"\#(name)""#), "Prometheus did not load \(name)")
            }
            try await waitUntil("the gate alert fires", seconds: 10) {
                try await firing() == ["TestbedGateBlocker/true"]
            }
            #expect(try await bed.http.send(HTTPRequest(method: "DELETE", url: group)).isSuccess)
            try await waitUntil("the gate alert clears", seconds: 10) { try await firing().isEmpty }
        }

        @Test func etcdSnapshotsRunForRealFromTheMastersShell() async throws {
            let bed = try await TestBed.start()
            let backups = try #require(bed.environment["TESTBED_BACKUP_DIR"])
            let tls =
                "--endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt "
                + "--cert=/etc/kubernetes/pki/etcd/server.crt --key=/etc/kubernetes/pki/etcd/server.key"
            let file = "\(backups)/k8s-upgrade-pre-1.34.5-1.db"
            let master = try bed.ssh("master")
            let save = try await master.run("etcdctl \(tls) snapshot save \(file)")
            #expect(save.exitStatus == 0, "\(save.stderrText)")
            let status = try await master.run("etcdctl snapshot status \(file) -w json")
            let fields = try JSONSerialization.jsonObject(with: status.stdout) as? [String: Any]
            #expect((fields?["totalKey"] as? Int ?? 0) > 0)
            #expect(fields?["hash"] != nil)

            let refused = try await master.run(
                "etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt "
                    + "--dial-timeout=2s --command-timeout=3s endpoint health")
            #expect(refused.exitStatus != 0, "etcd must require a client certificate")
        }

        @Test func theSlackStandInRecordsMessagesAndCanBeToldToFail() async throws {
            let bed = try await TestBed.start()
            let webhook = try #require(bed.environment["TESTBED_SLACK_WEBHOOK_URL"])
            let control = try #require(bed.environment["TESTBED_WEBHOOK_URL"])
            let message = Data(#"{"text":"upgrade started"}"#.utf8)
            let ok = try await bed.http.send(HTTPRequest(method: "POST", url: webhook, body: message))
            #expect(ok.status == 200)
            #expect(ok.text == "ok")
            _ = try await bed.http.send(
                HTTPRequest(
                    method: "POST", url: control + "/_control/fail", body: Data(#"{"status":500,"count":1}"#.utf8)))
            #expect(try await bed.http.send(HTTPRequest(method: "POST", url: webhook, body: message)).status == 500)
            #expect(try await bed.http.send(HTTPRequest(method: "POST", url: webhook, body: message)).status == 200)
            let recorded = try await bed.http.send(HTTPRequest(url: control + "/_messages"))
            let messages = try JSONSerialization.jsonObject(with: recorded.body) as? [[String: Any]]
            #expect(messages?.count == 2)
            #expect((messages?.first?["body"] as? [String: String])?["text"] == "upgrade started")
        }

        @Test func aSyntheticThousandNodeClusterComesUpWithItsMasterOverSSH() async throws {
            let bed = try await TestBed.start(scenario: "synthetic-1000")
            #expect(bed.nodes == ["master"])
            let names = try await bed.kubectl("get", "nodes", "--chunk-size", "250", "-o", "name")
            #expect(names.split(separator: "\n").count == 1000)
            #expect(try await bed.ssh("master").run("kubelet --version").stdoutText == "Kubernetes v1.34.3\n")
        }
    }
}

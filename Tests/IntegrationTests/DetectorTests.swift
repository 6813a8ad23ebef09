import Foundation
import Shared
import SharedIO
import TestSupport
import Testing

extension TestBedSuites {
    /// The real `k8s-version-check` against the test bed. Until the
    /// orchestrator exists, the bed's receiver answers POST /execute.
    @Suite("k8s-version-check against the test bed", .serialized)
    struct DetectorTests {
        struct Outcome {
            let status: Int32
            let stdout: String
            let stderr: String
        }

        static func detect(
            _ bed: TestBed, _ extra: [String] = [], master: String? = nil, knownHosts: String? = nil
        ) async throws
            -> Outcome
        {
            let env = bed.environment
            let masterPort = try bed.sshPort(of: "master")
            let binary = TestEnvironment.productsDirectory.appendingPathComponent("k8s-version-check").path
            let arguments =
                [
                    "--kubeconfig", env["KUBECONFIG"] ?? "", "--master-address", master ?? "127.0.0.1:\(masterPort)",
                    "--ssh-user", env["TESTBED_SSH_USER"] ?? "root", "--ssh-key-file", env["TESTBED_SSH_KEY"] ?? "",
                    "--known-hosts-file", knownHosts ?? env["TESTBED_KNOWN_HOSTS"] ?? "", "--repo-base",
                    env["TESTBED_REPO_BASE"] ?? "", "--pushgateway-url", env["TESTBED_PUSHGATEWAY_URL"] ?? "",
                    "--orchestrator-url", env["TESTBED_ORCHESTRATOR_URL"] ?? "", "--orchestrator-token-file",
                    env["TESTBED_ORCHESTRATOR_TOKEN_FILE"] ?? "", "--timeout", "10",
                ] + extra
            let result = try await offThePool { try TestEnvironment.execute(binary, arguments) }
            return Outcome(status: result.status, stdout: result.stdout, stderr: result.stderr)
        }

        static func dispatches(_ bed: TestBed) async throws -> [[String: Any]] {
            let url = (bed.environment["TESTBED_WEBHOOK_URL"] ?? "") + "/_messages"
            let response = try await bed.http.send(HTTPRequest(url: url))
            let all = (try JSONSerialization.jsonObject(with: response.body) as? [[String: Any]]) ?? []
            return all.filter { $0["path"] as? String == "/execute" }
        }

        static func pushed(_ bed: TestBed) async throws -> [String] {
            let url = (bed.environment["TESTBED_PUSHGATEWAY_URL"] ?? "") + "/metrics"
            return try await bed.http.send(HTTPRequest(url: url)).text.split(separator: "\n")
                .filter { $0.hasPrefix("k8s_") }.map(String.init)
        }

        @Test func patchAvailableIsPushedAndDispatched() async throws {
            let bed = try await TestBed.start()
            let outcome = try await Self.detect(bed)
            #expect(outcome.status == 0, "\(outcome.stdout)\(outcome.stderr)")
            #expect(
                outcome.stdout
                    == "running 1.34.3, newest patch 1.34.5, next minor 1.35.2 available (not allowed), dispatched patch → 1.34.5, job 1\n"
            )
            let metrics = try await Self.pushed(bed)
            #expect(
                metrics.contains {
                    $0.contains(#"kind="patch""#) && $0.contains(#"running="1.34.3""#)
                        && $0.contains(#"target="1.34.5""#)
                })
            let sent = try await Self.dispatches(bed)
            #expect(sent.count == 1)
            #expect(
                (sent.first?["body"] as? [String: Any]).map { NSDictionary(dictionary: $0) }
                    == NSDictionary(dictionary: [
                        "target_version": "1.34.5", "kind": "patch", "dry_run": false, "stages": "all",
                    ]))
            let token = try String(
                contentsOfFile: bed.environment["TESTBED_ORCHESTRATOR_TOKEN_FILE"] ?? "", encoding: .utf8)
            #expect(
                sent.first?["authorization"] as? String == "Bearer "
                    + token.trimmingCharacters(in: .whitespacesAndNewlines)
            )
            // Every line of the log is a JSON object.
            #expect(
                outcome.stderr.split(separator: "\n").allSatisfy {
                    (try? JSONSerialization.jsonObject(with: Data($0.utf8))) is [String: Any]
                })
        }

        @Test func theMasterIsFoundByItsRoleAndReachedAtItsInternalIP() async throws {
            let bed = try await TestBed.start()
            let env = bed.environment
            let masterPort = String(try bed.sshPort(of: "master"))
            let binary = TestEnvironment.productsDirectory.appendingPathComponent("k8s-version-check").path
            let arguments = [
                "--kubeconfig", env["KUBECONFIG"] ?? "", "--ssh-port", masterPort, "--ssh-user",
                env["TESTBED_SSH_USER"] ?? "",
                "--ssh-key-file", env["TESTBED_SSH_KEY"] ?? "", "--known-hosts-file", env["TESTBED_KNOWN_HOSTS"] ?? "",
                "--repo-base", env["TESTBED_REPO_BASE"] ?? "", "--timeout", "10",
            ]
            let result = try await offThePool { try TestEnvironment.execute(binary, arguments) }
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            #expect(result.stdout.contains("newest patch 1.34.5"))
            #expect(result.stdout.contains("patch → 1.34.5 due, no orchestrator configured"))
            #expect(result.stderr.contains(#""node":"master""#))
        }

        @Test func nextMinorAllowedWhenCurrentMinorIsUpToDate() async throws {
            let bed = try await TestBed.start(runningVersion: "1.34.5")
            let outcome = try await Self.detect(
                bed, ["--allow-minor", "true", "--job-dry-run", "true", "--stages", "preflight,snapshot"])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            #expect(outcome.stdout.contains("next minor 1.35.2 available (allowed), dispatched minor → 1.35.2"))
            let body = try await Self.dispatches(bed).first?["body"] as? [String: Any]
            #expect(body?["kind"] as? String == "minor")
            #expect(body?["target_version"] as? String == "1.35.2")
            #expect(body?["dry_run"] as? Bool == true)
            #expect(body?["stages"] as? String == "preflight,snapshot")
        }

        @Test func minorNotAllowedIsReportedButNotDispatched() async throws {
            let bed = try await TestBed.start(runningVersion: "1.34.5")
            let outcome = try await Self.detect(bed)
            #expect(outcome.status == 0)
            #expect(outcome.stdout.contains("available (not allowed), nothing to do"))
            #expect(try await Self.dispatches(bed).isEmpty)
            let metrics = try await Self.pushed(bed)
            #expect(metrics.contains { $0.contains(#"kind="minor""#) && $0.contains(#"target="1.35.2""#) })
            #expect(!metrics.contains { $0.contains(#"kind="patch""#) })
        }

        @Test func alreadyCurrentClearsTheMetricAndDispatchesNothing() async throws {
            let bed = try await TestBed.start(runningVersion: "1.35.2")
            let group = (bed.environment["TESTBED_PUSHGATEWAY_URL"] ?? "") + "/metrics/job/k8s-version-check"
            let stale = #"k8s_upgrade_available{kind="patch",running="1.35.0",target="1.35.1"} 1"# + "\n"
            #expect(try await bed.http.send(HTTPRequest(method: "PUT", url: group, body: Data(stale.utf8))).isSuccess)
            let outcome = try await Self.detect(bed, ["--allow-minor", "true"])
            #expect(outcome.status == 0)
            #expect(
                outcome.stdout.contains(
                    "running 1.35.2, newest patch 1.35.2, next minor 1.36 not published, nothing to do")
            )
            let metrics = try await Self.pushed(bed)
            #expect(!metrics.contains { $0.hasPrefix("k8s_upgrade_available") })
            #expect(metrics.contains { $0.hasPrefix("k8s_version_check_last_run_timestamp") })
            #expect(try await Self.dispatches(bed).isEmpty)
        }

        @Test func aClusterMidUpgradeIsReportedAndNothingDispatched() async throws {
            let bed = try await TestBed.start()
            let upgrade = try await bed.ssh("worker-3").run(
                "bash -s -- 1.34.5", stdin: TestBedSuites.TestBedTests.workerUpgrade)
            #expect(upgrade.exitStatus == 0)
            let outcome = try await Self.detect(bed)
            #expect(outcome.status == 0)
            #expect(outcome.stdout.hasPrefix("mid-upgrade (1.34.3, 1.34.5)"))
            #expect(outcome.stdout.contains("cluster mid-upgrade"))
            #expect(try await Self.dispatches(bed).isEmpty)
        }

        @Test func badOutsideInputNeverLeadsToADispatch() async throws {
            let bed = try await TestBed.start()
            let closed = try TestEnvironment.freePort()

            let noRepo = try await Self.detect(bed, ["--repo-base", "http://127.0.0.1:\(closed)/core:/stable:"])
            #expect(noRepo.status == 1)
            #expect(noRepo.stdout.contains("detection failed"))
            #expect(noRepo.stdout.contains("connection refused"))

            let unreachable = try await Self.detect(bed, master: "127.0.0.1:\(closed)")
            #expect(unreachable.status == 1)
            #expect(unreachable.stdout.contains("connection refused"))

            let empty = try await offThePool { try TestEnvironment.makeDirectory("empty") }.appendingPathComponent(
                "known_hosts")
            try "".write(to: empty, atomically: true, encoding: .utf8)
            let unknownKey = try await Self.detect(bed, knownHosts: empty.path)
            #expect(unknownKey.status == 1)
            #expect(unknownKey.stdout.contains("host key unknown"))

            let garbage = try await bed.ssh("master").run(
                #"printf 'Package: kubeadm\nVersion: banana\n' > "$K8S_NODE_ROOT/var/lib/testbed/lists/Packages""#)
            #expect(garbage.exitStatus == 0)
            let badMadison = try await Self.detect(bed)
            #expect(badMadison.status == 1)
            #expect(badMadison.stdout.contains("not package versions"))

            #expect(try await Self.dispatches(bed).isEmpty)
            let metrics = try await Self.pushed(bed)
            #expect(!metrics.contains { $0.hasPrefix("k8s_upgrade_available") })
            #expect(metrics.contains("k8s_version_check_failed{instance=\"\",job=\"k8s-version-check\"} 1"))
        }

        @Test func aRepositoryThatErrsOrHangsIsAFailure() async throws {
            let bed = try await TestBed.start()
            // The webhook receiver answers HEAD with 501: neither published nor "not yet".
            let erring = try await Self.detect(
                bed, ["--repo-base", (bed.environment["TESTBED_WEBHOOK_URL"] ?? "") + "/core:/stable:"])
            #expect(erring.status == 1)
            #expect(erring.stdout.contains("answered HTTP 501"))

            // A listener that accepts connections and never answers.
            let silent = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(silent) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(silent, $0, length) }
            }
            _ = listen(silent, 16)
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(silent, $0, &length) }
            }
            let port = UInt16(bigEndian: address.sin_port)
            let hanging = try await Self.detect(
                bed, ["--repo-base", "http://127.0.0.1:\(port)/core:/stable:", "--timeout", "2"])
            #expect(hanging.status == 1)
            #expect(hanging.stdout.contains("timed out"))
            #expect(try await Self.dispatches(bed).isEmpty)
        }

        @Test func anEmptyClusterIsAFailure() async throws {
            let sim = try await SimulatorFixture.start(scenarioJSON: #"{"nodes": []}"#)
            let binary = TestEnvironment.productsDirectory.appendingPathComponent("k8s-version-check").path
            let result = try await offThePool {
                try TestEnvironment.execute(binary, ["--kubeconfig", sim.kubeconfig, "--timeout", "5"])
            }
            #expect(result.status == 1)
            #expect(result.stdout.contains("the cluster has no nodes"))
        }

        @Test func orchestratorRefusalsAreReported() async throws {
            let bed = try await TestBed.start()
            let control = (bed.environment["TESTBED_WEBHOOK_URL"] ?? "") + "/_control/fail"
            _ = try await bed.http.send(
                HTTPRequest(method: "POST", url: control, body: Data(#"{"status":409,"count":1}"#.utf8)))
            let inFlight = try await Self.detect(bed)
            #expect(inFlight.status == 0, "\(inFlight.stdout)")
            #expect(inFlight.stdout.contains("not dispatched: a job is already active: 7 (409)"))

            _ = try await bed.http.send(
                HTTPRequest(method: "POST", url: control, body: Data(#"{"status":500,"count":1}"#.utf8)))
            let refused = try await Self.detect(bed)
            #expect(refused.status == 3)
            #expect(refused.stdout.contains("dispatch refused: HTTP 500"))

            // The cluster reached the target between the detector's read and the dispatch.
            _ = try await bed.http.send(
                HTTPRequest(method: "POST", url: control, body: Data(#"{"status":200,"count":1}"#.utf8)))
            let nothing = try await Self.detect(bed)
            #expect(nothing.status == 0, "\(nothing.stdout)")
            #expect(
                nothing.stdout.contains(
                    "not dispatched: the orchestrator says every API server and kubelet already runs 1.34.5"),
                "\(nothing.stdout)")
        }

        /// A minor job failed after its repository rewrite: the master's
        /// source is on v1.35 while the cluster runs 1.34.5. The run says so,
        /// with the fix (it said only that madison listed no 1.34).
        @Test func aSourceLeftOnTheNextMinorIsReportedWithTheFix() async throws {
            let bed = try await TestBed.start(runningVersion: "1.34.5")
            let list = bed.directory.appendingPathComponent("nodes/master/etc/apt/sources.list.d/kubernetes.list")
            let source = try String(contentsOf: list, encoding: .utf8)
            try source.replacingOccurrences(of: "/v1.34/deb", with: "/v1.35/deb").write(
                to: list, atomically: true, encoding: .utf8)
            let update = try await bed.ssh("master").run("sudo apt-get update")
            #expect(update.exitStatus == 0, "\(update.stderrText)")
            let outcome = try await Self.detect(bed, ["--detect-only"])
            #expect(outcome.status == 1)
            #expect(
                outcome.stdout.contains(
                    "points at the next minor: apt-cache madison kubeadm lists only 1.35 (1.35.0-1.1 … 1.35.2-1.1)")
                    && outcome.stdout.contains("while the cluster runs 1.34.5")
                    && outcome.stdout.contains("A minor that stopped after its repository rewrite"),
                "\(outcome.stdout)\n\(outcome.stderr)")
        }

        @Test func detectOnlyPostsNothingAndPrintsTheBody() async throws {
            let bed = try await TestBed.start()
            let outcome = try await Self.detect(bed, ["--detect-only"])
            #expect(outcome.status == 0)
            #expect(outcome.stdout.contains(#"would POST "#))
            #expect(
                outcome.stdout.contains(#"{"dry_run":false,"kind":"patch","stages":"all","target_version":"1.34.5"}"#))
            #expect(try await Self.dispatches(bed).isEmpty)
        }

        @Test func badOptionsAreRefusedBeforeAnythingRuns() async throws {
            let binary = TestEnvironment.productsDirectory.appendingPathComponent("k8s-version-check").path
            let result = try await offThePool { try TestEnvironment.execute(binary, ["--stages", "preflight,drain"]) }
            #expect(result.status == 64)
            #expect(result.stderr.contains("unknown stage \"drain\""))
            for address in ["10.0.0.1:abc", "10.0.0.1:0", "a:b:c", "[::1", ":22", "[::1]x", "[]:22"] {
                let refused = try await offThePool {
                    try TestEnvironment.execute(binary, ["--master-address", address])
                }
                #expect(refused.status == 64, "\(address)")
                #expect(refused.stderr.contains("master-address"), "\(address)")
            }
            let environment = try await offThePool {
                try TestEnvironment.execute("/usr/bin/env", ["K8SUP_MINOR_MIN_PATCH=two", binary])
            }
            #expect(environment.status == 64)
            #expect(environment.stderr.contains("K8SUP_MINOR_MIN_PATCH=two is not a number"))
            // The shared definition validates the SSH user for the detector as for the service.
            let user = try await offThePool { try TestEnvironment.execute(binary, ["--ssh-user", "ops@bastion"]) }
            #expect(user.status == 64)
            #expect(user.stderr.contains("ssh-user ops@bastion is not a user name"), "\(user.stderr)")
            let help = try await offThePool { try TestEnvironment.execute(binary, ["--help"]) }
            #expect(help.stdout.contains("Exit codes: 0"))
            #expect(help.stdout.contains("K8SUP_"))
        }
    }
}

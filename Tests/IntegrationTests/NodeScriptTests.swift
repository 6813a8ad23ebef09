import Foundation
import SharedIO
import TestSupport
import Testing

extension TestBedSuites {
    /// scripts/update_k8s.sh, piped over real SSH to the test bed's nodes as the
    /// orchestrator will: `bash -s -- ARGS < update_k8s.sh`.
    @Suite("update_k8s.sh on the test bed", .serialized)
    struct NodeScriptTests {
        static let script: Data = {
            let url = TestEnvironment.fixtures.deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("scripts/update_k8s.sh")
            return (try? Data(contentsOf: url)) ?? Data()
        }()

        static func run(_ bed: TestBed, _ node: String, _ arguments: String) async throws -> SSHCommandResult {
            try await bed.ssh(node).run("bash -s -- \(arguments)", stdin: script, timeout: .seconds(60))
        }

        /// A checksum of every file under the node's root: equal means nothing changed.
        static func fingerprint(_ bed: TestBed, _ node: String) async throws -> String {
            let command = #"cd "$K8S_NODE_ROOT" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum"#
            return try await bed.ssh(node).run(command).stdoutText
        }

        static func versions(_ bed: TestBed) async throws -> [String: String] {
            let lines = try await bed.kubectl("get", "nodes", "--no-headers").split(separator: "\n")
            return Dictionary(
                uniqueKeysWithValues: lines.map { line in
                    let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                    return (String(fields[0]), String(fields[4]))
                })
        }

        @Test func aWorkerUpgradesOnceAndTheSecondRunChangesNothing() async throws {
            let bed = try await TestBed.start()
            let first = try await Self.run(bed, "worker-2", "--role worker --release 1.34.4")
            #expect(first.exitStatus == 0, "\(first.stderrText)")
            #expect(first.stdoutText.contains("package version 1.34.4-2.1"))
            #expect(first.stdoutText.contains("done: worker at 1.34.4"))
            #expect(try await Self.versions(bed)["worker-2"] == "v1.34.4")

            let before = try await Self.fingerprint(bed, "worker-2")
            let second = try await Self.run(bed, "worker-2", "--role worker --release 1.34.4")
            #expect(second.exitStatus == 0)
            #expect(second.stdoutText.contains("already at 1.34.4"))
            #expect(!second.stdoutText.contains("+ "))
            #expect(try await Self.fingerprint(bed, "worker-2") == before)
        }

        @Test func badArgumentsAreRefusedBeforeAnythingMoves() async throws {
            let bed = try await TestBed.start()
            let before = try await Self.fingerprint(bed, "worker-1")
            let cases: [(String, String)] = [
                ("--role boss --release 1.34.5", "unknown role 'boss'"),
                ("--role worker --release 1.34", "--release must be X.Y.Z"),
                ("--role worker --release '1.34.5;reboot'", "--release must be X.Y.Z"),
                ("--role worker", "--release is required"),
                ("--release 1.34.5", "--role is required"),
                ("--role worker --release 1.34.5 --force", "unknown argument: --force"),
                ("--repo-minor 1.35 --role worker", "--repo-minor goes alone"),
                ("--repo-minor v1.35", "--repo-minor must be X.Y"),
                ("--containerd 1.7", "--containerd must be X.Y.Z"),
                ("--containerd 1.7.27 --role worker", "--containerd goes alone"),
            ]
            for (arguments, message) in cases {
                let result = try await Self.run(bed, "worker-1", arguments)
                #expect(result.exitStatus == 2, "\(arguments)")
                #expect(result.stderrText.contains(message), "\(arguments): \(result.stderrText)")
                #expect(result.stderrText.contains("usage: update_k8s.sh"), "\(arguments)")
            }
            let missing = try await Self.run(bed, "worker-1", "--role worker --release 1.34.9")
            #expect(missing.exitStatus == 1)
            #expect(missing.stderrText.contains("release 1.34.9 is not in the configured repository"))
            #expect(try await Self.fingerprint(bed, "worker-1") == before)
        }

        @Test func aDryRunPrintsEveryChangeAndMakesNone() async throws {
            let bed = try await TestBed.start()
            let before = try await Self.fingerprint(bed, "master")
            let result = try await Self.run(bed, "master", "--role master --release 1.34.5 --dry-run")
            #expect(result.exitStatus == 0)
            for command in [
                "would run: apt-get install -y -q kubeadm=1.34.5-1.1", "would run: kubeadm upgrade apply v1.34.5 -y",
                "would run: apt-get install -y -q kubelet=1.34.5-1.1 kubectl=1.34.5-1.1",
                "would run: systemctl restart kubelet",
            ] {
                #expect(result.stdoutText.contains(command), "\(command)")
            }
            #expect(try await Self.fingerprint(bed, "master") == before)
            #expect(try await bed.kubectl("version", "-o", "json").contains(#""gitVersion": "v1.34.3""#))
        }

        @Test func theMasterAppliesAndAnotherControlPlaneFollows() async throws {
            let bed = try await TestBed.start(scenario: "ha")
            let apply = try await Self.run(bed, "cp-1", "--role master --release 1.34.5")
            #expect(apply.exitStatus == 0, "\(apply.stderrText)")
            #expect(apply.stdoutText.contains("+ kubeadm upgrade apply v1.34.5 -y"))
            try await bed.waitOutAPIOutage()
            #expect(try await bed.kubectl("version", "-o", "json").contains(#""gitVersion": "v1.34.5""#))

            let node = try await Self.run(bed, "cp-2", "--role control-plane --release 1.34.5")
            #expect(node.exitStatus == 0, "\(node.stderrText)")
            #expect(node.stdoutText.contains("+ kubeadm upgrade node"))
            try await bed.waitOutAPIOutage()
            let pod = try await bed.kubectl(
                "-n", "kube-system", "get", "pod", "kube-apiserver-cp-2", "-o", "jsonpath={.spec.containers[0].image}")
            #expect(pod == "registry.k8s.io/kube-apiserver:v1.34.5")
            let versions = try await Self.versions(bed)
            #expect(versions["cp-1"] == "v1.34.5")
            #expect(versions["cp-2"] == "v1.34.5")
            #expect(versions["cp-3"] == "v1.34.3")
        }

        @Test func aRunInterruptedAfterTheKubeadmStepCompletesWhenRunAgain() async throws {
            let bed = try await TestBed.start()
            // As if the script had died right after upgrading kubeadm.
            let partial = try await bed.ssh("worker-3").run(
                "apt-mark unhold kubeadm && apt-get install -y kubeadm=1.34.5-1.1 && kubeadm upgrade node")
            #expect(partial.exitStatus == 0)
            let result = try await Self.run(bed, "worker-3", "--role worker --release 1.34.5")
            #expect(result.exitStatus == 0, "\(result.stderrText)")
            #expect(!result.stdoutText.contains("installing kubeadm"))
            #expect(result.stdoutText.contains("installing kubelet and kubectl 1.34.5-1.1"))
            // The interrupted run had unheld kubeadm; the rerun holds it again.
            #expect(result.stdoutText.contains("holding kubeadm"))
            #expect(try await Self.versions(bed)["worker-3"] == "v1.34.5")
            let holds = try await bed.ssh("worker-3").run("apt-mark showhold").stdoutText
            #expect(holds == "kubeadm\nkubectl\nkubelet\n")
        }

        @Test func aRunStoppedBeforeItsKubeletRestartRestartsTheKubeletWhenRunAgain() async throws {
            let bed = try await TestBed.start()
            // Packages installed, kubelet not yet restarted: what a run
            // killed with its SSH session (or its orchestrator) leaves.
            let arm = try await bed.ssh("worker-3").run(
                #"touch "$K8S_NODE_ROOT/var/lib/testbed/fail-next-kubelet-restart""#)
            #expect(arm.exitStatus == 0)
            let stopped = try await Self.run(bed, "worker-3", "--role worker --release 1.34.5")
            #expect(stopped.exitStatus == 1)
            #expect(try await Self.versions(bed)["worker-3"] == "v1.34.3")

            let again = try await Self.run(bed, "worker-3", "--role worker --release 1.34.5")
            #expect(again.exitStatus == 0, "\(again.stderrText)")
            #expect(again.stdoutText.contains("restarting kubelet: an earlier run stopped before its restart"))
            #expect(again.stdoutText.contains("done: worker at 1.34.5"))
            #expect(try await Self.versions(bed)["worker-3"] == "v1.34.5")
            let third = try await Self.run(bed, "worker-3", "--role worker --release 1.34.5")
            #expect(third.stdoutText.contains("already at 1.34.5"), "\(third.stdoutText)")
            #expect(!third.stdoutText.contains("restarting kubelet"))
        }

        @Test func theRepositoryRewriteMovesTheSourceToTheNextMinor() async throws {
            let bed = try await TestBed.start(runningVersion: "1.34.5")
            let rewrite = try await Self.run(bed, "worker-1", "--repo-minor 1.35")
            #expect(rewrite.exitStatus == 0, "\(rewrite.stderrText)")
            let source = try await bed.ssh("worker-1").run(
                #"cat "$K8S_NODE_ROOT/etc/apt/sources.list.d/kubernetes.list""#)
            #expect(source.stdoutText.contains("/core:/stable:/v1.35/deb/ /"))
            let madison = try await bed.ssh("worker-1").run("apt-cache madison kubeadm").stdoutText
            #expect(madison.contains("1.35.2-1.1"))
            let again = try await Self.run(bed, "worker-1", "--repo-minor 1.35")
            #expect(again.stdoutText.contains("apt source already at v1.35"))
            let unpublished = try await Self.run(bed, "worker-1", "--repo-minor 1.36")
            #expect(unpublished.exitStatus != 0)
            #expect(unpublished.stderrText.contains("403"))
        }

        @Test func theContainerdModeBringsAnOlderMasterUpToTheWorkers() async throws {
            let bed = try await TestBed.start(masterContainerd: "1.7.22")
            let runtime = #"{range .items[*]}{.metadata.name}={.status.nodeInfo.containerRuntimeVersion} {end}"#
            #expect(
                try await bed.kubectl("get", "nodes", "-o", "jsonpath=\(runtime)").contains(
                    "master=containerd://1.7.22 "))

            let before = try await Self.fingerprint(bed, "master")
            let dry = try await Self.run(bed, "master", "--containerd 1.7.24 --dry-run")
            #expect(dry.exitStatus == 0, "\(dry.stderrText)")
            #expect(dry.stdoutText.contains("would run: apt-get install -y -q containerd.io=1.7.24-1"))
            #expect(try await Self.fingerprint(bed, "master") == before)

            let missing = try await Self.run(bed, "master", "--containerd 1.7.99")
            #expect(missing.exitStatus == 1)
            #expect(missing.stderrText.contains("containerd 1.7.99 is not in the configured repositories"))
            #expect(try await Self.fingerprint(bed, "master") == before)

            let result = try await Self.run(bed, "master", "--containerd 1.7.24")
            #expect(result.exitStatus == 0, "\(result.stderrText)")
            #expect(result.stdoutText.contains("done: containerd at 1.7.24"))
            let after = try await bed.kubectl("get", "nodes", "-o", "jsonpath=\(runtime)")
            #expect(after.contains("master=containerd://1.7.24 "))
            #expect(!after.contains("1.7.22"))
            let again = try await Self.run(bed, "master", "--containerd 1.7.24")
            #expect(again.stdoutText.contains("containerd already at 1.7.24"))
            #expect(!again.stdoutText.contains("+ "))
        }
    }
}

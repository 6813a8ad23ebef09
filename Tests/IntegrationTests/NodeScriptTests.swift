import Foundation
import Shared
import SharedIO
import Synchronization
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

        /// The script as the orchestrator runs it: detached, as run `id`
        /// (`NodeRun`), this session following its log.
        static func runDetached(
            _ bed: TestBed, _ node: String, id: String, _ arguments: String, from: String? = nil,
            environment: String = "", onOutput: (@Sendable (SSHOutputLine) -> Void)? = nil
        ) async throws -> SSHCommandResult {
            let command =
                "\(environment)bash -c \(Shell.quote(NodeRun.launcher)) update_k8s.sh --run-id \(id) "
                + (from.map { "--from \($0) " } ?? "") + arguments
            return try await bed.ssh(node).run(command, stdin: script, timeout: .seconds(90), onOutput: onOutput)
        }

        static func onNode(_ bed: TestBed, _ node: String, _ command: String) async throws -> String {
            let result = try await bed.ssh(node).run(command)
            #expect(result.exitStatus == 0, "\(command): \(result.stderrText)")
            return result.stdoutText
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

            // apt-mark slow to write its holds, as on a loaded machine: piped
            // into grep -q under pipefail, it died of SIGPIPE and a held package
            // looked unheld, so a run at the target held it again and restarted
            // the kubelet (seen once in CI, against the real apt-mark).
            let slow = try await bed.ssh("worker-2").run(
                #"echo 0.3 >"$K8S_NODE_ROOT/var/lib/testbed/showhold-line-seconds""#)
            #expect(slow.exitStatus == 0)
            let third = try await Self.run(bed, "worker-2", "--role worker --release 1.34.4")
            #expect(third.exitStatus == 0)
            #expect(third.stdoutText.hasSuffix("==> already at 1.34.4\n"), "\(third.stdoutText)")
            #expect(!third.stdoutText.contains("+ "), "\(third.stdoutText)")

            // Back to 1.34.3. Without --rollback, apt refuses the downgrade
            // (as the real apt does) and the packages stay held; with it the
            // older packages are installed and held again, kubeadm upgrade
            // node is not run and the kubelet restarts. Forward is refused.
            let held = "kubeadm\nkubectl\nkubelet\n"
            let refused = try await Self.run(bed, "worker-2", "--role worker --release 1.34.3")
            #expect(refused.exitStatus != 0)
            #expect(
                refused.stderrText.contains("E: Packages were downgraded and -y was used without --allow-downgrades."),
                "\(refused.stderrText)")
            #expect(try await Self.onNode(bed, "worker-2", "apt-mark showhold") == held)
            let back = try await Self.run(bed, "worker-2", "--role worker --release 1.34.3 --rollback")
            #expect(back.exitStatus == 0, "\(back.stderrText)")
            #expect(back.stdoutText.contains("--allow-downgrades kubeadm=1.34.3-"), "\(back.stdoutText)")
            #expect(back.stdoutText.contains("--allow-downgrades kubelet=1.34.3-"), "\(back.stdoutText)")
            #expect(!back.stdoutText.contains("+ kubeadm upgrade node"), "\(back.stdoutText)")
            #expect(back.stdoutText.contains("+ systemctl restart kubelet"), "\(back.stdoutText)")
            #expect(back.stdoutText.contains("done: worker at 1.34.3"), "\(back.stdoutText)")
            #expect(try await Self.versions(bed)["worker-2"] == "v1.34.3")
            #expect(try await Self.onNode(bed, "worker-2", "apt-mark showhold") == held)
            let again = try await Self.run(bed, "worker-2", "--role worker --release 1.34.3 --rollback")
            #expect(again.stdoutText.hasSuffix("==> already at 1.34.3\n"), "\(again.stdoutText)")
            let forward = try await Self.run(bed, "worker-2", "--role worker --release 1.34.4 --rollback")
            #expect(forward.exitStatus == 1)
            #expect(
                forward.stderrText.contains("--rollback only goes back; nothing was changed"), "\(forward.stderrText)")
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
                ("--snap microk8s --channel 1.35/stable --release 1.34.2", "--release 1.34.2 is not in --channel"),
                ("--snap microk8s --channel latest/stable --release 1.35.1", "--channel must be X.Y/stable"),
                ("--snap lxd --channel 1.35/stable --release 1.35.1", "take microk8s, got 'lxd'"),
                ("--snap microk8s --snap-revert microk8s --channel 1.35/stable --release 1.35.1", "do not go together"),
                ("--channel 1.35/stable --role worker --release 1.35.1", "--channel goes with --snap"),
                ("--snap microk8s --channel 1.35/stable --role worker --release 1.35.1", "--snap goes with --channel"),
                ("--forget-run 'job-1;rm'", "--forget-run must be letters, digits"),
                ("--forget-run job-1-worker --role worker --release 1.34.5", "--forget-run goes alone"),
                ("--k3s agent --release 1.34.5 --artifacts http://mirror.lan/k3s", "--release must be a K3s release"),
                ("--k3s agent --release 1.34.5+k3s0 --artifacts http://mirror.lan/k3s", "must be a K3s release"),
                ("--k3s worker --release 1.34.5+k3s1 --artifacts http://mirror.lan/k3s", "take server or agent"),
                ("--k3s agent --release 1.34.5+k3s1 --artifacts 'http://mirror.lan/k3s;reboot'", "--artifacts must be"),
                ("--k3s agent --release 1.34.5+k3s1 --artifacts ftp://mirror.lan/k3s", "--artifacts must be"),
                ("--k3s agent --release 1.34.5+k3s1", "--artifacts must be an http"),
                ("--k3s-revert agent --release 1.34.5+k3s1 --artifacts http://mirror.lan/k3s", "takes no --artifacts"),
                ("--k3s agent --k3s-revert agent --release 1.34.5+k3s1", "do not go together"),
                ("--k3s agent --role worker --release 1.34.5+k3s1 --artifacts http://mirror.lan", "--k3s goes with"),
                ("--artifacts http://mirror.lan/k3s --role worker --release 1.34.5", "--artifacts goes with --k3s"),
                ("--role master --release 1.34.3 --rollback", "--rollback goes with --role worker only"),
                (
                    "--snap microk8s --channel 1.34/stable --release 1.34.3 --rollback",
                    "--rollback goes with --role worker"
                ),
                (
                    "--role worker --release 1.34.3 --restore-snapshot /s.db",
                    "--restore-snapshot goes with --role master"
                ),
                (
                    "--role master --release 1.34.3 --restore-snapshot s.db",
                    "--restore-snapshot must be an absolute path"
                ),
                ("--role master --release 1.34.3 --restore-snapshot '/s.db;reboot'", "must be an absolute path"),
                ("--role master --release 1.34.3 --restore-snapshot /var/../s.db", "must be an absolute path"),
                ("--role master --release 1.34.3 --restore-snapshot /s.db --sha256 ABC", "--sha256 must be 64"),
                ("--role master --release 1.34.3 --sha256 \(String(repeating: "a", count: 64))", "goes with --restore"),
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
                "would run: apt-get -o DPkg::Lock::Timeout=300 install -y -q kubeadm=1.34.5-1.1",
                "would run: kubeadm upgrade apply v1.34.5 -y",
                "would run: apt-get -o DPkg::Lock::Timeout=300 install -y -q kubelet=1.34.5-1.1 kubectl=1.34.5-1.1",
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
            #expect(
                dry.stdoutText.contains(
                    "would run: apt-get -o DPkg::Lock::Timeout=300 install -y -q containerd.io=1.7.24-1"))
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
        // MARK: - Killed anywhere, run again: it converges

        /// The node's package and service state, in one line per fact.
        static let stateScript = #"""
            cd "$K8S_NODE_ROOT/var/lib/testbed"
            cat installed/kubeadm installed/kubelet installed/kubectl kubelet-running
            ls holds | tr '\n' ' '; echo
            ls -A "$K8S_NODE_ROOT/var/lib/dpkg/updates" 2>/dev/null | wc -l
            if [ -e "$K8S_NODE_ROOT/var/lib/k8s-upgrade/kubelet-restart-pending" ]; then echo pending; else echo none; fi
            grep -ho 'kube-apiserver:v[0-9.]*' "$K8S_NODE_ROOT/etc/kubernetes/manifests/kube-apiserver.yaml" 2>/dev/null || echo no-manifest
            """#

        @Test(arguments: [("worker-2", "worker"), ("master", "master")])
        func aRunKilledAtEveryStepBoundaryConvergesWhenStartedAgain(node: String, role: String) async throws {
            let bed = try await TestBed.start()
            let arguments = "--role \(role) --release 1.34.5"
            // Every command that changes the node, in order, from a dry run.
            let dry = try await Self.run(bed, node, arguments + " --dry-run")
            let changes = dry.stdoutText.split(separator: "\n").filter { $0.hasPrefix("would run: ") }
                .map { String($0.dropFirst("would run: ".count)) }
            #expect(changes.count >= 8, "\(dry.stdoutText)")
            // Killed right after each change, and in the middle of each
            // install (dpkg's work half done).
            let points =
                changes.map { "after \($0)" } + changes.filter { $0.contains(" install ") }.map { "during \($0)" }
            _ = try await Self.onNode(bed, node, #"cp -a "$K8S_NODE_ROOT" "$K8S_NODE_ROOT.pristine""#)
            let expected =
                "1.34.5-1.1\n1.34.5-1.1\n1.34.5-1.1\n1.34.5\nkubeadm kubectl kubelet \n0\nnone\n"
                + (role == "master" ? "kube-apiserver:v1.34.5\n" : "no-manifest\n")
            for point in points {
                _ = try await Self.onNode(
                    bed, node,
                    #"find "$K8S_NODE_ROOT" -mindepth 1 -maxdepth 1 ! -name ssh -exec rm -rf {} + && "#
                        + #"(cd "$K8S_NODE_ROOT.pristine" && tar cf - --exclude=./ssh .) | (cd "$K8S_NODE_ROOT" && tar xf -) && "#
                        + #"printf '%s' \#(Shell.quote(point)) >"$K8S_NODE_ROOT/var/lib/testbed/die-at""#)
                let killed = try await Self.runDetached(bed, node, id: "converge", arguments)
                #expect(killed.exitStatus == 75, "\(point): \(killed.stdoutText)\n\(killed.stderrText)")
                #expect(killed.stderrText.contains("attempt 1 stopped without an exit status"), "\(point)")

                let again = try await Self.runDetached(bed, node, id: "converge", arguments)
                #expect(again.exitStatus == 0, "\(point): \(again.stdoutText)\n\(again.stderrText)")
                #expect(
                    again.stderrText.contains("attempt 1 stopped without an exit status; starting it again"), "\(point)"
                )
                #expect(again.stdoutText.contains("done: \(role) at 1.34.5"), "\(point): \(again.stdoutText)")
                if point.hasPrefix("during") {
                    #expect(again.stdoutText.contains("finishing an interrupted dpkg run"), "\(point)")
                }
                #expect(try await Self.onNode(bed, node, Self.stateScript) == expected, "\(point)")
                // Converged: a third run changes nothing.
                let third = try await Self.run(bed, node, arguments)
                #expect(third.stdoutText.contains("already at 1.34.5") && !third.stdoutText.contains("+ "), "\(point)")
            }
        }

        @Test func aContainerdInstalledButNotRestartedIsRestartedWhenRunAgain() async throws {
            let bed = try await TestBed.start(masterContainerd: "1.7.22")
            let install = "apt-get -o DPkg::Lock::Timeout=300 install -y -q containerd.io=1.7.24-1"
            _ = try await Self.onNode(
                bed, "master", #"printf '%s' "after \#(install)" >"$K8S_NODE_ROOT/var/lib/testbed/die-at""#)
            let killed = try await Self.runDetached(bed, "master", id: "containerd", "--containerd 1.7.24")
            #expect(killed.exitStatus == 75)
            let runtime = #"{.status.nodeInfo.containerRuntimeVersion}"#
            #expect(
                try await bed.kubectl("get", "node", "master", "-o", "jsonpath=\(runtime)") == "containerd://1.7.22")
            let again = try await Self.runDetached(bed, "master", id: "containerd", "--containerd 1.7.24")
            #expect(again.exitStatus == 0, "\(again.stdoutText)")
            #expect(again.stdoutText.contains("an earlier run stopped before restarting containerd"))
            #expect(
                try await bed.kubectl("get", "node", "master", "-o", "jsonpath=\(runtime)") == "containerd://1.7.24")
            let third = try await Self.run(bed, "master", "--containerd 1.7.24")
            #expect(third.stdoutText.contains("containerd already at 1.7.24"), "\(third.stdoutText)")
        }

        // MARK: - One run at a time, outliving its session

        @Test func aSecondSessionForTheSameRunFollowsItInsteadOfStartingItAgain() async throws {
            let bed = try await TestBed.start()
            _ = try await Self.onNode(bed, "worker-1", #"echo 2 >"$K8S_NODE_ROOT/var/lib/testbed/install-seconds""#)
            let arguments = "--role worker --release 1.34.5"
            async let first = Self.runDetached(bed, "worker-1", id: "twice", arguments)
            try await Task.sleep(for: .seconds(1))
            let second = try await Self.runDetached(bed, "worker-1", id: "twice", arguments)
            #expect(second.exitStatus == 0, "\(second.stderrText)")
            #expect(second.stderrText.contains("re-attaching to run twice: attempt 1 is still running"))
            let firstResult = try await first
            #expect(firstResult.exitStatus == 0, "\(firstResult.stderrText)")
            #expect(firstResult.stdoutText == second.stdoutText, "both followers saw the whole log")
            let log = try await Self.onNode(
                bed, "worker-1", #"cat "$K8S_NODE_ROOT/var/lib/k8s-upgrade/runs/twice/log.1""#)
            #expect(log.components(separatedBy: "installing kubeadm").count == 2, "one run: \(log)")
            // A later session for a run that succeeded reports it.
            let later = try await Self.runDetached(bed, "worker-1", id: "twice", arguments)
            #expect(later.exitStatus == 0)
            #expect(later.stderrText.contains("re-attaching to run twice: attempt 1 succeeded"))
            #expect(later.stdoutText == log)
        }

        @Test func aCutSessionLeavesTheRunGoingAndReattachingShowsTheRest() async throws {
            let bed = try await TestBed.start()
            _ = try await Self.onNode(bed, "worker-1", #"echo 2 >"$K8S_NODE_ROOT/var/lib/testbed/install-seconds""#)
            let arguments = "--role worker --release 1.34.5"
            let seen = LinesSeen()
            let first = Task {
                try await Self.runDetached(bed, "worker-1", id: "cut", arguments) { seen.add($0) }
            }
            let deadline = ContinuousClock.now + .seconds(30)
            while !seen.stdout.contains(where: { $0.contains("installing kubeadm") }) && ContinuousClock.now < deadline
            {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(try bed.cutSSHSessions(of: "worker-1") >= 1)
            // The session ends: an error, or an end without an exit status.
            if let cut = try? await first.value { #expect(cut.exitStatus != 0) }
            let before = seen.stdout
            let again = try await Self.runDetached(bed, "worker-1", id: "cut", arguments, from: "1:\(before.count)")
            #expect(again.exitStatus == 0, "\(again.stderrText)")
            #expect(again.stderrText.contains("re-attaching to run cut: attempt 1 is still running"))
            let log = try await Self.onNode(
                bed, "worker-1", #"cat "$K8S_NODE_ROOT/var/lib/k8s-upgrade/runs/cut/log.1""#)
            // What the first session saw and what the second printed make the whole log, once.
            #expect(before.map { $0 + "\n" }.joined() + again.stdoutText == log)
            #expect(log.contains("done: worker at 1.34.5"))
            #expect(try await Self.versions(bed)["worker-1"] == "v1.34.5")
        }

        @Test func aRunStoppedBySIGTERMShowsAsKilledAndIsStartedAgainNotAsASuccess() async throws {
            let bed = try await TestBed.start()
            _ = try await Self.onNode(bed, "worker-1", #"echo 3 >"$K8S_NODE_ROOT/var/lib/testbed/install-seconds""#)
            let arguments = "--role worker --release 1.34.5"
            async let first = Self.runDetached(bed, "worker-1", id: "term", arguments)
            let run = #""$K8S_NODE_ROOT/var/lib/k8s-upgrade/runs/term""#
            // The node shuts down: systemd sends the run SIGTERM mid-install.
            _ = try await Self.onNode(
                bed, "worker-1", "until [ -f \(run)/pid ]; do sleep 0.1; done; sleep 1; kill -TERM $(cat \(run)/pid)")
            let stopped = try await first
            #expect(stopped.exitStatus == 75, "\(stopped.stderrText)")
            #expect(try await Self.onNode(bed, "worker-1", "ls \(run)/status 2>/dev/null || echo none") == "none\n")
            _ = try await Self.onNode(bed, "worker-1", #"rm -f "$K8S_NODE_ROOT/var/lib/testbed/install-seconds""#)
            let again = try await Self.runDetached(bed, "worker-1", id: "term", arguments)
            #expect(again.exitStatus == 0, "\(again.stderrText)")
            #expect(again.stderrText.contains("attempt 1 stopped without an exit status; starting it again"))
            #expect(try await Self.versions(bed)["worker-1"] == "v1.34.5")
        }

        @Test func reattachingToAnAttemptThatFailedReportsItsFailureInsteadOfRunningItAgain() async throws {
            let bed = try await TestBed.start()
            let failed = try await Self.runDetached(bed, "worker-1", id: "fails", "--role worker --release 1.34.9")
            #expect(failed.exitStatus == 1)
            // The session that followed attempt 1 re-attaches: attempt 1's end, not a new attempt.
            let reattached = try await Self.runDetached(
                bed, "worker-1", id: "fails", "--role worker --release 1.34.9", from: "1:2")
            #expect(reattached.exitStatus == 1)
            #expect(reattached.stderrText.contains("re-attaching to run fails: attempt 1 ended with status 1"))
            #expect(
                try await Self.onNode(bed, "worker-1", #"cat "$K8S_NODE_ROOT/var/lib/k8s-upgrade/runs/fails/attempt""#)
                    == "1\n")
            // A new session (a resumed job) starts it again.
            let fresh = try await Self.runDetached(bed, "worker-1", id: "fails", "--role worker --release 1.34.9")
            #expect(fresh.stderrText.contains("run fails ended before (status 1); starting it again"))
        }

        @Test func aRunByHandWaitsForTheDetachedRunOnTheSameNode() async throws {
            let bed = try await TestBed.start()
            _ = try await Self.onNode(bed, "worker-1", #"echo 2 >"$K8S_NODE_ROOT/var/lib/testbed/install-seconds""#)
            async let detached = Self.runDetached(bed, "worker-1", id: "locked", "--role worker --release 1.34.5")
            try await Task.sleep(for: .seconds(1))
            let byHand = try await Self.run(bed, "worker-1", "--role worker --release 1.34.5")
            #expect(byHand.stdoutText.contains("waiting up to 900s for another run of update_k8s.sh on this node"))
            #expect(try await detached.exitStatus == 0)
            // It read the node after the other run had finished with it.
            #expect(byHand.exitStatus == 0, "\(byHand.stderrText)")
            #expect(byHand.stdoutText.contains("already at 1.34.5") && !byHand.stdoutText.contains("+ "))
            #expect(try await Self.versions(bed)["worker-1"] == "v1.34.5")
        }

        // MARK: - apt's lock

        @Test func aHeldAptLockIsWaitedForWithinItsBound() async throws {
            let bed = try await TestBed.start()
            // unattended-upgrades holds apt's lock for `seconds`.
            func hold(seconds: Int) -> String {
                #"mkdir -p "$K8S_NODE_ROOT/var/lib/dpkg" && setsid -f flock "$K8S_NODE_ROOT/var/lib/dpkg/lock-frontend" "#
                    + #"sleep \#(seconds) </dev/null >/dev/null 2>&1; sleep 0.3"#
            }
            _ = try await Self.onNode(bed, "worker-1", hold(seconds: 3))
            let waited = try await Self.run(bed, "worker-1", "--role worker --release 1.34.5")
            #expect(waited.exitStatus == 0, "\(waited.stderrText)")
            #expect(waited.stderrText.contains("Waiting for cache lock"))
            #expect(try await Self.versions(bed)["worker-1"] == "v1.34.5")

            // Held longer than the bound: a clear failure, nothing installed.
            _ = try await Self.onNode(bed, "worker-2", hold(seconds: 20))
            let failed = try await bed.ssh("worker-2").run(
                "K8S_UPGRADE_APT_LOCK_TIMEOUT=1 bash -s -- --role worker --release 1.34.5", stdin: Self.script,
                timeout: .seconds(60))
            #expect(failed.exitStatus == 100, "\(failed.stderrText)")
            #expect(failed.stderrText.contains("Could not get lock /var/lib/dpkg/lock-frontend"))
            #expect(
                try await Self.onNode(bed, "worker-2", #"cat "$K8S_NODE_ROOT/var/lib/testbed/installed/kubeadm""#)
                    == "1.34.3-1.1\n")
        }

        // MARK: - MicroK8s

        /// The snap mode against the bed's snap (snapd's outputs and exit
        /// codes, state on disk): a refresh that waits out another change
        /// (exit 10), follows its change and holds again; a second run
        /// changes nothing; a failed change fails the run and changes
        /// nothing; the revert brings the old release back, held and
        /// tracking its old channel.
        @Test func microk8sRefreshesFollowsItsChangeAndReverts() async throws {
            let bed = try await TestBed.start()
            let setUp = #"""
                s="$K8S_NODE_ROOT/var/lib/testbed/snap"; mkdir -p "$s"
                printf '1.34/stable v1.34.2 8612\n1.35/stable v1.35.1 8700\n1.36/stable v1.36.0 8800\n' >"$s/store"
                echo v1.34.2 >"$s/version"; echo 8612 >"$s/revision"; echo 1.34/stable >"$s/tracking"
                : >"$s/held"; echo 2 >"$s/conflicts"
                """#
            _ = try await Self.onNode(bed, "worker-2", setUp)
            func snap(_ arguments: String) async throws -> SSHCommandResult {
                try await bed.ssh("worker-2").run(
                    "K8S_UPGRADE_SNAP_POLL=0.1 bash -s -- \(arguments)", stdin: Self.script, timeout: .seconds(60))
            }
            let refreshed = try await snap("--snap microk8s --channel 1.35/stable --release 1.35.1")
            #expect(refreshed.exitStatus == 0, "\(refreshed.stderrText)")
            #expect(
                refreshed.stdoutText.contains("==> another snap change is in progress (error: snap \"microk8s\" has"))
            #expect(refreshed.stdoutText.contains("==> following snap change 1"))
            #expect(refreshed.stdoutText.hasSuffix("==> done: microk8s at 1.35.1 (1.35/stable)\n"))
            #expect(try await Self.versions(bed)["worker-2"] == "v1.35.1")
            let listed = try await Self.onNode(bed, "worker-2", "snap list microk8s")
            #expect(listed.contains("v1.35.1  8700  1.35/stable") && listed.contains("classic,held"))

            let before = try await Self.fingerprint(bed, "worker-2")
            let again = try await snap("--snap microk8s --channel 1.35/stable --release 1.35.1")
            #expect(again.exitStatus == 0)
            #expect(again.stdoutText == "==> microk8s already at 1.35.1 (1.35/stable)\n")
            #expect(try await Self.fingerprint(bed, "worker-2") == before)

            _ = try await Self.onNode(bed, "worker-2", #": >"$K8S_NODE_ROOT/var/lib/testbed/snap/fail-next-refresh""#)
            let failed = try await snap("--snap microk8s --channel 1.36/stable --release 1.36.0")
            #expect(failed.exitStatus == 1)
            #expect(failed.stderrText.contains("snap change 2 ended Error"))
            #expect(failed.stderrText.contains("Error   today  today  Run post-refresh hook"))
            #expect(try await Self.versions(bed)["worker-2"] == "v1.35.1")

            let dry = try await snap("--snap-revert microk8s --channel 1.34/stable --release 1.34.2 --dry-run")
            #expect(dry.exitStatus == 0)
            #expect(dry.stdoutText.contains("would run: snap revert microk8s"))
            let reverted = try await snap("--snap-revert microk8s --channel 1.34/stable --release 1.34.2")
            #expect(reverted.exitStatus == 0, "\(reverted.stderrText)")
            #expect(reverted.stdoutText.hasSuffix("==> done: microk8s reverted to 1.34.2, held on 1.34/stable\n"))
            #expect(try await Self.versions(bed)["worker-2"] == "v1.34.2")
            let back = try await Self.onNode(bed, "worker-2", "snap list microk8s")
            #expect(back.contains("v1.34.2  8612  1.34/stable") && back.contains("classic,held"))
        }

        // MARK: - K3s

        static let k3sArtifacts = TestEnvironment.fixtures.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("testbed/k3s_artifacts.py").path

        /// Publishes the releases in GitHub's layout under the bed's
        /// repository server, installs the first on `node` as its k3s and
        /// starts `service`; returns the artifact URL.
        static func k3sNode(_ bed: TestBed, _ node: String, service: String, releases: [String]) async throws -> String
        {
            let folder = bed.directory.appendingPathComponent("repo/k3s").path
            let setUp = """
                python3 \(Shell.quote(k3sArtifacts)) --root \(Shell.quote(folder)) \(releases.joined(separator: " "))
                mkdir -p "$K8S_NODE_ROOT/usr/local/bin"
                cp \(Shell.quote(folder))/v\(releases[0])/k3s "$K8S_NODE_ROOT/usr/local/bin/k3s"
                systemctl restart \(service)
                """
            _ = try await onNode(bed, node, setUp)
            // A server's restart takes its API away for a moment.
            if service == "k3s" { try await bed.waitOutAPIOutage() }
            return (bed.environment["TESTBED_REPO_BASE"] ?? "").replacingOccurrences(of: "/core:/stable:", with: "")
                + "/k3s"
        }

        /// The K3s mode swaps the binary as the k3s-upgrade image does,
        /// fetched from an artifact server in GitHub's layout: a binary
        /// whose sha256 is not the listed one, a release that is not
        /// published and a downgrade are refused with nothing installed;
        /// the swap keeps the replaced binary, restarts k3s-agent and the
        /// node's kubelet reports the new build; a second run changes
        /// nothing; the revert puts the kept binary back.
        @Test func k3sSwapsAVerifiedBinaryKeepsTheOldOneAndRevertsToIt() async throws {
            let bed = try await TestBed.start()
            let url = try await Self.k3sNode(
                bed, "worker-3", service: "k3s-agent", releases: ["1.34.4+k3s1", "1.34.5+k3s1", "1.34.5+k3s2"])
            #expect(try await Self.versions(bed)["worker-3"] == "v1.34.4+k3s1")
            let installed =
                #"sha256sum "$K8S_NODE_ROOT/usr/local/bin/k3s"; ls "$K8S_NODE_ROOT/var/lib/k8s-upgrade""#
                + #" 2>/dev/null || true"#
            let untouched = try await Self.onNode(bed, "worker-3", installed)
            func k3s(_ arguments: String) async throws -> SSHCommandResult {
                try await Self.run(bed, "worker-3", arguments + " --artifacts " + Shell.quote(url))
            }

            // A download that is not what the release's checksum file lists.
            let corrupt = bed.directory.appendingPathComponent("repo/k3s/v1.34.5+k3s2/k3s")
            let good = try Data(contentsOf: corrupt)
            try Data("#!/bin/sh\necho 'k3s version v1.34.5+k3s2 (ffffffff)'\n".utf8).write(to: corrupt)
            let mismatch = try await k3s("--k3s agent --release 1.34.5+k3s2")
            #expect(mismatch.exitStatus == 1)
            #expect(mismatch.stderrText.contains("but sha256sum-amd64.txt says"), "\(mismatch.stderrText)")
            #expect(mismatch.stderrText.contains("nothing was installed"))
            let unpublished = try await k3s("--k3s agent --release 1.34.6+k3s1")
            #expect(unpublished.exitStatus == 1)
            #expect(unpublished.stderrText.contains("could not fetch \(url)/v1.34.6+k3s1/sha256sum-amd64.txt"))
            let afterRefusals = try await Self.onNode(bed, "worker-3", installed)
            #expect(afterRefusals.hasPrefix(untouched.prefix(64)), "\(afterRefusals)")
            #expect(!afterRefusals.contains("k3s-kept"))
            try good.write(to: corrupt)

            let dry = try await k3s("--k3s agent --release 1.34.5+k3s1 --dry-run")
            #expect(dry.exitStatus == 0, "\(dry.stderrText)")
            #expect(dry.stdoutText.contains("would run: curl -fsSL \(url)/v1.34.5+k3s1/sha256sum-amd64.txt"))
            #expect(dry.stdoutText.contains("would run: systemctl restart k3s-agent"))
            #expect(try await Self.onNode(bed, "worker-3", installed).hasPrefix(untouched.prefix(64)))

            let swapped = try await k3s("--k3s agent --release 1.34.5+k3s1")
            #expect(swapped.exitStatus == 0, "\(swapped.stderrText)")
            #expect(swapped.stdoutText.contains("==> upgrading k3s 1.34.4+k3s1 to 1.34.5+k3s1 (amd64)"))
            #expect(swapped.stdoutText.contains("verified\n==> keeping k3s 1.34.4+k3s1 under"))
            #expect(swapped.stdoutText.contains("+ mv -f -- "))
            #expect(
                swapped.stdoutText.hasSuffix(
                    "==> restarting k3s-agent\n+ systemctl restart k3s-agent\n"
                        + "==> done: k3s-agent at 1.34.5+k3s1\n"), "\(swapped.stdoutText)")
            #expect(try await Self.versions(bed)["worker-3"] == "v1.34.5+k3s1")
            let kept = try await Self.onNode(
                bed, "worker-3",
                #"ls "$K8S_NODE_ROOT/var/lib/k8s-upgrade/k3s-kept"; k3s_bin="#
                    + #""$K8S_NODE_ROOT/usr/local/bin/k3s"; "$k3s_bin" --version | head -n 1"#)
            #expect(kept.hasPrefix("k3s-1.34.4+k3s1\nk3s version v1.34.5+k3s1 ("), "\(kept)")

            let before = try await Self.fingerprint(bed, "worker-3")
            let again = try await k3s("--k3s agent --release 1.34.5+k3s1")
            #expect(again.exitStatus == 0)
            #expect(again.stdoutText == "==> k3s already at 1.34.5+k3s1\n")
            let downgrade = try await k3s("--k3s agent --release 1.34.4+k3s1")
            #expect(downgrade.exitStatus == 1)
            #expect(
                downgrade.stderrText.contains(
                    "k3s 1.34.5+k3s1 runs here, newer than 1.34.4+k3s1: a downgrade is refused"))
            #expect(try await Self.fingerprint(bed, "worker-3") == before)

            let notKept = try await Self.run(bed, "worker-3", "--k3s-revert agent --release 1.34.2+k3s1")
            #expect(notKept.exitStatus == 1)
            #expect(
                notKept.stderrText.contains("no kept k3s 1.34.2+k3s1 on this node to put back (kept: k3s-1.34.4+k3s1 )")
            )
            let reverted = try await Self.run(bed, "worker-3", "--k3s-revert agent --release 1.34.4+k3s1")
            #expect(reverted.exitStatus == 0, "\(reverted.stderrText)")
            #expect(reverted.stdoutText.hasSuffix("==> done: k3s-agent reverted to 1.34.4+k3s1\n"))
            #expect(try await Self.versions(bed)["worker-3"] == "v1.34.4+k3s1")
            #expect(try await Self.onNode(bed, "worker-3", installed).hasPrefix(untouched.prefix(64)))
        }

        /// A server's run killed after the swap, before `systemctl restart
        /// k3s` (a dropped session, a killed orchestrator): the binary is
        /// the new one but k3s still runs the old, so the next run restarts
        /// k3s instead of calling the node done.
        @Test func aK3sRunKilledBeforeItsRestartRestartsK3sWhenRunAgain() async throws {
            let bed = try await TestBed.start()
            let url = try await Self.k3sNode(bed, "master", service: "k3s", releases: ["1.34.4+k3s1", "1.34.5+k3s1"])
            _ = try await Self.onNode(
                bed, "master", #"echo 'before systemctl restart k3s' >"$K8S_NODE_ROOT/var/lib/testbed/die-at""#)
            let arguments = "--k3s server --release 1.34.5+k3s1 --artifacts " + Shell.quote(url)
            let killed = try await Self.run(bed, "master", arguments)
            #expect(killed.exitStatus != 0)
            #expect(try await Self.versions(bed)["master"] == "v1.34.4+k3s1")

            let again = try await Self.run(bed, "master", arguments)
            #expect(again.exitStatus == 0, "\(again.stderrText)")
            #expect(
                again.stdoutText.hasPrefix(
                    "==> k3s already at 1.34.5+k3s1; an earlier run stopped before restarting k3s\n"),
                "\(again.stdoutText)")
            try await bed.waitOutAPIOutage()
            #expect(try await Self.versions(bed)["master"] == "v1.34.5+k3s1")
            let third = try await Self.run(bed, "master", arguments)
            #expect(third.stdoutText == "==> k3s already at 1.34.5+k3s1\n", "\(third.stdoutText)")
        }
    }
}

/// Output lines of a session, as they arrive.
private final class LinesSeen: Sendable {
    private let lines = Mutex<[String]>([])
    func add(_ line: SSHOutputLine) { if line.stream == .stdout { lines.withLock { $0.append(line.text) } } }
    var stdout: [String] { lines.withLock { $0 } }
}

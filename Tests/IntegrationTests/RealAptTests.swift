import Foundation
import Shared
import SharedIO
import Synchronization
import TestSupport
import Testing

extension TestBedSuites {
    /// scripts/update_k8s.sh over real SSH against a node with the real apt,
    /// dpkg and apt-mark (`RealAptNode`): a debootstrapped Debian root, a
    /// signed repository in the pkgs.k8s.io shape with real packages.
    @Suite("update_k8s.sh against the real apt and dpkg", .serialized)
    struct RealAptTests {
        static let script = NodeScriptTests.script

        static func run(
            _ node: RealAptNode, _ arguments: String, environment: String = "",
            onOutput: (@Sendable (SSHOutputLine) -> Void)? = nil
        ) async throws -> SSHCommandResult {
            try await node.ssh.run(
                "\(environment)bash -s -- \(arguments)", stdin: script, timeout: .seconds(120), onOutput: onOutput)
        }

        static func shell(_ node: RealAptNode, _ command: String) async throws -> String {
            let result = try await node.ssh.run(command)
            #expect(result.exitStatus == 0, "\(command): \(result.stderrText)")
            return result.stdoutText
        }

        static func versions(_ node: RealAptNode) async throws -> String {
            try await shell(
                node, #"dpkg-query -W -f='${Package}=${Version}\n' kubeadm kubelet kubectl | sort | tr '\n' ' '"#)
        }

        /// What `versions` reads when the three packages are at `version`.
        static func at(_ version: String) -> String { "kubeadm=\(version) kubectl=\(version) kubelet=\(version) " }

        /// Kills every process running inside the node's root, as a power
        /// cut would (the sshd that serves the node runs outside it).
        static func killEverything(in node: RealAptNode) -> Int {
            var killed = 0
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
            for entry in entries {
                guard let pid = Int32(entry),
                    let root = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(entry)/root"),
                    root == node.root.path
                else { continue }
                if kill(pid, SIGKILL) == 0 { killed += 1 }
            }
            return killed
        }

        @Test func aWorkerUpgradesWithTheRealPackagesAndStaysHeld() async throws {
            let node = try await RealAptNode.start()
            #expect(try await Self.versions(node) == Self.at("1.34.3-1.1"))
            let first = try await Self.run(node, "--role worker --release 1.34.5")
            #expect(first.exitStatus == 0, "\(first.stdoutText)\n\(first.stderrText)")
            #expect(first.stdoutText.contains("package version 1.34.5-1.1"))
            // The real apt installed the exact version of held packages, then held them again.
            #expect(try await Self.versions(node) == Self.at("1.34.5-1.1"))
            #expect(try await Self.shell(node, "apt-mark showhold") == "kubeadm\nkubectl\nkubelet\n")
            #expect(try await Self.shell(node, "cat /var/lib/testbed/kubelet-running") == "1.34.5\n")
            let second = try await Self.run(node, "--role worker --release 1.34.5")
            #expect(
                second.stdoutText.hasSuffix("==> already at 1.34.5\n") && !second.stdoutText.contains("+ "),
                "\(second.stdoutText)")
            // A revision the repository does not have: refused before anything moves.
            let missing = try await Self.run(node, "--role worker --release 1.34.9")
            #expect(missing.exitStatus == 1)
            #expect(missing.stderrText.contains("release 1.34.9 is not in the configured repository"))
        }

        @Test func theMasterAppliesTheControlPlaneWithTheRealKubeadmPackage() async throws {
            let node = try await RealAptNode.start(role: "control-plane")
            let result = try await Self.run(node, "--role master --release 1.34.5")
            #expect(result.exitStatus == 0, "\(result.stdoutText)\n\(result.stderrText)")
            #expect(result.stdoutText.contains("SUCCESS! Your cluster was upgraded to \"v1.34.5\""))
            #expect(
                try await Self.shell(node, "grep -o 'kube-apiserver:v.*' /etc/kubernetes/manifests/kube-apiserver.yaml")
                    == "kube-apiserver:v1.34.5\n")
        }

        /// A worker taken back: the node script's `--rollback` (what
        /// `k8s-upgrade rollback` runs), then the runbook's manual
        /// fallback. Without `--allow-downgrades` the real apt refuses, and
        /// the script leaves the packages held when it does.
        @Test func aRollbackDowngradesHeldPackagesWithTheScriptAndWithTheRunbooksCommand() async throws {
            let node = try await RealAptNode.start()
            let up = try await Self.run(node, "--role worker --release 1.34.5")
            #expect(up.exitStatus == 0, "\(up.stderrText)")
            let old = "1.34.3-1.1"
            let held = "kubeadm\nkubectl\nkubelet\n"
            let refused = try await Self.run(node, "--role worker --release 1.34.3")
            #expect(refused.exitStatus != 0)
            #expect(
                refused.stderrText.contains("E: Packages were downgraded and -y was used without --allow-downgrades"),
                "\(refused.stderrText)")
            #expect(try await Self.versions(node) == Self.at("1.34.5-1.1"))
            #expect(try await Self.shell(node, "apt-mark showhold") == held, "a refused install leaves the holds")
            let script = try await Self.run(node, "--role worker --release 1.34.3 --rollback")
            #expect(script.exitStatus == 0, "\(script.stdoutText)\n\(script.stderrText)")
            #expect(try await Self.versions(node) == Self.at(old))
            #expect(try await Self.shell(node, "apt-mark showhold") == held)
            #expect(try await Self.shell(node, "cat /var/lib/testbed/kubelet-running") == "1.34.3\n")

            let again = try await Self.run(node, "--role worker --release 1.34.5")
            #expect(again.exitStatus == 0, "\(again.stderrText)")
            // Without --allow-downgrades the real apt refuses.
            let manual = try await node.ssh.run(
                "apt-mark unhold kubeadm kubelet kubectl && apt-get install -y kubeadm=\(old) kubelet=\(old) kubectl=\(old)"
            )
            #expect(manual.exitStatus == 100)
            #expect(manual.stderrText.contains("--allow-downgrades"), "\(manual.stderrText)")
            // The runbook's rollback.
            let rollback = try await node.ssh.run(
                "apt-mark unhold kubeadm kubelet kubectl && "
                    + "apt-get install -y --allow-downgrades kubeadm=\(old) kubelet=\(old) kubectl=\(old) && "
                    + "apt-mark hold kubeadm kubelet kubectl && systemctl daemon-reload && systemctl restart kubelet")
            #expect(rollback.exitStatus == 0, "\(rollback.stderrText)")
            #expect(try await Self.versions(node) == Self.at(old))
            #expect(try await Self.shell(node, "apt-mark showhold") == "kubeadm\nkubectl\nkubelet\n")
            #expect(try await Self.shell(node, "cat /var/lib/testbed/kubelet-running") == "1.34.3\n")
        }

        @Test(arguments: [("list", "kubernetes.list"), ("deb822", "kubernetes.sources")])
        func theRepositoryRewriteMovesEitherSourceFormatToTheNextMinor(format: String, file: String) async throws {
            let node = try await RealAptNode.start(sources: format)
            let before = try await Self.shell(node, "cat /etc/apt/sources.list.d/\(file)")
            #expect(before.contains("/core:/stable:/v1.34/deb/"))
            let rewrite = try await Self.run(node, "--repo-minor 1.35")
            #expect(rewrite.exitStatus == 0, "\(rewrite.stdoutText)\n\(rewrite.stderrText)")
            let after = try await Self.shell(node, "cat /etc/apt/sources.list.d/\(file)")
            #expect(after == before.replacingOccurrences(of: "/v1.34/deb/", with: "/v1.35/deb/"), "\(after)")
            // The real apt fetched and verified the next minor's signed index.
            let madison = try await Self.shell(node, "apt-cache madison kubeadm")
            #expect(madison.contains("1.35.1-1.1") && madison.contains("/core:/stable:/v1.35/deb"), "\(madison)")
            let upgrade = try await Self.run(node, "--role worker --release 1.35.1")
            #expect(upgrade.exitStatus == 0, "\(upgrade.stdoutText)\n\(upgrade.stderrText)")
            #expect(try await Self.versions(node) == Self.at("1.35.1-1.1"))
        }

        @Test func aDpkgKilledMidInstallIsFinishedBeforeTheUpgradeGoesOn() async throws {
            let node = try await RealAptNode.start()
            // The kubelet's configure step takes a while; the node loses
            // power in it (every process inside it killed).
            _ = try await Self.shell(node, "echo 30 >/var/lib/testbed/postinst-seconds")
            let seen = Mutex(false)
            let killed = Task {
                try await Self.run(node, "--role worker --release 1.34.5") { line in
                    if line.text.hasPrefix("Setting up kubelet (1.34.5-1.1)") { seen.withLock { $0 = true } }
                }
            }
            let deadline = ContinuousClock.now + .seconds(60)
            while !seen.withLock({ $0 }) && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(seen.withLock { $0 }, "the kubelet's configure step never started")
            #expect(Self.killEverything(in: node) >= 2)
            _ = try? await killed.value
            _ = try await Self.shell(node, "rm -f /var/lib/testbed/postinst-seconds")
            // dpkg was interrupted: the real apt refuses to install anything.
            let refused = try await node.ssh.run("apt-get install -y kubectl=1.34.4-2.1")
            #expect(refused.exitStatus == 100)
            #expect(refused.stderrText.contains("dpkg was interrupted"), "\(refused.stderrText)")

            let again = try await Self.run(node, "--role worker --release 1.34.5")
            #expect(again.exitStatus == 0, "\(again.stdoutText)\n\(again.stderrText)")
            #expect(again.stdoutText.contains("finishing an interrupted dpkg run (dpkg --configure -a)"))
            #expect(again.stdoutText.contains("done: worker at 1.34.5"))
            #expect(try await Self.shell(node, "dpkg --audit; echo audit-clean") == "audit-clean\n")
            #expect(try await Self.versions(node) == Self.at("1.34.5-1.1"))
            #expect(try await Self.shell(node, "cat /var/lib/testbed/kubelet-running") == "1.34.5\n")
        }

        @Test func aheldAptLockFailsPastItsBoundAndIsWaitedForWithinIt() async throws {
            let node = try await RealAptNode.start()
            // Another apt (unattended-upgrades, say) holds the lock for 8 s.
            _ = try await Self.shell(node, "echo 8 >/var/lib/testbed/postinst-seconds")
            let holding = Mutex(false)
            let other = Task {
                try await node.ssh.run("apt-get install -y --reinstall kubelet=1.34.3-1.1", timeout: .seconds(60)) {
                    line in
                    if line.text.hasPrefix("Setting up kubelet") { holding.withLock { $0 = true } }
                }
            }
            let deadline = ContinuousClock.now + .seconds(30)
            while !holding.withLock({ $0 }) && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            _ = try await Self.shell(node, "rm -f /var/lib/testbed/postinst-seconds")

            let tooShort = try await Self.run(
                node, "--role worker --release 1.34.5", environment: "K8S_UPGRADE_APT_LOCK_TIMEOUT=1 ")
            // apt-mark, the first to need the lock, waited its 1 s and gave up:
            // nothing was installed.
            #expect(tooShort.exitStatus != 0, "\(tooShort.stdoutText)\n\(tooShort.stderrText)")
            #expect(tooShort.stdoutText.contains("waiting up to 1s for apt's lock"), "\(tooShort.stdoutText)")
            #expect(tooShort.stderrText.contains("lock was locked by another process"), "\(tooShort.stderrText)")
            #expect(try await Self.shell(node, "dpkg-query -W -f='${Version}' kubeadm") == "1.34.3-1.1")

            let waited = try await Self.run(node, "--role worker --release 1.34.5")
            #expect(waited.exitStatus == 0, "\(waited.stdoutText)\n\(waited.stderrText)")
            #expect(waited.stdoutText.contains("waiting up to 300s for apt's lock"), "\(waited.stdoutText)")
            #expect(try await other.value.exitStatus == 0)
            #expect(try await Self.versions(node) == Self.at("1.34.5-1.1"))
        }
    }
}

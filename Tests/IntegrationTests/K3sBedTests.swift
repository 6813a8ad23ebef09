import Foundation
import Shared
import SharedIO
import TestSupport
import Testing

extension TestBedSuites {
    /// K3s on the test bed: every node's sshd real, its k3s binary a
    /// stand-in published in GitHub's layout (testbed/k3s_artifacts.py), the
    /// server's SQLite datastore a real database read and backed up with
    /// the real sqlite3, the channel server's list served by the bed, the
    /// service run with --distribution k3s, the API simulator judged by
    /// kubectl.
    @Suite("K3s end to end", .serialized)
    struct K3sBedTests {
        typealias Pipeline = PipelineBedTests

        /// The release the node's k3s binary says it is, and the kept one.
        static func k3s(_ bed: TestBed, _ node: String) async throws -> (running: String, kept: String) {
            let shown = try await bed.ssh(node).run(
                #"k="$K8S_NODE_ROOT/usr/local/bin/k3s"; "$k" --version | head -n 1; "#
                    + #"ls "$K8S_NODE_ROOT/var/lib/k8s-upgrade/k3s-kept" 2>/dev/null || true"#)
            let lines = shown.stdoutText.split(separator: "\n").map(String.init)
            let running = lines.first?.split(separator: " ").dropFirst(2).first.map(String.init) ?? ""
            return (running, lines.dropFirst().joined(separator: " "))
        }

        /// The detector as the weekly CronJob runs it for K3s, reading the
        /// channel server's list on server-1 and dispatching to `server`.
        static func detect(_ bed: TestBed, dispatchingTo server: RunningOrchestrator) async throws {
            try await Pipeline.detect(
                bed, dispatchingTo: server, master: "server-1",
                extra: [
                    "--distribution", "k3s", "--k3s-channel-url", bed.environment["TESTBED_K3S_CHANNEL_URL"] ?? "",
                ])
        }

        /// Runs a shell command on this machine, for the checks of an archive.
        static func local(_ command: String) throws -> String {
            let result = try TestEnvironment.execute("/bin/sh", ["-c", command])
            #expect(result.status == 0, "\(command): \(result.stderr)")
            return result.stdout
        }

        // MARK: - 1. A dry run, then a patch dispatched by the detector

        /// The dry run reads everything (the channel list, the datastore,
        /// each node's binary) and leaves every node's files as they were.
        @Test func aDryRunChangesNothingThenTheDetectorsPatchTakesServersBeforeAgents() async throws {
            let bed = try await TestBed.start(scenario: "k3s")
            let server = try await OrchestratorFixture(bed: bed, extra: ["--soak", "0"]).launch()
            // The live datastore changes by itself (kine writes, as k3s does).
            func files() throws -> [String: Data] {
                try Pipeline.nodeFiles(bed).filter { !$0.key.contains("/var/lib/rancher/k3s/server/db/") }
            }
            let before = try files()
            try await Pipeline.execute(server, #"{"target_version":"1.34.5+k3s1","kind":"patch","dry_run":true}"#)
            let rehearsed = try await server.waitForJob(1, state: "succeeded", timeout: 90)
            let rehearsal = Pipeline.events(rehearsed)
            #expect(rehearsal.contains { $0.message == "K3s datastore health: passed: 1 of 1 members healthy" })
            #expect(
                rehearsal.filter {
                    $0.kind == "would_change" && $0.message.hasPrefix("would run on ")
                        && $0.message.contains("update_k8s.sh --k3s ")
                }.map(\.node) == ["server-1", "agent-1", "agent-2"])
            let after = try files()
            #expect(after.keys.sorted() == before.keys.sorted())
            #expect(after.filter { before[$0.key] != $0.value }.keys.sorted() == [])
            #expect(try await Pipeline.nodes(bed).values.allSatisfy { $0.version == "v1.34.3+k3s1" })

            try await Self.detect(bed, dispatchingTo: server)
            let done = try await server.waitForJob(2, state: "succeeded", timeout: 120)
            #expect(done[dotted: "request.target_version"]?.stringValue == "1.34.5+k3s1")
            let events = Pipeline.events(done)
            #expect(
                events.filter { $0.kind == "node_started" }.map(\.node) == ["server-1", "agent-1", "agent-2"])
            #expect(
                events.contains {
                    $0.stage == "containerd" && $0.message.contains("K3s ships containerd inside its binary")
                })
            #expect(events.contains { $0.stage == "repo" && $0.message.contains("from the channel server") })
            #expect(
                events.contains { $0.message.contains("upgrading k3s 1.34.3+k3s1 to 1.34.5+k3s1 (amd64)") })
            #expect(events.contains { $0.node == "agent-2" && $0.message == "+ systemctl restart k3s-agent" })
            #expect(events.contains { $0.node == "server-1" && $0.message == "+ systemctl restart k3s" })

            let nodes = try await Pipeline.nodes(bed)
            #expect(nodes.count == 3)
            for (name, node) in nodes {
                #expect(
                    node == Pipeline.NodeState(version: "v1.34.5+k3s1", unschedulable: false, cordonedBy: nil),
                    "\(name)")
                let binary = try await Self.k3s(bed, name)
                #expect(binary.running == "v1.34.5+k3s1" && binary.kept == "k3s-1.34.3+k3s1", "\(name): \(binary)")
            }
            let annotations = try await Pipeline.namespaceAnnotations(bed)
            #expect(annotations.keys.filter { $0.hasPrefix("k8s-upgrade.io/") }.isEmpty, "\(annotations)")

            // The backup: a consistent copy of the SQLite database and the
            // server token, in an archive on the server.
            let summary = done[dotted: "result.snapshot"]?.stringValue ?? ""
            #expect(summary.hasPrefix("K3s SQLite copy and server token, "), "\(summary)")
            let path = done[dotted: "result.snapshot_path"]?.stringValue ?? ""
            #expect(path.hasPrefix((bed.environment["TESTBED_BACKUP_DIR"] ?? "") + "/k8s-upgrade-pre-1.34.5+k3s1-"))
            #expect(path.hasSuffix(".tar.gz"))
            let unpacked = try TestEnvironment.makeDirectory("k3s-backup").path
            let listing = try Self.local("tar -xzf \(Shell.quote(path)) -C \(unpacked) && ls \(unpacked)")
            #expect(listing == "datastore\nstate.db\ntoken\n")
            let token = try String(
                contentsOf: bed.directory.appendingPathComponent("nodes/server-1/var/lib/rancher/k3s/server/token"),
                encoding: .utf8)
            #expect(try String(contentsOfFile: unpacked + "/token", encoding: .utf8) == token)
            // Taken while kine went on writing: consistent, with the bed's 50
            // objects and the writes before the backup.
            let checked = try Self.local(
                "sqlite3 \(unpacked)/state.db 'PRAGMA integrity_check; SELECT count(*) FROM kine;'"
            ).split(separator: "\n")
            #expect(checked.first == "ok" && (Int(checked.last ?? "") ?? 0) > 50, "\(checked)")
            // Its copy off the server was rehearsed: SQLite's own check, and kine's rows.
            let copyRehearsal = done[dotted: "result.snapshot_rehearsal"]?.stringValue ?? ""
            #expect(
                copyRehearsal.hasPrefix("restore rehearsed: the SQLite copy is intact (integrity_check ok), "),
                "\(copyRehearsal)")
            #expect((Int(copyRehearsal.split(separator: " ").dropFirst(9).first ?? "") ?? 0) > 50, "\(copyRehearsal)")

            // Then back: the agents, and the single server through that
            // backup, which removes what was written after it.
            let db = bed.directory.appendingPathComponent("nodes/server-1/var/lib/rancher/k3s/server/db").path
            func rows(_ name: String, in file: String = "\(db)/state.db") throws -> String {
                try Self.local(
                    "sqlite3 -cmd '.timeout 5000' \(file) \"SELECT count(*) FROM kine WHERE name = '\(name)'\"")
            }
            _ = try Self.local(
                "sqlite3 -cmd '.timeout 5000' \(db)/state.db "
                    + "\"INSERT INTO kine (name, value) VALUES ('/registry/after-upgrade', x'00')\"")
            #expect(try rows("/registry/after-upgrade") == "1\n")
            for (job, agent) in [(3, "agent-1"), (4, "agent-2")] {
                let back = try await server.request("POST", "/jobs/2/rollback", body: #"{"node":"\#(agent)"}"#)
                #expect(back.status == 202, "\(back.text)")
                _ = try await server.waitForJob(job, state: "succeeded", timeout: 60)
            }
            let unconfirmed = try await server.request("POST", "/jobs/2/rollback", body: #"{"node":"server-1"}"#)
            #expect(unconfirmed.status == 422)
            #expect(unconfirmed.text.contains("restores job 2's K3s datastore snapshot \(path)"), "\(unconfirmed.text)")
            // The node script refuses before any change: a backup that is not
            // the one recorded, and a restore on an agent.
            let zeros = String(repeating: "0", count: 64)
            let wrongHash = try await TestBedSuites.NodeScriptTests.run(
                bed, "server-1",
                "--k3s-revert server --release 1.34.3+k3s1 --restore-snapshot \(Shell.quote(path)) --sha256 \(zeros)")
            #expect(wrongHash.exitStatus == 1)
            #expect(
                wrongHash.stderrText.contains("not \(zeros) as recorded: it changed since the job; nothing was changed")
            )
            let onAgent = try await TestBedSuites.NodeScriptTests.run(
                bed, "agent-1", "--k3s-revert agent --release 1.34.3+k3s1 --restore-snapshot \(Shell.quote(path))")
            #expect(onAgent.exitStatus == 2, "\(onAgent.stderrText)")
            // A server whose token is not the backup's (K3s would refuse the
            // restore), and a dry run, which prints every change and makes none.
            let tokenFile = bed.directory.appendingPathComponent("nodes/server-1/var/lib/rancher/k3s/server/token")
            let serverToken = try Data(contentsOf: tokenFile)
            try Data("K10other::server:other\n".utf8).write(to: tokenFile)
            let otherToken = try await TestBedSuites.NodeScriptTests.run(
                bed, "server-1", "--k3s-revert server --release 1.34.3+k3s1 --restore-snapshot \(Shell.quote(path))")
            try serverToken.write(to: tokenFile)
            #expect(otherToken.exitStatus == 1)
            #expect(
                otherToken.stderrText.contains("the backup's server token is not this server's"),
                "\(otherToken.stderrText)")
            let dry = try await TestBedSuites.NodeScriptTests.run(
                bed, "server-1",
                "--k3s-revert server --release 1.34.3+k3s1 --restore-snapshot \(Shell.quote(path)) --dry-run")
            #expect(dry.exitStatus == 0, "\(dry.stderrText)")
            for line in [
                "would run: systemctl stop k3s", "would run: systemctl start k3s", "==> dry run: nothing was changed",
            ] {
                #expect(dry.stdoutText.contains(line + "\n"), "\(line): \(dry.stdoutText)")
            }
            #expect(try await Self.k3s(bed, "server-1").running == "v1.34.5+k3s1")
            #expect(try rows("/registry/after-upgrade") == "1\n")
            #expect(try await bed.ssh("server-1").run("systemctl is-active k3s").stdoutText == "active\n")
            // The restore's first run is killed once the datastore is back,
            // before k3s starts: the run is started again and restores nothing twice.
            try Data("before systemctl start k3s".utf8).write(
                to: bed.directory.appendingPathComponent("nodes/server-1/var/lib/testbed/die-at"))
            let confirmed = try await server.request(
                "POST", "/jobs/2/rollback", body: #"{"node":"server-1","confirm_restore":true}"#)
            #expect(confirmed.status == 202, "\(confirmed.text)")
            let restore = try await server.waitForJob(5, state: "succeeded", timeout: 90)
            #expect(
                Pipeline.events(restore).contains {
                    $0.kind == "warning" && $0.message.contains("stopped without an exit status")
                }, "the killed run was started again")
            let output = Pipeline.events(restore).filter { $0.kind == "output" }.map(\.message)
            for line in [
                "==> the backup holds the sqlite datastore and this server's token", "==> stopping k3s",
                "==> putting back the kept k3s 1.34.3+k3s1 in place of 1.34.5+k3s1",
                "==> the datastore was already restored from \(path)",
                "==> done: k3s at 1.34.3+k3s1, its sqlite datastore restored from \(path)",
            ] {
                #expect(output.contains(line), "\(line): \(output)")
            }
            #expect(output.contains { $0.hasPrefix("==> snapshot SHA-256 ") }, "\(output)")
            let back = try await Pipeline.nodes(bed)
            #expect(back.values.allSatisfy { $0.version == "v1.34.3+k3s1" && !$0.unschedulable }, "\(back)")
            #expect(try await Self.k3s(bed, "server-1").running == "v1.34.3+k3s1")
            #expect(try rows("/registry/after-upgrade") == "0\n")
            #expect(try rows("/registry/test-bed/0") == "1\n")
            let aside = try FileManager.default.contentsOfDirectory(atPath: db).filter {
                $0.hasPrefix("before-restore-")
            }
            #expect(aside == ["before-restore-" + URL(fileURLWithPath: path).lastPathComponent], "kept: \(aside)")
            #expect(try rows("/registry/after-upgrade", in: "\(db)/\(aside.first ?? "")/state.db") == "1\n")
            // k3s writes to the restored database again.
            let count = "sqlite3 -cmd '.timeout 5000' \(db)/state.db 'SELECT count(*) FROM kine'"
            let restored = Int(try Self.local(count).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            try await Task.sleep(for: .seconds(1.2))
            #expect((Int(try Self.local(count).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) > restored)
        }

        // MARK: - 2. A binary that fails its checksum; an agent that never returns

        /// The first server refuses the download, nothing is installed and
        /// no agent is touched. Once the release is published right, the
        /// resume upgrades the server, but agent-1 never comes back from its
        /// restart: its kept binary is put back, it returns at its old
        /// release and agent-2 is not touched; a rollback of agent-1 then
        /// has nothing to do. The last resume finishes, and a rollback of
        /// agent-2 puts back the binary its upgrade kept. With
        /// `--patch-drain false`, nodes are cordoned, never drained.
        @Test func aBadChecksumInstallsNothingAnAgentThatNeverReturnsIsRevertedAndResumeFinishes() async throws {
            let bed = try await TestBed.start(scenario: "k3s")
            let server = try await OrchestratorFixture(
                bed: bed,
                extra: ["--soak", "0", "--auto-resume", "false", "--node-ready-timeout", "4", "--patch-drain", "false"]
            ).launch()
            let published = bed.directory.appendingPathComponent("repo/k3s/v1.34.5+k3s1/k3s")
            let good = try Data(contentsOf: published)
            try Data("#!/bin/sh\necho 'k3s version v1.34.5+k3s1 (00000000)'\n".utf8).write(to: published)

            try await Pipeline.execute(server, #"{"target_version":"1.34.5+k3s1","kind":"patch"}"#)
            let failed = try await server.waitForJob(1, state: "failed", timeout: 90)
            let error = failed[dotted: "error"]?.stringValue ?? ""
            #expect(error.contains("--release 1.34.5+k3s1 --artifacts "), "\(error)")
            #expect(error.contains(" on server-1 exited 1: "), "\(error)")
            #expect(error.contains("/v1.34.5+k3s1/k3s has sha256 "), "\(error)")
            #expect(error.contains("but sha256sum-amd64.txt says"), "\(error)")
            #expect(error.contains("nothing was installed"), "\(error)")
            let events = Pipeline.events(failed)
            #expect(events.filter { $0.kind == "node_started" }.map(\.node) == ["server-1"])
            for node in bed.nodes {
                let binary = try await Self.k3s(bed, node)
                #expect(binary.running == "v1.34.3+k3s1" && binary.kept.isEmpty, "\(node): \(binary)")
            }
            #expect(try await Pipeline.nodes(bed)["server-1"]?.version == "v1.34.3+k3s1")

            try good.write(to: published)
            try Data().write(
                to: bed.directory.appendingPathComponent("nodes/agent-1/var/lib/testbed/k3s-never-returns"))
            #expect(try await server.request("POST", "/jobs/1/resume").status == 202)
            let lost = try await server.waitForJob(1, state: "failed", timeout: 120)
            let reason = lost[dotted: "error"]?.stringValue ?? ""
            #expect(reason.hasPrefix("waited 4 s for agent-1 to be Ready with kubelet at 1.34.5+k3s1"), "\(reason)")
            #expect(
                reason.hasSuffix(
                    "agent-1 was reverted to 1.34.3+k3s1 (update_k8s.sh --k3s-revert agent --release 1.34.3+k3s1)"),
                "\(reason)")
            let nodesNow = try await Pipeline.nodes(bed)
            #expect(nodesNow["server-1"]?.version == "v1.34.5+k3s1")
            #expect(nodesNow["agent-1"]?.version == "v1.34.3+k3s1")
            #expect(nodesNow["agent-2"]?.version == "v1.34.3+k3s1")
            #expect(try await Self.k3s(bed, "agent-1").running == "v1.34.3+k3s1")
            #expect(try await Self.k3s(bed, "agent-2").kept.isEmpty)
            // `k8s-upgrade rollback` of the agent that never returned: the
            // revert already took it back, so its rollback job does nothing.
            #expect(try await server.request("POST", "/jobs/1/rollback", body: #"{"node":"agent-1"}"#).status == 202)
            let nothing = try await server.waitForJob(2, state: "succeeded", timeout: 60)
            #expect(
                Pipeline.events(nothing).contains { $0.message == "agent-1 was already at 1.34.3+k3s1" },
                "\(Pipeline.events(nothing).map(\.message))")

            #expect(try await server.request("POST", "/jobs/1/resume").status == 202)
            let done = try await server.waitForJob(1, state: "succeeded", timeout: 120)
            for (name, node) in try await Pipeline.nodes(bed) {
                #expect(
                    node == Pipeline.NodeState(version: "v1.34.5+k3s1", unschedulable: false, cordonedBy: nil),
                    "\(name)")
            }
            let resumed = Pipeline.events(done)
            #expect(resumed.contains { $0.message == "cordon agent-2" })
            #expect(!resumed.contains { $0.message.hasPrefix("draining ") }, "a patch with --patch-drain false")

            // `k8s-upgrade rollback` of agent-2 (upgraded by the last
            // resume): the binary that upgrade kept is put back, and the
            // agent returns at 1.34.3+k3s1, uncordoned.
            let rollback = try await server.request(
                "POST", "/jobs/1/rollback", body: #"{"node":"agent-2"}"#)
            #expect(rollback.status == 202, "\(rollback.text)")
            let back = try await server.waitForJob(3, state: "succeeded", timeout: 120)
            #expect(back[dotted: "request.rollback.node"]?.stringValue == "agent-2")
            #expect(back[dotted: "result.nodes"]?.arrayValue?.first?[dotted: "outcome"]?.stringValue == "rolled back")
            #expect(
                Pipeline.events(back).contains {
                    $0.message.hasPrefix(
                        "rollback plan: agent-2, undoing job 1: 1.34.5+k3s1 → 1.34.3+k3s1 "
                            + "(update_k8s.sh --k3s-revert agent --release 1.34.3+k3s1)")
                })
            let nodesAfter = try await Pipeline.nodes(bed)
            #expect(
                nodesAfter["agent-2"]
                    == Pipeline.NodeState(version: "v1.34.3+k3s1", unschedulable: false, cordonedBy: nil))
            #expect(nodesAfter["agent-1"]?.version == "v1.34.5+k3s1")
            #expect(try await Self.k3s(bed, "agent-2").running == "v1.34.3+k3s1")
        }

        // MARK: - 3. system-upgrade-controller's Plans on the same nodes

        /// A Plan of system-upgrade-controller selecting the agents (applied
        /// with the real kubectl, its CRD served): pre-flight refuses, naming
        /// the Plan and the nodes, before any node is cordoned; with the
        /// Plan narrowed to no node, the plan says the way is clear.
        @Test func aSystemUpgradeControllerPlanOnTheNodesStopsPreflight() async throws {
            let bed = try await TestBed.start(scenario: "k3s", extra: ["--suc-crd"])
            let server = try await OrchestratorFixture(bed: bed, extra: ["--soak", "0"]).launch()
            let plan = try TestEnvironment.makeDirectory("suc-plan").appendingPathComponent("plan.yaml")
            try """
            apiVersion: upgrade.cattle.io/v1
            kind: Plan
            metadata:
              name: k3s-agent
              namespace: kube-system
            spec:
              concurrency: 1
              nodeSelector:
                matchExpressions:
                - {key: node-role.kubernetes.io/control-plane, operator: DoesNotExist}
              serviceAccountName: system-upgrade
              drain: {force: true}
              upgrade: {image: rancher/k3s-upgrade}
              version: v1.34.5+k3s1

            """.write(to: plan, atomically: true, encoding: .utf8)
            _ = try await bed.kubectl("apply", "--validate=false", "-f", plan.path)
            #expect(try await bed.kubectl("get", "plans", "-A", "-o", "name") == "plan.upgrade.cattle.io/k3s-agent\n")

            try await Pipeline.execute(server, #"{"target_version":"1.34.5+k3s1","kind":"patch"}"#)
            let refused = try await server.waitForJob(1, state: "failed", timeout: 60)
            let error = refused[dotted: "error"]?.stringValue ?? ""
            #expect(
                error.contains(
                    "other upgraders: failed: system-upgrade-controller Plan kube-system/k3s-agent selects agent-1, "
                        + "agent-2: two upgraders would race"), "\(error)")
            #expect(!Pipeline.events(refused).contains { $0.kind == "node_started" })
            #expect(
                try await Pipeline.nodes(bed).values.allSatisfy { !$0.unschedulable && $0.version == "v1.34.3+k3s1" })

            _ = try await bed.kubectl(
                "-n", "kube-system", "patch", "plan", "k3s-agent", "--type=merge", "-p",
                #"{"spec":{"nodeSelector":{"matchLabels":{"k3s-upgrade":"true"}}}}"#)
            let clear = try await server.request("GET", "/plan")
            #expect(clear.status == 200, "\(clear.text)")
            #expect(
                clear.text.contains("other upgraders: passed: no system-upgrade-controller Plan selects these nodes"),
                "\(clear.text)")
        }

        // MARK: - 4. Embedded etcd: a minor, and a member down

        /// k3s-ha (3 servers on the bed's real etcd members, reached with
        /// K3s' certificate layout): the detector dispatches the next minor,
        /// each server goes behind the quorum gate, the backup holds a real
        /// etcd snapshot (k3s etcd-snapshot save) and the token, and every
        /// node reaches the minor; a minor drains although --patch-drain is
        /// false.
        @Test func theNextMinorOnEmbeddedEtcdGoesServerByServerBehindTheQuorumGate() async throws {
            // At the newest patch of 1.34, so the detector's next step is the minor.
            let bed = try await TestBed.start(scenario: "k3s-ha", runningVersion: "1.34.5")
            let server = try await OrchestratorFixture(
                bed: bed, extra: ["--soak", "0", "--allow-minor", "true", "--patch-drain", "false"]
            ).launch()
            // First, K3s records the snapshot as failed (fault knob): a job of
            // the snapshot stage fails there with the record's error.
            let fault = bed.directory.appendingPathComponent(
                "nodes/server-1/var/lib/testbed/etcd-snapshot-record-error")
            try Data("snapshot upload failed: disk full".utf8).write(to: fault)
            try await Pipeline.execute(server, #"{"target_version":"1.35.2+k3s1","kind":"minor","stages":"snapshot"}"#)
            let unconfirmed = try await server.waitForJob(1, state: "failed", timeout: 90)
            let reason = unconfirmed[dotted: "error"]?.stringValue ?? ""
            #expect(
                reason.contains("could not be confirmed: ETCDSnapshotFile local-k8s-upgrade-server-1-"), "\(reason)")
            #expect(reason.hasSuffix("says: snapshot upload failed: disk full"), "\(reason)")
            #expect(!Pipeline.events(unconfirmed).contains { $0.kind == "node_started" })
            try FileManager.default.removeItem(at: fault)

            try await Pipeline.detect(
                bed, dispatchingTo: server, master: "server-1",
                extra: [
                    "--distribution", "k3s", "--k3s-channel-url", bed.environment["TESTBED_K3S_CHANNEL_URL"] ?? "",
                    "--allow-minor", "true",
                ])
            let done = try await server.waitForJob(2, state: "succeeded", timeout: 180)
            #expect(done[dotted: "request.target_version"]?.stringValue == "1.35.2+k3s1")
            #expect(done[dotted: "request.kind"]?.stringValue == "minor")
            let events = Pipeline.events(done)
            #expect(
                events.filter { $0.kind == "node_started" }.map(\.node)
                    == ["server-1", "server-2", "server-3", "agent-1", "agent-2"])
            #expect(
                events.filter { $0.message.hasPrefix("K3s datastore: 3 of 3 members healthy; etcd keeps its quorum") }
                    .map(\.node) == ["server-1", "server-2", "server-3"])
            #expect(events.filter { $0.message.hasPrefix("draining ") }.count == 5, "a minor always drains")
            #expect(events.contains { $0.message.contains("Snapshot k8s-upgrade-server-1-") })
            let summary = done[dotted: "result.snapshot"]?.stringValue ?? ""
            #expect(summary.hasPrefix("K3s etcd snapshot and server token, "), "\(summary)")
            // Confirmed through the API: K3s' ETCDSnapshotFile, as kubectl lists it.
            #expect(summary.contains("; ETCDSnapshotFile local-k8s-upgrade-server-1-"), "\(summary)")
            #expect(summary.contains(" ready on server-1, size "), "\(summary)")
            let records = try await bed.kubectl(
                "get", "etcdsnapshotfiles", "-o", "jsonpath={.items[*].spec.snapshotName}")
            #expect(records.hasPrefix("k8s-upgrade-server-1-"), "\(records)")
            let path = done[dotted: "result.snapshot_path"]?.stringValue ?? ""
            let unpacked = try TestEnvironment.makeDirectory("k3s-etcd-backup").path
            #expect(
                try Self.local("tar -xzf \(Shell.quote(path)) -C \(unpacked) && ls \(unpacked)")
                    == "datastore\netcd-snapshot\ntoken\n")
            let status = try Self.local("ETCDCTL_API=3 etcdctl snapshot status -w json \(unpacked)/etcd-snapshot")
            #expect(status.contains("\"totalKey\""), "\(status)")
            // The archive's etcd snapshot was restored into a throw-away etcd.
            let rehearsed = done[dotted: "result.snapshot_rehearsal"]?.stringValue ?? ""
            #expect(rehearsed.hasPrefix("restore rehearsed: "), "\(rehearsed)")
            #expect(rehearsed.contains(" keys, revision "), "\(rehearsed)")
            for (name, node) in try await Pipeline.nodes(bed) {
                #expect(
                    node == Pipeline.NodeState(version: "v1.35.2+k3s1", unschedulable: false, cordonedBy: nil),
                    "\(name)")
            }
            // A refusal for three servers (every one must go back), then the
            // node script's embedded-etcd restore run by hand on server-1, as
            // on a cluster with that one server: k3s stopped, the kept binary
            // back, k3s server --cluster-reset from the archive's snapshot with
            // the server's token, k3s started.
            let refusal = try await server.request(
                "POST", "/jobs/2/rollback", body: #"{"node":"server-1","confirm_restore":true}"#)
            #expect(refusal.status == 422)
            #expect(refusal.text.contains("job 2's cluster has 3 control planes"), "\(refusal.text)")
            let restore = try await TestBedSuites.NodeScriptTests.run(
                bed, "server-1", "--k3s-revert server --release 1.34.5+k3s1 --restore-snapshot \(Shell.quote(path))")
            #expect(restore.exitStatus == 0, "\(restore.stderrText)")
            for line in [
                "==> the backup holds the etcd datastore and this server's token", "==> stopping k3s",
                "==> putting back the kept k3s 1.34.5+k3s1 in place of 1.35.2+k3s1",
                "==> restoring embedded etcd from \(path) (k3s server --cluster-reset)",
                "==> done: k3s at 1.34.5+k3s1, its etcd datastore restored from \(path)",
            ] {
                #expect(restore.stdoutText.contains(line + "\n"), "\(line): \(restore.stdoutText)")
            }
            #expect(restore.stderrText.contains("Managed etcd cluster membership has been reset"))
            let db = bed.directory.appendingPathComponent("nodes/server-1/var/lib/rancher/k3s/server/db").path
            #expect(try FileManager.default.contentsOfDirectory(atPath: db).contains { $0.hasPrefix("etcd-old-") })
            #expect(FileManager.default.fileExists(atPath: db + "/etcd/member/snap/db"), "the restored member")
            #expect(try await Self.k3s(bed, "server-1").running == "v1.34.5+k3s1")
            let again = try await TestBedSuites.NodeScriptTests.run(
                bed, "server-1", "--k3s-revert server --release 1.34.5+k3s1 --restore-snapshot \(Shell.quote(path))")
            #expect(again.stdoutText == "==> already restored from \(path) and at 1.34.5+k3s1\n", "\(again.stdoutText)")
        }

        /// One server with embedded etcd (`--cluster-init`) and two agents:
        /// the patch goes through with the one member's restart expected and
        /// a real etcd snapshot in the backup; going back, a confirmed
        /// restore of the server is refused while the agents run the newer
        /// kubelet, and nothing is queued; once they are back, the server is
        /// restored through `k3s server --cluster-reset` from that snapshot.
        @Test func aSingleServerOnEmbeddedEtcdIsPatchedThenRestoredThroughItsSnapshot() async throws {
            let bed = try await TestBed.start(scenario: "k3s-etcd")
            let server = try await OrchestratorFixture(bed: bed, extra: ["--soak", "0"]).launch()
            try await Pipeline.execute(server, #"{"target_version":"1.34.5+k3s1","kind":"patch"}"#)
            let done = try await server.waitForJob(1, state: "succeeded", timeout: 120)
            let events = Pipeline.events(done)
            #expect(events.contains { $0.message == "K3s datastore health: passed: 1 of 1 members healthy" })
            #expect(
                events.contains {
                    $0.node == "server-1"
                        && $0.message.hasSuffix(
                            "a single etcd member: etcd is down while it restarts, as always with one")
                }, "\(events.map(\.message))")
            let summary = done[dotted: "result.snapshot"]?.stringValue ?? ""
            #expect(summary.hasPrefix("K3s etcd snapshot and server token, "), "\(summary)")
            #expect(summary.contains("; ETCDSnapshotFile local-k8s-upgrade-server-1-"), "\(summary)")
            let snapshot = done[dotted: "result.snapshot_path"]?.stringValue ?? ""

            let early = try await server.request(
                "POST", "/jobs/1/rollback", body: #"{"node":"server-1","confirm_restore":true}"#)
            #expect(early.status == 422, "\(early.text)")
            #expect(
                early.text.contains(
                    "agent-1 runs kubelet 1.34.5+k3s1, agent-2 runs kubelet 1.34.5+k3s1, newer than 1.34.3+k3s1"),
                "\(early.text)")
            #expect(try await server.request("GET", "/jobs/2").status == 404, "nothing was queued")

            for (index, agent) in ["agent-1", "agent-2"].enumerated() {
                let back = try await server.request("POST", "/jobs/1/rollback", body: #"{"node":"\#(agent)"}"#)
                #expect(back.status == 202, "\(back.text)")
                _ = try await server.waitForJob(2 + index, state: "succeeded", timeout: 60)
            }
            let confirmed = try await server.request(
                "POST", "/jobs/1/rollback", body: #"{"node":"server-1","confirm_restore":true}"#)
            #expect(confirmed.status == 202, "\(confirmed.text)")
            let restore = try await server.waitForJob(4, state: "succeeded", timeout: 90)
            let output = Pipeline.events(restore).filter { $0.kind == "output" }.map(\.message)
            for line in [
                "==> restoring embedded etcd from \(snapshot) (k3s server --cluster-reset)",
                "==> done: k3s at 1.34.3+k3s1, its etcd datastore restored from \(snapshot)",
            ] {
                #expect(output.contains(line), "\(line): \(output)")
            }
            for (name, node) in try await Pipeline.nodes(bed) {
                #expect(node == Pipeline.NodeState(version: "v1.34.3+k3s1", unschedulable: false), "\(name)")
            }
            let db = bed.directory.appendingPathComponent("nodes/server-1/var/lib/rancher/k3s/server/db").path
            #expect(try FileManager.default.contentsOfDirectory(atPath: db).contains { $0.hasPrefix("etcd-old-") })
            _ = try await server.stop(signal: SIGTERM)
        }

        /// server-3's etcd member is down: a job that skips pre-flight is
        /// stopped by the quorum gate (asked with K3s' etcd client
        /// certificate) before server-1; no node is touched.
        @Test func withAnEtcdMemberDownNoServerIsTouched() async throws {
            let bed = try await TestBed.start(scenario: "k3s-ha")
            try bed.stopDatastoreMember(of: "server-3")
            let server = try await OrchestratorFixture(bed: bed, extra: ["--soak", "0"]).launch()
            try await Pipeline.execute(
                server, #"{"target_version":"1.34.5+k3s1","kind":"patch","stages":"master,workers"}"#)
            let failed = try await server.waitForJob(1, state: "failed", timeout: 90)
            let error = failed[dotted: "error"]?.stringValue ?? ""
            #expect(
                error.hasPrefix(
                    "server-1 was not touched: etcd would lose its quorum while server-1's member restarts: "
                        + "1 of the 2 other members healthy, and 3 members need 2; unhealthy: server-3 ("),
                "\(error)")
            #expect(!Pipeline.events(failed).contains { $0.kind == "node_started" })
            #expect(
                try await Pipeline.nodes(bed).values.allSatisfy { !$0.unschedulable && $0.version == "v1.34.3+k3s1" })
        }
    }
}

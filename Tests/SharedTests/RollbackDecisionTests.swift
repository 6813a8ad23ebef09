import Foundation
import Testing

@testable import Shared

/// Which node of which job may be rolled back, from the job's record alone.
@Suite struct RollbackDecisionTests {
    static let upgrade = ExecuteRequest(targetVersion: KubeVersion(major: 1, minor: 34, patch: 5), kind: .patch)

    /// The report a job keeps: a master, a worker it upgraded, one it
    /// skipped (already at the target), one whose version it never read.
    static let report = try! JSONValue(
        parsing: Data(
            """
            {"nodes":[
              {"name":"master","role":"master","before":"1.34.3","after":"1.34.5"},
              {"name":"worker-1","role":"worker","before":"1.34.3","after":"1.34.5"},
              {"name":"worker-2","role":"worker","before":"1.34.5","after":"1.34.5"},
              {"name":"worker-3","role":"worker","before":"?","after":"?"},
              {"name":"worker-4","role":"worker","before":"1.34.6","after":"1.34.6"}]}
            """.utf8))

    static func decide(
        state: JobState = .succeeded, request: ExecuteRequest = upgrade, result: JSONValue? = report,
        node: String = "worker-1", dryRun: Bool = false
    ) -> RollbackDecision {
        RollbackDecision.decide(job: 4, state: state, request: request, result: result, node: node, dryRun: dryRun)
    }

    /// The report of a job that took a snapshot, with `controlPlanes` control planes.
    static func withSnapshot(controlPlanes: Int = 1, sha256: Bool = true) -> JSONValue {
        let planes = (1...controlPlanes).map { index in
            let name = index == 1 ? "master" : "cp-\(index)"
            let role = index == 1 ? "master" : "control-plane"
            return #"{"name":"\#(name)","role":"\#(role)","before":"1.34.3"}"#
        }
        let worker = #"{"name":"worker-1","role":"worker","before":"1.34.3"}"#
        let hash = sha256 ? #","snapshot_sha256":"\#(String(repeating: "ab", count: 32))""# : ""
        return try! JSONValue(
            parsing: Data(
                #"{"snapshot_path":"/var/backups/k8s-upgrade-pre-1.34.5-1.db"\#(hash),"nodes":[\#((planes + [worker]).joined(separator: ","))]}"#
                    .utf8))
    }

    @Test func theSingleKubeadmControlPlaneGoesBackThroughItsSnapshotOnceConfirmed() throws {
        let result = Self.withSnapshot()
        guard case let .refused(unconfirmed) = Self.decide(result: result, node: "master") else {
            Issue.record("a restore is not run without confirmation")
            return
        }
        #expect(
            unconfirmed.hasPrefix(
                "taking master back to 1.34.3 restores job 4's etcd snapshot /var/backups/k8s-upgrade-pre-1.34.5-1.db: "
                    + "every change made to the cluster since that snapshot is lost"), "\(unconfirmed)")
        #expect(unconfirmed.contains("First roll back each upgraded worker"), "\(unconfirmed)")
        #expect(unconfirmed.contains("k8s-upgrade rollback 4 --node worker-1;") == false)
        #expect(
            unconfirmed.hasSuffix(
                "k8s-upgrade rollback 4 --node master --confirm-restore (API: \"confirm_restore\": true)"))
        let accepted = ExecuteRequest(
            targetVersion: KubeVersion(major: 1, minor: 34, patch: 3), kind: .patch, stages: .only([.master]),
            rollback: .init(job: 4, node: "master"))
        #expect(
            RollbackDecision.decide(
                job: 4, state: .failed, request: Self.upgrade, result: result, node: "master", dryRun: false,
                confirmRestore: true) == .accepted(accepted))
        // A dry run changes nothing: no confirmation needed.
        guard case let .accepted(dry) = Self.decide(result: result, node: "master", dryRun: true) else {
            Issue.record("a dry run of a restore is accepted")
            return
        }
        #expect(dry.dryRun && dry.stages == .only([.master]))
        // The node script's restore, with the SHA-256 when the job kept a copy.
        let point = RestorePoint(
            job: 4, snapshot: "/var/backups/s.db", sha256: nil, release: KubeVersion(major: 1, minor: 34, patch: 3),
            controlPlanes: ["master"], workers: [])
        #expect(
            KubeadmApt().controlPlaneRestoreStep(point)
                == ["--role", "master", "--release", "1.34.3", "--restore-snapshot", "/var/backups/s.db"])
        var hashed = point
        hashed.sha256 = "ff"
        #expect(KubeadmApt().controlPlaneRestoreStep(hashed)?.suffix(2) == ["--sha256", "ff"])
    }

    @Test func severalControlPlanesGetTheExactStepsInstead() throws {
        guard
            case let .refused(ha) = RollbackDecision.decide(
                job: 4, state: .succeeded, request: Self.upgrade, result: Self.withSnapshot(controlPlanes: 3),
                node: "master", dryRun: false, confirmRestore: true)
        else {
            Issue.record("an HA control plane is not restored by the tool")
            return
        }
        #expect(
            ha.hasPrefix(
                "job 4's cluster has 3 control planes (master, cp-2, cp-3): every etcd member must be restored from "
                    + "the same snapshot before any of them starts"), "\(ha)")
        #expect(ha.contains("\n1. First roll back each upgraded worker"))
        #expect(
            ha.contains(
                "echo '\(String(repeating: "ab", count: 32))  /var/backups/k8s-upgrade-pre-1.34.5-1.db' | sha256sum -c")
        )
        #expect(
            ha.contains("etcdutl snapshot restore /var/backups/k8s-upgrade-pre-1.34.5-1.db --data-dir /var/lib/etcd"))
        #expect(ha.contains("kubeadm=$v kubelet=$v kubectl=$v"))
        let k3s = try K3s()
        guard
            case let .refused(servers) = RollbackDecision.decide(
                job: 4, state: .succeeded, request: Self.upgrade, result: Self.withSnapshot(controlPlanes: 3),
                node: "master", dryRun: false, confirmRestore: true, distribution: k3s)
        else {
            Issue.record("K3s servers are not restored by the tool")
            return
        }
        #expect(servers.hasPrefix("job 4's cluster has 3 control planes (master, cp-2, cp-3)"), "\(servers)")
        #expect(servers.contains("--cluster-reset-restore-path=/var/backups/k8s-upgrade-pre-1.34.5-1.db"))
        guard
            case let .refused(voters) = RollbackDecision.decide(
                job: 4, state: .succeeded, request: Self.upgrade, result: Self.withSnapshot(controlPlanes: 3),
                node: "master", dryRun: false, confirmRestore: true, distribution: MicroK8sSnap())
        else {
            Issue.record("MicroK8s voters are not restored by the tool")
            return
        }
        #expect(voters.contains("microk8s dbctl restore /var/backups/k8s-upgrade-pre-1.34.5-1.db"), "\(voters)")
    }

    /// A single MicroK8s control plane or K3s server is restored by the
    /// tool, as kubeadm's master is: once confirmed, with its own step.
    @Test func theSingleMicroK8sControlPlaneAndK3sServerAreRestoredByTheTool() throws {
        let k3s = try K3s()
        let distributions: [any Distribution] = [MicroK8sSnap(), k3s]
        for distribution in distributions {
            guard
                case let .refused(unconfirmed) = RollbackDecision.decide(
                    job: 4, state: .succeeded, request: Self.upgrade, result: Self.withSnapshot(), node: "master",
                    dryRun: false, confirmRestore: false, distribution: distribution)
            else {
                Issue.record("\(distribution.name): a restore is not run without confirmation")
                continue
            }
            #expect(
                unconfirmed.hasPrefix(
                    "taking master back to 1.34.3 restores job 4's \(distribution.datastore) snapshot"),
                "\(unconfirmed)")
            guard
                case let .accepted(request) = RollbackDecision.decide(
                    job: 4, state: .succeeded, request: Self.upgrade, result: Self.withSnapshot(), node: "master",
                    dryRun: false, confirmRestore: true, distribution: distribution)
            else {
                Issue.record("\(distribution.name): the single control plane is restored once confirmed")
                continue
            }
            #expect(request.stages == .only([.master]) && request.rollback == .init(job: 4, node: "master"))
        }
        let point = RestorePoint(
            job: 4, snapshot: "/var/backups/b.tar.gz", sha256: "ff",
            release: KubeVersion(major: 1, minor: 34, patch: 3),
            controlPlanes: ["cp-1"], workers: ["worker-1"])
        #expect(
            MicroK8sSnap().controlPlaneRestoreStep(point)
                == [
                    "--snap-revert", "microk8s", "--channel", "1.34/stable", "--release", "1.34.3",
                    "--restore-snapshot", "/var/backups/b.tar.gz", "--sha256", "ff",
                ])
        var server = point
        server.release = KubeVersion(major: 1, minor: 34, patch: 3, k3sBuild: 1)
        server.sha256 = nil
        #expect(
            k3s.controlPlaneRestoreStep(server)
                == [
                    "--k3s-revert", "server", "--release", "1.34.3+k3s1", "--restore-snapshot", "/var/backups/b.tar.gz",
                ])
        var several = point
        several.controlPlanes = ["cp-1", "cp-2", "cp-3"]
        #expect(MicroK8sSnap().controlPlaneRestoreStep(several) == nil)
        #expect(k3s.controlPlaneRestoreStep(several) == nil)
    }

    @Test func anUpgradedWorkerGoesBackToItsReleaseBeforeTheJobThroughTheWorkersStage() {
        #expect(
            Self.decide()
                == .accepted(
                    ExecuteRequest(
                        targetVersion: KubeVersion(major: 1, minor: 34, patch: 3), kind: .patch,
                        stages: .only([.workers]), rollback: .init(job: 4, node: "worker-1"))))
        guard case let .accepted(dry) = Self.decide(state: .failed, dryRun: true) else {
            Issue.record("a failed job's worker is rolled back too")
            return
        }
        #expect(dry.dryRun && dry.rollback == .init(job: 4, node: "worker-1"))
        let k3s = try! JSONValue(
            parsing: Data(#"{"nodes":[{"name":"agent-1","role":"worker","before":"1.34.3+k3s1"}]}"#.utf8))
        let k3sUpgrade = ExecuteRequest(
            targetVersion: KubeVersion(major: 1, minor: 34, patch: 5, k3sBuild: 1), kind: .patch)
        guard case let .accepted(back) = Self.decide(request: k3sUpgrade, result: k3s, node: "agent-1") else {
            Issue.record("a K3s agent is rolled back")
            return
        }
        #expect(back.targetVersion.description == "1.34.3+k3s1")
    }

    @Test(arguments: [
        (JobState.running, "worker-1", "job 4 is running; abort it first"),
        (.queued, "worker-1", "job 4 is queued; abort it first"),
        (.aborting, "worker-1", "job 4 is aborting"),
        (.interrupted, "worker-1", "job 4 is interrupted and would be resumed; abort it first (DELETE /jobs/4)"),
        (
            .aborted, "master",
            "master is a control plane, which goes back through a restore of its etcd snapshot, and job 4 kept no snapshot"
        ),
        (.succeeded, "worker-2", "job 4 did not change worker-2: it was at 1.34.5 before the job"),
        (.succeeded, "worker-3", "job 4 did not record worker-3's version before it (\"?\")"),
        (
            .succeeded, "worker-4",
            "worker-4 was at 1.34.6 before job 4, which is not older than that job's target 1.34.5"
        ),
        (
            .succeeded, "worker-9",
            "job 4 recorded nothing of worker-9 (its report lists master, worker-1, worker-2, worker-3, worker-4)"
        ),
    ])
    func refusals(state: JobState, node: String, expected: String) {
        guard case let .refused(reason) = Self.decide(state: state, node: node) else {
            Issue.record("\(node) of a \(state) job is refused")
            return
        }
        #expect(reason.hasPrefix(expected), "\(reason)")
    }

    @Test func aDryRunARollbackAndAJobWithoutAReportAreRefused() {
        var dry = Self.upgrade
        dry.dryRun = true
        #expect(Self.decide(request: dry) == .refused("job 4 was a dry run: it changed no node"))
        var rollback = Self.upgrade
        rollback.rollback = .init(job: 2, node: "worker-1")
        guard case let .refused(again) = Self.decide(request: rollback) else {
            Issue.record("a rollback is not rolled back")
            return
        }
        #expect(again.hasPrefix("job 4 is itself the rollback of worker-1 (job 2)"), "\(again)")
        #expect(
            Self.decide(state: .failed, result: nil)
                == .refused("job 4 recorded nothing of worker-1 (its report lists no node)"))
    }
}

/// A rollback judged against the live cluster before it is queued.
@Suite struct RollbackAdmissionTests {
    static let old = KubeVersion(major: 1, minor: 34, patch: 3)

    /// A rollback as ``RollbackDecision`` makes it: the master's stage for a
    /// control plane, the workers' for a worker.
    static func request(_ node: String) -> ExecuteRequest {
        ExecuteRequest(
            targetVersion: old, kind: .patch, stages: .only([node == "master" ? .master : .workers]),
            rollback: .init(job: 4, node: node))
    }

    static func cluster(workers: [String: Int]) -> [NodeFacts] {
        [NodeFacts(name: "master", isControlPlane: true, kubelet: KubeVersion(major: 1, minor: 34, patch: 5))]
            + workers.sorted { $0.key < $1.key }.map {
                NodeFacts(name: $0.key, kubelet: KubeVersion(major: 1, minor: 34, patch: $0.value))
            }
    }

    @Test(arguments: [
        // A control plane's restore waits for every newer kubelet, and says which rollbacks come first.
        (
            "master", ["worker-1": 5, "worker-2": 5, "worker-3": 3],
            "refused: nothing was changed: worker-1 runs kubelet 1.34.5, worker-2 runs kubelet 1.34.5, newer than "
                + "1.34.3, and a kubelet may not be newer than its API server; roll them back first (k8s-upgrade "
                + "rollback 4 --node worker-1; k8s-upgrade rollback 4 --node worker-2)"
        ),
        (
            "master", ["worker-1": 5, "worker-2": 3],
            "refused: nothing was changed: worker-1 runs kubelet 1.34.5, newer than 1.34.3, and a kubelet may not be "
                + "newer than its API server; roll it back first (k8s-upgrade rollback 4 --node worker-1)"
        ),
        ("master", ["worker-1": 3, "worker-2": 2], "accepted"),
        // A worker goes back whatever the others run.
        ("worker-1", ["worker-1": 5, "worker-2": 5], "accepted"),
        ("worker-9", ["worker-1": 5], "refused: there is no node worker-9 in the cluster now, so nothing was queued"),
    ])
    func aControlPlaneGoesBackOnlyOnceNoKubeletIsNewer(node: String, workers: [String: Int], expected: String) {
        let admission = RollbackAdmission.judge(Self.request(node), nodes: Self.cluster(workers: workers))
        switch admission {
        case .accepted: #expect(expected == "accepted")
        case let .refused(reason): #expect("refused: \(reason)" == expected)
        case let .nothingToDo(reason): Issue.record("nothing to do: \(reason)")
        }
    }

    /// A worker's rollback of a node labelled control plane since: judged by
    /// the job when it starts (it says the node is a control plane now).
    @Test func aWorkersRollbackIsNotJudgedAsARestore() {
        var nodes = Self.cluster(workers: ["worker-1": 5, "worker-2": 5])
        nodes[1].isControlPlane = true
        #expect(RollbackAdmission.judge(Self.request("worker-1"), nodes: nodes) == .accepted)
    }

    @Test func anUpgradeIsNotARollbackToJudge() {
        let upgrade = ExecuteRequest(targetVersion: KubeVersion(major: 1, minor: 34, patch: 5), kind: .patch)
        #expect(RollbackAdmission.judge(upgrade, nodes: []) == .accepted)
    }
}

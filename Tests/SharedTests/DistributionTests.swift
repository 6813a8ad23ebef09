import Testing

@testable import Shared

/// The kubeadm+apt distribution's commands, pinned: these are the words a
/// real master runs, so a change here is a change on every cluster.
@Suite struct KubeadmAptTests {
    let distribution = KubeadmApt()
    let etcdctl = [
        "etcdctl", "--endpoints=https://127.0.0.1:2379", "--cacert=/etc/kubernetes/pki/etcd/ca.crt",
        "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt",
        "--key=/etc/kubernetes/pki/etcd/healthcheck-client.key",
    ]

    @Test func theDatastoreIsKubeadmsStackedEtcd() {
        #expect(
            Shell.command(distribution.datastoreHealth)
                == Shell.command(
                    etcdctl + [
                        "--dial-timeout=5s", "--command-timeout=15s", "endpoint", "health", "--cluster", "-w", "json",
                    ]))
        #expect(distribution.datastoreMembers.suffix(4) == ["member", "list", "-w", "json"])
        #expect(distribution.datastoreStatus.suffix(4) == ["endpoint", "status", "-w", "json"])
        #expect(
            distribution.snapshotSave(to: "/var/lib/etcd-backups/a b.db")
                == etcdctl + [
                    "--dial-timeout=10s", "--command-timeout=300s", "snapshot", "save", "/var/lib/etcd-backups/a b.db",
                ])
        #expect(
            distribution.snapshotStatus(of: "/b/it's.db")
                == [
                    "sh", "-c",
                    #"if command -v etcdutl >/dev/null 2>&1; then etcdutl snapshot status -w json '/b/it'\''s.db'; else etcdctl snapshot status -w json '/b/it'\''s.db'; fi"#,
                ])
        #expect(distribution.dataFolders(for: .patch) == ["/var/lib/etcd"])
        #expect(distribution.dataFolders(for: .minor) == ["/var/lib/etcd", "/etc/kubernetes/tmp"])
    }

    @Test func nodesAndVersionsAreKubeadms() throws {
        let target = try KubeVersion(strictRelease: "1.34.5")
        #expect(distribution.nodeStep(role: .master, target: target) == ["--role", "master", "--release", "1.34.5"])
        #expect(
            distribution.nodeStep(role: .controlPlane, target: target)
                == ["--role", "control-plane", "--release", "1.34.5"])
        #expect(distribution.apiServerPod(on: "cp-2") == "/api/v1/namespaces/kube-system/pods/kube-apiserver-cp-2")
        #expect(distribution.offeredListing == ["apt-cache", "madison", "kubeadm"])
        #expect(distribution.certificateCheck == ["kubeadm", "certs", "check-expiration", "-o", "json"])
    }

    @Test func everyStageAppliesAndNothingRevertsByItself() throws {
        #expect(UpgradeStage.allCases.allSatisfy { distribution.notApplicable($0) == nil })
        let release = try KubeVersion(strictRelease: "1.34.3")
        #expect(distribution.nodeStep(role: .worker, target: release) == ["--role", "worker", "--release", "1.34.3"])
        #expect(distribution.revertStep(role: .worker, to: release) == nil)
    }
}

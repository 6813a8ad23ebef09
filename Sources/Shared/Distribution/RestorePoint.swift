/// What taking the control plane back to before an upgrade job restores:
/// the job's datastore snapshot, and the release every node ran before it.
public struct RestorePoint: Sendable, Equatable {
    /// The upgrade job whose change is undone.
    public var job: Int64
    /// The snapshot's path on the first control plane.
    public var snapshot: String
    /// Its SHA-256, when the job compared it with the copy it kept off the node.
    public var sha256: String?
    /// The release before the job.
    public var release: KubeVersion
    /// The control planes, the first one first, and the workers, as the job's report lists them.
    public var controlPlanes: [String]
    public var workers: [String]

    public init(
        job: Int64, snapshot: String, sha256: String?, release: KubeVersion, controlPlanes: [String],
        workers: [String]
    ) {
        self.job = job
        self.snapshot = snapshot
        self.sha256 = sha256
        self.release = release
        self.controlPlanes = controlPlanes
        self.workers = workers
    }

    /// The first step of every guidance: workers go back before the control
    /// plane, since a kubelet may not be newer than its API server.
    var workersFirst: String {
        workers.isEmpty
            ? "Workers go back first: no kubelet may be newer than \(release) (a kubelet may not be newer than its "
                + "API server)"
            : "First roll back each upgraded worker (a kubelet may not be newer than its API server): "
                + workers.map { "k8s-upgrade rollback \(job) --node \($0)" }.joined(separator: "; ")
    }
}

extension Distribution {
    public func controlPlaneRestoreStep(_ point: RestorePoint) -> [String]? { nil }
}

extension KubeadmApt {
    /// `update_k8s.sh --role master --release OLD --restore-snapshot PATH
    /// [--sha256 HEX]`: the snapshot checked, the static pods stopped, etcd
    /// restored into a new data folder put in place of the old one (kept),
    /// the packages at OLD held again, kubeadm's backup of OLD's manifests
    /// put back, the kubelet restarted. One control plane only: with
    /// several, every member must be restored before any starts.
    public func controlPlaneRestoreStep(_ point: RestorePoint) -> [String]? {
        guard point.controlPlanes.count == 1 else { return nil }
        return ["--role", "master", "--release", point.release.description, "--restore-snapshot", point.snapshot]
            + (point.sha256.map { ["--sha256", $0] } ?? [])
    }

    public func controlPlaneRestoreGuidance(_ point: RestorePoint) -> [String] {
        let snapshot = Shell.quote(point.snapshot)
        let release = point.release.description
        let first = point.controlPlanes.first ?? "the first control plane"
        let all = point.controlPlanes.joined(separator: ", ")
        let check =
            point.sha256.map { "echo \(Shell.quote("\($0)  \(point.snapshot)")) | sha256sum -c" }
            ?? "etcdutl snapshot status \(snapshot)"
        return [
            point.workersFirst,
            "Copy \(snapshot) from \(first) to every control plane (\(all)) and check it there: \(check)",
            "On every control plane, stop its static pods: mkdir -p /etc/kubernetes/manifests.stopped && "
                + "mv /etc/kubernetes/manifests/*.yaml /etc/kubernetes/manifests.stopped/",
            "On every control plane, once etcd has stopped (crictl ps --name etcd shows nothing), restore with "
                + "its own member name and peer URL and the same member list, CLUSTER: the --initial-cluster "
                + "value in the etcd.yaml of the control plane that joined last, which lists every member: "
                + "m=/etc/kubernetes/manifests.stopped/etcd.yaml; "
                + "name=$(sed -n 's/.*--name=//p' \"$m\"); peer=$(sed -n 's/.*--initial-advertise-peer-urls=//p' \"$m\"); "
                + "mv /var/lib/etcd /var/lib/etcd.before-restore && etcdutl snapshot restore \(snapshot) "
                + "--data-dir /var/lib/etcd --name \"$name\" --initial-advertise-peer-urls \"$peer\" "
                + "--initial-cluster \"$CLUSTER\"",
            "On every control plane, the packages at \(release): "
                + "v=$(apt-cache madison kubeadm | awk '$3 ~ /^\(release)-/ { print $3; exit }'); "
                + "apt-mark unhold kubeadm kubelet kubectl && apt-get install -y --allow-downgrades "
                + "kubeadm=$v kubelet=$v kubectl=$v && apt-mark hold kubeadm kubelet kubectl",
            "On every control plane, the manifests of \(release) from kubeadm's backup (the oldest "
                + "/etc/kubernetes/tmp/kubeadm-backup-manifests-* newer than the snapshot): "
                + "cp /etc/kubernetes/tmp/kubeadm-backup-manifests-<date>/*.yaml /etc/kubernetes/manifests/",
            "Then on every control plane: systemctl daemon-reload && systemctl restart kubelet; "
                + "check: kubectl get nodes, and etcdctl endpoint health --cluster",
        ]
    }
}

extension MicroK8sSnap {
    /// `update_k8s.sh --snap-revert microk8s --channel OLD --release OLD
    /// --restore-snapshot PATH [--sha256 HEX]`: the `dbctl backup` archive
    /// checked, the snap reverted (snapd brings back the revision's data as
    /// it was at the refresh), held on the old channel, then `microk8s
    /// dbctl restore` of the job's backup once the API answers. One control
    /// plane only: with several dqlite voters, every one must go back.
    public func controlPlaneRestoreStep(_ point: RestorePoint) -> [String]? {
        guard point.controlPlanes.count == 1 else { return nil }
        return workerRollbackStep(to: point.release) + ["--restore-snapshot", point.snapshot]
            + (point.sha256.map { ["--sha256", $0] } ?? [])
    }

    public func controlPlaneRestoreGuidance(_ point: RestorePoint) -> [String] {
        [
            point.workersFirst,
            "On \(point.controlPlanes.first ?? "the first control plane"): microk8s dbctl restore "
                + Shell.quote(point.snapshot)
                + " (MicroK8s' restore guide), then on each control plane: "
                + "snap revert microk8s, or snap refresh microk8s --channel \(Self.channel(of: point.release))",
        ]
    }
}

extension K3s {
    /// `update_k8s.sh --k3s-revert server --release OLD --restore-snapshot
    /// PATH [--sha256 HEX]`: the archive checked (its datastore is the
    /// server's, its token the server's), k3s stopped, the kept binary of
    /// OLD put back, the datastore restored (SQLite: the copy in place of
    /// state.db; embedded etcd: `k3s server --cluster-reset
    /// --cluster-reset-restore-path`), k3s started. One server only: with
    /// several, the others' datastores must be emptied and rejoin.
    public func controlPlaneRestoreStep(_ point: RestorePoint) -> [String]? {
        guard point.controlPlanes.count == 1 else { return nil }
        return ["--k3s-revert", "server", "--release", point.release.description, "--restore-snapshot", point.snapshot]
            + (point.sha256.map { ["--sha256", $0] } ?? [])
    }

    public func controlPlaneRestoreGuidance(_ point: RestorePoint) -> [String] {
        let first = point.controlPlanes.first ?? "the first server"
        return [
            point.workersFirst,
            "Stop k3s on every server (systemctl stop k3s), then on \(first), with the release \(point.release)'s "
                + "binary back (update_k8s.sh --k3s-revert server --release \(point.release)): "
                + "k3s server --cluster-reset --cluster-reset-restore-path=\(Shell.quote(point.snapshot)) "
                + "--token \"$(cat /var/lib/rancher/k3s/server/token)\"",
            "On every other server: rm -rf /var/lib/rancher/k3s/server/db/ and start k3s again, "
                + "as K3s' backup and restore guide describes",
        ]
    }
}

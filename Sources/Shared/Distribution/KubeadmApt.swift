/// kubeadm clusters whose packages come from pkgs.k8s.io through apt, with
/// stacked etcd in kubeadm's layout.
public struct KubeadmApt: Distribution {
    public init() {}

    public var name: String { "kubeadm" }
    public var package: String { "kubeadm" }
    public var offeredListing: [String] { ["apt-cache", "madison", "kubeadm"] }

    /// madison's newest kubeadm of the running minor; the next minor is in
    /// another repository, which the caller asks.
    public func offer(in listing: String, running: KubeVersion, node: String) throws(PlanError) -> Offer {
        let madison = MadisonListing(parsing: listing)
        if !madison.problems.isEmpty {
            throw PlanError(
                "\(Shell.command(offeredListing)) on \(node) printed lines that are not package versions: "
                    + madison.problems.prefix(3).map(\.description).joined(separator: "; "))
        }
        guard let newest = madison.newest(of: package, inMinorOf: running) else {
            throw PlanError(madison.missingMinor(of: package, running: running, node: node))
        }
        return Offer(newestPatch: newest.kubeVersion, nextMinor: nil)
    }

    public func offers(_ target: KubeVersion, in listing: String) -> Bool {
        MadisonListing(parsing: listing).entry(of: package, release: target) != nil
    }

    /// etcdctl against the node's own member, with kubeadm's health-check client certificate.
    static let etcdctl = [
        "etcdctl", "--endpoints=https://127.0.0.1:2379", "--cacert=/etc/kubernetes/pki/etcd/ca.crt",
        "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt",
        "--key=/etc/kubernetes/pki/etcd/healthcheck-client.key",
    ]
    static let quick = ["--dial-timeout=5s", "--command-timeout=15s"]

    public var datastore: String { "etcd" }

    /// The members (`member list`, which names them), then the health of
    /// each (`endpoint health --cluster`).
    public var datastoreProbes: [[String]] {
        [
            Self.etcdctl + Self.quick + ["member", "list", "-w", "json"],
            Self.etcdctl + Self.quick + ["endpoint", "health", "--cluster", "-w", "json"],
        ]
    }

    public func datastoreHealth(_ outputs: [ProbeOutput], nodes: [NodeFacts]) throws(PlanError) -> DatastoreHealth {
        guard outputs.count == 2 else { throw PlanError("etcd was not asked") }
        guard outputs[0].succeeded else { throw PlanError("etcdctl member list \(outputs[0].failure)") }
        let members = try DatastoreMember.list(json: outputs[0].stdout)
        // endpoint health exits 1 when a member is unhealthy and still prints them all.
        guard outputs[1].stdout.contains("[") else { throw PlanError("etcdctl endpoint health \(outputs[1].failure)") }
        return try DatastoreHealth(json: outputs[1].stdout, members: members)
    }

    public var quorumFromAnotherMember: Bool { false }

    public var datastoreSize: [String] { Self.etcdctl + Self.quick + ["endpoint", "status", "-w", "json"] }

    public func datastoreBytes(_ output: String) throws(PlanError) -> Int { try DiskSpace.databaseSize(json: output) }

    /// etcd's data, and for a minor `/etc/kubernetes/tmp`, where `kubeadm
    /// upgrade apply` copies it before upgrading etcd.
    public func dataFolders(for kind: UpgradeKind) -> [String] {
        ["/var/lib/etcd"] + (kind == .minor ? ["/etc/kubernetes/tmp"] : [])
    }

    public var snapshotExtension: String { ".db" }
    public var backupForm: BackupForm { .etcdSnapshot }

    public func snapshotSave(to path: String) -> [String] {
        Self.etcdctl + ["--dial-timeout=10s", "--command-timeout=300s", "snapshot", "save", path]
    }

    /// etcdutl where it is installed (etcd 3.6 removed `etcdctl snapshot status`), else etcdctl.
    public func snapshotStatus(of path: String) -> [String] {
        [
            "sh", "-c",
            "if command -v etcdutl >/dev/null 2>&1; then etcdutl snapshot status -w json \(Shell.quote(path)); "
                + "else etcdctl snapshot status -w json \(Shell.quote(path)); fi",
        ]
    }

    public func snapshotSummary(_ output: String) throws(PlanError) -> String {
        try SnapshotStatus(json: output).summary
    }

    public var certificateCheck: [String]? { ["kubeadm", "certs", "check-expiration", "-o", "json"] }

    /// update_k8s.sh's roles: `master` runs `kubeadm upgrade apply`,
    /// `control-plane` runs `kubeadm upgrade node`, `worker` upgrades the
    /// kubelet after `kubeadm upgrade node`.
    public func nodeStep(role: NodeRole, target: KubeVersion) -> [String] {
        let flag =
            switch role {
            case .master: "master"
            case .controlPlane: "control-plane"
            case .worker: "worker"
            }
        return ["--role", flag, "--release", target.description]
    }

    /// kubeadm has no automatic revert: a control plane's static pods and
    /// etcd come back from the snapshot and the runbook's steps.
    public func revertStep(role: NodeRole, to release: KubeVersion) -> [String]? { nil }

    /// The packages at the older release, with apt's `--allow-downgrades`
    /// and held again, and the kubelet restarted; `kubeadm upgrade node` is
    /// not run (the kubelet's configuration is the cluster's, not a release's).
    public func workerRollbackStep(to release: KubeVersion) -> [String] {
        ["--role", "worker", "--release", release.description, "--rollback"]
    }

    /// kubeadm's static pod `kube-system/kube-apiserver-<node>`.
    public func apiServerPod(on node: String) -> String? {
        "/api/v1/namespaces/kube-system/pods/kube-apiserver-\(node)"
    }

    /// apt upgrades nothing by itself: the packages are held by apt-mark,
    /// which the node script keeps.
    public var hold: UpdaterHold? { nil }

    /// Every stage applies to kubeadm+apt.
    public func notApplicable(_ stage: UpgradeStage) -> String? { nil }
}

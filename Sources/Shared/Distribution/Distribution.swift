/// Everything specific to one way of installing Kubernetes that the
/// pipeline runs, as command words (the pipeline adds `sudo` when it is not
/// root and renders them through ``Shell``) and the facts they read. The
/// stages stay the same for every distribution; what differs lives here.
/// ``KubeadmApt`` is the first; MicroK8s and K3s are to follow behind it.
public protocol Distribution: Sendable {
    /// For messages: `kubeadm+apt`.
    var name: String { get }
    /// The package whose versions say what a node's package source offers.
    var package: String { get }
    /// Lists what the node's package source offers of ``package``, in
    /// `apt-cache madison`'s format.
    var offeredListing: [String] { get }
    /// The datastore's members, as `etcdctl member list -w json` prints them.
    var datastoreMembers: [String] { get }
    /// Each member's health, as `etcdctl endpoint health --cluster -w json`.
    var datastoreHealth: [String] { get }
    /// The datastore's status (its size), as `etcdctl endpoint status -w json`.
    var datastoreStatus: [String] { get }
    /// Saves a snapshot of the datastore at `path`.
    func snapshotSave(to path: String) -> [String]
    /// Verifies the snapshot at `path`, as `etcdutl snapshot status -w json`.
    func snapshotStatus(of path: String) -> [String]
    /// Certificate expiry, as `kubeadm certs check-expiration -o json`; `nil` when not applicable.
    var certificateCheck: [String]? { get }
    /// Folders that must hold another copy of the datastore during an upgrade of `kind`.
    func dataFolders(for kind: UpgradeKind) -> [String]
    /// The node script's arguments that upgrade a node in `role` to `target`.
    func nodeStep(role: NodeRole, target: KubeVersion) -> [String]
    /// The node script's arguments that take a node in `role` back to
    /// `release` after a failed step; `nil` where the distribution has no
    /// revert (the runbook's manual steps apply).
    func revertStep(role: NodeRole, to release: KubeVersion) -> [String]?
    /// The API path of the pod whose image names a control plane's API server version.
    func apiServerPod(on node: String) -> String
    /// Why `stage` does not apply to this distribution, or `nil` when it
    /// does. Stage names are the API's: a distribution without, say, an apt
    /// repository reports the repo stage as skipped with this reason.
    func notApplicable(_ stage: UpgradeStage) -> String?
}

/// kubeadm clusters whose packages come from pkgs.k8s.io through apt, with
/// stacked etcd in kubeadm's layout.
public struct KubeadmApt: Distribution {
    public init() {}

    public var name: String { "kubeadm+apt" }
    public var package: String { "kubeadm" }
    public var offeredListing: [String] { ["apt-cache", "madison", "kubeadm"] }

    /// etcdctl against the node's own member, with kubeadm's health-check client certificate.
    static let etcdctl = [
        "etcdctl", "--endpoints=https://127.0.0.1:2379", "--cacert=/etc/kubernetes/pki/etcd/ca.crt",
        "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt",
        "--key=/etc/kubernetes/pki/etcd/healthcheck-client.key",
    ]
    static let quick = ["--dial-timeout=5s", "--command-timeout=15s"]

    public var datastoreMembers: [String] { Self.etcdctl + Self.quick + ["member", "list", "-w", "json"] }
    public var datastoreHealth: [String] {
        Self.etcdctl + Self.quick + ["endpoint", "health", "--cluster", "-w", "json"]
    }
    public var datastoreStatus: [String] { Self.etcdctl + Self.quick + ["endpoint", "status", "-w", "json"] }

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

    public var certificateCheck: [String]? { ["kubeadm", "certs", "check-expiration", "-o", "json"] }

    /// etcd's data, and for a minor `/etc/kubernetes/tmp`, where `kubeadm
    /// upgrade apply` copies it before upgrading etcd.
    public func dataFolders(for kind: UpgradeKind) -> [String] {
        ["/var/lib/etcd"] + (kind == .minor ? ["/etc/kubernetes/tmp"] : [])
    }

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

    /// Every stage applies to kubeadm+apt.
    public func notApplicable(_ stage: UpgradeStage) -> String? { nil }

    /// kubeadm's static pod `kube-system/kube-apiserver-<node>`.
    public func apiServerPod(on node: String) -> String {
        "/api/v1/namespaces/kube-system/pods/kube-apiserver-\(node)"
    }
}

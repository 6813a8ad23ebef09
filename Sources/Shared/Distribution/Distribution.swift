/// Everything specific to one way of installing Kubernetes that the
/// pipeline and the detector run, as command words (the pipeline adds
/// `sudo` when it is not root and renders them through ``Shell``) and pure
/// readings of what those commands print. The stages stay the same for
/// every distribution; what differs lives here. ``KubeadmApt`` and
/// ``MicroK8sSnap`` implement it; K3s is to follow.
public protocol Distribution: Sendable {
    /// For messages and `--distribution`: `kubeadm`, `microk8s`.
    var name: String { get }
    /// The package whose versions say what a node's package source offers.
    var package: String { get }

    // MARK: What the package source offers

    /// Lists what the node's package source offers of ``package``.
    var offeredListing: [String] { get }
    /// The newest patch of `running`'s minor in `listing` and, when the
    /// listing says it, the next minor (`nil`: ask the package repository).
    func offer(in listing: String, running: KubeVersion, node: String) throws(PlanError) -> Offer
    /// Whether `listing` offers exactly `target`.
    func offers(_ target: KubeVersion, in listing: String) -> Bool

    // MARK: The datastore

    /// For messages: `etcd`, `dqlite`.
    var datastore: String { get }
    /// Commands run in order on a datastore member, whose outputs
    /// ``datastoreHealth(_:nodes:)`` reads. The first reads the membership:
    /// when it fails the datastore is unreadable and the others are not
    /// run (against a dead member each waits out its command timeout);
    /// their outputs are then the first one's failure.
    var datastoreProbes: [[String]] { get }
    /// The members and their health, from ``datastoreProbes``' outputs and
    /// the nodes as the API shows them.
    func datastoreHealth(_ outputs: [ProbeOutput], nodes: [NodeFacts]) throws(PlanError) -> DatastoreHealth
    /// Whether the quorum gate before a control plane reads the datastore
    /// through another member (dqlite: the refreshed node's own view says
    /// nothing once it is down) instead of through the master.
    var quorumFromAnotherMember: Bool { get }
    /// Prints the datastore's size; ``datastoreBytes(_:)`` reads it.
    var datastoreSize: [String] { get }
    func datastoreBytes(_ output: String) throws(PlanError) -> Int
    /// Folders that must hold another copy of the datastore during an upgrade of `kind`.
    func dataFolders(for kind: UpgradeKind) -> [String]

    // MARK: The pre-upgrade backup

    /// The backup file's extension: `.db`, `.tar.gz`.
    var snapshotExtension: String { get }
    /// Saves a backup of the datastore at `path`.
    func snapshotSave(to path: String) -> [String]
    /// Prints what the backup at `path` holds; ``snapshotSummary(_:)`` reads it.
    func snapshotStatus(of path: String) -> [String]
    /// What the backup holds, or why it is not a backup.
    func snapshotSummary(_ output: String) throws(PlanError) -> String
    /// The API path listing the records the datastore keeps of its backups
    /// (K3s' `ETCDSnapshotFile`s); `nil` when it keeps none.
    var snapshotRecordsPath: String? { get }
    /// What the backup is, so that the orchestrator can rehearse its
    /// restore on its own side (``RestoreRehearsal``).
    var backupForm: BackupForm { get }
    /// What those records say of the backup whose save printed
    /// `saveOutput`; `nil` when the save made no backup they record (a
    /// SQLite copy), or the distribution keeps no records.
    func snapshotRecord(saveOutput: String, in items: [JSONValue]) -> SnapshotRecord?
    /// Without records in the API (an older release): whether the save's
    /// own check confirmed the backup, or why not.
    func snapshotUnrecorded(saveOutput: String) -> Result<String, PlanError>

    // MARK: Nodes

    /// Certificate expiry, as `kubeadm certs check-expiration -o json`; `nil` when not applicable.
    var certificateCheck: [String]? { get }
    /// The node script's arguments that upgrade a node in `role` to `target`.
    func nodeStep(role: NodeRole, target: KubeVersion) -> [String]
    /// The node script's arguments that take a node in `role` back to
    /// `release` after a failed step; `nil` where the distribution has no
    /// revert (the runbook's manual steps apply).
    func revertStep(role: NodeRole, to release: KubeVersion) -> [String]?
    /// The node script's arguments that take an upgraded worker back to
    /// `release`, its release before the job (`k8s-upgrade rollback`).
    func workerRollbackStep(to release: KubeVersion) -> [String]
    /// The node script's arguments that take the single control plane back
    /// to `point`: its datastore restored from the job's snapshot, its
    /// packages and control plane at the release before the job; `nil`
    /// where the tool does not run that restore (``controlPlaneRestoreGuidance(_:)``
    /// says how by hand).
    func controlPlaneRestoreStep(_ point: RestorePoint) -> [String]?
    /// The exact commands, with this job's values, that restore `point` by
    /// hand: on a cluster with several control planes, or where the tool
    /// does not run the restore.
    func controlPlaneRestoreGuidance(_ point: RestorePoint) -> [String]
    /// The API path of the pod whose image names a control plane's API
    /// server version; `nil` when the API server runs inside the kubelet's
    /// process (MicroK8s' kubelite), whose version is then the kubelet's.
    func apiServerPod(on node: String) -> String?
    /// Keeps the node's own updater from upgrading it behind the
    /// orchestrator's back; `nil` when there is none to stop.
    var hold: UpdaterHold? { get }
    /// Why `stage` does not apply to this distribution, or `nil` when it
    /// does. Stage names are the API's: a distribution without, say, an apt
    /// repository reports the repo stage as skipped with this reason.
    func notApplicable(_ stage: UpgradeStage) -> String?
}

/// What the API's record of a backup just saved says.
public enum SnapshotRecord: Sendable, Equatable {
    /// Recorded and ready; the text says what the record holds.
    case confirmed(String)
    /// Recorded as failed; the text is the record's error.
    case failed(String)
    /// Not recorded (yet): the record is written after the save.
    case missing(String)
}

extension Distribution {
    public var snapshotRecordsPath: String? { nil }
    public var backupForm: BackupForm { .opaque }
    public func snapshotRecord(saveOutput: String, in items: [JSONValue]) -> SnapshotRecord? { nil }
    public func snapshotUnrecorded(saveOutput: String) -> Result<String, PlanError> { .success("") }
}

/// What a package source offers, as the detector decides on it.
public struct Offer: Sendable, Equatable {
    public var newestPatch: KubeVersion
    /// `nil`: the listing does not say; the package repository is asked.
    public var nextMinor: NextMinor?

    public init(newestPatch: KubeVersion, nextMinor: NextMinor?) {
        self.newestPatch = newestPatch
        self.nextMinor = nextMinor
    }
}

/// What a command printed on a node, for the pure readings above.
public struct ProbeOutput: Sendable, Equatable {
    public var exitStatus: Int32?
    public var stdout: String
    public var stderr: String

    public init(exitStatus: Int32?, stdout: String, stderr: String = "") {
        self.exitStatus = exitStatus
        self.stdout = stdout
        self.stderr = stderr
    }

    public var succeeded: Bool { exitStatus == 0 }

    /// `exited 1: <the last lines>`, for messages.
    public var failure: String {
        "exited \(exitStatus.map(String.init) ?? "by a signal"): " + Self.tail(stderr.isEmpty ? stdout : stderr)
    }

    /// The last three lines, joined, for messages.
    public static func tail(_ text: String) -> String {
        let lines = text.split(separator: "\n").suffix(3)
        return lines.isEmpty ? "(no output)" : lines.joined(separator: " | ")
    }
}

/// A node updater's hold: set at job start on every node, verified, and
/// watched for drift (snapd's `snap refresh --hold microk8s`).
public struct UpdaterHold: Sendable, Equatable {
    /// For messages: `snapd's refresh hold of microk8s`.
    public var what: String
    /// Prints the updater's version; ``supported(_:)`` judges it.
    public var version: [String]
    public var supported: @Sendable (String) -> Bool
    /// Why an updater that is not supported cannot hold.
    public var tooOld: String
    public var set: [String]
    /// Prints the state ``isHeld(_:)`` reads.
    public var check: [String]
    public var isHeld: @Sendable (String) -> Bool
    /// How an operator lifts it, for messages.
    public var lift: [String]

    public static func == (lhs: UpdaterHold, rhs: UpdaterHold) -> Bool {
        lhs.what == rhs.what && lhs.set == rhs.set && lhs.check == rhs.check
    }
}

/// The distributions `--distribution` names.
public enum Distributions {
    public static let names = ["kubeadm", "microk8s", "k3s"]

    /// The distribution called `name` (K3s from the public channel server
    /// and GitHub's releases), or `nil` for a name not in ``names``.
    public static func named(_ name: String) -> (any Distribution)? {
        switch name {
        case "kubeadm": KubeadmApt()
        case "microk8s": MicroK8sSnap()
        case "k3s": try? K3s()
        default: nil
        }
    }
}

/// One node's updater hold, as pre-flight or a drift check found it.
public enum HoldVerdict: Sendable, Equatable {
    case held
    /// Not held, and nothing set it (a dry run, or a check between nodes).
    case notHeld
    /// Why the hold is not there and cannot be: an old updater, a set that
    /// failed, an unreadable state.
    case failed(String)
}

extension UpdaterHold {
    /// The verdict from what the updater printed: its `version`, then the
    /// hold's state (`check`, after `set` when the hold was set).
    public func verdict(version: ProbeOutput, set: ProbeOutput?, check: ProbeOutput?) -> HoldVerdict {
        guard version.succeeded else { return .failed("\(Shell.command(self.version)) \(version.failure)") }
        guard supported(version.stdout) else {
            return .failed("\(tooOld) (\(Shell.command(self.version)): \(ProbeOutput.tail(version.stdout)))")
        }
        if let set, !set.succeeded { return .failed("\(Shell.command(self.set)) \(set.failure)") }
        guard let check else { return .notHeld }
        guard check.succeeded else { return .failed("\(Shell.command(self.check)) \(check.failure)") }
        if isHeld(check.stdout) { return .held }
        guard set != nil else { return .notHeld }
        return .failed(
            "\(Shell.command(self.set)) succeeded but \(Shell.command(self.check)) shows no hold: "
                + ProbeOutput.tail(check.stdout))
    }
}

/// What a distribution's pre-upgrade backup is, as far as rehearsing its
/// restore goes.
public enum BackupForm: Sendable, Equatable {
    /// A plain etcd snapshot file: restored into a throw-away etcd.
    case etcdSnapshot
    /// A gzipped tar archive (K3s) whose `./datastore` says what it holds:
    /// `./etcd-snapshot` (restored as above) or `./state.db` (SQLite's own
    /// integrity check and a count of its rows).
    case k3sArchive
    /// Nothing here can restore it (MicroK8s' dqlite backup): its listing
    /// is all that is checked.
    case opaque
}

/// MicroK8s clusters: one `microk8s` snap per node from the Snap Store,
/// one channel per minor (`1.34/stable`), dqlite as the datastore on the
/// control-plane nodes (DISTRIBUTIONS.md §1, REFERENCE.md §7).
public struct MicroK8sSnap: Distribution {
    public init() {}

    public var name: String { "microk8s" }
    public var package: String { "microk8s" }

    // MARK: Channels

    public var offeredListing: [String] { ["snap", "info", "microk8s"] }

    /// The running minor's `/stable` channel is the newest patch (a newer
    /// revision in the tracked track); the next track's `/stable`, when
    /// open, the next minor. A node that tracks `latest/…` follows every
    /// minor by itself, which no gated upgrade can stand behind.
    public func offer(in listing: String, running: KubeVersion, node: String) throws(PlanError) -> Offer {
        let info = try read(listing, node: node)
        if let tracking = info.tracking, tracking.hasPrefix("latest/") {
            throw PlanError(
                "microk8s on \(node) tracks \(tracking), which moves to every new minor by itself: switch it to its "
                    + "minor's track first (sudo snap refresh microk8s --channel=\(running.minorLine)/stable)")
        }
        guard let newest = info.stable(of: running) else {
            throw PlanError(
                "snap info microk8s on \(node) lists no open \(running.minorLine)/stable channel, so the running "
                    + "minor's newest patch is unknown")
        }
        let next = running.nextMinor
        return Offer(
            newestPatch: newest, nextMinor: info.stable(of: next).map { .published(newest: $0) } ?? .notPublished(next))
    }

    public func offers(_ target: KubeVersion, in listing: String) -> Bool {
        SnapInfo(parsing: listing).stable(of: target)?.release == target.release
    }

    func read(_ listing: String, node: String) throws(PlanError) -> SnapInfo {
        let info = SnapInfo(parsing: listing)
        if !info.problems.isEmpty {
            throw PlanError(
                "snap info microk8s on \(node) printed channel lines that are not releases: "
                    + info.problems.prefix(3).map(\.description).joined(separator: "; "))
        }
        guard !info.channels.isEmpty else {
            throw PlanError("snap info microk8s on \(node) listed no channels: \(listing.prefix(200))")
        }
        return info
    }

    /// The channel a node is refreshed to for `release`.
    public static func channel(of release: KubeVersion) -> String { "\(release.minorLine)/stable" }

    // MARK: dqlite

    static let backend = "/var/snap/microk8s/current/var/kubernetes/backend"
    /// The dqlite shell MicroK8s' own `status` uses, against the live cluster
    /// (the `cluster.yaml` it starts from only finds the servers).
    static func dqlite(_ query: String) -> [String] {
        [
            "/snap/microk8s/current/bin/dqlite", "-s", "file://\(backend)/cluster.yaml", "-c", "\(backend)/cluster.crt",
            "-k", "\(backend)/cluster.key", "-f", "json", "k8s", query,
        ]
    }

    public var datastore: String { "dqlite" }
    public var datastoreProbes: [[String]] { [Self.dqlite(".cluster"), Self.dqlite(".leader")] }

    public func datastoreHealth(_ outputs: [ProbeOutput], nodes: [NodeFacts]) throws(PlanError) -> DatastoreHealth {
        guard outputs.count == 2 else { throw PlanError("dqlite was not asked") }
        guard outputs[0].succeeded else { throw PlanError("dqlite .cluster \(outputs[0].failure)") }
        let members = try DqliteMember.list(json: outputs[0].stdout)
        let leader = outputs[1].succeeded ? DqliteMember.leader(outputs[1].stdout) : nil
        return DqliteMember.health(members, leader: leader, nodes: nodes)
    }

    public var quorumFromAnotherMember: Bool { true }

    /// The snap's data (`$SNAP_DATA`, with this node's dqlite), which a
    /// refresh copies to the new revision's folder.
    public var datastoreSize: [String] { ["du", "-s", "-B1", "-D", "/var/snap/microk8s/current"] }

    public func datastoreBytes(_ output: String) throws(PlanError) -> Int {
        guard let first = output.split(whereSeparator: \.isWhitespace).first, let bytes = Int(first) else {
            throw PlanError("du printed no size: \(output.prefix(200))")
        }
        return bytes
    }

    public func dataFolders(for kind: UpgradeKind) -> [String] { ["/var/snap/microk8s"] }

    // MARK: Backup

    public var snapshotExtension: String { ".tar.gz" }

    /// `microk8s dbctl backup -o NAME` writes `NAME.tar.gz` in its working
    /// folder; it can hang on a cluster without quorum, so it is bounded.
    public func snapshotSave(to path: String) -> [String] {
        let (folder, file) = Self.split(path)
        let name = file.hasSuffix(snapshotExtension) ? String(file.dropLast(snapshotExtension.count)) : file
        return [
            "sh", "-c",
            "cd \(Shell.quote(folder)) && exec timeout 300 microk8s dbctl backup -o \(Shell.quote(name))",
        ]
    }

    /// Lists the archive (a truncated gzip fails) and prints `BYTES FILES`.
    public func snapshotStatus(of path: String) -> [String] {
        [
            "sh", "-c",
            #"files=$(tar -tzf "$1") || exit 1; printf '%s %s\n' "$(stat -c %s "$1")" "$(printf '%s\n' "$files" | grep -c .)""#,
            "sh", path,
        ]
    }

    public func snapshotSummary(_ output: String) throws(PlanError) -> String {
        let words = output.split(whereSeparator: \.isWhitespace)
        guard words.count == 2, let bytes = Int(words[0]), let files = Int(words[1]) else {
            throw PlanError("the backup's listing printed no size and file count: \(output.prefix(200))")
        }
        guard bytes > 0, files > 0 else { throw PlanError("the backup is empty (\(files) files, \(bytes) bytes)") }
        return "dqlite backup of \(files) files, \(bytes) bytes"
    }

    static func split(_ path: String) -> (String, String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let folder = String(path[..<slash])
        return (folder.isEmpty ? "/" : folder, String(path[path.index(after: slash)...]))
    }

    // MARK: Nodes

    /// MicroK8s renews its certificates with `microk8s refresh-certs`; their
    /// expiry is not checked here.
    public var certificateCheck: [String]? { nil }

    /// Every role refreshes the snap to the target's channel and waits for the change.
    public func nodeStep(role: NodeRole, target: KubeVersion) -> [String] {
        ["--snap", "microk8s", "--channel", Self.channel(of: target), "--release", target.description]
    }

    /// `snap revert`, then the hold again and the old channel, so an
    /// auto-refresh cannot redo the failed refresh.
    public func revertStep(role: NodeRole, to release: KubeVersion) -> [String]? {
        workerRollbackStep(to: release)
    }

    /// `snap revert` to the revision before the refresh, held, tracking the
    /// old channel: the same step as a failed refresh's revert, on any role.
    public func workerRollbackStep(to release: KubeVersion) -> [String] {
        ["--snap-revert", "microk8s", "--channel", Self.channel(of: release), "--release", release.description]
    }

    /// kubelite runs the API server in the kubelet's process: no pod.
    public func apiServerPod(on node: String) -> String? { nil }

    /// snapd refreshes every node inside its track on its own, every node
    /// independently (DISTRIBUTIONS.md §1.2); `--hold` stops that and the
    /// orchestrator's explicit refresh still proceeds.
    public var hold: UpdaterHold? {
        UpdaterHold(
            what: "snapd's refresh hold of microk8s", version: ["snap", "version"],
            supported: { SnapList.canHold(snapVersion: $0) },
            tooOld: "snapd older than 2.58 cannot hold one snap (snap refresh --hold microk8s); upgrade snapd",
            set: ["snap", "refresh", "--hold", "microk8s"], check: ["snap", "list", "microk8s"],
            isHeld: { SnapList(parsing: $0).isHeld("microk8s") }, lift: ["snap", "refresh", "--unhold", "microk8s"])
    }

    public func notApplicable(_ stage: UpgradeStage) -> String? {
        switch stage {
        case .containerd: "MicroK8s ships containerd inside its snap; the refresh brings its own"
        case .repo: "MicroK8s' releases are snap channels, chosen per node by the refresh"
        default: nil
        }
    }
}

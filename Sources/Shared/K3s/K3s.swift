/// K3s clusters: one `k3s` binary per node, servers (`k3s` service) and
/// agents (`k3s-agent`), releases from the channel server and binaries
/// from a release artifact URL (GitHub's layout by default), the datastore
/// embedded etcd or, on a single server, SQLite (DISTRIBUTIONS.md §2,
/// REFERENCE.md §8).
public struct K3s: Distribution {
    /// `https://update.k3s.io/v1-release/channels`, or a mirror's.
    public let channelServer: String
    /// `https://github.com/k3s-io/k3s/releases/download`, or a mirror's:
    /// `<artifacts>/<release>/k3s` and `<artifacts>/<release>/sha256sum-amd64.txt`.
    public let artifacts: String

    public static let defaultChannelServer = "https://update.k3s.io/v1-release/channels"
    public static let defaultArtifacts = "https://github.com/k3s-io/k3s/releases/download"

    /// - Throws: ``PlanError`` for a URL that is not `http(s)://` or holds
    ///   characters a URL of these servers does not need.
    public init(
        channelServer: String = defaultChannelServer, artifacts: String = defaultArtifacts
    )
        throws(PlanError)
    {
        self.channelServer = try Self.checkedURL(channelServer, what: "the K3s channel server URL")
        self.artifacts = try Self.checkedURL(artifacts, what: "the K3s artifact URL")
    }

    /// `http(s)://host[:port][/path]`, without query, fragment, credentials or spaces.
    static func checkedURL(_ text: String, what: String) throws(PlanError) -> String {
        let trimmed = text.hasSuffix("/") ? String(text.dropLast()) : text
        let scheme = trimmed.hasPrefix("https://") ? 8 : trimmed.hasPrefix("http://") ? 7 : 0
        let rest = trimmed.dropFirst(scheme)
        let allowed = rest.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII
                && (Character(scalar).isLetter || Character(scalar).isNumber
                    || "-._~/:%+".unicodeScalars.contains(scalar))
        }
        guard scheme > 0, !rest.isEmpty, !rest.hasPrefix("/"), allowed else {
            throw PlanError(
                "\(what) must be http:// or https:// followed by a host and path (letters, digits, - . _ ~ / : % +), "
                    + "got \"\(text.prefix(100))\"")
        }
        return trimmed
    }

    public var name: String { "k3s" }
    public var package: String { "k3s" }

    // MARK: The channel server

    /// Fetched on the master, which needs to reach the artifact URL anyway:
    /// bounded, failing on an HTTP error, following no redirect.
    public var offeredListing: [String] {
        ["curl", "-fsS", "--max-time", "30", "--retry", "2", "-H", "Accept: application/json", channelServer]
    }

    /// The running minor's channel (`v1.34`) is its newest patch, a K3s
    /// rebuild of the running release (`+k3s2`) included; the next minor's
    /// channel, when it has a release, the next minor.
    public func offer(in listing: String, running: KubeVersion, node: String) throws(PlanError) -> Offer {
        let channels = try read(listing)
        guard let newest = channels.newest(inMinorOf: running) else {
            throw PlanError(
                "the channel server \(channelServer) lists no \(K3sChannels.channel(of: running)) channel with a "
                    + "\(running.minorLine) release, so the running minor's newest patch is unknown")
        }
        let next = running.nextMinor
        return Offer(
            newestPatch: newest,
            nextMinor: channels.newest(inMinorOf: next).map { .published(newest: $0) } ?? .notPublished(next))
    }

    /// Only a channel's newest release is published by the channel server;
    /// an older build of the minor is refused rather than guessed at.
    public func offers(_ target: KubeVersion, in listing: String) -> Bool {
        target.k3sBuild != nil && (try? read(listing))?.newest(inMinorOf: target) == target
    }

    func read(_ listing: String) throws(PlanError) -> K3sChannels {
        let channels = try K3sChannels(json: listing)
        if !channels.problems.isEmpty {
            throw PlanError(
                "the channel server \(channelServer) listed channels that are not K3s releases: "
                    + channels.problems.prefix(3).joined(separator: "; "))
        }
        guard !channels.latest.isEmpty else {
            throw PlanError("the channel server \(channelServer) listed no channel with a release")
        }
        return channels
    }

    // MARK: The datastore

    static let data = "/var/lib/rancher/k3s/server"
    static let db = "\(data)/db"
    /// etcdctl against the server's own member with K3s' client certificate
    /// (K3s does not ship etcdctl; the runbook says to install it).
    static let etcdctl = [
        "etcdctl", "--endpoints=https://127.0.0.1:2379", "--cacert=\(data)/tls/etcd/server-ca.crt",
        "--cert=\(data)/tls/etcd/server-client.crt", "--key=\(data)/tls/etcd/server-client.key",
        "--dial-timeout=5s", "--command-timeout=15s",
    ]

    /// Runs `etcd` when the server has an embedded etcd member, prints
    /// `sqlite` then runs `sqlite` when it runs on SQLite, and fails naming
    /// the folder otherwise (an external datastore is not K3s' to back up).
    static func probe(etcd: [String], sqlite: String) -> [String] {
        [
            "sh", "-c",
            "if [ -d \(db)/etcd ]; then exec \(Shell.command(etcd)); "
                + "elif [ -e \(db)/state.db ]; then echo sqlite; \(sqlite); "
                + "else echo 'neither embedded etcd (\(db)/etcd) nor SQLite (\(db)/state.db) on this server' >&2; "
                + "exit 3; fi",
        ]
    }

    /// For messages; each probe says which one it found.
    public var datastore: String { "K3s datastore" }

    /// The members, then their health: etcd's, or SQLite's own check of
    /// the database file (`PRAGMA quick_check`, read-only).
    public var datastoreProbes: [[String]] {
        [
            Self.probe(etcd: Self.etcdctl + ["member", "list", "-w", "json"], sqlite: "true"),
            Self.probe(
                etcd: Self.etcdctl + ["endpoint", "health", "--cluster", "-w", "json"],
                sqlite: "exec sqlite3 -readonly \(Self.db)/state.db 'PRAGMA quick_check;'"),
        ]
    }

    public func datastoreHealth(_ outputs: [ProbeOutput], nodes: [NodeFacts]) throws(PlanError) -> DatastoreHealth {
        guard outputs.count == 2 else { throw PlanError("the K3s datastore was not asked") }
        guard outputs[0].succeeded else { throw PlanError("the K3s datastore probe \(outputs[0].failure)") }
        if Self.isSQLite(outputs[0].stdout) {
            let check = outputs[1].stdout.split(whereSeparator: \.isNewline).dropFirst().joined(separator: " ")
            let ok = outputs[1].succeeded && check == "ok"
            var health = DatastoreHealth(
                healthy: ok ? ["sqlite"] : [], unhealthy: ok ? [] : ["sqlite"],
                members: [DatastoreMember(name: "sqlite", clientURLs: ["sqlite"])])
            health.datastore = "SQLite"
            if !ok {
                health.notes.append(
                    "sqlite3 PRAGMA quick_check: "
                        + (outputs[1].succeeded ? ProbeOutput.tail(check) : outputs[1].failure))
            }
            return health
        }
        let members = try DatastoreMember.list(json: outputs[0].stdout)
        guard outputs[1].stdout.contains("[") else { throw PlanError("etcdctl endpoint health \(outputs[1].failure)") }
        var health = try DatastoreHealth(json: outputs[1].stdout, members: members)
        health.datastore = "etcd"
        return health
    }

    static func isSQLite(_ stdout: String) -> Bool {
        stdout.split(whereSeparator: \.isNewline).first == "sqlite"
    }

    public var quorumFromAnotherMember: Bool { false }

    public var datastoreSize: [String] { ["du", "-s", "-B1", "-D", Self.db] }

    public func datastoreBytes(_ output: String) throws(PlanError) -> Int {
        guard let first = output.split(whereSeparator: \.isWhitespace).first, let bytes = Int(first) else {
            throw PlanError("du printed no size: \(output.prefix(200))")
        }
        return bytes
    }

    /// The backup is written next to the datastore before it is packed.
    public func dataFolders(for kind: UpgradeKind) -> [String] { [Self.db] }

    // MARK: The pre-upgrade backup

    /// An archive of the datastore's copy and the server token a restore
    /// needs (K3s refuses a restore without the original token).
    public var snapshotExtension: String { ".tar.gz" }

    /// Embedded etcd: `k3s etcd-snapshot save` into a scratch folder
    /// (its file is `<name>-<node>-<time>`), never compressed whatever
    /// config.yaml says (a zipped snapshot would need its `.zip` name to
    /// restore, and this side could not rehearse it); SQLite: `sqlite3 .backup`, a
    /// consistent copy of the live database, where copying the files of a
    /// WAL database is only crash-consistent. Then the token, a note of
    /// which datastore it is, and the archive, written under another name
    /// and renamed so that a cut-off save leaves no archive behind.
    public func snapshotSave(to path: String) -> [String] {
        [
            "sh", "-c",
            #"""
            set -eu
            out=$1 db=/var/lib/rancher/k3s/server/db
            work=$(mktemp -d "${out%/*}/.k3s-backup.XXXXXX")
            trap 'rm -rf "$work"' EXIT
            if [ -d "$db/etcd" ]; then
              timeout 300 k3s etcd-snapshot save --dir "$work" --name k8s-upgrade --etcd-snapshot-compress=false >&2
              set -- "$work"/k8s-upgrade-*
              [ -f "$1" ] || { echo "k3s etcd-snapshot save wrote no snapshot in $work" >&2; exit 1; }
              name=${1##*/} listed=unlisted
              if timeout 60 k3s etcd-snapshot ls --dir "$work" 2>/dev/null |
                awk -v n="$name" '$1 == n { found = 1 } END { exit !found }'; then listed=listed; fi
              echo "etcd-snapshot $name $listed"
              mv "$1" "$work/etcd-snapshot"
              echo etcd >"$work/datastore"
            elif [ -e "$db/state.db" ]; then
              timeout 300 sqlite3 "$db/state.db" ".backup '$work/state.db'"
              echo sqlite >"$work/datastore"
            else
              echo "neither embedded etcd ($db/etcd) nor SQLite ($db/state.db) on this server" >&2
              exit 3
            fi
            cp /var/lib/rancher/k3s/server/token "$work/token"
            tar -czf "$out.partial" -C "$work" .
            mv "$out.partial" "$out"
            """#,
            "sh", path,
        ]
    }

    /// The archive holds an etcd snapshot or a SQLite copy, which the
    /// orchestrator restores on its side before the first node.
    public var backupForm: BackupForm { .k3sArchive }

    /// Lists the archive (a truncated gzip fails) and prints `BYTES KIND
    /// FILES`: the datastore it holds and whether the token is there.
    public func snapshotStatus(of path: String) -> [String] {
        [
            "sh", "-c",
            #"files=$(tar -tzf "$1") || exit 1; kind=$(tar -xzOf "$1" ./datastore) || exit 1; "#
                + #"printf '%s %s %s\n' "$(stat -c %s "$1")" "$kind" "$(printf '%s\n' "$files" | tr '\n' ,)""#,
            "sh", path,
        ]
    }

    public func snapshotSummary(_ output: String) throws(PlanError) -> String {
        let words = output.split(whereSeparator: \.isWhitespace)
        guard words.count == 3, let bytes = Int(words[0]), ["etcd", "sqlite"].contains(words[1]) else {
            throw PlanError("the backup's listing printed no size, datastore and files: \(output.prefix(200))")
        }
        let files = Set(
            words[2].split(separator: ",").map { $0.hasPrefix("./") ? String($0.dropFirst(2)) : String($0) })
        let copy = words[1] == "etcd" ? "etcd-snapshot" : "state.db"
        guard files.contains(copy), files.contains("token") else {
            throw PlanError(
                "the backup lacks \(files.contains(copy) ? "the server token" : copy) (it holds "
                    + files.sorted().joined(separator: ", ") + ")")
        }
        return words[1] == "etcd"
            ? "K3s etcd snapshot and server token, \(bytes) bytes" : "K3s SQLite copy and server token, \(bytes) bytes"
    }

    /// K3s keeps an `ETCDSnapshotFile` (cluster-scoped) of every etcd
    /// snapshot since v1.28.4+k3s2 / v1.27.8+k3s2.
    public var snapshotRecordsPath: String? { "/apis/k3s.cattle.io/v1/etcdsnapshotfiles" }

    /// The snapshot the save named (`etcd-snapshot NAME listed|unlisted`
    /// on its output) and whether `k3s etcd-snapshot ls` listed it.
    static func savedSnapshot(_ output: String) -> (name: String, listed: Bool)? {
        for line in output.split(separator: "\n") {
            let words = line.split(separator: " ")
            if words.count == 3, words[0] == "etcd-snapshot", ["listed", "unlisted"].contains(words[2]) {
                return (String(words[1]), words[2] == "listed")
            }
        }
        return nil
    }

    /// The record whose `spec.snapshotName` is the snapshot just saved:
    /// confirmed when `status.readyToUse`, failed with `status.error`.
    public func snapshotRecord(saveOutput: String, in items: [JSONValue]) -> SnapshotRecord? {
        guard let saved = Self.savedSnapshot(saveOutput) else { return nil }
        guard let record = items.first(where: { $0[dotted: "spec.snapshotName"]?.stringValue == saved.name }) else {
            return .missing("no ETCDSnapshotFile names \(saved.name) yet")
        }
        let name = record[dotted: "metadata.name"]?.stringValue ?? "?"
        if let error = record[dotted: "status.error.message"]?.stringValue {
            return .failed("ETCDSnapshotFile \(name) of \(saved.name) says: \(error)")
        }
        guard record[dotted: "status.readyToUse"]?.boolValue == true else {
            return .missing("ETCDSnapshotFile \(name) of \(saved.name) is not ready to use yet")
        }
        let size =
            record[dotted: "status.size"].flatMap { $0.stringValue ?? $0.intValue.map(String.init) }
            .map { ", size \($0)" } ?? ""
        let node = record[dotted: "spec.nodeName"]?.stringValue.map { " on \($0)" } ?? ""
        return .confirmed("ETCDSnapshotFile \(name) ready\(node)\(size)")
    }

    /// An older K3s keeps no records: `k3s etcd-snapshot ls` must have
    /// listed the snapshot the save wrote.
    public func snapshotUnrecorded(saveOutput: String) -> Result<String, PlanError> {
        guard let saved = Self.savedSnapshot(saveOutput) else { return .success("") }
        guard saved.listed else {
            return .failure(PlanError("k3s etcd-snapshot ls does not list \(saved.name), which the save wrote"))
        }
        return .success("listed by k3s etcd-snapshot ls (no ETCDSnapshotFile records: K3s before v1.28.4+k3s2)")
    }

    // MARK: Nodes

    /// K3s renews its certificates itself when it restarts within 90 days
    /// of expiry; they are not checked here.
    public var certificateCheck: [String]? { nil }

    /// Servers restart `k3s`, agents `k3s-agent`; the script fetches the
    /// binary and its checksum file from ``artifacts``.
    public func nodeStep(role: NodeRole, target: KubeVersion) -> [String] {
        ["--k3s", role == .worker ? "agent" : "server", "--release", target.description, "--artifacts", artifacts]
    }

    /// A failed K3s step installed nothing (the checksum and the binary's
    /// own version are checked first), or swapped the binary and kept the
    /// one it replaced: the revert puts that one back and restarts the
    /// service (nothing changes on a node still at `release`).
    public func revertStep(role: NodeRole, to release: KubeVersion) -> [String]? {
        ["--k3s-revert", role == .worker ? "agent" : "server", "--release", release.description]
    }

    /// The binary the upgrade kept on the agent put back, and k3s-agent restarted.
    public func workerRollbackStep(to release: KubeVersion) -> [String] {
        ["--k3s-revert", "agent", "--release", release.description]
    }

    /// The API server runs inside the `k3s server` process: no pod, and
    /// its version is the kubelet's.
    public func apiServerPod(on node: String) -> String? { nil }

    /// Nothing on a K3s node upgrades it by itself; system-upgrade-controller
    /// Plans are found by pre-flight instead.
    public var hold: UpdaterHold? { nil }

    public func notApplicable(_ stage: UpgradeStage) -> String? {
        switch stage {
        case .containerd: "K3s ships containerd inside its binary; the new binary brings its own"
        case .repo: "K3s releases come from the channel server and the artifact URL, not from an apt repository"
        default: nil
        }
    }
}

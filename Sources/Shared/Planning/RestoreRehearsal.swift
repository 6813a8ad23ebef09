/// The restore rehearsal of an etcd snapshot on the orchestrator's side:
/// the commands (a one-member throw-away cluster on loopback) and the
/// judgement of what the restored etcd answers. No I/O.
public struct RestoreRehearsal: Sendable, Equatable {
    /// `etcdutl` (etcd 3.5 on), else `etcdctl` (3.4 restores with it).
    public var restorer: String
    public var etcd: String
    public var etcdctl: String

    public init(restorer: String, etcd: String = "etcd", etcdctl: String = "etcdctl") {
        self.restorer = restorer
        self.etcd = etcd
        self.etcdctl = etcdctl
    }

    static let member = "rehearsal"

    /// What the copied snapshot says of itself, read here again.
    public func status(of snapshot: String) -> [String] { [restorer, "snapshot", "status", "-w", "json", snapshot] }

    /// The snapshot restored into `dataDir` as a one-member cluster.
    public func restore(_ snapshot: String, into dataDir: String, peerURL: String) -> [String] {
        [
            restorer, "snapshot", "restore", snapshot, "--data-dir", dataDir, "--name", Self.member,
            "--initial-cluster", "\(Self.member)=\(peerURL)", "--initial-advertise-peer-urls", peerURL,
        ]
    }

    /// etcd over the restored data, on loopback only. Its one member
    /// elects itself after an election timeout: etcd's default (1 s) is
    /// made for members across a network; on loopback, 100 ms (heartbeats
    /// every 10 ms) has it answering in about 0.1 s instead of 1 s.
    public func server(dataDir: String, clientURL: String, peerURL: String) -> [String] {
        [
            etcd, "--name", Self.member, "--data-dir", dataDir, "--listen-client-urls", clientURL,
            "--advertise-client-urls", clientURL, "--listen-peer-urls", peerURL, "--initial-advertise-peer-urls",
            peerURL, "--initial-cluster", "\(Self.member)=\(peerURL)", "--heartbeat-interval", "10",
            "--election-timeout", "100", "--log-level", "warn",
        ]
    }

    public func health(_ clientURL: String) -> [String] {
        [etcdctl, "--endpoints", clientURL, "--command-timeout", "2s", "endpoint", "health"]
    }

    /// Every key counted, with the store's revision: a range's `count` is
    /// all of its keys whatever the limit (etcd 3.4 has no --count-only).
    public func count(_ clientURL: String) -> [String] {
        [etcdctl, "--endpoints", clientURL, "get", "", "--prefix", "--keys-only", "--limit", "1", "-w", "json"]
    }

    /// A few keys the cluster cannot be without: its namespaces.
    public func sample(_ clientURL: String) -> [String] {
        [etcdctl, "--endpoints", clientURL, "get", "/registry/namespaces/", "--prefix", "--keys-only", "--limit", "3"]
    }

    /// A K3s archive unpacked into `folder`: its `datastore` note and its copy.
    public static func unpack(_ archive: String, into folder: String) -> [String] {
        ["tar", "-xzf", archive, "-C", folder]
    }

    /// SQLite's own check of a K3s datastore copy, read-only, and the rows
    /// of kine's table (every object the API stored).
    public static func sqliteCheck(_ database: String) -> [String] {
        ["sqlite3", "-readonly", database, "PRAGMA integrity_check; SELECT count(*) FROM kine;"]
    }

    /// What ``sqliteCheck(_:)`` printed: `ok`, then the row count.
    public static func sqliteVerdict(_ output: String) -> Result<Int, PlanError> {
        let lines = output.split(whereSeparator: \.isNewline).map { String($0.filter { !$0.isWhitespace }) }
        guard lines.first == "ok" else {
            return .failure(PlanError("SQLite's integrity check of the copy says: \(output.prefix(300))"))
        }
        guard lines.count == 2, let rows = Int(lines[1]) else {
            return .failure(PlanError("the copy's kine table could not be counted: \(output.prefix(300))"))
        }
        guard rows > 0 else { return .failure(PlanError("the copy's kine table holds no rows")) }
        return .success(rows)
    }

    /// The restored etcd's figures against the snapshot's own: the same
    /// revision, keys at all, and the namespaces among them.
    ///
    /// - Parameters:
    ///   - countOutput: the JSON that ``count(_:)`` printed.
    ///   - sampleOutput: the keys ``sample(_:)`` printed.
    ///   - snapshot: the copy's status, read before the restore.
    public static func verdict(
        countOutput: String, sampleOutput: String, snapshot: SnapshotStatus
    ) -> Result<(keys: Int, revision: Int, sample: [String]), PlanError> {
        guard let value = try? JSONValue.parse(countOutput), let revision = value[["header", "revision"]]?.intValue
        else { return .failure(PlanError("the restored etcd printed no revision: \(countOutput.prefix(200))")) }
        let keys = value[["count"]]?.intValue ?? 0
        guard keys > 0 else { return .failure(PlanError("the restored etcd holds no keys")) }
        guard revision == snapshot.revision else {
            return .failure(
                PlanError("the restored etcd is at revision \(revision), the snapshot at \(snapshot.revision)"))
        }
        let sample = sampleOutput.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        guard sample.contains(where: { $0.hasPrefix("/registry/namespaces/") }) else {
            return .failure(PlanError("the restored etcd holds no namespaces (/registry/namespaces/)"))
        }
        return .success((keys, revision, sample))
    }
}

import FoundationEssentials

/// `etcdctl snapshot status -w json` (or `etcdutl`): what a snapshot holds.
public struct SnapshotStatus: Sendable, Equatable {
    public var hash: Int
    public var revision: Int
    public var totalKeys: Int
    public var totalSize: Int

    /// Reads the JSON form; a snapshot with no keys or no size is not a snapshot.
    public init(json text: String) throws(PlanError) {
        guard let value = try? JSONValue.parse(text), let hash = value[["hash"]]?.intValue,
            let revision = value[["revision"]]?.intValue, let keys = value[["totalKey"]]?.intValue,
            let size = value[["totalSize"]]?.intValue
        else {
            throw PlanError("snapshot status printed no hash, revision, totalKey and totalSize: \(text.prefix(200))")
        }
        guard keys > 0, size > 0 else { throw PlanError("the snapshot is empty (\(keys) keys, \(size) bytes)") }
        self.hash = hash
        self.revision = revision
        self.totalKeys = keys
        self.totalSize = size
    }

    public var summary: String {
        "hash \(String(hash, radix: 16)), revision \(revision), \(totalKeys) keys, \(totalSize) bytes"
    }
}

/// One etcd member, from `etcdctl member list -w json`. kubeadm names a
/// stacked member after its node.
public struct DatastoreMember: Sendable, Equatable {
    public var name: String
    public var clientURLs: [String]

    public init(name: String, clientURLs: [String]) {
        self.name = name
        self.clientURLs = clientURLs
    }

    /// The `members` of `etcdctl member list -w json`.
    public static func list(json text: String) throws(PlanError) -> [DatastoreMember] {
        guard let value = try? JSONValue.parse(text), let members = value[["members"]]?.arrayValue, !members.isEmpty
        else { throw PlanError("etcdctl member list printed no members: \(text.prefix(200))") }
        return members.map { member in
            DatastoreMember(
                name: member[["name"]]?.stringValue ?? "",
                clientURLs: (member[["clientURLs"]]?.arrayValue ?? []).compactMap(\.stringValue))
        }
    }
}

/// Each datastore member's health, named by the member list when it is
/// known: etcd's (`etcdctl endpoint health --cluster -w json`) or dqlite's
/// voters (``DqliteMember/health(_:leader:nodes:)``). Only members that vote
/// count towards quorum.
public struct DatastoreHealth: Sendable, Equatable {
    public struct Endpoint: Sendable, Equatable {
        public var url: String
        public var healthy: Bool
        public var error: String?
    }

    public var endpoints: [Endpoint]
    public var members: [DatastoreMember]
    /// For messages: `etcd`, `dqlite`.
    public var datastore = "etcd"
    /// Said after the counts: members that do not vote, a missing leader.
    public var notes: [String] = []

    public init(healthy: [String], unhealthy: [String], members: [DatastoreMember] = []) {
        endpoints =
            healthy.map { Endpoint(url: $0, healthy: true, error: nil) }
            + unhealthy.map { Endpoint(url: $0, healthy: false, error: nil) }
        self.members = members
    }

    public init(json text: String, members: [DatastoreMember] = []) throws(PlanError) {
        guard let value = try? JSONValue.parse(text), let entries = value.arrayValue, !entries.isEmpty else {
            throw PlanError("etcdctl endpoint health printed no endpoints: \(text.prefix(200))")
        }
        var endpoints = entries.map { entry in
            Endpoint(
                url: entry[["endpoint"]]?.stringValue ?? "?", healthy: entry[["health"]]?.boolValue == true,
                error: entry[["error"]]?.stringValue)
        }
        // A member the health check left out (seen in CI just after a member
        // died) did not answer: it counts as down, by its name.
        let answered = Set(endpoints.map(\.url))
        for member in members where !member.clientURLs.contains(where: answered.contains) {
            endpoints.append(
                Endpoint(url: member.clientURLs.first ?? member.name, healthy: false, error: "no health answer"))
        }
        self.endpoints = endpoints
        self.members = members
    }

    public var healthy: [String] { endpoints.filter(\.healthy).map(\.url) }
    public var unhealthy: [String] { endpoints.filter { !$0.healthy }.map(describe) }

    /// The number of members: the member list's, else one per endpoint.
    public var memberCount: Int { max(members.count, endpoints.count) }

    /// A majority of members answers healthy.
    public var hasQuorum: Bool { healthy.count * 2 > memberCount }

    /// `cp-3 (https://…:2379: error)` when the member is known, else the URL and error.
    func describe(_ endpoint: Endpoint) -> String {
        let text = endpoint.url + (endpoint.error.map { ": \($0)" } ?? "")
        guard let member = members.first(where: { $0.clientURLs.contains(endpoint.url) }), !member.name.isEmpty else {
            return text
        }
        return "\(member.name) (\(text))"
    }

    public var summary: String {
        let base = "\(healthy.count) of \(memberCount) members healthy"
        return ([unhealthy.isEmpty ? base : base + "; unhealthy: " + unhealthy.joined(separator: ", ")] + notes)
            .joined(separator: "; ")
    }

    /// Whether etcd stays quorate while `node`'s member restarts (kubeadm
    /// restarts it with the control plane): the healthy *other* members
    /// must be more than half of all members. A bare majority healthy now
    /// is not enough: with one of three already down, restarting a healthy
    /// member leaves one of three. One member alone has no quorum to keep
    /// (its API is down while it restarts, whatever is done), but it must be
    /// healthy; a node without a member (external etcd) takes none down.
    public func quorum(without node: String) -> Result<String, PlanError> {
        let total = memberCount
        if total <= 1 {
            // Its restart takes it down anyway; one that is down already is a broken datastore, not a restart.
            guard healthy.count == 1 else {
                return .failure(
                    PlanError(
                        "the single \(datastore) member is not healthy, so nothing is upgraded on top of it: \(summary)"
                    ))
            }
            return .success("a single \(datastore) member: \(datastore) is down while it restarts, as always with one")
        }
        let own = members.first { $0.name == node }?.clientURLs ?? []
        let others = endpoints.filter { !own.contains($0.url) }
        let healthyOthers = others.filter(\.healthy).count
        let needed = total / 2 + 1
        let unhealthyOthers = others.filter { !$0.healthy }.map(describe)
        let counted =
            own.isEmpty
            ? "\(node) has no \(datastore) member; \(healthyOthers) of \(total) members healthy"
            : "\(healthyOthers) of the \(total - 1) other members healthy"
        let down = unhealthyOthers.isEmpty ? "" : "; unhealthy: " + unhealthyOthers.joined(separator: ", ")
        if total == 2, !own.isEmpty {
            return .failure(
                PlanError(
                    "two \(datastore) members are not highly available: \(node)'s restart leaves one of two, "
                        + "which has no quorum, and the API stops until it is back; add a third control plane or "
                        + "accept the outage by upgrading with one control plane"))
        }
        if healthyOthers >= needed {
            return .success(
                "\(datastore) keeps its quorum without \(node)'s member: \(counted) (\(needed) of \(total) needed)")
        }
        return .failure(
            PlanError(
                "\(datastore) would lose its quorum while \(node)'s member restarts: \(counted), and \(total) members need \(needed)\(down)"
            ))
    }
}

/// One line of `kubeadm certs check-expiration -o json`.
public struct CertificateExpiry: Sendable, Equatable {
    public var name: String
    /// Seconds left.
    public var residualSeconds: Int
    public var missing: Bool

    public init(name: String, residualSeconds: Int, missing: Bool = false) {
        self.name = name
        self.residualSeconds = residualSeconds
        self.missing = missing
    }

    /// Every certificate and authority of the `CertificateExpirationInfo` document.
    public static func parse(json text: String) throws(PlanError) -> [CertificateExpiry] {
        guard let value = try? JSONValue.parse(text), value[["kind"]]?.stringValue == "CertificateExpirationInfo"
        else {
            throw PlanError("kubeadm certs check-expiration printed no CertificateExpirationInfo: \(text.prefix(200))")
        }
        let entries =
            (value[["certificates"]]?.arrayValue ?? []) + (value[["certificateAuthorities"]]?.arrayValue ?? [])
        return entries.map {
            CertificateExpiry(
                name: $0[["name"]]?.stringValue ?? "?", residualSeconds: $0[["residualTime"]]?.intValue ?? 0,
                missing: $0[["missing"]]?.boolValue ?? false)
        }
    }
}

extension JSONValue {
    /// Decodes JSON text.
    public static func parse(_ text: String) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }
}

/// Free space where an upgrade writes etcd's data, against the database size.
public struct DiskSpace: Sendable, Equatable {
    public struct Folder: Sendable, Equatable {
        public var path: String
        public var available: Int

        public init(path: String, available: Int) {
            self.path = path
            self.available = available
        }
    }

    /// etcd's database size (`dbSize` of `etcdctl endpoint status`).
    public var databaseBytes: Int
    public var folders: [Folder]
    /// For messages: `etcd`, `dqlite`.
    public var datastore = "etcd"

    public init(databaseBytes: Int, folders: [Folder]) {
        self.databaseBytes = databaseBytes
        self.folders = folders
    }

    /// The largest `dbSize` of `etcdctl endpoint status -w json`.
    public static func databaseSize(json text: String) throws(PlanError) -> Int {
        guard let value = try? JSONValue.parse(text), let entries = value.arrayValue,
            let size = entries.compactMap({ $0[["Status", "dbSize"]]?.intValue }).max()
        else { throw PlanError("etcdctl endpoint status printed no dbSize: \(text.prefix(200))") }
        return size
    }

    /// Lines `PATH FILESYSTEM 1-BLOCKS USED AVAILABLE CAPACITY MOUNTED` (the
    /// path, then the last line of `df -P -B1` for it).
    public static func folders(df text: String) throws(PlanError) -> [Folder] {
        let folders = text.split(separator: "\n").compactMap { line -> Folder? in
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            guard words.count >= 5, let available = Int(words[4]) else { return nil }
            return Folder(path: String(words[0]), available: available)
        }
        guard !folders.isEmpty else { throw PlanError("df printed no free space: \(text.prefix(200))") }
        return folders
    }

    /// Each folder must hold another copy of the database.
    public var check: CheckResult {
        let article = "aeiou".contains(datastore.first ?? "x") ? "an" : "a"
        let short = folders.filter { $0.available < databaseBytes }
        let sizes = folders.map { "\($0.path) \(Self.bytes($0.available)) free" }.joined(separator: ", ")
        if short.isEmpty {
            return CheckResult(
                "disk space", .passed, "\(sizes), for \(article) \(datastore) database of \(Self.bytes(databaseBytes))")
        }
        return CheckResult(
            "disk space", .failed,
            "\(datastore)'s database is \(Self.bytes(databaseBytes)), more than is free under "
                + short.map { "\($0.path) (\(Self.bytes($0.available)))" }.joined(separator: ", ")
                + ": the backup, or the upgrade's copy of the data, would not fit")
    }

    static func bytes(_ count: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(count) B" : "\((value * 10).rounded() / 10) \(units[unit])"
    }
}

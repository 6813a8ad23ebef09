/// One member of MicroK8s' dqlite cluster, from the dqlite shell's
/// `.cluster` in JSON (`[{"ID":…,"Address":"10.0.0.11:19001","Role":0}]`;
/// DISTRIBUTIONS.md §1.6). Roles: 0 voter, 1 stand-by, 2 spare; only voters
/// make up quorum.
public struct DqliteMember: Sendable, Equatable {
    public enum Role: Int, Sendable, Equatable {
        case voter = 0
        case standBy = 1
        case spare = 2

        var word: String {
            switch self {
            case .voter: "voter"
            case .standBy: "stand-by"
            case .spare: "spare"
            }
        }
    }

    /// `10.0.0.11:19001`.
    public var address: String
    public var role: Role

    public init(address: String, role: Role) {
        self.address = address
        self.role = role
    }

    /// The host part of ``address`` (brackets of an IPv6 address removed).
    public var host: String {
        guard let colon = address.lastIndex(of: ":") else { return address }
        let host = address[..<colon]
        return host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : String(host)
    }

    /// The JSON array `.cluster -f json` prints; a member without an
    /// address or with a role dqlite does not define fails the read.
    public static func list(json text: String) throws(PlanError) -> [DqliteMember] {
        guard let value = try? JSONValue.parse(text), let entries = value.arrayValue, !entries.isEmpty else {
            throw PlanError("dqlite .cluster printed no members: \(text.prefix(200))")
        }
        var members: [DqliteMember] = []
        for entry in entries {
            guard let address = entry[["Address"]]?.stringValue, !address.isEmpty,
                let number = entry[["Role"]]?.intValue, let role = Role(rawValue: number)
            else { throw PlanError("dqlite .cluster printed a member without an address or a known role: \(entry)") }
            members.append(DqliteMember(address: address, role: role))
        }
        return members
    }

    /// The voters' health for the quorum gate. dqlite's `.cluster` is its
    /// membership, not liveness: a voter counts as healthy when the cluster
    /// has a leader (`.leader` printed an address) and the node at its
    /// address is Ready through the API (kubelite runs the API server, the
    /// kubelet and dqlite in one process, so a node whose dqlite is down is
    /// not Ready). Stand-bys and spares do not vote and are only noted.
    public static func health(_ members: [DqliteMember], leader: String?, nodes: [NodeFacts]) -> DatastoreHealth {
        let voters = members.filter { $0.role == .voter }
        var named: [DatastoreMember] = []
        var endpoints: [DatastoreHealth.Endpoint] = []
        for voter in voters {
            let node = nodes.first { $0.internalIP == voter.host }
            named.append(DatastoreMember(name: node?.name ?? "", clientURLs: [voter.address]))
            let error: String? =
                if leader == nil { "the cluster has no dqlite leader" } else if let node {
                    node.isReady ? nil : "\(node.name) is not Ready (\(node.readiness))"
                } else { "no node has the address \(voter.host)" }
            endpoints.append(DatastoreHealth.Endpoint(url: voter.address, healthy: error == nil, error: error))
        }
        var health = DatastoreHealth(healthy: [], unhealthy: [], members: named)
        health.endpoints = endpoints
        health.datastore = "dqlite"
        let others = members.filter { $0.role != .voter }
        if !others.isEmpty {
            health.notes.append(
                "not voting: "
                    + others.map { member in
                        let name = nodes.first { $0.internalIP == member.host }?.name ?? member.address
                        return "\(name) (\(member.role.word))"
                    }.joined(separator: ", "))
        }
        if leader == nil { health.notes.append("no leader") }
        return health
    }

    /// `.leader`'s output: the leader's address, or `nil` when it printed none.
    public static func leader(_ text: String) -> String? {
        let address = text.split(whereSeparator: \.isWhitespace).first.map(String.init)
        return address.flatMap { $0.contains(":") ? $0 : nil }
    }
}

/// `snap list <snap>` (`Name  Version  Rev  Tracking  Publisher  Notes`)
/// and `snap version`: whether snapd holds the snap's refreshes, and
/// whether snapd is new enough to hold one snap (2.58).
public struct SnapList: Sendable, Equatable {
    public struct Row: Sendable, Equatable {
        public var name: String
        public var version: String
        public var revision: Int?
        public var tracking: String
        /// `classic,held`: the Notes column split at commas.
        public var notes: [String]
    }

    public var rows: [Row]

    public init(parsing output: String) {
        rows = output.split(whereSeparator: \.isNewline).dropFirst().compactMap { line in
            let words = line.split(whereSeparator: \.isWhitespace).map(String.init)
            guard words.count >= 6 else { return nil }
            return Row(
                name: words[0], version: words[1], revision: Int(words[2]), tracking: words[3],
                notes: words[5].split(separator: ",").map(String.init))
        }
    }

    public func row(_ snap: String) -> Row? { rows.first { $0.name == snap } }

    /// The snap is listed with `held` in its notes.
    public func isHeld(_ snap: String) -> Bool { row(snap)?.notes.contains("held") == true }

    /// The oldest snapd whose `snap refresh --hold <snap>` holds one snap.
    public static let holdSnapd = [2, 58]

    /// snapd's version from `snap version` (`snapd  2.63+24.04`), as numbers.
    public static func snapdVersion(_ output: String) -> [Int]? {
        for line in output.split(whereSeparator: \.isNewline) {
            let words = line.split(whereSeparator: \.isWhitespace)
            guard words.first == "snapd", words.count >= 2 else { continue }
            let numbers = words[1].prefix { $0.isNumber || $0 == "." }.split(separator: ".").compactMap { Int($0) }
            return numbers.isEmpty ? nil : numbers
        }
        return nil
    }

    /// Whether `snap version`'s snapd can hold one snap.
    public static func canHold(snapVersion output: String) -> Bool {
        guard let version = snapdVersion(output) else { return false }
        return version.lexicographicallyPrecedes(holdSnapd) == false
    }
}

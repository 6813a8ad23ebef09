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

/// `etcdctl endpoint health --cluster -w json`: each member's health.
public struct EtcdHealth: Sendable, Equatable {
    public var healthy: [String]
    public var unhealthy: [String]

    public init(healthy: [String], unhealthy: [String]) {
        self.healthy = healthy
        self.unhealthy = unhealthy
    }

    public init(json text: String) throws(PlanError) {
        guard let value = try? JSONValue.parse(text), let entries = value.arrayValue, !entries.isEmpty else {
            throw PlanError("etcdctl endpoint health printed no endpoints: \(text.prefix(200))")
        }
        var healthy: [String] = []
        var unhealthy: [String] = []
        for entry in entries {
            let endpoint = entry[["endpoint"]]?.stringValue ?? "?"
            if entry[["health"]]?.boolValue == true {
                healthy.append(endpoint)
            } else {
                unhealthy.append(endpoint + (entry[["error"]]?.stringValue.map { ": \($0)" } ?? ""))
            }
        }
        self.init(healthy: healthy, unhealthy: unhealthy)
    }

    /// A majority of members answers healthy.
    public var hasQuorum: Bool { healthy.count * 2 > healthy.count + unhealthy.count }

    public var summary: String {
        let total = healthy.count + unhealthy.count
        let base = "\(healthy.count) of \(total) members healthy"
        return unhealthy.isEmpty ? base : base + "; unhealthy: " + unhealthy.joined(separator: ", ")
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

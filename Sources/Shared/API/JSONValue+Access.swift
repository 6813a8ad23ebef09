/// Reading JSON trees: values at key paths and typed views of leaves.
extension JSONValue {
    /// The value at `path` (`["spec", "unschedulable"]`), `nil` when absent.
    public subscript(path: [String]) -> JSONValue? {
        get {
            var current = self
            for key in path {
                guard case .object(let fields) = current, let next = fields[key] else { return nil }
                current = next
            }
            return current
        }
        set {
            guard let key = path.first else {
                self = newValue ?? .null
                return
            }
            var fields: [String: JSONValue]
            if case .object(let existing) = self { fields = existing } else { fields = [:] }
            if path.count == 1 {
                fields[key] = newValue
            } else {
                var child = fields[key] ?? .object([:])
                child[Array(path.dropFirst())] = newValue
                fields[key] = child
            }
            self = .object(fields)
        }
    }

    /// The value at a dotted path (`"metadata.name"`).
    public subscript(dotted path: String) -> JSONValue? {
        get { self[path.split(separator: ".").map(String.init)] }
        set { self[path.split(separator: ".").map(String.init)] = newValue }
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    public var intValue: Int? {
        if case .number(let value) = self, value == value.rounded(), abs(value) < 1e15 { return Int(value) }
        return nil
    }

    public var doubleValue: Double? {
        if case .number(let value) = self { return value }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let value) = self { return value }
        return nil
    }

    /// The string map at `path` (labels, annotations); empty when absent.
    public func stringMap(_ path: String) -> [String: String] {
        (self[dotted: path]?.objectValue ?? [:]).compactMapValues(\.stringValue)
    }

}

extension StringProtocol {
    /// The text without leading and trailing spaces, tabs and line breaks.
    public func trimmingWhitespace() -> String {
        guard let start = firstIndex(where: { !$0.isWhitespace }), let end = lastIndex(where: { !$0.isWhitespace })
        else {
            return ""
        }
        return String(self[start...end])
    }
}

/// Kubernetes object names.
public enum ObjectName {
    /// Whether `name` is a DNS-1123 subdomain, the form node names take: at
    /// most 253 characters, dot-separated labels of lower-case letters,
    /// digits and inner hyphens.
    public static func isDNS1123Subdomain(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            guard let first = label.first, let last = label.last, label.count <= 63 else { return false }
            let allowed = label.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" }
            return allowed && first != "-" && last != "-"
        }
    }
}

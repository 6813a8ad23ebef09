import Shared

/// Kubernetes objects are kept as JSON trees: clients patch arbitrary
/// fields, and a tree takes any patch and renders back exactly.
extension JSONValue {
    /// The value at `path` (`["spec", "unschedulable"]`), `nil` when absent.
    subscript(path: [String]) -> JSONValue? {
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
    subscript(dotted path: String) -> JSONValue? {
        get { self[path.split(separator: ".").map(String.init)] }
        set { self[path.split(separator: ".").map(String.init)] = newValue }
    }

    var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    var intValue: Int? {
        if case .number(let value) = self, value == value.rounded(), abs(value) < 1e15 { return Int(value) }
        return nil
    }

    var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    var objectValue: [String: JSONValue]? {
        if case .object(let value) = self { return value }
        return nil
    }

    /// The string map at `path` (labels, annotations); empty when absent.
    func stringMap(_ path: String) -> [String: String] {
        (self[dotted: path]?.objectValue ?? [:]).compactMapValues(\.stringValue)
    }

    /// RFC 7386 JSON merge patch: objects merge key by key, `null` deletes,
    /// everything else (arrays included) replaces.
    func merging(patch: JSONValue) -> JSONValue {
        guard case .object(let patchFields) = patch else { return patch }
        var fields = objectValue ?? [:]
        for (key, value) in patchFields {
            if case .null = value {
                fields[key] = nil
            } else {
                fields[key] = (fields[key] ?? .null).merging(patch: value)
            }
        }
        return .object(fields)
    }

    /// A strategic merge patch, as far as the simulator needs one: like a
    /// merge patch, except that lists of conditions and addresses merge by
    /// their `type` key, as Kubernetes declares for those fields.
    func mergingStrategic(patch: JSONValue, path: [String] = []) -> JSONValue {
        guard case .object(let patchFields) = patch else {
            if case .array(let items) = patch, case .array(let existing) = self,
                ["conditions", "addresses"].contains(path.last ?? "")
            {
                return .array(Self.mergeByType(existing, items))
            }
            return patch
        }
        var fields = objectValue ?? [:]
        for (key, value) in patchFields where !key.hasPrefix("$") {
            if case .null = value {
                fields[key] = nil
            } else {
                fields[key] = (fields[key] ?? .null).mergingStrategic(patch: value, path: path + [key])
            }
        }
        return .object(fields)
    }

    private static func mergeByType(_ existing: [JSONValue], _ patch: [JSONValue]) -> [JSONValue] {
        var result = existing
        for item in patch {
            let type = item[["type"]]
            if let index = result.firstIndex(where: { $0[["type"]] == type && type != nil }) {
                result[index] = result[index].merging(patch: item)
            } else {
                result.append(item)
            }
        }
        return result
    }
}

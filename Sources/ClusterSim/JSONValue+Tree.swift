import Shared

/// Kubernetes objects are kept as JSON trees: clients patch arbitrary
/// fields, and a tree takes any patch and renders back exactly.
extension JSONValue {
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

public import FoundationEssentials

/// The body of `POST /execute`: which release to move the cluster to and how.
///
/// ```json
/// {"target_version": "1.34.5", "kind": "patch", "dry_run": false, "stages": "all"}
/// ```
/// `target_version` and `kind` are required; `dry_run` defaults to `false`
/// and `stages` to `"all"`. Unknown fields and wrong types are refused.
public struct ExecuteRequest: Sendable, Equatable {
    /// The release to reach; always exactly `X.Y.Z`.
    public var targetVersion: KubeVersion
    /// Patch (same minor) or minor (next minor, with the repository rewrite).
    public var kind: UpgradeKind
    /// Perform every read, record every write instead of making it.
    public var dryRun: Bool
    /// The stages to run.
    public var stages: StageSelection

    public init(targetVersion: KubeVersion, kind: UpgradeKind, dryRun: Bool = false, stages: StageSelection = .all) {
        self.targetVersion = targetVersion
        self.kind = kind
        self.dryRun = dryRun
        self.stages = stages
    }

    /// The JSON field names, in the order they are documented.
    public static let fieldNames = ["target_version", "kind", "dry_run", "stages"]

    /// Decodes and validates a request body.
    ///
    /// - Throws: ``RequestValidationError`` naming the field and the rule
    ///   for malformed JSON, a body that is not an object, unknown fields,
    ///   wrong types, a version that is not `X.Y.Z`, an unknown kind or stage.
    public init(json body: Data) throws(RequestValidationError) {
        let document: JSONValue
        do {
            document = try JSONValue(parsing: body)
        } catch {
            throw RequestValidationError(field: "body", rule: "must be valid JSON")
        }
        guard case let .object(fields) = document else {
            throw RequestValidationError(field: "body", rule: "must be a JSON object, got \(document.typeName)")
        }
        if let unknown = fields.keys.filter({ !Self.fieldNames.contains($0) }).sorted().first {
            throw RequestValidationError(
                field: unknown, rule: "unknown field; allowed: \(Self.fieldNames.joined(separator: ", "))")
        }

        let versionText = try Self.string(fields, "target_version", required: true)!
        do {
            targetVersion = try KubeVersion(strictRelease: versionText)
        } catch {
            throw RequestValidationError(
                field: "target_version",
                rule:
                    "must be X.Y.Z, three numbers without leading zeros like 1.34.5, or a K3s release like "
                    + "1.34.5+k3s1 (got \"\(versionText)\")")
        }

        let kindText = try Self.string(fields, "kind", required: true)!
        guard let kind = UpgradeKind(rawValue: kindText) else {
            throw RequestValidationError(field: "kind", rule: "must be \"patch\" or \"minor\" (got \"\(kindText)\")")
        }
        self.kind = kind

        switch fields["dry_run"] {
        case nil: dryRun = false
        case let .bool(value)?: dryRun = value
        case let other?:
            throw RequestValidationError(field: "dry_run", rule: "must be a boolean, got \(other.typeName)")
        }

        if let stagesText = try Self.string(fields, "stages", required: false) {
            stages = try StageSelection(parsing: stagesText)
        } else {
            stages = .all
        }
    }

    private static func string(
        _ fields: [String: JSONValue], _ name: String, required: Bool
    ) throws(RequestValidationError)
        -> String?
    {
        switch fields[name] {
        case nil:
            if required { throw RequestValidationError(field: name, rule: "is required") }
            return nil
        case let .string(value)?:
            return value
        case let other?:
            throw RequestValidationError(field: name, rule: "must be a string, got \(other.typeName)")
        }
    }

    /// The request as a JSON body, every field written out.
    public func jsonBody() -> Data {
        let document: [String: JSONValue] = [
            "target_version": .string(targetVersion.description),
            "kind": .string(kind.rawValue),
            "dry_run": .bool(dryRun),
            "stages": .string(stages.description),
        ]
        return Data(JSONValue.object(document).jsonBytes)
    }
}

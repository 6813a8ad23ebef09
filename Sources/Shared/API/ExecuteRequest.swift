public import FoundationEssentials

/// The body of `POST /execute`: which release to move the cluster to and how.
///
/// ```json
/// {"target_version": "1.34.5", "kind": "patch", "dry_run": false, "stages": "all"}
/// ```
/// `target_version` and `kind` are required; `dry_run` defaults to `false`
/// and `stages` to `"all"`. Unknown fields and wrong types are refused.
///
/// A rollback job's request (made by `POST /jobs/{id}/rollback`, never
/// taken by `/execute`) also names the node and the job it undoes:
/// `"rollback": {"job": 3, "node": "worker-2"}`, with the node's release
/// before that job as `target_version`.
public struct ExecuteRequest: Sendable, Equatable {
    /// One node taken back to its release before an upgrade job.
    public struct Rollback: Sendable, Equatable {
        /// The upgrade job whose change of the node is undone.
        public var job: Int64
        public var node: String

        public init(job: Int64, node: String) {
            self.job = job
            self.node = node
        }

        /// `{"job": 3, "node": "worker-2"}`.
        public var json: JSONValue { .object(["job": .number(Double(job)), "node": .string(node)]) }
    }

    /// The release to reach; always exactly `X.Y.Z`.
    public var targetVersion: KubeVersion
    /// Patch (same minor) or minor (next minor, with the repository rewrite).
    public var kind: UpgradeKind
    /// Perform every read, record every write instead of making it.
    public var dryRun: Bool
    /// The stages to run.
    public var stages: StageSelection
    /// Set for a rollback job: the node it takes back, and the job it undoes.
    public var rollback: Rollback?
    /// Run although the drain forecast found blockers (pre-flight warns
    /// instead of failing); the job meets them when it gets there.
    public var acceptBlockers: Bool

    public init(
        targetVersion: KubeVersion, kind: UpgradeKind, dryRun: Bool = false, stages: StageSelection = .all,
        rollback: Rollback? = nil, acceptBlockers: Bool = false
    ) {
        self.targetVersion = targetVersion
        self.kind = kind
        self.dryRun = dryRun
        self.stages = stages
        self.rollback = rollback
        self.acceptBlockers = acceptBlockers
    }

    /// `patch upgrade to 1.34.5`, or `rollback of worker-2 to 1.34.3 (undoing job 3)`.
    public var title: String {
        guard let rollback else { return "\(kind.rawValue) upgrade to \(targetVersion)" }
        return "rollback of \(rollback.node) to \(targetVersion) (undoing job \(rollback.job))"
    }

    /// The JSON field names, in the order they are documented.
    public static let fieldNames = ["target_version", "kind", "dry_run", "stages", "rollback", "accept_blockers"]

    /// Decodes and validates a request body.
    ///
    /// - Throws: ``RequestValidationError`` naming the field and the rule
    ///   for malformed JSON, a body that is not an object, unknown fields,
    ///   wrong types, a version that is not `X.Y.Z`, an unknown kind or stage.
    public init(json body: Data) throws(RequestValidationError) {
        let fields = try RequestValidationError.fields(of: body, allowed: Self.fieldNames)

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

        switch fields["accept_blockers"] {
        case nil: acceptBlockers = false
        case let .bool(value)?: acceptBlockers = value
        case let other?:
            throw RequestValidationError(field: "accept_blockers", rule: "must be a boolean, got \(other.typeName)")
        }

        if let stagesText = try Self.string(fields, "stages", required: false) {
            stages = try StageSelection(parsing: stagesText)
        } else {
            stages = .all
        }

        switch fields["rollback"] {
        case nil: rollback = nil
        case let .object(rollbackFields)?:
            if let unknown = rollbackFields.keys.filter({ !["job", "node"].contains($0) }).sorted().first {
                throw RequestValidationError(field: "rollback.\(unknown)", rule: "unknown field; allowed: job, node")
            }
            guard let job = rollbackFields["job"]?.intValue, job > 0 else {
                throw RequestValidationError(field: "rollback.job", rule: "must be a positive integer job id")
            }
            guard case let .string(node)? = rollbackFields["node"], ObjectName.isDNS1123Subdomain(node) else {
                throw RequestValidationError(field: "rollback.node", rule: "must be a node name (DNS-1123 subdomain)")
            }
            rollback = Rollback(job: Int64(job), node: node)
        case let other?:
            throw RequestValidationError(field: "rollback", rule: "must be an object, got \(other.typeName)")
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

    /// The request as a JSON body, every field written out (`rollback` only when set).
    public func jsonBody() -> Data {
        var document: [String: JSONValue] = [
            "target_version": .string(targetVersion.description),
            "kind": .string(kind.rawValue),
            "dry_run": .bool(dryRun),
            "stages": .string(stages.description),
        ]
        if let rollback {
            document["rollback"] = rollback.json
        }
        if acceptBlockers { document["accept_blockers"] = .bool(true) }
        return Data(JSONValue.object(document).jsonBytes)
    }
}

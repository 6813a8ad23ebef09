public import FoundationEssentials

/// The body of `POST /jobs/{id}/rollback`: the node to take back to its
/// release before job `id`.
///
/// ```json
/// {"node": "worker-2", "dry_run": false, "confirm_restore": false}
/// ```
/// `node` is required; `dry_run` defaults to `false`; `confirm_restore`
/// (default `false`) must be `true` to take a control plane back, which
/// restores the datastore from the job's snapshot. Unknown fields and wrong
/// types are refused.
public struct RollbackRequest: Sendable, Equatable {
    public var node: String
    public var dryRun: Bool
    /// The operator agrees that the datastore goes back to the job's
    /// snapshot, losing every change since.
    public var confirmRestore: Bool

    public init(node: String, dryRun: Bool = false, confirmRestore: Bool = false) {
        self.node = node
        self.dryRun = dryRun
        self.confirmRestore = confirmRestore
    }

    public static let fieldNames = ["node", "dry_run", "confirm_restore"]

    /// - Throws: ``RequestValidationError`` naming the field and the rule.
    public init(json body: Data) throws(RequestValidationError) {
        let fields = try RequestValidationError.fields(of: body, allowed: Self.fieldNames)
        switch fields["node"] {
        case nil: throw RequestValidationError(field: "node", rule: "is required")
        case let .string(name)? where ObjectName.isDNS1123Subdomain(name): node = name
        case let .string(name)?:
            throw RequestValidationError(
                field: "node", rule: "must be a node name (DNS-1123 subdomain), got \"\(name)\"")
        case let other?: throw RequestValidationError(field: "node", rule: "must be a string, got \(other.typeName)")
        }
        switch fields["dry_run"] {
        case nil: dryRun = false
        case let .bool(value)?: dryRun = value
        case let other?:
            throw RequestValidationError(field: "dry_run", rule: "must be a boolean, got \(other.typeName)")
        }
        switch fields["confirm_restore"] {
        case nil: confirmRestore = false
        case let .bool(value)?: confirmRestore = value
        case let other?:
            throw RequestValidationError(field: "confirm_restore", rule: "must be a boolean, got \(other.typeName)")
        }
    }

    public func jsonBody() -> Data {
        Data(
            JSONValue.object([
                "node": .string(node), "dry_run": .bool(dryRun), "confirm_restore": .bool(confirmRestore),
            ]).jsonBytes)
    }
}

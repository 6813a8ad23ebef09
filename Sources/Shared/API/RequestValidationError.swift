/// A request refused because one field breaks a rule. The HTTP layer turns it
/// into a 400 whose message names the field and the rule.
public struct RequestValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The JSON field at fault, or `body` for the document as a whole.
    public let field: String
    /// The rule it breaks, in words.
    public let rule: String

    public init(field: String, rule: String) {
        self.field = field
        self.rule = rule
    }

    public var description: String { "\(field): \(rule)" }

    /// The fields of a request body that must be a JSON object whose field
    /// names are all among `allowed` (the first unknown one, by name, is refused).
    public static func fields(
        of body: some Sequence<UInt8>, allowed: [String]
    ) throws(RequestValidationError) -> [String: JSONValue] {
        guard let document = try? JSONValue(parsing: body) else {
            throw RequestValidationError(field: "body", rule: "must be valid JSON")
        }
        guard case let .object(fields) = document else {
            throw RequestValidationError(field: "body", rule: "must be a JSON object, got \(document.typeName)")
        }
        if let unknown = fields.keys.filter({ !allowed.contains($0) }).sorted().first {
            throw RequestValidationError(
                field: unknown, rule: "unknown field; allowed: \(allowed.joined(separator: ", "))")
        }
        return fields
    }
}

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
}

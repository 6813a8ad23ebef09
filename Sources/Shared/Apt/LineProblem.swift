/// A line of outside-world text that a parser could not use, kept so that
/// the caller can report it instead of silently dropping it.
public struct LineProblem: Sendable, Equatable, CustomStringConvertible {
    /// 1-based line number in the parsed text.
    public let line: Int
    /// The offending line as read (trimmed of its line break).
    public let text: String
    /// Why it was not used.
    public let reason: String

    public init(line: Int, text: String, reason: String) {
        self.line = line
        self.text = text
        self.reason = reason
    }

    public var description: String { "line \(line): \(reason): \"\(text)\"" }
}

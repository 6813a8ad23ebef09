/// The one place where values become shell words. Everything the
/// orchestrator sends to a node's shell is built from validated values and
/// quoted here.
public enum Shell {
    /// `word` as one POSIX shell word: bare when it holds only safe
    /// characters, otherwise in single quotes with embedded quotes escaped.
    public static func quote(_ word: String) -> String {
        let safe =
            !word.isEmpty
            && word.utf8.allSatisfy { byte in
                (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte)
                    || "-._/=:,+@%".utf8.contains(byte)
            }
        if safe { return word }
        return "'" + word.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }

    /// A command line from words, each quoted.
    public static func command(_ words: [String]) -> String {
        words.map(quote).joined(separator: " ")
    }
}

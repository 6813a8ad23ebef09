import FoundationEssentials

/// Cuts a byte stream into lines as it arrives; the last, unterminated line
/// comes out when the stream ends.
struct LineSplitter {
    private var pending = Data()

    /// Adds bytes and returns the lines they complete (without `\n` or `\r\n`).
    mutating func append(_ bytes: Data) -> [String] {
        pending.append(bytes)
        var lines: [String] = []
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            var line = pending[pending.startIndex..<newline]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            lines.append(String(decoding: line, as: UTF8.self))
            pending = Data(pending[pending.index(after: newline)...])
        }
        return lines
    }

    /// The unterminated rest, if any.
    mutating func finish() -> String? {
        defer { pending = Data() }
        return pending.isEmpty ? nil : String(decoding: pending, as: UTF8.self)
    }
}

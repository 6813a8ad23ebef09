/// Reads the YAML that kubeconfig files are written in, into a JSON tree.
///
/// The subset kubectl, kubeadm and client-go write: block mappings and
/// sequences (including `- key: value` items), flow mappings and sequences
/// (`{cluster: a, user: b}`, `[a, b]`), plain, single- and double-quoted
/// scalars, comments and `---`. A document that starts with `{` is read as
/// JSON. Anything else (anchors, block scalars, multi-line scalars, tabs)
/// is refused with the line it is on, never guessed at. Plain scalars stay
/// strings except `true`, `false`, `null` and `~`.
public enum KubeconfigYAML {
    /// Why a document was refused.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public let line: Int
        public let message: String
        public var description: String { "line \(line): \(message)" }
    }

    public static func parse(_ text: String) throws(ParseError) -> JSONValue {
        let body = text.trimmingWhitespace()
        if body.hasPrefix("{") {
            var reader = FlowReader(text: Substring(body), line: 1)
            let value = try reader.value()
            reader.skipSpaces()
            guard reader.isAtEnd else {
                throw ParseError(line: reader.line, message: "unexpected text after the document")
            }
            return value
        }
        var parser = BlockParser(lines: try Self.lines(text))
        guard !parser.lines.isEmpty else { return .object([:]) }
        let value = try parser.node(indent: parser.lines[0].indent)
        if parser.index < parser.lines.count {
            throw ParseError(line: parser.lines[parser.index].number, message: "unexpected indentation")
        }
        return value
    }

    struct Line {
        let number: Int
        var indent: Int
        var content: Substring
    }

    /// Splits into meaningful lines: no blanks, comments or document markers.
    private static func lines(_ text: String) throws(ParseError) -> [Line] {
        var result: [Line] = []
        for (offset, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let number = offset + 1
            let indentation = raw.prefix { $0 == " " || $0 == "\t" }
            if indentation.contains("\t") { throw ParseError(line: number, message: "tabs cannot indent YAML") }
            var content = raw.dropFirst(indentation.count)
            content = stripComment(content)
            while content.last == " " || content.last == "\t" { content = content.dropLast() }
            if content.isEmpty || content == "---" || content == "..." { continue }
            if content.hasPrefix("%") { continue }  // directives
            result.append(Line(number: number, indent: indentation.count, content: content))
        }
        return result
    }

    /// Removes a `#` comment that is not inside quotes.
    private static func stripComment(_ text: Substring) -> Substring {
        var quote: Character?
        var previous: Character = " "
        for index in text.indices {
            let character = text[index]
            if let open = quote {
                if character == open { quote = nil }
            } else if character == "'" || character == "\"" {
                quote = character
            } else if character == "#" && (previous == " " || previous == "\t" || index == text.startIndex) {
                return text[..<index]
            }
            previous = character
        }
        return text
    }

    // MARK: - Block structure

    struct BlockParser {
        var lines: [Line]
        var index = 0

        mutating func node(indent: Int) throws(ParseError) -> JSONValue {
            let line = lines[index]
            if isSequenceItem(line.content) { return try sequence(indent: indent) }
            if splitKey(line.content) != nil { return try mapping(indent: indent) }
            index += 1
            return try scalarOrFlow(line.content, line: line.number)
        }

        private func isSequenceItem(_ content: Substring) -> Bool {
            content == "-" || content.hasPrefix("- ")
        }

        private mutating func mapping(indent: Int) throws(ParseError) -> JSONValue {
            var fields: [String: JSONValue] = [:]
            while index < lines.count, lines[index].indent == indent, !isSequenceItem(lines[index].content) {
                let line = lines[index]
                guard let (key, rest) = splitKey(line.content) else {
                    throw ParseError(line: line.number, message: "expected \"key: value\"")
                }
                guard fields[key] == nil else {
                    throw ParseError(line: line.number, message: "duplicate key \"\(key)\"")
                }
                index += 1
                if !rest.isEmpty {
                    fields[key] = try scalarOrFlow(rest, line: line.number)
                } else if index < lines.count, lines[index].indent > indent {
                    fields[key] = try node(indent: lines[index].indent)
                } else if index < lines.count, lines[index].indent == indent, isSequenceItem(lines[index].content) {
                    fields[key] = try sequence(indent: indent)
                } else {
                    fields[key] = .null
                }
            }
            if index < lines.count, lines[index].indent > indent {
                throw ParseError(line: lines[index].number, message: "unexpected indentation")
            }
            return .object(fields)
        }

        private mutating func sequence(indent: Int) throws(ParseError) -> JSONValue {
            var items: [JSONValue] = []
            while index < lines.count, lines[index].indent == indent, isSequenceItem(lines[index].content) {
                let line = lines[index]
                let rest = line.content.dropFirst().drop { $0 == " " }
                if rest.isEmpty {
                    index += 1
                    if index < lines.count, lines[index].indent > indent {
                        items.append(try node(indent: lines[index].indent))
                    } else {
                        items.append(.null)
                    }
                } else if splitKey(rest) != nil || isSequenceItem(rest) {
                    // `- key: value` opens a mapping whose keys line up after the dash.
                    let column = indent + (line.content.count - rest.count)
                    lines[index] = Line(number: line.number, indent: column, content: rest)
                    items.append(try node(indent: column))
                } else {
                    index += 1
                    items.append(try scalarOrFlow(rest, line: line.number))
                }
            }
            return .array(items)
        }

        /// `key: value` or `key:` (outside quotes and flow brackets).
        func splitKey(_ content: Substring) -> (String, Substring)? {
            if content.first == "{" || content.first == "[" { return nil }
            var quote: Character?
            var index = content.startIndex
            if let first = content.first, first == "\"" || first == "'" {
                quote = first
                index = content.index(after: index)
                while index < content.endIndex, content[index] != first { index = content.index(after: index) }
                guard index < content.endIndex else { return nil }
                index = content.index(after: index)
                quote = nil
            }
            while index < content.endIndex {
                if quote == nil, content[index] == ":" {
                    let next = content.index(after: index)
                    if next == content.endIndex || content[next] == " " {
                        let rawKey = content[..<index].trimmingWhitespace()
                        guard !rawKey.isEmpty,
                            let key = try? scalarOrFlow(Substring(rawKey), line: 0).stringValue ?? rawKey
                        else { return nil }
                        let rest = next == content.endIndex ? Substring("") : content[content.index(after: next)...]
                        return (key, Substring(rest.trimmingWhitespace()))
                    }
                }
                index = content.index(after: index)
            }
            return nil
        }

        func scalarOrFlow(_ text: Substring, line: Int) throws(ParseError) -> JSONValue {
            guard let first = text.first else { return .null }
            switch first {
            case "{", "[", "\"", "'":
                var reader = FlowReader(text: text, line: line)
                let value = try reader.value()
                reader.skipSpaces()
                guard reader.isAtEnd else { throw ParseError(line: line, message: "unexpected text after a value") }
                return value
            case "|", ">":
                throw ParseError(line: line, message: "block scalars (| and >) are not supported in a kubeconfig")
            case "&", "*", "!":
                throw ParseError(line: line, message: "anchors, aliases and tags are not supported in a kubeconfig")
            default:
                return plain(String(text))
            }
        }
    }

    static func plain(_ text: String) -> JSONValue {
        switch text {
        case "true", "True", "TRUE": .bool(true)
        case "false", "False", "FALSE": .bool(false)
        case "null", "Null", "NULL", "~": .null
        default: .string(text)
        }
    }

    // MARK: - Flow style and quoted scalars

    struct FlowReader {
        var text: Substring
        var line: Int
        var isAtEnd: Bool { text.isEmpty }

        mutating func skipSpaces() {
            while let first = text.first, first.isWhitespace {
                if first.isNewline { line += 1 }
                text = text.dropFirst()
            }
        }

        mutating func value() throws(ParseError) -> JSONValue {
            skipSpaces()
            guard let first = text.first else { throw ParseError(line: line, message: "missing value") }
            switch first {
            case "{": return try mapping()
            case "[": return try sequence()
            case "\"": return .string(try doubleQuoted())
            case "'": return .string(try singleQuoted())
            default:
                let token = text.prefix { !",]}".contains($0) && !$0.isNewline }
                text = text.dropFirst(token.count)
                let trimmed = token.trimmingWhitespace()
                if let number = Double(trimmed), trimmed.first.map({ $0.isNumber || $0 == "-" }) == true {
                    return .number(number)
                }
                return KubeconfigYAML.plain(trimmed)
            }
        }

        private mutating func mapping() throws(ParseError) -> JSONValue {
            text = text.dropFirst()
            var fields: [String: JSONValue] = [:]
            skipSpaces()
            if text.first == "}" {
                text = text.dropFirst()
                return .object(fields)
            }
            while true {
                skipSpaces()
                let key: String
                switch text.first {
                case "\"": key = try doubleQuoted()
                case "'": key = try singleQuoted()
                default:
                    let token = text.prefix { $0 != ":" && $0 != "," && $0 != "}" }
                    text = text.dropFirst(token.count)
                    key = token.trimmingWhitespace()
                }
                skipSpaces()
                guard text.first == ":" else {
                    throw ParseError(line: line, message: "expected \":\" after \"\(key)\"")
                }
                text = text.dropFirst()
                fields[key] = try value()
                skipSpaces()
                switch text.first {
                case ",": text = text.dropFirst()
                case "}":
                    text = text.dropFirst()
                    return .object(fields)
                default: throw ParseError(line: line, message: "expected \",\" or \"}\"")
                }
            }
        }

        private mutating func sequence() throws(ParseError) -> JSONValue {
            text = text.dropFirst()
            var items: [JSONValue] = []
            skipSpaces()
            if text.first == "]" {
                text = text.dropFirst()
                return .array(items)
            }
            while true {
                items.append(try value())
                skipSpaces()
                switch text.first {
                case ",": text = text.dropFirst()
                case "]":
                    text = text.dropFirst()
                    return .array(items)
                default: throw ParseError(line: line, message: "expected \",\" or \"]\"")
                }
            }
        }

        private mutating func doubleQuoted() throws(ParseError) -> String {
            text = text.dropFirst()
            var result = ""
            while let character = text.first {
                text = text.dropFirst()
                switch character {
                case "\"": return result
                case "\\":
                    guard let escaped = text.first else { break }
                    text = text.dropFirst()
                    switch escaped {
                    case "n": result.append("\n")
                    case "t": result.append("\t")
                    case "\\", "\"", "/": result.append(escaped)
                    default: throw ParseError(line: line, message: "unsupported escape \\\(escaped)")
                    }
                default: result.append(character)
                }
            }
            throw ParseError(line: line, message: "unterminated double-quoted string")
        }

        private mutating func singleQuoted() throws(ParseError) -> String {
            text = text.dropFirst()
            var result = ""
            while let character = text.first {
                text = text.dropFirst()
                if character == "'" {
                    if text.first == "'" {
                        result.append("'")
                        text = text.dropFirst()
                    } else {
                        return result
                    }
                } else {
                    result.append(character)
                }
            }
            throw ParseError(line: line, message: "unterminated single-quoted string")
        }
    }
}

/// The `text/event-stream` format (HTML Living Standard, "Server-sent
/// events"): what the service writes and what its clients read.
public enum ServerSentEvents {
    /// One message: `id`, then `event` (omitted for the default
    /// `message` type), then the data, one `data:` line per line of it,
    /// then a blank line.
    public static func encode(id: String? = nil, event: String? = nil, data: String) -> String {
        var text = ""
        if let id { text += "id: \(id)\n" }
        if let event { text += "event: \(event)\n" }
        for line in data.split(separator: "\n", omittingEmptySubsequences: false) {
            text += "data: \(line)\n"
        }
        return text + "\n"
    }

    /// A comment line, which every client ignores: a keepalive.
    public static let keepalive = ": keepalive\n\n"

    /// A message as a client sees it.
    public struct Message: Sendable, Equatable {
        public var id: String?
        public var event: String
        public var data: String

        public init(id: String? = nil, event: String = "message", data: String) {
            (self.id, self.event, self.data) = (id, event, data)
        }
    }

    /// Reads messages out of a stream as it arrives: feed it text as it
    /// comes (lines may be split anywhere), take the messages completed.
    public struct Parser: Sendable {
        private var buffer = ""
        private var id: String?
        private var event: String?
        private var data: [String] = []
        /// The last `id:` seen, which a reconnect sends as `Last-Event-ID`.
        public private(set) var lastEventID: String?

        public init() {}

        public mutating func feed(_ text: String) -> [Message] {
            buffer += text
            var messages: [Message] = []
            while let newline = buffer.firstIndex(where: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
                let line = String(buffer[..<newline])
                buffer.removeSubrange(...newline)
                if let message = take(line) { messages.append(message) }
            }
            return messages
        }

        private mutating func take(_ line: String) -> Message? {
            if line.isEmpty {
                defer { (id, event, data) = (nil, nil, []) }
                guard !data.isEmpty else { return nil }
                if let id { lastEventID = id }
                return Message(id: id ?? lastEventID, event: event ?? "message", data: data.joined(separator: "\n"))
            }
            if line.hasPrefix(":") { return nil }
            let field: Substring
            var value: Substring
            if let colon = line.firstIndex(of: ":") {
                field = line[..<colon]
                value = line[line.index(after: colon)...]
                if value.hasPrefix(" ") { value = value.dropFirst() }
            } else {
                (field, value) = (Substring(line), "")
            }
            switch field {
            case "id": id = String(value)
            case "event": event = String(value)
            case "data": data.append(String(value))
            default: break
            }
            return nil
        }
    }
}

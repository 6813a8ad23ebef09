/// A message about a job's progress, rendered for Slack's incoming
/// webhooks as Block Kit with a plain-text fallback.
public struct Notice: Sendable, Equatable {
    public enum Level: String, Sendable, Equatable {
        case info, success, warning, failure

        var mark: String {
            switch self {
            case .info: ":arrow_forward:"
            case .success: ":white_check_mark:"
            case .warning: ":warning:"
            case .failure: ":x:"
            }
        }
    }

    public var level: Level
    public var title: String
    public var lines: [String]
    public var jobID: Int64

    public init(_ level: Level, _ title: String, lines: [String] = [], jobID: Int64) {
        self.level = level
        self.title = title
        self.lines = lines
        self.jobID = jobID
    }

    /// The plain text: what notifications and old clients show.
    public var text: String {
        ([" \(level.mark) k8s-upgrade job \(jobID): \(title)"] + lines).joined(separator: "\n").trimmingWhitespace()
    }

    /// `{"text": …, "blocks": [header, section, context]}`. Slack limits a
    /// section to 3000 characters; longer bodies are cut with a note.
    public var slackPayload: JSONValue {
        var blocks: [JSONValue] = [
            .object([
                "type": .string("header"),
                "text": .object(["type": .string("plain_text"), "text": .string(String("\(title)".prefix(150)))]),
            ])
        ]
        if !lines.isEmpty {
            var body = lines.map(Self.escaped).joined(separator: "\n")
            if body.count > 2900 { body = String(body.prefix(2900)) + "\n… (cut; the job has every line)" }
            blocks.append(
                .object([
                    "type": .string("section"), "text": .object(["type": .string("mrkdwn"), "text": .string(body)]),
                ]))
        }
        blocks.append(
            .object([
                "type": .string("context"),
                "elements": .array([
                    .object(["type": .string("mrkdwn"), "text": .string("\(level.mark) k8s-upgrade job \(jobID)")])
                ]),
            ]))
        return .object(["text": .string(text), "blocks": .array(blocks)])
    }

    /// Slack's mrkdwn control characters.
    static func escaped(_ text: String) -> String {
        text.replacing("&", with: "&amp;").replacing("<", with: "&lt;").replacing(">", with: "&gt;")
    }
}

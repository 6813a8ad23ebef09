import FoundationEssentials
import Glibc

/// Structured logs: one JSON object a line on standard error, a fixed
/// message with the data in fields. Secrets are never passed to it.
public struct JSONLog: Sendable {
    /// Names the program in every line.
    public let component: String

    /// Whether lines are written; tests that run the service in-process turn it off.
    public let writes: Bool

    public init(component: String, writes: Bool = true) {
        self.component = component
        self.writes = writes
    }

    public func info(_ message: String, _ fields: [String: String] = [:]) { write("info", message, fields) }
    public func warning(_ message: String, _ fields: [String: String] = [:]) { write("warning", message, fields) }
    public func error(_ message: String, _ fields: [String: String] = [:]) { write("error", message, fields) }

    private func write(_ level: String, _ message: String, _ fields: [String: String]) {
        guard writes else { return }
        var object = fields
        object["level"] = level
        object["msg"] = message
        object["ts"] = Date().ISO8601Format()
        object["component"] = component
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(object) else { return }
        // One write(2) a line, so lines from concurrent tasks never interleave.
        let line = data + Data("\n".utf8)
        _ = line.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

import FoundationEssentials
import Glibc
public import Logging

/// swift-log's handler for this project: one JSON object a line on standard
/// error (`ts`, `level`, `msg`, `component`, then the metadata, keys
/// sorted), written with one write(2) so lines from concurrent tasks never
/// interleave. Secrets are never passed to a logger.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    /// Names the program in every line.
    let component: String

    public init(component: String, level: Logger.Level = .info) {
        self.component = component
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var object: [String: String] = [:]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
            object[key] = "\(value)"
        }
        object["level"] = Self.name(event.level)
        object["msg"] = "\(event.message)"
        object["ts"] = Date().ISO8601Format()
        object["component"] = component
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(object) else { return }
        let line = data + Data("\n".utf8)
        _ = line.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }

    /// `warning` rather than swift-log's `warning`/`notice` split: the levels operators filter on.
    static func name(_ level: Logger.Level) -> String {
        switch level {
        case .trace: "trace"
        case .debug: "debug"
        case .info, .notice: "info"
        case .warning: "warning"
        case .error, .critical: "error"
        }
    }
}

extension Logger {
    /// A logger for `component` writing JSON lines at `level` and above.
    public static func json(_ component: String, level: Logger.Level = .info) -> Logger {
        Logger(label: component) { _ in JSONLogHandler(component: component, level: level) }
    }

    /// A logger that writes nothing (tests that run the service in-process).
    public static let silent = Logger(label: "silent") { _ in SwiftLogNoOpLogHandler() }

    // The project's call shape: a fixed message, the data as string fields.
    public func info(_ message: String, _ fields: [String: String]) {
        info("\(message)", metadata: fields.mapValues { .string($0) })
    }
    public func warning(_ message: String, _ fields: [String: String]) {
        warning("\(message)", metadata: fields.mapValues { .string($0) })
    }
    public func error(_ message: String, _ fields: [String: String]) {
        error("\(message)", metadata: fields.mapValues { .string($0) })
    }
}

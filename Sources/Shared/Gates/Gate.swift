/// One alert as Prometheus reports it at `/api/v1/alerts`.
public struct Alert: Sendable, Equatable {
    public var labels: [String: String]
    /// `firing` or `pending`.
    public var state: String

    public init(labels: [String: String], state: String) {
        self.labels = labels
        self.state = state
    }

    public var name: String { labels["alertname"] ?? "(unnamed)" }

    /// Reads the alerts out of an `/api/v1/alerts` answer.
    public static func parse(alertsResponse document: JSONValue) throws(GateError) -> [Alert] {
        guard document[dotted: "status"]?.stringValue == "success" else {
            let error = document[dotted: "error"]?.stringValue ?? "no status \"success\""
            throw GateError("Prometheus answered with an error: \(error)")
        }
        guard let alerts = document[dotted: "data.alerts"]?.arrayValue else {
            throw GateError("Prometheus answer has no data.alerts list")
        }
        return alerts.map { alert in
            Alert(labels: alert.stringMap("labels"), state: alert[dotted: "state"]?.stringValue ?? "")
        }
    }
}

public struct GateError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Which alerts close the halt-on-alert gate: those whose labels match every
/// term of a selector (`upgrade_gate=true`, `severity!=info`), minus an
/// ignore list of alert names (by default `K8sVersionSkew`, which the rollout
/// itself causes).
public struct GateSelector: Sendable, Equatable, CustomStringConvertible {
    public struct Term: Sendable, Equatable {
        public var label: String
        public var value: String
        public var equal: Bool
    }

    public var terms: [Term]
    public var ignored: [String]

    public static let defaultSelector = "upgrade_gate=true"
    public static let defaultIgnored = ["K8sVersionSkew"]

    /// Reads `label=value` and `label!=value` terms separated by commas, and
    /// a list of alert names to ignore.
    public init(parsing text: String, ignoring ignored: [String] = GateSelector.defaultIgnored) throws(GateError) {
        var terms: [Term] = []
        for raw in text.split(separator: ",", omittingEmptySubsequences: true) {
            let term = raw.trimmingWhitespace()
            let equal: Bool
            let parts: [Substring]
            if term.contains("!=") {
                equal = false
                parts = term.split(separator: "!=", maxSplits: 1, omittingEmptySubsequences: false).map { $0 }
            } else {
                equal = true
                parts = term.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            }
            guard parts.count == 2, Self.isLabelName(String(parts[0])), !parts[1].contains("\"") else {
                throw GateError(
                    "gate selector term \"\(term)\" must be label=value or label!=value (label: [a-zA-Z_][a-zA-Z0-9_]*)"
                )
            }
            terms.append(Term(label: String(parts[0]), value: String(parts[1]), equal: equal))
        }
        guard !terms.isEmpty else { throw GateError("the gate selector needs at least one label=value term") }
        for name in ignored where !Self.isLabelName(name) {
            throw GateError("ignored alert \"\(name)\" is not a valid alert name")
        }
        self.terms = terms
        self.ignored = ignored
    }

    public func matches(_ alert: Alert) -> Bool {
        guard !ignored.contains(alert.name) else { return false }
        return terms.allSatisfy { term in (alert.labels[term.label] ?? "" == term.value) == term.equal }
    }

    /// The PromQL that is non-empty when a gate alert fired at any time in
    /// the last `hours` hours (the quiet-period check).
    public func quietPeriodQuery(hours: Int) -> String {
        var matchers = ["alertstate=\"firing\""]
        matchers += terms.map { "\($0.label)\($0.equal ? "=" : "!=")\"\($0.value)\"" }
        if !ignored.isEmpty { matchers.append("alertname!~\"\(ignored.joined(separator: "|"))\"") }
        return "max_over_time(ALERTS{\(matchers.joined(separator: ","))}[\(hours)h])"
    }

    public var description: String {
        terms.map { "\($0.label)\($0.equal ? "=" : "!=")\($0.value)" }.joined(separator: ",")
    }

    static func isLabelName(_ text: String) -> Bool {
        guard let first = text.utf8.first, first == UInt8(ascii: "_") || isLetter(first) else { return false }
        return text.utf8.allSatisfy { $0 == UInt8(ascii: "_") || isLetter($0) || (48...57).contains($0) }
    }

    private static func isLetter(_ byte: UInt8) -> Bool { (65...90).contains(byte) || (97...122).contains(byte) }
}

/// Open, or closed and why.
public enum GateVerdict: Sendable, Equatable {
    case open
    case closed([String])

    /// Closed when any firing alert matches the selector. Pending alerts do
    /// not close the gate: they have not fired yet.
    public static func evaluate(_ alerts: [Alert], selector: GateSelector) -> GateVerdict {
        let blocking = alerts.filter { $0.state == "firing" && selector.matches($0) }
        guard !blocking.isEmpty else { return .open }
        let names = blocking.map { alert in
            let instance = alert.labels["instance"] ?? alert.labels["node"] ?? alert.labels["namespace"]
            return instance.map { "\(alert.name) (\($0))" } ?? alert.name
        }
        return .closed(Array(Set(names)).sorted())
    }

    /// `firing: A, B`, or `open`.
    public var summary: String {
        switch self {
        case .open: "open"
        case let .closed(names): "firing: \(names.joined(separator: ", "))"
        }
    }
}

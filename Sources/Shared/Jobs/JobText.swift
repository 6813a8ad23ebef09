public import FoundationEssentials

/// The CLI's text forms of the API's job JSON: one-line summaries, event
/// lines and the live view. Pure, so that the live view is tested by tables.
public enum JobText {
    public static func json(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(value)) ?? Data(), as: UTF8.self)
    }

    /// `running: patch upgrade to 1.34.5 (dry run), in workers on worker-2`
    public static func summaryLine(_ job: JSONValue) -> String {
        let state = job[dotted: "state"]?.stringValue ?? "?"
        var line = "\(state): \(request(job))"
        if let stage = job[dotted: "current_stage"]?.stringValue {
            line += ", in \(stage)"
            if let node = job[dotted: "current_node"]?.stringValue { line += " on \(node)" }
        }
        if let error = job[dotted: "error"]?.stringValue { line += "; error: \(error)" }
        return line
    }

    /// The lines of `text`, each cut to at most `width` characters (the last
    /// one then `…`), so that none wraps on a terminal that wide.
    public static func fitted(_ text: String, width: Int) -> [String] {
        let width = max(width, 2)
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.count <= width ? String(line) : line.prefix(width - 1) + "…"
        }
    }

    /// `12:00:01  preflight  worker-1  message`
    public static func eventLine(_ event: JSONValue) -> String {
        let time = clock(event[dotted: "time"]?.stringValue)
        let place = [event[dotted: "stage"]?.stringValue, event[dotted: "node"]?.stringValue]
            .compactMap { $0 }.joined(separator: " ")
        let kind = event[dotted: "kind"]?.stringValue ?? ""
        let message = event[dotted: "message"]?.stringValue ?? ""
        return "\(time)  \(place.isEmpty ? "-" : place)  \(marker(kind, message))\(message)"
    }

    /// The live view: state, stages, nodes, the current wait, the last error
    /// and the given events (the most recent ones).
    public static func render(_ job: JSONValue, events: [JSONValue]? = nil, now: Double) -> String {
        var lines: [String] = []
        let id = job[dotted: "id"]?.intValue ?? 0
        lines.append("job \(id)  \(job[dotted: "state"]?.stringValue ?? "?")  \(request(job))")
        let stages = (job[dotted: "stages"]?.arrayValue ?? []).map(item)
        if !stages.isEmpty { lines.append("stages  " + stages.joined(separator: "  ")) }
        let nodes = (job[dotted: "nodes"]?.arrayValue ?? []).map(item)
        if !nodes.isEmpty { lines.append("nodes   " + nodes.joined(separator: "  ")) }
        if let wait = job[dotted: "wait"], wait != .null {
            var text = "waiting for \(wait[dotted: "what"]?.stringValue ?? "")"
            if let reason = wait[dotted: "reason"]?.stringValue, !reason.isEmpty { text += ": \(reason)" }
            if let since = seconds(wait[dotted: "since"]?.stringValue) {
                text += " (\(duration(now - since))"
                if let deadline = seconds(wait[dotted: "deadline"]?.stringValue) {
                    text += " of \(duration(deadline - since))"
                }
                text += ")"
            }
            lines.append("wait    " + text)
        }
        if let error = job[dotted: "error"]?.stringValue { lines.append("error   " + error) }
        let shown = events ?? job[dotted: "events.items"]?.arrayValue ?? []
        if !shown.isEmpty {
            lines.append("events")
            lines += shown.map { "  " + eventLine($0) }
        }
        return lines.joined(separator: "\n")
    }

    /// `[ok] preflight 3 s`: a stage or a node, its status and its duration once known.
    static func item(_ entry: JSONValue) -> String {
        var text = "\(symbol(entry[dotted: "status"]?.stringValue ?? "")) \(entry[dotted: "name"]?.stringValue ?? "")"
        if let seconds = entry[dotted: "duration_seconds"]?.doubleValue { text += " \(duration(seconds))" }
        return text
    }

    static func request(_ job: JSONValue) -> String {
        let kind = job[dotted: "request.kind"]?.stringValue ?? "?"
        let target = job[dotted: "request.target_version"]?.stringValue ?? "?"
        var text = "\(kind) upgrade to \(target)"
        if let node = job[dotted: "request.rollback.node"]?.stringValue {
            text =
                "rollback of \(node) to \(target) (undoing job \(job[dotted: "request.rollback.job"]?.intValue ?? 0))"
        }
        if job[dotted: "request.dry_run"] == .bool(true) { text += " (dry run)" }
        if job[dotted: "request.accept_blockers"] == .bool(true) { text += " (drain blockers accepted)" }
        if job[dotted: "request.rollback"] == nil, let stages = job[dotted: "request.stages"]?.stringValue,
            stages != "all"
        {
            text += " [stages \(stages)]"
        }
        return text
    }

    static func symbol(_ status: String) -> String {
        switch status {
        case "succeeded": "[ok]"
        case "running": "[..]"
        case "skipped": "[skip]"
        case "failed": "[FAIL]"
        case "aborted": "[abort]"
        case "interrupted": "[intr]"
        case "not_selected": "[-]"
        default: "[ ]"
        }
    }

    /// The word an event's kind adds before its message, unless the message starts with it.
    static func marker(_ kind: String, _ message: String) -> String {
        let word =
            switch kind {
            case "job_failed", "stage_failed", "node_failed": "FAILED"
            case "warning": "warning"
            case "would_change": "would"
            default: ""
            }
        guard !word.isEmpty, !message.lowercased().hasPrefix(word.lowercased()) else { return "" }
        return word + ": "
    }

    /// `42 s`, `3 min 5 s`, `1 h 2 min`.
    public static func duration(_ seconds: Double) -> String {
        let total = max(0, Int(seconds.rounded()))
        if total < 60 { return "\(total) s" }
        if total < 3600 { return total % 60 == 0 ? "\(total / 60) min" : "\(total / 60) min \(total % 60) s" }
        return "\(total / 3600) h \((total % 3600) / 60) min"
    }

    /// `12:00:01` out of an ISO 8601 time.
    static func clock(_ iso: String?) -> String {
        guard let iso, let t = iso.firstIndex(of: "T") else { return "--:--:--" }
        return String(iso[iso.index(after: t)...].prefix(8))
    }

    static func seconds(_ iso: String?) -> Double? {
        guard let iso else { return nil }
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        return (try? style.parse(iso))?.timeIntervalSince1970
    }
}

public import FoundationEssentials

/// The status page's HTML: the job list, one job (stages, nodes, the
/// current wait with its countdown, the snapshot and its rehearsal, the
/// forecast against what happened, the events), the login form. Pure over
/// the API's JSON, like ``JobText``: every text that comes from a job goes
/// through ``escape(_:)``.
public enum StatusPage {
    /// `&`, `<`, `>`, `"` and `'` as character references: safe in text and in quoted attributes.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    /// The page around `body`: landmarks, the viewport for phones, the
    /// stylesheet and script served beside it (no inline code, so the
    /// Content-Security-Policy can forbid any).
    public static func document(title: String, body: String, signedIn: Bool, csrf: String? = nil) -> String {
        let signOut =
            signedIn
            ? """
            <form method="post" action="/ui/logout" class="inline">\
            <input type="hidden" name="csrf" value="\(escape(csrf ?? ""))">\
            <button type="submit">Sign out</button></form>
            """
            : ""
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title)) · k8s-upgrade</title>
            <link rel="stylesheet" href="/ui/page.css">
            <link rel="icon" href="/ui/icon.svg" type="image/svg+xml">
            <script src="/ui/page.js" defer></script>
            </head>
            <body>
            <a class="skip" href="#content">Skip to content</a>
            <header>
            <nav aria-label="Main"><a href="/" class="brand">k8s-upgrade</a> <a href="/">Jobs</a> \(signOut)</nav>
            </header>
            <main id="content">
            \(body)
            </main>
            <footer><p>k8s-upgrade status page · the same data as <code>GET /jobs</code></p></footer>
            </body>
            </html>

            """
    }

    /// The form that trades the API token for a session cookie.
    public static func login(message: String? = nil) -> String {
        let notice = message.map { "<p class=\"notice\" role=\"alert\">\(escape($0))</p>\n" } ?? ""
        return document(
            title: "Sign in",
            body: """
                <h1>Sign in</h1>
                \(notice)<form method="post" action="/ui/login" class="login">
                <label for="token">API token</label>
                <input id="token" name="token" type="password" autocomplete="current-password" required>
                <p class="hint">The token of <code>--api-token-file</code>. It is checked once; the browser keeps only a
                session cookie, which ends when the browser closes or you sign out.</p>
                <button type="submit">Sign in</button>
                </form>
                """, signedIn: false)
    }

    /// The job list, newest first.
    public static func jobs(_ jobs: [JSONValue], csrf: String) -> String {
        var rows = ""
        for job in jobs {
            let id = job[dotted: "id"]?.intValue ?? 0
            let state = job[dotted: "state"]?.stringValue ?? "?"
            let place = [job[dotted: "current_stage"]?.stringValue, job[dotted: "current_node"]?.stringValue]
                .compactMap { $0 }.joined(separator: " on ")
            rows += """
                <tr><td><a href="/jobs/\(id)">Job \(id)</a></td><td>\(badge(state))</td>\
                <td>\(escape(JobText.request(job)))</td><td>\(escape(place.isEmpty ? "-" : place))</td>\
                <td>\(time(job[dotted: "created_at"]?.stringValue))</td></tr>

                """
        }
        let table =
            jobs.isEmpty
            ? "<p>No jobs yet.</p>"
            : """
            <div class="scroll"><table>
            <caption>Jobs, newest first</caption>
            <thead><tr><th scope="col">Job</th><th scope="col">State</th><th scope="col">What</th>\
            <th scope="col">Where</th><th scope="col">Created</th></tr></thead>
            <tbody>
            \(rows)</tbody>
            </table></div>
            """
        return document(title: "Jobs", body: "<h1>Jobs</h1>\n" + table, signedIn: true, csrf: csrf)
    }

    /// One job: what changes while it runs sits in `#live`, which the
    /// script swaps for a fresh copy of this page whenever the job moves;
    /// the events follow as they are written.
    /// Without `csrf` (a reader with the token, not a signed-in browser) it has no forms.
    /// A node the running job has planned, shown before it is reached.
    public struct PlannedNode: Sendable, Equatable {
        public var name: String
        public var role: String
        public var before: String
        public var after: String
        /// Why the plan skips it, if it does.
        public var skipped: String?

        public init(name: String, role: String, before: String, after: String, skipped: String? = nil) {
            self.name = name
            self.role = role
            self.before = before
            self.after = after
            self.skipped = skipped
        }
    }

    public static func job(
        _ job: JSONValue, events: [JSONValue], now: Double, csrf: String?, planned: [PlannedNode] = []
    ) -> String {
        let id = job[dotted: "id"]?.intValue ?? 0
        let lastSequence = events.last?[dotted: "seq"]?.intValue ?? 0
        let state = job[dotted: "state"]?.stringValue ?? ""
        let finished = JobState(rawValue: state)?.isFinished ?? true
        var eventItems = ""
        for event in events { eventItems += eventItem(event) }
        let body = """
            <h1>Job \(id): \(escape(JobText.request(job)))</h1>
            <div id="live" data-job="\(id)" data-finished="\(finished)">
            \(live(job, now: now, csrf: csrf, planned: planned))
            </div>
            <section aria-labelledby="events-title">
            <h2 id="events-title">Events</h2>
            <ol id="events" class="events" aria-live="polite" data-after="\(lastSequence)">
            \(eventItems)</ol>
            </section>
            """
        return document(title: "Job \(id)", body: body, signedIn: csrf != nil, csrf: csrf)
    }

    /// The parts of a job page that move: state, stages, the wait, nodes,
    /// the snapshot, the error, the actions.
    static func live(_ job: JSONValue, now: Double, csrf: String?, planned: [PlannedNode] = []) -> String {
        let id = job[dotted: "id"]?.intValue ?? 0
        let state = job[dotted: "state"]?.stringValue ?? "?"
        var out = "<p class=\"state\">State: \(badge(state))"
        if let stage = job[dotted: "current_stage"]?.stringValue {
            out += " in <strong>\(escape(stage))</strong>"
            if let node = job[dotted: "current_node"]?.stringValue { out += " on <strong>\(escape(node))</strong>" }
        }
        out += "</p>\n"
        if let error = job[dotted: "error"]?.stringValue {
            out += "<p class=\"error\" role=\"alert\"><strong>Error:</strong> \(escape(error))</p>\n"
        }
        out += wait(job[dotted: "wait"], now: now)
        out += stages(job[dotted: "stages"]?.arrayValue ?? [])
        out += nodes(job, planned: planned)
        out += snapshot(job[dotted: "result"])
        if let csrf { out += actions(id: id, state: state, csrf: csrf) }
        return out
    }

    static func wait(_ wait: JSONValue?, now: Double) -> String {
        guard let wait, wait != .null else { return "" }
        var out = """
            <section class="wait" aria-labelledby="wait-title">
            <h2 id="wait-title">Waiting for \(escape(wait[dotted: "what"]?.stringValue ?? ""))</h2>

            """
        if let reason = wait[dotted: "reason"]?.stringValue, !reason.isEmpty {
            out += "<p>\(escape(reason))</p>\n"
        }
        if let deadline = JobText.seconds(wait[dotted: "deadline"]?.stringValue) {
            let left = max(0, deadline - now)
            out += """
                <p>Until <time datetime="\(escape(wait[dotted: "deadline"]?.stringValue ?? ""))">\
                \(time(wait[dotted: "deadline"]?.stringValue))</time>: \
                <span class="countdown" data-deadline="\(Int64(deadline))">\(JobText.duration(left))</span> left</p>

                """
        }
        return out + "</section>\n"
    }

    static func stages(_ stages: [JSONValue]) -> String {
        guard !stages.isEmpty else { return "" }
        var items = ""
        for stage in stages {
            let status = stage[dotted: "status"]?.stringValue ?? ""
            let seconds = stage[dotted: "duration_seconds"]?.doubleValue.map { " · " + JobText.duration($0) } ?? ""
            items += """
                <li class="s-\(escape(status))"><span class="name">\(escape(stage[dotted: "name"]?.stringValue ?? ""))\
                </span> <span class="status">\(escape(words(status)))\(seconds)</span></li>

                """
        }
        return """
            <section aria-labelledby="stages-title">
            <h2 id="stages-title">Stages</h2>
            <ol class="strip">
            \(items)</ol>
            </section>

            """
    }

    /// One row per node: the running job's plan (every node from the start,
    /// in its order), its progress, joined with the report once there is one.
    static func nodes(_ job: JSONValue, planned: [PlannedNode] = []) -> String {
        let progress = job[dotted: "nodes"]?.arrayValue ?? []
        let reported = job[dotted: "result.nodes"]?.arrayValue ?? []
        var names = planned.map(\.name)
        for name in progress.compactMap({ $0[dotted: "name"]?.stringValue }) where !names.contains(name) {
            names.append(name)
        }
        for name in reported.compactMap({ $0[dotted: "name"]?.stringValue }) where !names.contains(name) {
            names.append(name)
        }
        guard !names.isEmpty else { return "" }
        var rows = ""
        for name in names {
            let step = progress.first { $0[dotted: "name"]?.stringValue == name }
            let report = reported.first { $0[dotted: "name"]?.stringValue == name }
            let plan = planned.first { $0.name == name }
            let status =
                step?[dotted: "status"]?.stringValue ?? report?[dotted: "outcome"]?.stringValue
                ?? (plan.map { $0.skipped == nil ? "pending" : "skipped" } ?? "")
            let versions =
                report.map {
                    "\($0[dotted: "before"]?.stringValue ?? "?") → \($0[dotted: "after"]?.stringValue ?? "?")"
                } ?? plan.map { "\($0.before) → \($0.after)" }
            let role = report?[dotted: "role"]?.stringValue ?? plan?.role ?? "-"
            let detail = step?[dotted: "detail"]?.stringValue ?? (step == nil ? plan?.skipped : nil)
            let seconds = step?[dotted: "duration_seconds"]?.doubleValue ?? report?[dotted: "work_seconds"]?.doubleValue
            let evicted = report?[dotted: "pods_evicted"]?.intValue
            let met = report?[dotted: "blockers"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let predicted = report?[dotted: "predicted_blockers"]?.arrayValue?.compactMap(\.stringValue) ?? []
            var blockers = met.map { "<li>\(escape($0))</li>" }.joined()
            if !predicted.isEmpty {
                blockers += "<li class=\"forecast\">forecast: \(escape(predicted.joined(separator: "; ")))</li>"
            }
            rows += """
                <tr><th scope="row">\(escape(name))</th><td>\(escape(role))</td>\
                <td>\(escape(versions ?? "-"))</td><td class="s-\(escape(status))">\(escape(words(status)))\
                \(detail.map { "<br><small>\(escape($0))</small>" } ?? "")</td>\
                <td>\(seconds.map(JobText.duration) ?? "-")</td><td>\(evicted.map(String.init) ?? "-")</td>\
                <td>\(blockers.isEmpty ? "-" : "<ul>\(blockers)</ul>")</td></tr>

                """
        }
        return """
            <section aria-labelledby="nodes-title">
            <h2 id="nodes-title">Nodes</h2>
            <div class="scroll"><table>
            <caption>Each node: role, versions before and after, state, time, pods evicted, blockers (met, and as forecast)</caption>
            <thead><tr><th scope="col">Node</th><th scope="col">Role</th><th scope="col">Versions</th>\
            <th scope="col">State</th><th scope="col">Time</th><th scope="col">Pods evicted</th>\
            <th scope="col">Blockers</th></tr></thead>
            <tbody>
            \(rows)</tbody>
            </table></div>
            </section>

            """
    }

    static func snapshot(_ result: JSONValue?) -> String {
        guard let result, result != .null else { return "" }
        let rows: [(String, String?)] = [
            ("Snapshot", result[dotted: "snapshot_path"]?.stringValue),
            ("Contents", result[dotted: "snapshot"]?.stringValue),
            ("Copy", result[dotted: "snapshot_copy"]?.stringValue),
            ("SHA-256", result[dotted: "snapshot_sha256"]?.stringValue),
            ("Restore rehearsal", result[dotted: "snapshot_rehearsal"]?.stringValue),
            ("Total time", result[dotted: "total_seconds"]?.doubleValue.map(JobText.duration)),
        ]
        let items = rows.compactMap { label, value in
            value.map { "<dt>\(escape(label))</dt><dd>\(escape($0))</dd>" }
        }
        let summary = result[dotted: "summary"]?.arrayValue?.compactMap(\.stringValue) ?? []
        guard !items.isEmpty || !summary.isEmpty else { return "" }
        return """
            <section aria-labelledby="result-title">
            <h2 id="result-title">Result</h2>
            <dl>\(items.joined())</dl>
            \(summary.isEmpty ? "" : "<ul>" + summary.map { "<li>\(escape($0))</li>" }.joined() + "</ul>")
            </section>

            """
    }

    /// Abort while it can be aborted, resume once it can be resumed: each
    /// a form that needs its box ticked, so nothing happens on one click.
    static func actions(id: Int, state: String, csrf: String) -> String {
        guard let state = JobState(rawValue: state) else { return "" }
        var forms = ""
        if state.isActive { forms += action(id: id, verb: "abort", label: "Abort job \(id)", csrf: csrf) }
        if state.isResumable { forms += action(id: id, verb: "resume", label: "Resume job \(id)", csrf: csrf) }
        guard !forms.isEmpty else { return "" }
        return """
            <section aria-labelledby="actions-title">
            <h2 id="actions-title">Actions</h2>
            \(forms)</section>

            """
    }

    static func action(id: Int, verb: String, label: String, csrf: String) -> String {
        """
        <form method="post" action="/ui/jobs/\(id)/\(verb)" class="action">
        <input type="hidden" name="csrf" value="\(escape(csrf))">
        <input type="checkbox" id="confirm-\(verb)" name="confirm" value="yes" required>
        <label for="confirm-\(verb)">Yes, \(escape(label.lowercased()))</label>
        <button type="submit" class="\(verb)">\(escape(label))</button>
        </form>

        """
    }

    static func eventItem(_ event: JSONValue) -> String {
        let kind = event[dotted: "kind"]?.stringValue ?? ""
        let place = [event[dotted: "stage"]?.stringValue, event[dotted: "node"]?.stringValue].compactMap { $0 }
            .joined(separator: " ")
        return """
            <li class="k-\(escape(kind))"><time datetime="\(escape(event[dotted: "time"]?.stringValue ?? ""))">\
            \(JobText.clock(event[dotted: "time"]?.stringValue))</time> <span class="place">\
            \(escape(place.isEmpty ? "-" : place))</span> <span class="message">\
            \(escape(event[dotted: "message"]?.stringValue ?? ""))</span></li>

            """
    }

    /// A state as a word with its class: never colour alone.
    static func badge(_ state: String) -> String {
        "<span class=\"badge s-\(escape(state))\">\(escape(words(state)))</span>"
    }

    static func words(_ status: String) -> String { String(status.map { $0 == "_" ? " " : $0 }) }

    /// `2026-12-06T08:00:00Z` as `2026-12-06 08:00:00 UTC`.
    static func time(_ text: String?) -> String {
        guard let text else { return "-" }
        let spaced = String(text.map { $0 == "T" ? " " : $0 })
        return escape(spaced.hasSuffix("Z") ? spaced.dropLast() + " UTC" : spaced)
    }
}

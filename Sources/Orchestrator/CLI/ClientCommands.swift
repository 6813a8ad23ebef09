import ArgumentParser
import FoundationEssentials
import Glibc
import Shared
import SharedIO
import Synchronization

/// Where the orchestrator is and how to prove who we are; shared by every client subcommand.
struct ClientOptions: ParsableArguments {
    @Option(help: "Orchestrator base URL. (default: http://127.0.0.1:8080)")
    var server: String?

    @Option(help: "File holding the API bearer token. (default: /etc/k8s-upgrade/api/token)")
    var apiTokenFile: String?

    @Flag(help: "Print the server's JSON instead of text.")
    var json = false

    func client() throws -> APIClient {
        let reader = OptionReader(environment: ProcessInfo.processInfo.environment)
        let server: String
        do { server = try reader.url(self.server, "SERVER") ?? "http://127.0.0.1:8080" } catch {
            throw ValidationError("\(error)")
        }
        let path = reader.value(apiTokenFile, "API_TOKEN_FILE") ?? "/etc/k8s-upgrade/api/token"
        do { return APIClient(baseURL: server, token: try TokenFile.read(path)) } catch {
            throw ValidationError("\(error)")
        }
    }
}

struct ExecuteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "execute", abstract: "Start an upgrade job (POST /execute) and print it.")

    @Option(help: "The release to reach, X.Y.Z. (required)")
    var target: String

    @Option(help: "patch (same minor) or minor (the next one). (required)")
    var kind: String

    @Flag(help: "Perform every read, record every write instead of making it.")
    var dryRun = false

    @Option(
        help: "all, or a comma list of preflight,snapshot,containerd,repo,master,workers,postflight. (default: all)")
    var stages = "all"

    @Flag(help: "Run although the drain forecast found blockers: pre-flight warns instead of failing.")
    var acceptBlockers = false

    @OptionGroup var client: ClientOptions

    func run() async throws {
        let object: [String: JSONValue] = [
            "target_version": .string(target), "kind": .string(kind), "dry_run": .bool(dryRun),
            "stages": .string(stages), "accept_blockers": .bool(acceptBlockers),
        ]
        // The server is the one judge of the request; validating here too would only drift.
        let body = try JSONEncoder().encode(JSONValue.object(object))
        let job = try await client.client().call("POST", "/execute", body: body, expect: [200, 202])
        if job[dotted: "outcome"]?.stringValue == "nothing_to_do" {
            return print(client.json ? JobText.json(job) : job[dotted: "reason"]?.stringValue ?? "nothing to do")
        }
        print(client.json ? JobText.json(job) : "job \(job[dotted: "id"]?.intValue ?? 0) \(JobText.summaryLine(job))")
    }
}

struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "jobs", abstract: "List jobs, newest first.")

    @Option(help: "How many. (default: 20)")
    var limit = 20

    @OptionGroup var client: ClientOptions

    func run() async throws {
        let answer = try await client.client().call("GET", "/jobs?limit=\(limit)", expect: [200])
        if client.json { return print(JobText.json(answer)) }
        let jobs = answer[dotted: "jobs"]?.arrayValue ?? []
        if jobs.isEmpty { return print("no jobs") }
        for job in jobs { print("\(job[dotted: "id"]?.intValue ?? 0)\t\(JobText.summaryLine(job))") }
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show one job: state, stages, nodes, the current wait, the last error and its events.",
        discussion: """
            With --follow, keep watching until the job finishes: on a terminal the view is redrawn \
            in place; otherwise each new event is printed as a plain line. The exit status is 0 when \
            the job succeeded, 1 when it failed, was aborted or interrupted.
            """)

    @Argument(help: "The job id.")
    var id: Int64

    @Flag(help: "Keep watching until the job finishes.")
    var follow = false

    @Option(
        help:
            "Seconds between redraws of the live view on a terminal with --follow; events arrive as written. (default: 1)"
    )
    var interval: Double = 1

    @OptionGroup var client: ClientOptions

    func run() async throws {
        let api = try client.client()
        guard follow else {
            let job = try await api.call("GET", "/jobs/\(id)?events_limit=1000", expect: [200])
            print(client.json ? JobText.json(job) : JobText.render(job, now: SystemJobClock().now()))
            return
        }
        try await JobFollower(api: api, json: client.json, interval: interval).follow(id)
    }
}

/// Follows a job until it finishes: on a terminal a view redrawn in
/// place, else one line per event; the exit status says how it ended
/// (`status --follow`, `upgrade`, `rollback --follow`).
struct JobFollower {
    let api: APIClient
    let json: Bool
    let interval: Double

    /// What the stream and the clock bring.
    private enum Update: Sendable {
        /// A new connection: what the last one left half-read is dropped.
        case connected
        case bytes([UInt8])
        case tick
        case failed(String)
    }

    /// The last event seen, for a reconnect's `Last-Event-ID`.
    private final class Seen: Sendable {
        let sequence = Mutex(0)
    }

    /// Follows the job's server-sent events (`/jobs/{id}/events?follow=true`),
    /// reconnecting after the last event seen when the connection drops
    /// (a service restart), until its `end`.
    func follow(_ id: Int64) async throws {
        let terminal = isatty(1) == 1 && !json
        let (updates, feed) = AsyncStream<Update>.makeStream()
        let seen = Seen()
        let api = api
        let reader = Task {
            var failures = 0
            while !Task.isCancelled {
                var trouble: String?
                do {
                    let after = seen.sequence.withLock { $0 }
                    feed.yield(.connected)
                    let response = try await api.stream("/jobs/\(id)/events?follow=true", after: after) {
                        feed.yield(.bytes($0))
                    }
                    switch response.status {
                    case 200: failures = 0
                    // A proxy or a restarting service: try again, as for a dropped connection.
                    case 500...599: trouble = APIClient.message(response, "GET /jobs/\(id)/events")
                    default:
                        feed.yield(.failed(APIClient.message(response, "GET /jobs/\(id)/events")))
                        return
                    }
                } catch is CancellationError {
                    return
                } catch {
                    trouble = "the orchestrator at \(api.baseURL) stopped answering: \(error)"
                }
                if let trouble {
                    failures += 1
                    // About a minute of a service that is away (a restart) before giving up.
                    if failures > 30 {
                        feed.yield(.failed(trouble))
                        return
                    }
                }
                try? await Task.sleep(for: .seconds(2))
            }
        }
        let ticker = Task {
            // A terminal's view redraws on the clock too: the wait's countdown moves.
            while terminal, !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(Int64(max(interval, 0.1) * 1000)))
                feed.yield(.tick)
            }
        }
        defer {
            reader.cancel()
            ticker.cancel()
        }
        var parser = ServerSentEvents.Parser()
        var pending: [UInt8] = []
        var job: JSONValue = .null
        var recent: [JSONValue] = []
        var drawnLines = 0
        for await update in updates {
            var messages: [ServerSentEvents.Message] = []
            switch update {
            case let .failed(message): throw ClientError(message)
            case .tick: break
            case .connected: (parser, pending) = (ServerSentEvents.Parser(), [])
            case let .bytes(bytes):
                // Whole lines only: a newline never falls inside a UTF-8 sequence.
                pending += bytes
                guard let newline = pending.lastIndex(of: 0x0A) else { continue }
                messages = parser.feed(String(decoding: pending[...newline], as: UTF8.self))
                pending.removeSubrange(...newline)
            }
            for message in messages {
                switch message.event {
                case "message":
                    guard let event = try? JSONValue(parsing: Array(message.data.utf8)),
                        let sequence = event[dotted: "seq"]?.intValue
                    else { continue }
                    // Each event once, whatever a reconnect sends again.
                    guard
                        seen.sequence.withLock({ last in
                            defer { last = max(last, sequence) }
                            return sequence > last
                        })
                    else { continue }
                    if terminal {
                        recent = Array((recent + [event]).suffix(8))
                    } else {
                        print(json ? JobText.json(event) : JobText.eventLine(event))
                    }
                case "job":
                    job = (try? JSONValue(parsing: Array(message.data.utf8))) ?? job
                case "end":
                    // An interrupted job is resumed by a service that has just
                    // started: look again before calling it the end.
                    if job[dotted: "state"]?.stringValue == JobState.interrupted.rawValue,
                        try await resumesBySelf(id)
                    {
                        continue
                    }
                    if terminal { drawnLines = draw(job, recent, over: drawnLines) }
                    return try finish(id, job, terminal: terminal)
                default: continue
                }
            }
            if terminal, job != .null { drawnLines = draw(job, recent, over: drawnLines) }
            fflush(nil)
        }
    }

    /// Whether an interrupted job is active again within a few seconds (the
    /// service that took over resumes it); the stream then goes on.
    private func resumesBySelf(_ id: Int64) async throws -> Bool {
        for _ in 0..<5 {
            try await Task.sleep(for: .seconds(1))
            let job = try await api.call("GET", "/jobs/\(id)?events_limit=1", expect: [200])
            if let state = job[dotted: "state"]?.stringValue.flatMap(JobState.init(rawValue:)), state.isActive {
                return true
            }
        }
        return false
    }

    /// Moves up over the previous drawing, clears it, draws again. Lines
    /// are cut to the terminal's width: a wrapped line would take two rows
    /// and the next redraw would leave its first row behind.
    private func draw(_ job: JSONValue, _ recent: [JSONValue], over drawnLines: Int) -> Int {
        let lines = JobText.fitted(
            JobText.render(job, events: recent, now: SystemJobClock().now()), width: StatusCommand.columns())
        let clear = drawnLines > 0 ? "\u{1B}[\(drawnLines)F\u{1B}[J" : ""
        print(clear + lines.joined(separator: "\n"))
        fflush(nil)
        return lines.count
    }

    /// The job ended: its state and summary; the exit status says how.
    private func finish(_ id: Int64, _ job: JSONValue, terminal: Bool) throws {
        let state = job[dotted: "state"]?.stringValue ?? ""
        if !json {
            if !terminal { print("job \(id) \(state)") }
            let summary = job[dotted: "result.summary"]?.arrayValue?.compactMap(\.stringValue) ?? []
            if !summary.isEmpty { print("summary:\n" + summary.map { "  " + $0 }.joined(separator: "\n")) }
        }
        fflush(nil)
        if JobState(rawValue: state) != .succeeded { throw ExitCode(1) }
    }
}

extension StatusCommand {
    /// The terminal's width in columns; 80 when it does not say.
    static func columns() -> Int {
        var size = winsize()
        guard ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
        return Int(size.ws_col)
    }
}

struct AbortCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "abort", abstract: "Abort a job: it stops at its next safe point (DELETE /jobs/{id}).")

    @Argument(help: "The job id.")
    var id: Int64

    @OptionGroup var client: ClientOptions

    func run() async throws {
        let job = try await client.client().call("DELETE", "/jobs/\(id)", expect: [202])
        print(client.json ? JobText.json(job) : "job \(id) \(JobText.summaryLine(job))")
    }
}

struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Resume a failed, aborted or interrupted job from live state (POST /jobs/{id}/resume).")

    @Argument(help: "The job id.")
    var id: Int64

    @OptionGroup var client: ClientOptions

    func run() async throws {
        let job = try await client.client().call("POST", "/jobs/\(id)/resume", expect: [202])
        print(client.json ? JobText.json(job) : "job \(id) \(JobText.summaryLine(job))")
    }
}

struct RollbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Take one node of an upgrade job back to its release before that job (POST /jobs/{id}/rollback).",
        discussion: """
            The rollback is a job of its own, with events, notices and a report: the worker is cordoned \
            and drained, the distribution's rollback runs on it (kubeadm: the packages at the older \
            release with apt's --allow-downgrades, held again; MicroK8s: snap revert, held, the old \
            channel; K3s: the binary the upgrade kept), the kubelet must report the older release, then \
            the worker is uncordoned. A control plane goes back through the job's datastore snapshot: \
            on a kubeadm cluster with one control plane, with --confirm-restore, the tool checks the \
            snapshot, stops the static pods, restores etcd from it (the old data folder kept), installs \
            the older packages, puts back kubeadm's backup of the older manifests and restarts the \
            kubelet; on MicroK8s it reverts the snap, then runs microk8s dbctl restore of the job's \
            backup; on K3s it stops k3s, puts back the kept binary and restores the SQLite copy or \
            the etcd snapshot (k3s server --cluster-reset), then starts k3s. Every change since the \
            snapshot is lost (on MicroK8s, treat it as lost). Workers go back first. With several \
            control planes, the refusal lists the exact steps with the job's values. With --follow, the \
            job is watched until it ends, as status --follow.
            """)

    @Argument(help: "The upgrade job's id.")
    var id: Int64

    @Option(help: "The node to take back. (required)")
    var node: String

    @Flag(help: "Perform every read, record every write instead of making it.")
    var dryRun = false

    @Flag(
        help: "Agree that a control plane's rollback restores the job's datastore snapshot, losing every change since.")
    var confirmRestore = false

    @Flag(help: "Watch the rollback job until it ends.")
    var follow = false

    @Option(
        help:
            "Seconds between redraws of the live view on a terminal with --follow; events arrive as written. (default: 1)"
    )
    var interval: Double = 1

    @OptionGroup var client: ClientOptions

    func run() async throws {
        let body = RollbackRequest(node: node, dryRun: dryRun, confirmRestore: confirmRestore).jsonBody()
        let job = try await client.client().call("POST", "/jobs/\(id)/rollback", body: body, expect: [202])
        let rollbackID = Int64(job[dotted: "id"]?.intValue ?? 0)
        print(client.json ? JobText.json(job) : "job \(rollbackID) \(JobText.summaryLine(job))")
        guard follow else { return }
        var status = try StatusCommand.parse(["\(rollbackID)", "--follow", "--interval", "\(interval)"])
        status.client = client
        try await status.run()
    }
}

/// The orchestrator's API over the libcurl client.
struct APIClient: Sendable {
    let baseURL: String
    let token: String

    /// Opens a stream of server-sent events at `path`, from after event
    /// `after`; `onData` gets the bytes as they come. A server that sends
    /// nothing for 45 s (it sends a keepalive every 15) is gone.
    func stream(
        _ path: String, after: Int, onData: @escaping @Sendable ([UInt8]) -> Void
    ) async throws
        -> HTTPResponse
    {
        try await HTTPClient().stream(
            HTTPRequest(
                url: baseURL + path, headers: [("Accept", "text/event-stream"), ("Last-Event-ID", String(after))],
                bearerToken: token),
            idle: .seconds(45), onData: onData)
    }

    /// The server's message in a refusal.
    static func message(_ response: HTTPResponse, _ what: String) -> String {
        let document = (try? JSONValue(parsing: response.body)) ?? .null
        let message = document[dotted: "error"]?.stringValue ?? response.text.prefix(300).description
        return "\(what): HTTP \(response.status): \(message)"
    }

    /// Sends a request; an answer outside `expect` becomes an error quoting the server's message.
    func call(_ method: String, _ path: String, body: Data? = nil, expect: Set<Int>) async throws -> JSONValue {
        let response: HTTPResponse
        do {
            response = try await HTTPClient().send(
                HTTPRequest(
                    method: method, url: baseURL + path,
                    headers: body == nil ? [] : [("Content-Type", "application/json")], body: body,
                    bearerToken: token, timeout: .seconds(30)))
        } catch {
            throw ClientError("cannot reach the orchestrator at \(baseURL): \(error)")
        }
        let document = (try? JSONValue(parsing: response.body)) ?? .null
        guard expect.contains(response.status) else {
            let message = document[dotted: "error"]?.stringValue ?? response.text.prefix(300).description
            throw ClientError("\(method) \(path): HTTP \(response.status): \(message)")
        }
        guard case .object = document else {
            throw ClientError("\(method) \(path): HTTP \(response.status) but the answer is not a JSON object")
        }
        return document
    }
}

/// A failed call to the orchestrator, printed as `Error: <message>` with exit status 1.
struct ClientError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show what a job would do (GET /plan), read from live state; with --execute, confirm and start it.",
        discussion: """
            The running versions per node, what the package source offers, the target and why, the node \
            order with each node's step, the stages that would run or be skipped, pre-flight and the \
            quorum gate before each control plane. Nothing is changed. With --execute the plan is shown, \
            then asked about on the terminal (or taken with --yes), then started as POST /execute would.
            """)

    @Option(help: "The release to plan for, X.Y.Z. (default: what the detector would dispatch)")
    var target: String?

    @Flag(help: "After showing the plan, ask, then start the job.")
    var execute = false

    @Flag(help: "With --execute: start without asking.")
    var yes = false

    @Flag(help: "Judge the drain forecast's blockers as accepted, and with --execute start the job with them.")
    var acceptBlockers = false

    @OptionGroup var client: ClientOptions

    func run() async throws {
        let api = try client.client()
        let plan = try await Confirmation.plan(api, target: target, acceptBlockers: acceptBlockers)
        print(client.json ? JobText.json(plan) : Confirmation.lines(plan))
        guard execute else { return }
        guard
            let job = try await Confirmation.start(
                plan, api, yes: yes, acceptBlockers: acceptBlockers, unasked: "--execute asks on a terminal")
        else { return }
        print("job \(job[dotted: "id"]?.intValue ?? 0) \(JobText.summaryLine(job))")
    }
}

/// The plan, then the question, then the job: `plan --execute` and `upgrade`.
enum Confirmation {
    /// `GET /plan[?target=…][&accept_blockers=true]`.
    static func plan(_ api: APIClient, target: String?, acceptBlockers: Bool) async throws -> JSONValue {
        var query =
            target.map { ["target=" + ($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0)] }
            ?? []
        if acceptBlockers { query.append("accept_blockers=true") }
        return try await api.call(
            "GET", "/plan" + (query.isEmpty ? "" : "?" + query.joined(separator: "&")), expect: [200])
    }

    static func lines(_ plan: JSONValue) -> String {
        (plan[dotted: "lines"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: "\n")
    }

    /// Asks on the terminal (unless `yes`; `unasked` says why nothing
    /// starts without one), then `POST /execute`; the job, or nil when the
    /// answer was no or there was nothing to do.
    static func start(
        _ plan: JSONValue, _ api: APIClient, yes: Bool, acceptBlockers: Bool, dryRun: Bool = false,
        unasked: String
    ) async throws -> JSONValue? {
        guard let version = plan[dotted: "target_version"]?.stringValue, let kind = plan[dotted: "kind"]?.stringValue
        else { throw ValidationError("there is nothing to start: \(plan[dotted: "why"]?.stringValue ?? "no target")") }
        guard plan[dotted: "ready"]?.boolValue == true else {
            throw ValidationError("not started: a job would stop at a failed check of the plan above")
        }
        if !yes {
            guard isatty(0) == 1 else { throw ValidationError("\(unasked); give --yes to start without") }
            let count = (plan[dotted: "order"]?.arrayValue ?? []).filter {
                $0.stringValue?.contains(": skip: ") == false
            }.count
            // The plan was printed to standard output: shown before the question.
            fflush(nil)
            let what = dryRun ? "a dry run of the \(kind) upgrade" : "the \(kind) upgrade"
            let question = Array("Start \(what) to \(version) of \(count) nodes? [y/N] ".utf8)
            _ = question.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            guard let answer = readLine(), ["y", "yes"].contains(answer.lowercased()) else {
                print("not started")
                return nil
            }
        }
        let body = try JSONEncoder().encode(
            JSONValue.object([
                "target_version": .string(version), "kind": .string(kind), "accept_blockers": .bool(acceptBlockers),
                "dry_run": .bool(dryRun),
            ]))
        let job = try await api.call("POST", "/execute", body: body, expect: [200, 202])
        if job[dotted: "outcome"]?.stringValue == "nothing_to_do" {
            print(job[dotted: "reason"]?.stringValue ?? "nothing to do")
            return nil
        }
        return job
    }
}

struct UpgradeJobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upgrade",
        abstract: "Show the plan, ask, start the job, and follow it to its end.",
        discussion: """
            The plan of GET /plan for --target (or, with --kind, what the detector would dispatch, \
            which must be of that kind), then a question on the terminal (--yes answers it; without a \
            terminal and without --yes nothing starts), then POST /execute, then the job followed as \
            status --follow shows it. The exit status is 0 when the job succeeded, 1 otherwise.
            """)

    @Option(help: "The release to reach, X.Y.Z.")
    var target: String?

    @Option(help: "patch or minor: take the detector's choice, which must be of this kind.")
    var kind: String?

    @Flag(help: "Start without asking.")
    var yes = false

    @Flag(help: "Start although the drain forecast found blockers.")
    var acceptBlockers = false

    @Flag(help: "Perform every read, record every write instead of making it.")
    var dryRun = false

    @Option(
        help:
            "Seconds between redraws of the live view on a terminal while following; events arrive as written. (default: 1)"
    )
    var interval: Double = 1

    @OptionGroup var client: ClientOptions

    func validate() throws {
        guard (target == nil) != (kind == nil) else { throw ValidationError("give exactly one of --target and --kind") }
        if let kind, UpgradeKind(rawValue: kind) == nil {
            throw ValidationError("--kind must be patch or minor, got \(kind)")
        }
    }

    func run() async throws {
        let api = try client.client()
        let plan = try await Confirmation.plan(api, target: target, acceptBlockers: acceptBlockers)
        print(Confirmation.lines(plan))
        if let kind, let planned = plan[dotted: "kind"]?.stringValue, planned != kind {
            throw ValidationError("not started: the detector would dispatch a \(planned) upgrade, not a \(kind) one")
        }
        guard
            let job = try await Confirmation.start(
                plan, api, yes: yes, acceptBlockers: acceptBlockers, dryRun: dryRun,
                unasked: "upgrade asks on a terminal"),
            let id = job[dotted: "id"]?.intValue
        else { return }
        print("job \(id) \(JobText.summaryLine(job))")
        fflush(nil)
        try await JobFollower(api: api, json: client.json, interval: interval).follow(Int64(id))
    }
}

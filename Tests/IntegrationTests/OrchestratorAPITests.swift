import Foundation
import Shared
import SharedIO
import TestSupport
import Testing

/// `k8s-upgrade serve` as a real process, with Prometheus unreachable: the
/// halt-on-alert gate stays closed, so every job waits before its first
/// stage, which is what these tests need to hold one.
@Suite("orchestrator HTTP API")
struct OrchestratorAPITests {
    /// Closed port: the gate's Prometheus refuses connections.
    static let unreachablePrometheus = "http://127.0.0.1:9"

    /// Records every answer with its route template, for the OpenAPI check.
    final class Recorder: @unchecked Sendable {
        var answers: [[String: Any]] = []
        let server: RunningOrchestrator
        init(_ server: RunningOrchestrator) { self.server = server }

        @discardableResult
        func call(
            _ method: String, _ path: String, route: String, body: String? = nil,
            contentType: String? = "application/json", authorised: Bool = true,
            headers: [(name: String, value: String)] = []
        ) async throws -> HTTPResponse {
            let response = try await server.request(
                method, path, body: body, contentType: contentType, authorised: authorised, headers: headers)
            answers.append([
                "method": method, "route": route, "status": response.status,
                "content_type": response.header("Content-Type") ?? "", "body": response.text,
                "headers": response.headers.map(\.name),
            ])
            return response
        }

        func json(_ response: HTTPResponse) throws -> JSONValue {
            try JSONDecoder().decode(JSONValue.self, from: response.body)
        }
    }

    @Test func everyRouteAndErrorCodeAnswersAsTheOpenAPIDocumentSays() async throws {
        let simulator = try await SimulatorFixture.start()
        // A window that is always open, in a zone read from tzdata: the plan shows it.
        let fixture = try OrchestratorFixture(
            prometheusURL: Self.unreachablePrometheus, kubeconfig: simulator.kubeconfig,
            extra: ["--maintenance-window", "daily 00:00 168h Europe/Berlin", "--maintenance-exclude", "2099-12-24"])
        let server = try await fixture.launch()
        let api = Recorder(server)

        // Open health routes; everything else needs the token.
        #expect(try await api.call("GET", "/healthz", route: "/healthz", authorised: false).status == 200)
        #expect(try await api.call("GET", "/readyz", route: "/readyz", authorised: false).status == 200)
        for (method, path, route) in [
            ("GET", "/metrics", "/metrics"), ("GET", "/openapi.yaml", "/openapi.yaml"), ("GET", "/jobs", "/jobs"),
            ("POST", "/execute", "/execute"), ("GET", "/jobs/1", "/jobs/{id}"), ("DELETE", "/jobs/1", "/jobs/{id}"),
            ("POST", "/jobs/1/resume", "/jobs/{id}/resume"), ("POST", "/jobs/1/rollback", "/jobs/{id}/rollback"),
            ("GET", "/plan", "/plan"), ("GET", "/jobs/1/events", "/jobs/{id}/events"),
        ] {
            let refused = try await api.call(method, path, route: route, authorised: false)
            #expect(refused.status == 401, "\(method) \(path)")
            #expect(refused.header("WWW-Authenticate") == "Bearer realm=\"k8s-upgrade\"")
        }
        let wrong = try await api.call(
            "GET", "/jobs", route: "/jobs", authorised: false, headers: [("Authorization", "Bearer nope")])
        #expect(wrong.status == 401)

        // Rejected requests: the message names the field and the rule; nothing is stored.
        let rejected: [(String?, String?, Int, String)] = [
            (
                #"{"target_version":"1.34.5","kind":"patch"}"#, "text/plain", 415,
                "Content-Type must be application/json"
            ),
            (#"{"target_version":"1.34.5","kind":"patch"}"#, nil, 415, "Content-Type must be application/json"),
            (String(repeating: " ", count: 70_000) + "{}", "application/json", 413, "larger than 65536 bytes"),
            ("{", "application/json", 400, "body: must be valid JSON"),
            ("[]", "application/json", 400, "body: must be a JSON object"),
            (
                #"{"target_version":"1.34.5","kind":"patch","force":true}"#, "application/json", 400,
                "force: unknown field"
            ),
            (#"{"target_version":1.34,"kind":"patch"}"#, "application/json", 400, "target_version: must be a string"),
            (
                #"{"target_version":"1.34.5;reboot","kind":"patch"}"#, "application/json", 400,
                "target_version: must be X.Y.Z"
            ),
            (
                #"{"target_version":"1.34.5","kind":"major"}"#, "application/json", 400,
                "kind: must be \"patch\" or \"minor\""
            ),
            (
                #"{"target_version":"1.34.5","kind":"patch","dry_run":1}"#, "application/json", 400,
                "dry_run: must be a boolean"
            ),
            (
                #"{"target_version":"1.34.5","kind":"patch","stages":"drain"}"#, "application/json", 400,
                "unknown stage \"drain\""
            ),
            (#"{"kind":"patch"}"#, "application/json", 400, "target_version: is required"),
            (
                #"{"target_version":"1.34.3","kind":"patch","rollback":{"job":1,"node":"worker-1"}}"#,
                "application/json", 400, "rollback: is not taken here; use POST /jobs/{id}/rollback"
            ),
        ]
        for (body, type, status, message) in rejected {
            let response = try await api.call(
                "POST", "/execute", route: "/execute", body: body ?? "", contentType: type)
            #expect(response.status == status, "\(body ?? "") as \(type ?? "no type")")
            #expect(try api.json(response)[dotted: "error"]?.stringValue?.contains(message) == true, "\(response.text)")
        }
        // Judged against the live cluster (every node at 1.34.3): a wrong kind, a
        // minor the policy forbids, a target already running; nothing is stored.
        let judged: [(String, Int, String)] = [
            (
                #"{"target_version":"1.34.5","kind":"minor"}"#, 422,
                "1.34.5 is a patch of 1.34, the minor the cluster runs: send kind patch"
            ),
            (
                #"{"target_version":"1.35.2","kind":"patch"}"#, 422,
                "1.35.2 is a minor upgrade from 1.34.3 (the oldest version running): send kind minor"
            ),
            (#"{"target_version":"1.35.2","kind":"minor"}"#, 422, "minor upgrades are not allowed"),
            (#"{"target_version":"1.36.0","kind":"minor"}"#, 422, "skips a minor"),
            (#"{"target_version":"1.34.2","kind":"patch"}"#, 422, "downgrades are not supported"),
        ]
        for (body, status, message) in judged {
            let response = try await api.call("POST", "/execute", route: "/execute", body: body)
            #expect(response.status == status, "\(body): \(response.text)")
            #expect(try api.json(response)[dotted: "error"]?.stringValue?.contains(message) == true, "\(response.text)")
        }
        let nothing = try await api.call(
            "POST", "/execute", route: "/execute", body: #"{"target_version":"1.34.3","kind":"patch"}"#)
        #expect(nothing.status == 200)
        #expect(
            try api.json(nothing)
                == .object([
                    "outcome": .string("nothing_to_do"),
                    "reason": .string("every API server and kubelet already runs 1.34.3; nothing to do"),
                ]))
        let empty = try api.json(try await api.call("GET", "/jobs", route: "/jobs"))
        #expect(empty[dotted: "jobs"] == .array([]))

        // One job at a time; it waits on the closed gate.
        let created = try await api.call(
            "POST", "/execute", route: "/execute", body: #"{"target_version":"1.34.5","kind":"patch","dry_run":false}"#)
        #expect(created.status == 202)
        #expect(created.header("Location") == "/jobs/1")
        let held = try await server.waitForWait(1)
        #expect(held[dotted: "wait.reason"]?.stringValue?.contains("Prometheus unreachable") == true)
        #expect(held[dotted: "current_stage"]?.stringValue == "preflight")
        let conflict = try await api.call(
            "POST", "/execute", route: "/execute", body: #"{"target_version":"1.34.6","kind":"patch"}"#)
        #expect(conflict.status == 409)
        #expect(try api.json(conflict)[dotted: "detail.active_job.id"]?.intValue == 1)
        #expect(try await api.call("POST", "/jobs/1/resume", route: "/jobs/{id}/resume").status == 409)
        let rollbackRoute = "/jobs/{id}/rollback"
        let running = try await api.call(
            "POST", "/jobs/1/rollback", route: rollbackRoute, body: #"{"node":"worker-1"}"#)
        #expect(running.status == 422, "\(running.text)")
        #expect(
            try api.json(running)[dotted: "error"]?.stringValue == "job 1 is running; abort it first, then roll back")
        for (path, body, status, message) in [
            ("/jobs/7/rollback", #"{"node":"worker-1"}"#, 404, "job 7 does not exist"),
            ("/jobs/1/rollback", #"{"node":"worker 1"}"#, 400, "node: must be a node name"),
            (
                "/jobs/1/rollback", #"{"node":"worker-1","all":true}"#, 400,
                "all: unknown field; allowed: node, dry_run, confirm_restore"
            ),
            ("/jobs/1/rollback", "{}", 400, "node: is required"),
        ] {
            let refused = try await api.call("POST", path, route: rollbackRoute, body: body)
            #expect(refused.status == status, "\(path) \(body): \(refused.text)")
            #expect(try api.json(refused)[dotted: "error"]?.stringValue?.contains(message) == true, "\(refused.text)")
        }

        // Reads: one job, paged events, list, metrics, the document itself.
        let page = try api.json(try await api.call("GET", "/jobs/1?events_limit=2", route: "/jobs/{id}"))
        #expect(page[dotted: "events.items"]?.arrayValue?.count == 2)
        #expect(page[dotted: "events.next_after"]?.intValue == 2)
        #expect(
            try await api.call("GET", "/jobs/1?events_after=2&events_limit=1000", route: "/jobs/{id}").status == 200)
        #expect(try await api.call("GET", "/jobs/1?events_limit=0", route: "/jobs/{id}").status == 400)
        #expect(try await api.call("GET", "/jobs?limit=abc", route: "/jobs").status == 400)
        #expect(
            try api.json(try await api.call("GET", "/jobs?limit=5", route: "/jobs"))[dotted: "jobs"]?.arrayValue?.count
                == 1)
        #expect(try await api.call("GET", "/jobs/2", route: "/jobs/{id}").status == 404)
        #expect(try await api.call("GET", "/jobs/abc", route: "/jobs/{id}").status == 400)
        #expect(try await api.call("DELETE", "/jobs/7", route: "/jobs/{id}").status == 404)
        #expect(try await api.call("POST", "/jobs/7/resume", route: "/jobs/{id}/resume").status == 404)
        let metrics = try await api.call("GET", "/metrics", route: "/metrics")
        #expect(metrics.text.contains("k8s_upgrade_job_active 1"))
        #expect(metrics.text.contains(#"k8s_upgrade_jobs{state="running"} 1"#))
        #expect(metrics.text.contains(#"k8s_upgrade_http_requests_total{method="POST",route="/execute",code="409"} 1"#))
        let document = try await api.call("GET", "/openapi.yaml", route: "/openapi.yaml")
        #expect(document.text.hasPrefix("openapi: 3.1.0"))

        // The plan, read from live state (no node answers SSH here, so the
        // package source is unread and pre-flight fails), nothing changed.
        let plan = try api.json(try await api.call("GET", "/plan", route: "/plan"))
        #expect(plan[dotted: "distribution"]?.stringValue == "kubeadm")
        #expect(plan[dotted: "nodes"]?.arrayValue?.count == 5)
        #expect(plan[dotted: "target_version"] == .null)
        #expect(plan[dotted: "offered"]?.stringValue?.hasPrefix("not read: ") == true, "\(plan)")
        let asked = try api.json(try await api.call("GET", "/plan?target=1.34.5", route: "/plan"))
        #expect(asked[dotted: "target_version"]?.stringValue == "1.34.5")
        #expect(asked[dotted: "why"]?.stringValue == "asked for")
        #expect(asked[dotted: "order"]?.arrayValue?.count == 5)
        #expect(asked[dotted: "ready"] == .bool(false))
        #expect(asked[dotted: "maintenance.starts_now"] == .bool(true))
        #expect(
            asked[dotted: "maintenance.windows"]?.stringValue == "daily 00:00 168h Europe/Berlin; not on 2099-12-24")
        let lines = asked[dotted: "lines"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(lines.contains("maintenance windows: daily 00:00 168h Europe/Berlin; not on 2099-12-24"), "\(lines)")
        let bad = try await api.call("GET", "/plan?target=1.34.x", route: "/plan")
        #expect(bad.status == 400)
        #expect(try api.json(bad)[dotted: "error"]?.stringValue == "target: must be X.Y.Z or X.Y.Z+k3sN, got 1.34.x")
        let minor = try await api.call("GET", "/plan?target=1.35.2", route: "/plan")
        #expect(minor.status == 422, "\(minor.text)")

        // Methods and routes that do not exist.
        let put = try await server.request("PUT", "/jobs/1", body: "{}")
        #expect(put.status == 405)
        #expect(put.header("Allow") == "GET, DELETE")
        #expect(try await server.request("GET", "/nope").status == 404)

        // The events as server-sent events: what is stored, from after
        // Last-Event-ID, and with follow=true as they are written, to the end.
        let eventsRoute = "/jobs/{id}/events"
        let stored = try await api.call("GET", "/jobs/1/events", route: eventsRoute)
        #expect(stored.status == 200)
        #expect(stored.header("Content-Type") == "text/event-stream")
        var parser = ServerSentEvents.Parser()
        let messages = parser.feed(stored.text)
        let ids = messages.filter { $0.event == "message" }.compactMap { $0.id.flatMap(Int.init) }
        #expect(!ids.isEmpty && ids == Array(1...ids.count), "\(stored.text)")
        let state = try #require(messages.first { $0.event == "job" })
        let job = try JSONValue(parsing: Array(state.data.utf8))
        #expect(job[dotted: "state"]?.stringValue == "running")
        #expect(job[dotted: "id"]?.intValue == 1)
        #expect(job[dotted: "updated_at"] == nil, "a job message leaves out what moves with every event")
        #expect(job[dotted: "wait.reason"]?.stringValue?.contains("Prometheus unreachable") == true)
        let resumed = try await api.call(
            "GET", "/jobs/1/events", route: eventsRoute, headers: [("Last-Event-ID", "2")])
        var resumedParser = ServerSentEvents.Parser()
        #expect(resumedParser.feed(resumed.text).first { $0.event == "message" }?.id == "3", "\(resumed.text)")
        for (path, headers, status) in [
            ("/jobs/1/events", [("Last-Event-ID", "two")], 400), ("/jobs/1/events?after=-1", [], 400),
            ("/jobs/1/events?follow=maybe", [], 400), ("/jobs/7/events", [], 404), ("/jobs/x/events", [], 400),
        ] {
            let refused = try await api.call("GET", path, route: eventsRoute, headers: headers)
            #expect(refused.status == status, "\(path) \(headers): \(refused.text)")
        }
        let token = server.token
        let url = server.baseURL + "/jobs/1/events?follow=true"
        async let followed = offThePool {
            try TestEnvironment.execute(
                try TestEnvironment.tool("curl"),
                [
                    "-sN", "--max-time", "60", "-H", "Authorization: Bearer \(token)", "-H",
                    "Last-Event-ID: \(ids.count)", url,
                ])
        }
        try await Task.sleep(for: .milliseconds(500))

        // Abort: 202, repeated 202, then the finished job refuses; resume queues it again.
        #expect(try await api.call("DELETE", "/jobs/1", route: "/jobs/{id}").status == 202)
        _ = try await api.call("DELETE", "/jobs/1", route: "/jobs/{id}")
        try await server.waitForJob(1, state: "aborted")
        // The follower saw the abort as it was written, then the end.
        let follow = try await followed
        #expect(follow.status == 0, "curl: \(follow.stderr)")
        var followParser = ServerSentEvents.Parser()
        let live = followParser.feed(follow.stdout)
        #expect(live.first { $0.event == "message" }?.id == String(ids.count + 1), "\(follow.stdout)")
        #expect(
            live.contains { $0.event == "message" && $0.data.contains(#""kind":"job_aborted""#) }, "\(follow.stdout)")
        #expect(live.last?.event == "end", "\(follow.stdout)")
        #expect(
            live.last { $0.event == "job" }.map { $0.data.contains(#""state":"aborted""#) } == true, "\(follow.stdout)")
        #expect(try await api.call("DELETE", "/jobs/1", route: "/jobs/{id}").status == 409)
        #expect(try await api.call("POST", "/jobs/1/resume", route: "/jobs/{id}/resume").status == 202)
        try await server.waitForWait(1)
        #expect(try await api.call("DELETE", "/jobs/1", route: "/jobs/{id}").status == 202)
        let final = try await server.waitForJob(1, state: "aborted")
        let kinds = final[dotted: "events.items"]?.arrayValue?.compactMap { $0[dotted: "kind"]?.stringValue } ?? []
        #expect(kinds.filter { $0 == "job_aborted" }.count == 2)
        #expect(kinds.contains("job_resumed"))
        _ = try await api.call("GET", "/jobs/1?events_limit=1000", route: "/jobs/{id}")
        // Aborted before any node: nothing of worker-1 to take back.
        let untouched = try await api.call(
            "POST", "/jobs/1/rollback", route: rollbackRoute, body: #"{"node":"worker-1"}"#)
        #expect(untouched.status == 422, "\(untouched.text)")
        #expect(
            try api.json(untouched)[dotted: "error"]?.stringValue?.hasPrefix("job 1 recorded nothing of worker-1")
                == true, "\(untouched.text)")

        // Every answer above, checked against the served document.
        let folder = fixture.directory
        try document.body.write(to: folder.appendingPathComponent("openapi.yaml"))
        try JSONSerialization.data(withJSONObject: api.answers).write(to: folder.appendingPathComponent("answers.json"))
        let check = try await offThePool {
            try TestEnvironment.execute(
                try TestEnvironment.tool("python3"),
                [
                    Self.repository.appendingPathComponent("scripts/check-openapi.py").path,
                    folder.appendingPathComponent("openapi.yaml").path,
                    folder.appendingPathComponent("answers.json").path,
                ])
        }
        #expect(check.status == 0, "\(check.stderr)")
        #expect(check.stdout.contains("12 operations exercised"), "\(check.stdout)")
        _ = try await server.stop(signal: SIGTERM)
        withExtendedLifetime(simulator) {}
    }

    /// The status page: signing in trades the token for a session cookie
    /// (HttpOnly, SameSite=Strict, no expiry: the browser's session only);
    /// the job list; a job's page with its wait's countdown, its events and
    /// its forms; the session reads the API but changes nothing without a
    /// form's token and its box ticked; every page passes the page check
    /// (landmarks, labels, captions, no inline code, contrast).
    @Test func theStatusPageSignsInShowsAJobAndAbortsItOnlyWhenConfirmed() async throws {
        let simulator = try await SimulatorFixture.start()
        let fixture = try OrchestratorFixture(
            prometheusURL: Self.unreachablePrometheus, kubeconfig: simulator.kubeconfig)
        let server = try await fixture.launch()
        func browser(
            _ path: String, method: String = "GET", cookie: String? = nil, form: String? = nil,
            accept: String = "text/html,application/xhtml+xml"
        ) async throws -> HTTPResponse {
            try await server.request(
                method, path, body: form, contentType: "application/x-www-form-urlencoded", authorised: false,
                headers: [("Accept", accept)] + (cookie.map { [("Cookie", $0)] } ?? []))
        }

        // Not signed in: the form; a job's page sends the browser to it; the API still wants the token.
        let login = try await browser("/")
        #expect(login.status == 200)
        #expect(login.text.contains(#"<form method="post" action="/ui/login" class="login">"#))
        #expect(login.header("Content-Security-Policy")?.hasPrefix("default-src 'self'") == true)
        let away = try await browser("/jobs/1")
        #expect(away.status == 303 && away.header("Location") == "/ui/login")
        #expect(try await browser("/jobs", accept: "application/json").status == 401)
        let wrong = try await browser("/ui/login", method: "POST", form: "token=nope")
        #expect(wrong.status == 401 && wrong.text.contains("That is not the API token."))

        let signIn = try await browser(
            "/ui/login", method: "POST",
            form: "token=" + (server.token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""))
        #expect(signIn.status == 303 && signIn.header("Location") == "/")
        let setCookie = try #require(signIn.header("Set-Cookie"))
        #expect(setCookie.contains("; HttpOnly") && setCookie.contains("; SameSite=Strict"), "\(setCookie)")
        #expect(!setCookie.contains("Expires") && !setCookie.contains("Max-Age"), "\(setCookie)")
        let cookie = String(setCookie.prefix { $0 != ";" })
        #expect(cookie.hasPrefix("k8sup_session=") && !setCookie.contains(server.token))

        // A job held by the closed gate.
        #expect(
            try await server.request("POST", "/execute", body: #"{"target_version":"1.34.5","kind":"patch"}"#).status
                == 202)
        _ = try await server.waitForWait(1)
        let list = try await browser("/", cookie: cookie)
        #expect(list.text.contains(#"<a href="/jobs/1">Job 1</a>"#), "\(list.text)")
        let page = try await browser("/jobs/1", cookie: cookie)
        #expect(page.status == 200)
        #expect(page.header("Content-Type") == "text/html; charset=utf-8")
        for text in [
            "<h1>Job 1: patch upgrade to 1.34.5</h1>", "Waiting for halt-on-alert gate",
            #"class="countdown" data-deadline=""#,
            "queued: patch upgrade to 1.34.5", #"<ol class="strip">"#, "Abort job 1",
        ] {
            #expect(page.text.contains(text), "\(text)")
        }
        let csrf = try #require(
            page.text.firstRange(of: #"name="csrf" value=""#).map { range in
                String(page.text[range.upperBound...].prefix { $0 != "\"" })
            })
        // The session reads the API, as JSON and as server-sent events, and changes nothing.
        let json = try await browser("/jobs/1", cookie: cookie, accept: "application/json")
        #expect(json.status == 200 && json.text.hasPrefix("{"))
        let events = try await browser("/jobs/1/events", cookie: cookie, accept: "text/event-stream")
        #expect(events.status == 200 && events.text.contains("id: 1\n"))
        #expect(try await browser("/jobs/1", method: "DELETE", cookie: cookie).status == 403)
        #expect(
            try await browser("/ui/jobs/1/abort", method: "POST", cookie: cookie, form: "csrf=x&confirm=yes").status
                == 403)
        #expect(try await browser("/ui/jobs/1/abort", method: "POST", form: "csrf=\(csrf)&confirm=yes").status == 401)
        #expect(
            try await browser("/ui/jobs/1/abort", method: "POST", cookie: cookie, form: "csrf=\(csrf)").status == 400)
        #expect(try await server.json("/jobs/1")[dotted: "state"]?.stringValue == "running")
        let aborted = try await browser(
            "/ui/jobs/1/abort", method: "POST", cookie: cookie, form: "csrf=\(csrf)&confirm=yes")
        #expect(aborted.status == 303 && aborted.header("Location") == "/jobs/1")
        _ = try await server.waitForJob(1, state: "aborted")
        let after = try await browser("/jobs/1", cookie: cookie)
        #expect(after.text.contains("Resume job 1") && !after.text.contains("Abort job 1"))
        // The page's forms answer as the API does: an abort of an ended job
        // is a conflict saying which jobs can be aborted.
        let again = try await browser(
            "/ui/jobs/1/abort", method: "POST", cookie: cookie, form: "csrf=\(csrf)&confirm=yes")
        #expect(again.status == 409 && again.text.contains("only a queued, running or interrupted job can be aborted"))
        #expect(
            try await browser("/ui/jobs/1/pause", method: "POST", cookie: cookie, form: "csrf=\(csrf)&confirm=yes")
                .status == 404)

        // Every page passes the page check, with the stylesheet it is drawn with.
        let folder = fixture.directory
        let css = try await browser("/ui/page.css", accept: "text/css")
        #expect(css.status == 200)
        #expect(try await browser("/ui/page.js", accept: "*/*").text.contains("new EventSource("))
        let icon = try await browser("/ui/icon.svg", accept: "image/*")
        #expect(icon.status == 200 && icon.header("Content-Type") == "image/svg+xml" && icon.text.hasPrefix("<svg"))
        try css.body.write(to: folder.appendingPathComponent("page.css"))
        for (name, response) in [("login", login), ("jobs", list), ("job", page), ("aborted", after)] {
            try response.body.write(to: folder.appendingPathComponent("\(name).html"))
        }
        let check = try await offThePool {
            try TestEnvironment.execute(
                try TestEnvironment.tool("python3"),
                [
                    Self.repository.appendingPathComponent("scripts/check-html.py").path, "--css",
                    folder.appendingPathComponent("page.css").path,
                ]
                    + ["login", "jobs", "job", "aborted"].map { folder.appendingPathComponent("\($0).html").path })
        }
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")

        // Signing out ends the session at once.
        let out = try await browser("/ui/logout", method: "POST", cookie: cookie, form: "csrf=\(csrf)")
        #expect(out.status == 303 && out.header("Set-Cookie")?.contains("Max-Age=0") == true)
        #expect(try await browser("/", cookie: cookie).text.contains(#"action="/ui/login""#))
        _ = try await server.stop(signal: SIGTERM)
        // Neither the token nor a session id reaches the log.
        let log = server.process?.log ?? ""
        #expect(log.contains("listening") && !log.contains(server.token), "\(log)")
        #expect(!log.contains(String(cookie.dropFirst("k8sup_session=".count))), "\(log)")
        withExtendedLifetime(simulator) {}
    }

    /// deploy/ mounts the Slack Secret as optional: without it, serve runs
    /// without notices (it exited before); an empty file is still a mistake.
    @Test func theOptionalSlackSecretMayBeMissingButNotEmpty() async throws {
        let missing = "/nonexistent/k8s-upgrade-slack/webhook-url"
        let server = try await OrchestratorFixture(
            prometheusURL: Self.unreachablePrometheus, extra: ["--slack-webhook-file", missing]
        ).launch()
        #expect(server.process?.log.contains("no Slack notices: the webhook file is missing") == true)
        _ = try await server.stop(signal: SIGTERM)

        let fixture = try OrchestratorFixture(prometheusURL: Self.unreachablePrometheus)
        let empty = fixture.directory.appendingPathComponent("webhook-url")
        try "\n".write(to: empty, atomically: true, encoding: .utf8)
        let refused = try await offThePool {
            try TestEnvironment.execute(
                OrchestratorFixture.binary,
                [
                    "serve", "--listen", "127.0.0.1:0", "--store", fixture.storePath, "--api-token-file",
                    fixture.tokenFile, "--slack-webhook-file", empty.path,
                ] + fixture.arguments)
        }
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("the Slack webhook file \(empty.path) is empty"), "\(refused.stderr)")
    }

    /// A maintenance window or date that cannot be read stops serve at
    /// start, naming it.
    @Test(arguments: [
        (
            ["--maintenance-window", "Sat 02:00 4h Mars/Olympus"],
            "maintenance-window: time zone Mars/Olympus: cannot read /usr/share/zoneinfo/Mars/Olympus (is the tzdata package installed?)"
        ),
        (
            ["--maintenance-window", "Sat 2am 4h UTC"],
            "maintenance-window: start time must be HH:MM from 00:00 to 23:59, got '2am'"
        ),
        (["--maintenance-exclude", "2027-01-01"], "maintenance-exclude needs at least one maintenance-window"),
        (
            ["--maintenance-window", "daily 02:00 4h UTC", "--maintenance-exclude", "2027-02-30"],
            "maintenance-exclude must be a date YYYY-MM-DD, got 2027-02-30"
        ),
    ])
    func aMaintenanceWindowThatCannotBeReadStopsServe(arguments: [String], message: String) async throws {
        let fixture = try OrchestratorFixture(prometheusURL: Self.unreachablePrometheus)
        let refused = try await offThePool {
            try TestEnvironment.execute(
                OrchestratorFixture.binary,
                [
                    "serve", "--listen", "127.0.0.1:0", "--store", fixture.storePath, "--api-token-file",
                    fixture.tokenFile,
                ] + arguments + fixture.arguments)
        }
        #expect(refused.status != 0)
        #expect(refused.stderr.contains(message), "\(refused.stderr)")
    }

    /// The cluster cannot be read: the request cannot be checked, so it is not queued.
    @Test func aRequestTheClusterCannotJudgeIsNotQueued() async throws {
        let server = try await OrchestratorFixture(prometheusURL: Self.unreachablePrometheus).launch()
        let answer = try await server.request(
            "POST", "/execute", body: #"{"target_version":"1.34.5","kind":"patch"}"#)
        #expect(answer.status == 503)
        #expect(answer.header("Retry-After") == "30")
        #expect(answer.text.contains("could not be read to check the request, so nothing was queued"), "\(answer.text)")
        #expect(try await server.json("/jobs")[dotted: "jobs"] == .array([]))
        _ = try await server.stop(signal: SIGTERM)
    }

    @Test func anAbortDuringAWaitLandsWithinASecond() async throws {
        let simulator = try await SimulatorFixture.start()
        let server = try await OrchestratorFixture(
            prometheusURL: Self.unreachablePrometheus, kubeconfig: simulator.kubeconfig
        ).launch()
        defer { withExtendedLifetime(simulator) {} }
        _ = try await server.request("POST", "/execute", body: #"{"target_version":"1.34.5","kind":"patch"}"#)
        try await server.waitForWait(1)
        #expect(try await server.request("DELETE", "/jobs/1").status == 202)
        let job = try await server.waitForJob(1, state: "aborted", timeout: 5)
        // Timed by the job's own events, not by this test's polling on a busy machine.
        let events = job[dotted: "events.items"]?.arrayValue ?? []
        func time(_ kind: String) throws -> Date {
            let text = try #require(
                events.last { $0[dotted: "kind"]?.stringValue == kind }?[dotted: "time"]?.stringValue)
            return try Date(text, strategy: .iso8601)
        }
        #expect(try time("job_aborted").timeIntervalSince(try time("abort_requested")) < 1.0)
        #expect(job[dotted: "wait"] == .null)
        #expect(job[dotted: "stages"]?.arrayValue?.first?[dotted: "status"]?.stringValue == "pending")
        _ = try await server.stop(signal: SIGTERM)
    }

    /// With `--auto-resume false` the job waits for a person, as before the self-resume.
    @Test func sigtermStopsTheRunningJobAsInterruptedAndTheServerExitsCleanly() async throws {
        let simulator = try await SimulatorFixture.start()
        defer { withExtendedLifetime(simulator) {} }
        let fixture = try OrchestratorFixture(
            prometheusURL: Self.unreachablePrometheus, kubeconfig: simulator.kubeconfig,
            extra: ["--auto-resume", "false"])
        let server = try await fixture.launch()
        _ = try await server.request("POST", "/execute", body: #"{"target_version":"1.34.5","kind":"patch"}"#)
        try await server.waitForWait(1)
        // A follower of the job's events does not hold the stop open: its
        // stream ends (without `end`) when the service stops.
        let token = server.token
        let url = server.baseURL + "/jobs/1/events?follow=true"
        let received = fixture.directory.appendingPathComponent("followed.txt")
        async let followed = offThePool {
            try TestEnvironment.execute(
                try TestEnvironment.tool("curl"),
                ["-sN", "--max-time", "60", "-o", received.path, "-H", "Authorization: Bearer \(token)", url])
        }
        // Stopped only once the follower has the job's first event.
        try await waitUntil("the follower has event 1") {
            ((try? String(contentsOf: received, encoding: .utf8)) ?? "").contains("id: 1\n")
        }
        let started = Date()
        #expect(try await server.stop(signal: SIGTERM) == 0)
        #expect(Date().timeIntervalSince(started) < 3)
        _ = try await followed
        let stream = (try? String(contentsOf: received, encoding: .utf8)) ?? ""
        #expect(stream.contains("id: 1\n") && !stream.contains("event: end"), "\(stream)")
        let again = try await fixture.launch()
        let job = try await again.json("/jobs/1?events_limit=1000")
        #expect(job[dotted: "state"]?.stringValue == "interrupted")
        let last = job[dotted: "events.items"]?.arrayValue?.last
        #expect(last?[dotted: "message"]?.stringValue?.contains("the service is stopping") == true)
        // An interrupted job can be aborted, so that no restart resumes it.
        #expect(try await again.request("DELETE", "/jobs/1").status == 202)
        let aborted = try await again.json("/jobs/1?events_limit=1000")
        #expect(aborted[dotted: "state"]?.stringValue == "aborted")
        #expect(
            aborted[dotted: "events.items"]?.arrayValue?.last?[dotted: "message"]?.stringValue?.hasPrefix(
                "aborted while interrupted: it will not be resumed by itself") == true)
        #expect(try await again.request("DELETE", "/jobs/1").status == 409)
        _ = try await again.stop(signal: SIGTERM)
    }

    @Test func schemathesisFindsNoServerErrorAndNoSchemaViolation() async throws {
        let simulator = try await SimulatorFixture.start()
        defer { withExtendedLifetime(simulator) {} }
        let fixture = try OrchestratorFixture(
            prometheusURL: Self.unreachablePrometheus, kubeconfig: simulator.kubeconfig)
        let server = try await fixture.launch()
        let document = try await server.request("GET", "/openapi.yaml")
        let file = fixture.directory.appendingPathComponent("openapi.yaml")
        try document.body.write(to: file)
        let schemathesis = try TestEnvironment.tool("schemathesis", candidates: Self.pythonScripts("schemathesis"))
        // A schema-valid POST /execute or GET /plan target may still break the
        // version rules of the live cluster: 422 is a documented answer there,
        // and only there.
        let config = fixture.directory.appendingPathComponent("schemathesis.toml")
        try """
        [[operations]]
        include-path = "/execute"
        include-method = "POST"
        checks.positive_data_acceptance.expected-statuses = [
          "2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx",
        ]

        [[operations]]
        include-name = "GET /plan"
        checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "422", "503"]

        # A followed stream stays open until its job ends, and these jobs
        # wait for a gate that never opens: the follow is tested on its own.
        [[operations]]
        include-name = "GET /jobs/{id}/events"
        parameters = { "query.follow" = "false" }

        """.write(to: config, atomically: true, encoding: .utf8)
        let result = try await offThePool {
            try TestEnvironment.execute(
                schemathesis,
                [
                    "--config-file", config.path, "run", file.path, "--url", server.baseURL, "-H",
                    "Authorization: Bearer \(server.token)",
                    "--checks", "all",
                    // DELETE aborts a job and keeps it as history: it is not a deletion.
                    "--exclude-checks", "use_after_free", "--max-examples", "40", "--seed", "20261121",
                    // Correctness, not speed: a loaded machine (the bed suites
                    // beside it) must not read as a server that went away.
                    "--workers", "1", "--request-timeout", "30",
                ])
        }
        #expect(result.status == 0, "\(result.stdout.suffix(4000))")
        // Exit 0 means no check failed; warnings (such as operations it could not reach past 404) may remain.
        #expect(!result.stdout.contains("FAILURES") && !result.stdout.contains("ERRORS"))
        #expect(result.stdout.contains("Test cases:"), "schemathesis ran no test cases")
        _ = try await server.stop(signal: SIGTERM)
    }

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Where pip puts console scripts for this python3, in case it is not on PATH.
    static func pythonScripts(_ name: String) -> [String] {
        let prefix =
            (try? TestEnvironment.run(
                try TestEnvironment.tool("python3"), ["-c", "import sysconfig; print(sysconfig.get_path('scripts'))"]))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return prefix.map { ["\($0)/\(name)"] } ?? []
    }
}

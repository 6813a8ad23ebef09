import Testing

@testable import Shared

/// The status page's HTML as a pure function of the API's JSON.
@Suite struct StatusPageTests {
    @Test(arguments: [
        ("plain", "plain"), ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        (#"a "quoted" 'one' & more"#, "a &quot;quoted&quot; &#39;one&#39; &amp; more"), ("ü → ✓", "ü → ✓"),
    ])
    func escapesWhatHTMLWouldRead(text: String, escaped: String) {
        #expect(StatusPage.escape(text) == escaped)
    }

    /// Whatever a node's script printed, whatever an error said: text on
    /// the page, never markup; the forms only with a session's token.
    @Test func aJobsOwnTextNeverBecomesMarkup() throws {
        let hostile = #"<img src=x onerror="alert(1)">"#
        let job: JSONValue = .object([
            "id": .number(3), "state": .string("failed"),
            "request": .object(["kind": .string("patch"), "target_version": .string("1.34.5")]),
            "error": .string(hostile), "current_node": .string(hostile), "current_stage": .string("workers"),
            "stages": .array([.object(["name": .string("workers"), "status": .string("failed")])]),
            "nodes": .array([
                .object(["name": .string("worker-1"), "status": .string("failed"), "detail": .string(hostile)])
            ]),
            "result": .object([
                "nodes": .array([
                    .object([
                        "name": .string("worker-1"), "role": .string("worker"), "before": .string("1.34.3"),
                        "after": .string("1.34.3"), "outcome": .string("failed"), "pods_evicted": .number(2),
                        "blockers": .array([.string(hostile)]), "predicted_blockers": .array([.string("db-0: pdb")]),
                    ])
                ]),
                "snapshot_rehearsal": .string(hostile),
            ]),
        ])
        let event: JSONValue = .object([
            "seq": .number(9), "time": .string("2026-12-06T08:00:00Z"), "kind": .string("info"),
            "node": .string("worker-1"), "message": .string(hostile),
        ])
        let page = StatusPage.job(job, events: [event], now: 0, csrf: "token\"<")
        #expect(!page.contains("<img"))
        #expect(page.contains("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"))
        #expect(page.contains(#"value="token&quot;&lt;""#))
        #expect(page.contains("Resume job 3") && !page.contains("Abort job 3"))
        #expect(page.contains("forecast: db-0: pdb"))
        #expect(page.contains(#"data-after="9""#))
        #expect(page.contains("1.34.3 → 1.34.3"))
        let reader = StatusPage.job(job, events: [event], now: 0, csrf: nil)
        #expect(!reader.contains("<form"))
    }

    /// A running job's page shows every node of its plan from the start, in
    /// its order, with role and versions: reached ones with their progress,
    /// the others pending, or skipped with the plan's reason.
    @Test func aRunningJobsRowsFollowItsPlanFromTheStart() {
        let job: JSONValue = .object([
            "id": .number(4), "state": .string("running"),
            "request": .object(["target_version": .string("1.34.5"), "kind": .string("patch")]),
            "nodes": .array([
                .object(["name": .string("master"), "status": .string("succeeded"), "duration_seconds": .number(3)]),
                .object(["name": .string("worker-1"), "status": .string("running")]),
            ]),
        ])
        let planned = [
            StatusPage.PlannedNode(name: "master", role: "master", before: "1.34.3", after: "1.34.5"),
            StatusPage.PlannedNode(name: "worker-1", role: "worker", before: "1.34.3", after: "1.34.5"),
            StatusPage.PlannedNode(name: "worker-2", role: "worker", before: "1.34.3", after: "1.34.5"),
            StatusPage.PlannedNode(
                name: "worker-3", role: "worker", before: "1.34.5", after: "1.34.5", skipped: "already at 1.34.5"),
        ]
        let page = StatusPage.job(job, events: [], now: 0, csrf: nil, planned: planned)
        let rows = page.components(separatedBy: "<tr><th scope=\"row\">").dropFirst().map {
            String($0.prefix { $0 != "\n" })
        }
        #expect(rows.map { String($0.prefix { $0 != "<" }) } == ["master", "worker-1", "worker-2", "worker-3"])
        #expect(rows[0].contains(#"<td>master</td><td>1.34.3 → 1.34.5</td><td class="s-succeeded">succeeded"#))
        #expect(rows[1].contains(#"<td>worker</td><td>1.34.3 → 1.34.5</td><td class="s-running">running"#))
        #expect(rows[2].contains(#"<td>worker</td><td>1.34.3 → 1.34.5</td><td class="s-pending">pending"#))
        #expect(rows[3].contains(#"class="s-skipped">skipped<br><small>already at 1.34.5</small>"#), "\(rows[3])")
        // Without a plan (a finished job, another process's job): the rows the job has.
        let bare = StatusPage.job(job, events: [], now: 0, csrf: nil)
        #expect(bare.components(separatedBy: "<tr><th scope=\"row\">").count == 3)
    }

    @Test(arguments: [
        ("token=abc", ["token": "abc"]), ("a=1&b=two+words&a=2", ["a": "1", "b": "two words"]),
        ("csrf=%41%62%E2%9C%93&confirm=yes", ["csrf": "Ab✓", "confirm": "yes"]),
        ("bad=%4&empty=&flag", ["bad": "%4", "empty": "", "flag": ""]),
        ("", [:]),
    ])
    func readsAFormBody(text: String, fields: [String: String]) {
        #expect(FormBody.fields(text) == fields)
    }
}

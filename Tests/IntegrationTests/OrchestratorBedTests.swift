import Foundation
import Shared
import SharedIO
import TestSupport
import Testing

extension TestBedSuites {
    /// The orchestrator with the test bed's real Prometheus as its gate.
    @Suite("orchestrator on the test bed", .serialized)
    struct OrchestratorBedTests {
        @Test func aJobKilledMidWaitIsInterruptedAndResumesToTheEndWithItsHistoryIntact() async throws {
            let bed = try await TestBed.start()
            try await bed.setGateBlocker(true)
            // The blocker fires before the job: with a quiet period the resumed
            // job would rightly fail its pre-flight (the next test shows it).
            // --auto-resume false: the resume by hand (the bed's pod tests cover the self-resume).
            let fixture = try OrchestratorFixture(bed: bed, extra: ["--quiet-period", "0", "--auto-resume", "false"])
            let first = try await fixture.launch()
            let created = try await first.request(
                "POST", "/execute", body: #"{"target_version":"1.34.5","kind":"patch","stages":"preflight,snapshot"}"#)
            #expect(created.status == 202)
            let held = try await first.waitForWait(1)
            #expect(held[dotted: "wait.reason"]?.stringValue == "firing: TestbedGateBlocker")
            #expect(held[dotted: "state"]?.stringValue == "running")
            // A follower of the job's events outlives the service: it
            // reconnects after the last event it saw, to the job's end.
            async let followed = first.cli("status", "1", "--follow")
            try await Task.sleep(for: .milliseconds(500))

            #expect(try await first.stop(signal: SIGKILL) == 128 + SIGKILL)
            let second = try await fixture.launch(port: first.port)
            let interrupted = try await second.json("/jobs/1?events_limit=1000")
            #expect(interrupted[dotted: "state"]?.stringValue == "interrupted")
            #expect(interrupted[dotted: "wait"] == .null)

            try await bed.setGateBlocker(false)
            #expect(try await second.request("POST", "/jobs/1/resume").status == 202)
            let done = try await second.waitForJob(1, state: "succeeded")
            let events = done[dotted: "events.items"]?.arrayValue ?? []
            let sequences = events.compactMap { $0[dotted: "seq"]?.intValue }
            #expect(sequences == Array(1...sequences.count))
            #expect(done[dotted: "events.total"]?.intValue == sequences.count)
            let times = events.compactMap { $0[dotted: "time"]?.stringValue }
            #expect(times == times.sorted())
            let kinds = events.compactMap { $0[dotted: "kind"]?.stringValue }
            let expectedOrder = [
                "job_queued", "job_started", "wait_started", "wait_updated", "job_interrupted", "job_resumed",
                "job_started",
            ]
            #expect(Array(kinds.prefix(expectedOrder.count)) == expectedOrder)
            #expect(kinds.last == "job_succeeded")
            let follow = try await followed
            #expect(follow.status == 0, "\(follow.stderr)")
            let lines = follow.stdout.split(separator: "\n").map(String.init)
            for message in [
                "queued: patch upgrade to 1.34.5", "the service stopped while the job was running", "resumed",
            ] {
                #expect(lines.filter { $0.contains(message) }.count == 1, "\(message): \(follow.stdout)")
            }
            #expect(lines.filter { $0.contains("started: patch upgrade to 1.34.5") }.count == 2, "\(follow.stdout)")
            #expect(lines.filter { $0.contains("preflight started") }.count == 1, "\(follow.stdout)")
            #expect(lines.contains("job 1 succeeded"), "\(follow.stdout)")
            let stages = done[dotted: "stages"]?.arrayValue?.map { $0[dotted: "status"]?.stringValue ?? "" }
            #expect(
                stages == [
                    "succeeded", "succeeded", "not_selected", "not_selected", "not_selected", "not_selected",
                    "not_selected",
                ])
            _ = try await second.stop(signal: SIGTERM)

            // The last success outlives the process: a new one reads it from the store.
            let finished = try #require(done[dotted: "finished_at"]?.stringValue)
            let seconds = Int(try Date(finished, strategy: .iso8601).timeIntervalSince1970)
            let third = try await fixture.launch()
            let metrics = try await third.request("GET", "/metrics")
            #expect(metrics.text.contains("k8s_upgrade_last_success_timestamp_seconds \(seconds)\n"), "\(metrics.text)")
            _ = try await third.stop(signal: SIGTERM)
        }

        @Test func aGateAlertThatFiredBeforeTheJobFailsItsQuietPeriodAndTouchesNothing() async throws {
            let bed = try await TestBed.start()
            try await bed.setGateBlocker(true)
            try await bed.setGateBlocker(false)
            let server = try await OrchestratorFixture(bed: bed).launch()
            let created = try await server.request(
                "POST", "/execute", body: #"{"target_version":"1.34.5","kind":"patch"}"#)
            #expect(created.status == 202)
            let failed = try await server.waitForJob(1, state: "failed")
            #expect(
                failed[dotted: "error"]?.stringValue?.contains(
                    "quiet period: failed: gate alerts fired in the last 24 h: TestbedGateBlocker") == true,
                "\(failed[dotted: "error"] ?? .null)")
            let nodes = try await bed.kubectl("get", "nodes", "--no-headers")
            #expect(!nodes.contains("SchedulingDisabled"))
            #expect(!nodes.contains("v1.34.5"))
            _ = try await server.stop(signal: SIGTERM)
        }

        /// A real headless Chromium (Debian's, driven over WebDriver by
        /// `Tests/Fixtures/status_page_browser.py`) on the status page of a
        /// real 1 + 4 run: signed in with the token, the node rows move with
        /// the job without a reload, the soak's countdown runs, and the job is
        /// aborted from the page. The screenshots are kept in
        /// `.build/test-artifacts/status-page/`.
        @Test func aBrowserFollowsARealRunOnTheStatusPageAndAbortsItThere() async throws {
            let bed = try await TestBed.start()
            let fixture = try OrchestratorFixture(bed: bed, extra: ["--quiet-period", "0", "--soak", "6"])
            let server = try await fixture.launch()
            let created = try await server.request(
                "POST", "/execute", body: #"{"target_version":"1.34.5","kind":"patch"}"#)
            #expect(created.status == 202)
            let artifacts = TestEnvironment.fixtures.deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent(".build/test-artifacts/status-page")
            try? FileManager.default.removeItem(at: artifacts)
            let browser = try await offThePool {
                try TestEnvironment.execute(
                    try TestEnvironment.tool("python3"),
                    [
                        TestEnvironment.fixtures.appendingPathComponent("status_page_browser.py").path,
                        "--url", server.baseURL, "--token-file", server.tokenFile, "--job", "1",
                        "--out", artifacts.path, "--chromedriver", try TestEnvironment.tool("chromedriver"),
                    ])
            }
            #expect(browser.status == 0, "\(browser.stderr)")
            let report = try JSONDecoder().decode(JSONValue.self, from: Data(browser.stdout.utf8))
            // Signed in through the form, then the list, then the job's page.
            #expect(report[dotted: "signed_in_url"]?.stringValue == "/")
            // Every node of the plan has its row from the start, with role and
            // versions; the rows moved while the page stayed: worker-1 went
            // from pending (or running) to succeeded.
            let seen = report[dotted: "node_states_seen"]?.objectValue ?? [:]
            #expect(Set(seen.keys) == ["master", "worker-1", "worker-2", "worker-3", "worker-4"], "\(seen)")
            let worker1 = seen["worker-1"]?.arrayValue?.compactMap(\.stringValue) ?? []
            #expect(worker1.last == "succeeded" && worker1.count >= 2, "\(seen)")
            #expect(
                report[dotted: "running.planned"]?.objectValue?["worker-4"]
                    == .array([.string("worker"), .string("1.34.3 → 1.34.5")]), "\(report[dotted: "running"] ?? .null)")
            #expect(report[dotted: "running.rows"]?.objectValue?["worker-4"] == .string("pending"))
            // The soak's countdown ran down in the browser.
            let countdown = report[dotted: "countdown"]
            #expect(countdown?[dotted: "wait"]?.stringValue?.hasPrefix("Waiting for soak of worker-") == true)
            let before = countdown?[dotted: "before"]?.stringValue ?? ""
            let after = countdown?[dotted: "after"]?.stringValue ?? ""
            #expect(
                Int(after.prefix { $0.isNumber }) ?? 99 < Int(before.prefix { $0.isNumber }) ?? 0,
                "\(countdown ?? .null)")
            // Aborted from the page: a ticked box survived the page's refreshes.
            #expect(report[dotted: "box_still_ticked"]?.boolValue == true)
            #expect(report[dotted: "finished.state"]?.stringValue == "aborted")
            #expect(report[dotted: "finished_url"]?.stringValue == "/jobs/1")
            #expect(report[dotted: "console"]?.arrayValue == [], "\(report[dotted: "console"] ?? .null)")
            let job = try await server.waitForJob(1, state: "aborted")
            let kinds = job[dotted: "events.items"]?.arrayValue?.compactMap { $0[dotted: "kind"]?.stringValue } ?? []
            #expect(kinds.contains("abort_requested") && kinds.last == "job_aborted", "\(kinds)")
            for name in ["running.png", "finished.png"] {
                let size =
                    (try? FileManager.default.attributesOfItem(
                        atPath: artifacts.appendingPathComponent(name).path)[.size] as? Int) ?? 0
                #expect(size > 10_000, "\(name): \(size) bytes")
            }
            _ = try await server.stop(signal: SIGTERM)
            #expect(server.process?.log.contains(server.token) == false)
        }

        @Test func theCLIStartsFollowsAbortsAndResumesAJob() async throws {
            let bed = try await TestBed.start()
            // The blocker fires before the job is created; see above.
            let fixture = try OrchestratorFixture(bed: bed, extra: ["--quiet-period", "0"])
            let server = try await fixture.launch()
            let bad = try await server.cli("execute", "--target", "1.34", "--kind", "patch")
            #expect(bad.status == 1)
            #expect(bad.stderr.contains("target_version: must be X.Y.Z"), "\(bad.stderr)")

            try await bed.setGateBlocker(true)
            // A real run waits at a closed gate (a dry run only reports it).
            let started = try await server.cli(
                "execute", "--target", "1.34.5", "--kind", "patch", "--stages", "preflight,snapshot")
            #expect(started.status == 0, "\(started.stderr)")
            #expect(started.stdout.hasPrefix("job 1 queued: patch upgrade to 1.34.5"))
            try await server.waitForWait(1)
            let status = try await server.cli("status", "1")
            #expect(
                status.stdout.contains(
                    "waiting for halt-on-alert gate (upgrade_gate=true) to open: firing: TestbedGateBlocker"))
            let conflict = try await server.cli("execute", "--target", "1.34.5", "--kind", "patch")
            #expect(conflict.status == 1)
            #expect(conflict.stderr.contains("HTTP 409: job 1 is running; one job at a time"))
            let aborted = try await server.cli("abort", "1")
            #expect(aborted.status == 0)
            try await server.waitForJob(1, state: "aborted")
            let jobs = try await server.cli("jobs")
            #expect(jobs.stdout.hasPrefix("1\taborted: patch upgrade to 1.34.5"))

            try await bed.setGateBlocker(false)
            #expect(try await server.cli("resume", "1").status == 0)
            let follow = try await server.cli("status", "1", "--follow", "--interval", "0.2")
            #expect(follow.status == 0, "\(follow.stderr)")
            let lines = follow.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first?.contains("queued: patch upgrade to 1.34.5") == true)
            #expect(lines.contains { $0.contains("preflight  preflight started") })
            #expect(lines.contains("job 1 succeeded"))
            #expect(lines.contains("summary:"))
            #expect(
                lines.contains {
                    $0.trimmingCharacters(in: .whitespaces).hasPrefix("snapshot: /") && $0.contains("keys")
                })
            _ = try await server.stop(signal: SIGTERM)
        }
    }
}

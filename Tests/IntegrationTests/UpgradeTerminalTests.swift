import Foundation
import Shared
import TestSupport
import Testing

extension TestBedSuites.OrchestratorBedTests {
    /// `k8s-upgrade upgrade` under a real terminal (tmux): it prints the
    /// plan, asks, and on "y" starts the job and follows it with the live
    /// view to its end; "n" starts nothing. Without a terminal and without
    /// `--yes` it refuses.
    @Test func upgradeShowsThePlanAsksAndFollowsTheJobOnATerminal() async throws {
        let bed = try await TestBed.start()
        let server = try await OrchestratorFixture(bed: bed, extra: ["--soak", "0"]).launch()
        let tmux = try TestEnvironment.tool("tmux")
        let directory = try TestEnvironment.makeDirectory("tmux")
        let socket = directory.appendingPathComponent("socket").path
        defer { _ = try? TestEnvironment.execute(tmux, ["-S", socket, "kill-server"]) }
        let upgrade = [
            OrchestratorFixture.binary, "upgrade", "--target", "1.34.5", "--dry-run", "--interval", "0.2",
            "--server", server.baseURL, "--api-token-file", server.tokenFile,
        ].map(Shell.quote).joined(separator: " ")

        func screen(_ session: String) throws -> String {
            try TestEnvironment.run(tmux, ["-S", socket, "capture-pane", "-p", "-J", "-S", "-300", "-t", session])
        }
        func waitFor(_ text: String, in session: String, timeout: Double = 60) async throws -> String {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                let shown = try screen(session)
                if shown.contains(text) { return shown }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw FixtureError("the terminal never showed \(text): \(try screen(session))")
        }
        func open(_ session: String) throws {
            try TestEnvironment.run(
                tmux,
                [
                    "-S", socket, "new-session", "-d", "-s", session, "-x", "150", "-y", "45",
                    "\(upgrade); echo EXIT=$?; sleep 600",
                ])
        }

        // "n": the plan, the question, nothing started.
        try open("no")
        let question = "Start a dry run of the patch upgrade to 1.34.5 of 5 nodes? [y/N]"
        let asked = try await waitFor(question, in: "no")
        #expect(asked.contains("target: 1.34.5 (patch): asked for"), "\(asked)")
        #expect(asked.contains("drain forecast (each node in turn):"), "\(asked)")
        try TestEnvironment.run(tmux, ["-S", socket, "send-keys", "-t", "no", "n", "Enter"])
        let declined = try await waitFor("EXIT=0", in: "no")
        #expect(declined.contains("not started"), "\(declined)")
        #expect(try await server.request("GET", "/jobs/1").status == 404)

        // "y": the job starts and the live view follows it to its end.
        try open("yes")
        _ = try await waitFor(question, in: "yes")
        try TestEnvironment.run(tmux, ["-S", socket, "send-keys", "-t", "yes", "y", "Enter"])
        let followed = try await waitFor("EXIT=", in: "yes", timeout: 120)
        #expect(followed.contains("EXIT=0"), "\(followed)")
        #expect(followed.contains("job 1 "), "\(followed)")
        let job = try await server.json("/jobs/1")
        #expect(job[dotted: "state"]?.stringValue == "succeeded")
        #expect(job[dotted: "request.dry_run"] == .bool(true))
        // The live view's last drawing is the finished job.
        let view = followed.components(separatedBy: "\n").suffix(40).joined(separator: "\n")
        #expect(view.contains("succeeded"), "\(view)")

        // No terminal, no --yes: refused, nothing started.
        let piped = try TestEnvironment.execute(
            OrchestratorFixture.binary,
            ["upgrade", "--target", "1.34.5", "--server", server.baseURL, "--api-token-file", server.tokenFile])
        #expect(piped.status != 0)
        #expect(piped.stderr.contains("upgrade asks on a terminal; give --yes to start without"), "\(piped)")
        #expect(try await server.request("GET", "/jobs/2").status == 404)
        _ = try await server.stop(signal: SIGTERM)
    }
}

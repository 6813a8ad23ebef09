public import Foundation
public import Shared
public import SharedIO

/// `k8s-upgrade serve` as a real process: its own folder, token file and
/// SQLite store, on a free loopback port. It can be killed and started again
/// on the same store, as a crashed pod would be.
public struct OrchestratorFixture: Sendable {
    public let directory: URL
    public let token = "test-token-\(UUID().uuidString.prefix(8))"
    public let arguments: [String]
    public var tokenFile: String { directory.appendingPathComponent("token").path }
    public var storePath: String { directory.appendingPathComponent("jobs.sqlite").path }
    public static var binary: String { TestEnvironment.productsDirectory.appendingPathComponent("k8s-upgrade").path }

    /// Prepares the folder and the token; `extra` are further `serve` options.
    /// The SSH key and node script are placeholders, so a job gets no
    /// further than its first gate. `kubeconfig` is the cluster the server
    /// reads (a simulator's, to judge `POST /execute`); without it, a
    /// placeholder API that refuses every connection.
    public init(prometheusURL: String, kubeconfig given: String? = nil, extra: [String] = []) throws {
        directory = try TestEnvironment.makeDirectory("orchestrator")
        try token.write(toFile: directory.appendingPathComponent("token").path, atomically: true, encoding: .utf8)
        let placeholder = directory.appendingPathComponent("placeholder").path
        try "placeholder\n".write(toFile: placeholder, atomically: true, encoding: .utf8)
        let kubeconfig = directory.appendingPathComponent("kubeconfig").path
        try """
        apiVersion: v1
        kind: Config
        clusters:
        - name: none
          cluster: {server: "https://127.0.0.1:9"}
        users:
        - name: none
          user: {token: placeholder}
        contexts:
        - name: none
          context: {cluster: none, user: none}
        current-context: none

        """.write(toFile: kubeconfig, atomically: true, encoding: .utf8)
        arguments =
            [
                "--prometheus-url", prometheusURL, "--poll-interval", "0.2", "--kubeconfig", given ?? kubeconfig,
                "--ssh-key-file", placeholder, "--known-hosts-file", placeholder, "--node-script", placeholder,
                // The placeholder API refuses every connection: fail at once instead of retrying.
                "--api-retry-budget", "0",
            ] + extra
    }

    /// An orchestrator for a test bed, configured as `testbed.sh up
    /// --orchestrator` configures its own (short soaks, the bed's nodes,
    /// Prometheus, Pushgateway and Slack stand-in), with its own store.
    public init(bed: TestBed, extra: [String] = []) throws {
        directory = try TestEnvironment.makeDirectory("orchestrator")
        try token.write(toFile: directory.appendingPathComponent("token").path, atomically: true, encoding: .utf8)
        let file = URL(fileURLWithPath: bed.environment["TESTBED_ORCHESTRATOR_ARGS"] ?? "")
        var bedArguments = try JSONDecoder().decode([String].self, from: Data(contentsOf: file))
        bedArguments.removeFirst()  // "serve"
        var kept: [String] = []
        var index = 0
        while index < bedArguments.count {
            // The fixture sets these itself.
            if ["--listen", "--store", "--api-token-file"].contains(bedArguments[index]) {
                index += 2
                continue
            }
            kept.append(bedArguments[index])
            index += 1
        }
        arguments = kept + extra
    }

    /// Starts a server process and waits until it listens and is ready
    /// (it has taken over its job store and takes jobs); on `port`, else a free one.
    public func launch(port: Int = 0) async throws -> RunningOrchestrator {
        let server = try await listening(port: port)
        let deadline = Date().addingTimeInterval(15)
        var last = ""
        while Date() < deadline {
            let answer = try? await server.request("GET", "/readyz", authorised: false)
            if answer?.status == 200 { return server }
            last = answer.map { "\($0.status) \($0.text)" } ?? "no answer"
            try await Task.sleep(for: .milliseconds(50))
        }
        throw FixtureError("k8s-upgrade serve listens but is not ready after 15 s: \(last)")
    }

    /// Starts a server process and waits until it listens (on `port`, else a free one).
    public func listening(port: Int = 0) async throws -> RunningOrchestrator {
        let portFile = directory.appendingPathComponent("port")
        try? FileManager.default.removeItem(at: portFile)
        let command =
            [
                "serve", "--listen", "127.0.0.1:\(port)", "--port-file", portFile.path, "--store", storePath,
                "--api-token-file", tokenFile,
            ] + arguments
        let directory = directory
        return try await offThePool {
            let process = try ServerProcess(Self.binary, command, directory: directory, name: "k8s-upgrade")
            let port = try process.waitForPort(in: portFile, what: "k8s-upgrade serve")
            return RunningOrchestrator(process: process, port: port, token: token, tokenFile: tokenFile)
        }
    }
}

/// One running `k8s-upgrade serve`: a process of the test's own, or the
/// bed's orchestrator pod (whose process changes as the pod is replaced).
public struct RunningOrchestrator: Sendable {
    public let process: ServerProcess?
    public let port: Int
    public let token: String
    public let tokenFile: String
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    public init(process: ServerProcess?, port: Int, token: String, tokenFile: String) {
        self.process = process
        self.port = port
        self.token = token
        self.tokenFile = tokenFile
    }

    /// Sends a request; with `authorised`, the right bearer token.
    public func request(
        _ method: String, _ path: String, body: String? = nil, contentType: String? = "application/json",
        authorised: Bool = true, headers: [(name: String, value: String)] = []
    ) async throws -> HTTPResponse {
        var fields = headers
        if body != nil, let contentType { fields.append(("Content-Type", contentType)) }
        return try await HTTPClient().send(
            HTTPRequest(
                method: method, url: baseURL + path, headers: fields, body: body.map { Data($0.utf8) },
                bearerToken: authorised ? token : nil, timeout: .seconds(10)))
    }

    /// GET `path` and decode its JSON.
    public func json(_ path: String) async throws -> JSONValue {
        let response = try await request("GET", path)
        guard response.status == 200 else { throw FixtureError("GET \(path): \(response.status) \(response.text)") }
        return try JSONDecoder().decode(JSONValue.self, from: response.body)
    }

    /// Waits until job `id` is in `state`, polling every 50 ms.
    @discardableResult
    public func waitForJob(_ id: Int, state: String, timeout: Double = 20) async throws -> JSONValue {
        let deadline = Date().addingTimeInterval(timeout)
        var last: JSONValue = .null
        while Date() < deadline {
            do { last = try await json("/jobs/\(id)?events_limit=1000") } catch let error as HTTPClientError
                where process == nil
            {
                // The bed's orchestrator pod is being replaced: ask its successor.
                last = .string("\(error)")
                try await Task.sleep(for: .milliseconds(100))
                continue
            }
            if last[dotted: "state"]?.stringValue == state { return last }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw FixtureError("job \(id) did not become \(state) in \(timeout) s; it is \(JobText.json(last))")
    }

    /// Waits until job `id` reports a wait (it is held, e.g. by the gate).
    @discardableResult
    public func waitForWait(_ id: Int, timeout: Double = 20) async throws -> JSONValue {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let job = try await json("/jobs/\(id)")
            if let wait = job[dotted: "wait"], wait != .null { return job }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw FixtureError("job \(id) never waited in \(timeout) s")
    }

    /// Runs the CLI against this server.
    public func cli(_ arguments: String...) async throws -> (status: Int32, stdout: String, stderr: String) {
        let all = arguments + ["--server", baseURL, "--api-token-file", tokenFile]
        return try await offThePool { try TestEnvironment.execute(OrchestratorFixture.binary, all) }
    }

    /// Sends `signal` and waits for the process to end.
    public func stop(signal: Int32) async throws -> Int32 {
        guard let pid = process?.pid else {
            throw FixtureError("the bed's orchestrator pod is stopped through the bed")
        }
        return try await offThePool {
            kill(pid, signal)
            return ChildProcess.wait(pid)
        }
    }
}

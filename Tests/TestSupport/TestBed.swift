public import Foundation
public import Shared
public import SharedIO

/// The whole test bed (`scripts/testbed.sh up`), started for one test and
/// torn down with it. Its pids live under the test root, so a crashed run
/// is cleaned up by `scripts/stop-test-servers.sh`.
public final class TestBed: Sendable {
    public let directory: URL
    /// The variables of the bed's env file.
    public let environment: [String: String]

    /// Brings a bed up (`scripts/testbed.sh up`).
    /// `extra` are further `testbed.sh up` options (`--orchestrator`, …).
    /// Every bed's API goes away for 1 s whenever kubeadm restarts a
    /// control plane's API server, so every upgrade test rides through an
    /// outage; a test that studies outages passes its own `--api-outage`.
    public static func start(
        scenario: String = "default", runningVersion: String = "1.34.3", masterContainerd: String = "1.7.24",
        extra: [String] = []
    ) async throws -> TestBed {
        try await offThePool {
            try TestBed(
                scenario: scenario, runningVersion: runningVersion, masterContainerd: masterContainerd, extra: extra)
        }
    }

    private init(scenario: String, runningVersion: String, masterContainerd: String, extra: [String]) throws {
        directory = try TestEnvironment.makeDirectory("testbed")
        let result = try TestEnvironment.execute(
            Self.script,
            [
                "up", "--dir", directory.path, "--scenario", scenario, "--bin-dir",
                TestEnvironment.productsDirectory.path, "--running-version", runningVersion,
                "--master-containerd", masterContainerd, "--api-outage", "1",
            ] + extra)
        guard result.status == 0 else { throw FixtureError("testbed up failed: \(result.stderr)") }
        let text = try String(contentsOf: directory.appendingPathComponent("env"), encoding: .utf8)
        var environment: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("export ") {
            let assignment = line.dropFirst("export ".count)
            guard let equals = assignment.firstIndex(of: "=") else { continue }
            let value = assignment[assignment.index(after: equals)...]
            environment[String(assignment[..<equals])] =
                (try? JSONDecoder().decode(String.self, from: Data(value.utf8))) ?? String(value)
        }
        self.environment = environment
    }

    deinit { try? stop() }

    /// Stops every process of the bed and removes its folder.
    public func down() async throws { try await offThePool { try self.stop() } }

    private func stop() throws {
        guard FileManager.default.fileExists(atPath: directory.path) else { return }
        _ = try TestEnvironment.execute(Self.script, ["down", "--dir", directory.path])
    }

    /// The pids the bed started (read before `down`).
    public func pids() -> [Int32] {
        let folder = directory.appendingPathComponent("pids")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return files.compactMap { try? String(contentsOf: folder.appendingPathComponent($0), encoding: .utf8) }
            .compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    public var nodes: [String] { (environment["TESTBED_NODES"] ?? "").split(separator: " ").map(String.init) }

    /// The loopback port of a node's sshd.
    public func sshPort(of node: String) throws -> Int {
        for pair in (environment["TESTBED_SSH_PORTS"] ?? "").split(separator: " ") {
            let parts = pair.split(separator: "=")
            if parts.count == 2, parts[0] == node, let port = Int(parts[1]) { return port }
        }
        throw FixtureError("no node \(node) in the test bed")
    }

    /// An SSH client for a node of the bed.
    public func ssh(_ node: String) throws -> SSHClient {
        let port = try sshPort(of: node)
        return SSHClient(
            configuration: SSHConfiguration(
                host: "127.0.0.1", port: port, user: environment["TESTBED_SSH_USER"] ?? "root",
                privateKeyFile: environment["TESTBED_SSH_KEY"] ?? "",
                knownHostsFile: environment["TESTBED_KNOWN_HOSTS"] ?? "",
                connectTimeout: .seconds(5)))
    }

    /// Cuts every SSH session open to a node, as a dropped network path or a
    /// restarted sshd would: the per-connection sshd processes are killed,
    /// so each client sees its connection end and each session's commands
    /// lose their input and output. The node's sshd goes on listening.
    public func cutSSHSessions(of node: String) throws -> Int {
        let file = directory.appendingPathComponent("pids/sshd-\(node).pid")
        let text = try String(contentsOf: file, encoding: .utf8)
        guard let listener = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw FixtureError("\(file.path) holds no pid")
        }
        let children = try TestEnvironment.execute(
            try TestEnvironment.tool("pgrep"), ["-P", "\(listener)"])
        let pids = children.stdout.split(separator: "\n").compactMap { Int32($0) }
        for pid in pids { kill(pid, SIGKILL) }
        return pids.count
    }

    /// Kills the etcd member of a control plane (an HA bed's `etcd-<node>`)
    /// and waits until it is gone, as a member that crashed.
    public func stopDatastoreMember(of node: String) throws {
        let file = directory.appendingPathComponent("pids/etcd-\(node).pid")
        let text = try String(contentsOf: file, encoding: .utf8)
        guard let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw FixtureError("\(file.path) holds no pid")
        }
        kill(-pid, SIGKILL)
        for _ in 0..<100 where kill(pid, 0) == 0 { usleep(50_000) }
    }

    /// Runs the real kubectl with the bed's kubeconfig.
    public func kubectl(_ arguments: String...) async throws -> String {
        let kubectl = try TestEnvironment.tool("kubectl")
        let prefix = [
            "--kubeconfig", environment["KUBECONFIG"] ?? "", "--cache-dir",
            directory.appendingPathComponent("kube-cache").path,
        ]
        return try await offThePool { try TestEnvironment.run(kubectl, prefix + arguments) }
    }

    /// An HTTP client trusting the bed's CA.
    public var http: HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.tls = TLSConfiguration(trustRoots: .file(environment["TESTBED_CA"] ?? ""))
        return HTTPClient(configuration: configuration)
    }

    private static var script: String {
        TestEnvironment.fixtures.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/testbed.sh").path
    }
}

extension TestBed {
    /// When the API outage that kubeadm's restart of an API server began
    /// ends (epoch seconds); 0 when there was none.
    public func apiOutageEnd() -> Double {
        let path = environment["TESTBED_API_OUTAGE_FILE"] ?? ""
        return (try? String(contentsOfFile: path, encoding: .utf8)).flatMap {
            Double($0.trimmingCharacters(in: .whitespacesAndNewlines))
        } ?? 0
    }

    /// Sleeps until the API outage of the last kubeadm restart is over (a
    /// judge such as kubectl does not retry).
    public func waitOutAPIOutage() async throws {
        let left = apiOutageEnd() - Date().timeIntervalSince1970
        if left > 0 { try await Task.sleep(for: .seconds(left + 0.3)) }
    }

    /// What the bed's orchestrator pod runs now (`testbed.sh up --orchestrator`).
    public struct OrchestratorPod: Sendable, Equatable {
        public var pod: String
        public var node: String
        public var pid: Int32
        public var starts: Int
        public var store: String
        public var ready: Bool
    }

    /// The orchestrator pod's state, as its supervisor last wrote it.
    public func orchestratorPod() throws -> OrchestratorPod {
        let path = environment["TESTBED_ORCHESTRATOR_POD"] ?? ""
        let state = try JSONValue.parse(String(contentsOfFile: path, encoding: .utf8))
        return OrchestratorPod(
            pod: state[dotted: "pod"]?.stringValue ?? "", node: state[dotted: "node"]?.stringValue ?? "",
            pid: Int32(state[dotted: "pid"]?.intValue ?? 0), starts: state[dotted: "starts"]?.intValue ?? 0,
            store: state[dotted: "store"]?.stringValue ?? "", ready: state[dotted: "ready"]?.boolValue ?? false)
    }

    /// Waits until the orchestrator pod has started `starts` times and its
    /// process answers; returns its state.
    @discardableResult
    public func waitForOrchestratorPod(starts: Int, timeout: Double = 60) async throws -> OrchestratorPod {
        let deadline = Date().addingTimeInterval(timeout)
        var last: OrchestratorPod?
        while Date() < deadline {
            last = try? orchestratorPod()
            if let last, last.starts >= starts, last.ready { return last }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw FixtureError(
            "the orchestrator pod did not reach start \(starts) in \(timeout) s: \(String(describing: last))")
    }

    /// The bed's orchestrator pod as a client (`--orchestrator`).
    public var orchestrator: RunningOrchestrator {
        get throws {
            guard let url = environment["TESTBED_ORCHESTRATOR_POD"], !url.isEmpty,
                let base = environment["TESTBED_ORCHESTRATOR_URL"],
                let port = Int(base.split(separator: ":").last ?? "")
            else { throw FixtureError("the bed runs no orchestrator pod (testbed.sh up --orchestrator)") }
            let tokenFile = environment["TESTBED_ORCHESTRATOR_TOKEN_FILE"] ?? ""
            let token = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(
                in: .whitespacesAndNewlines)
            return RunningOrchestrator(process: nil, port: port, token: token, tokenFile: tokenFile)
        }
    }

    /// Fires (or clears) the bed's gate alert through the Pushgateway and
    /// waits until Prometheus reports it so.
    public func setGateBlocker(_ firing: Bool, reason: String = "test") async throws {
        let group = (environment["TESTBED_PUSHGATEWAY_URL"] ?? "") + "/metrics/job/testbed-gates"
        let request =
            firing
            ? HTTPRequest(method: "PUT", url: group, body: Data("testbed_gate_blocker{reason=\"\(reason)\"} 1\n".utf8))
            : HTTPRequest(method: "DELETE", url: group)
        guard try await http.send(request).isSuccess else { throw FixtureError("Pushgateway refused \(group)") }
        let prometheus = Prometheus(baseURL: environment["TESTBED_PROMETHEUS_URL"] ?? "")
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            let alerts = (try? await prometheus.alerts()) ?? []
            let fired = alerts.contains { $0.name == "TestbedGateBlocker" && $0.state == "firing" }
            if fired == firing { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw FixtureError("the gate alert did not \(firing ? "fire" : "clear") within 15 s")
    }
}

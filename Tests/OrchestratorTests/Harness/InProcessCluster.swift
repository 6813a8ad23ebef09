import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Shared
import SharedIO
import Synchronization
import TestSupport

@testable import ClusterSim
@testable import Orchestrator

/// The job's clock and the simulated cluster's: time passes only when the
/// job sleeps, and each sleep runs the cluster's controllers at the new
/// time (pods turn Ready, graceful deletions finish, budgets recount). A
/// soak, a drain timeout or a gate wait of many minutes runs in
/// milliseconds, deterministically. Concurrent sleepers each move it on
/// (the drain's parallel evictions), so simulated time can run ahead of
/// what a real cluster would take; tests assert outcomes, not durations.
final class SimulationClock: JobClock {
    private let start: Double
    private let elapsed = Mutex(Duration.zero)
    private let hooks = Mutex<[@Sendable (Double) async -> Void]>([])

    init(start: Double = 1_800_000_000) { self.start = start }

    func now() -> Double {
        let (seconds, attoseconds) = elapsed.withLock { $0 }.components
        return start + Double(seconds) + Double(attoseconds) / 1e18
    }

    var date: Date { Date(timeIntervalSince1970: now()) }
    var slept: Duration { elapsed.withLock { $0 } }

    /// Runs `hook` with the new time after every sleep.
    func onSleep(_ hook: @escaping @Sendable (Double) async -> Void) { hooks.withLock { $0.append(hook) } }

    func sleep(for duration: Duration) async throws {
        try Task.checkCancellation()
        elapsed.withLock { $0 += duration }
        let now = now()
        for hook in hooks.withLock({ $0 }) { await hook(now) }
        await Task.yield()
    }
}

/// Prometheus' place: a gate whose alerts a test sets, and a quiet window
/// that is always quiet.
final class StubAlerts: AlertSource {
    private let firing = Mutex<[String]>([])

    func fire(_ names: String...) { firing.withLock { $0 = names } }
    func clear() { firing.withLock { $0 = [] } }

    func gate(_ selector: GateSelector) async -> GateVerdict {
        let names = firing.withLock { $0 }
        return names.isEmpty ? .open : .closed(names)
    }

    func query(_ expression: String, at time: Double?) async throws -> [[String: String]] { [] }
}

/// Slack's place: every notice, in order.
final class RecordingNotifier: Notifier {
    private let notices = Mutex<[Notice]>([])
    var all: [Notice] { notices.withLock { $0 } }
    func notify(_ notice: Notice) { notices.withLock { $0.append(notice) } }
}

/// The nodes' place: answers the commands the pipeline sends as a kubeadm
/// node would, and makes the node script's effects on the simulated
/// cluster (the kubelet's new version and Ready, the control plane's static
/// pods), as the test bed's node tools do. Every command is recorded.
final class SimulatedNodes: RemoteShell {
    struct Sent: Sendable, Equatable {
        var node: String
        var words: [String]
    }

    let store: ClusterStore
    private let sent = Mutex<[Sent]>([])
    /// Nodes whose node script exits 1.
    let failing = Mutex<Set<String>>([])
    /// Nodes whose SSH port refuses connections.
    let unreachable = Mutex<Set<String>>([])
    /// etcd members (control-plane names) that do not answer.
    let etcdDown = Mutex<Set<String>>([])
    /// etcd answers nothing at all: `member list` fails as etcdctl does
    /// against a dead member, after its command timeout.
    let etcdUnreadable = Mutex(false)
    /// What happens to a node's next real script runs before one gets
    /// through: the session drops, or the run stops without a status.
    enum Interruption: Sendable { case sessionDrops, stopsWithoutStatus }
    let interruptions = Mutex<[String: [Interruption]]>([:])
    /// Told the node's name after each real node script run.
    private let afterScript = Mutex<[@Sendable (String) -> Void]>([])

    func onScript(_ hook: @escaping @Sendable (String) -> Void) { afterScript.withLock { $0.append(hook) } }

    /// How long each real node script takes on `clock` (a fixed-duration node tool).
    let scriptDuration = Mutex(Duration.zero)
    let clock: SimulationClock?

    init(store: ClusterStore, clock: SimulationClock? = nil) {
        self.store = store
        self.clock = clock
    }

    var commands: [Sent] { sent.withLock { $0 } }

    /// No file is copied off a simulated node (no in-process test sets a copy folder).
    func download(
        _ path: String, from node: NodeFacts, to localPath: String, timeout: Duration
    ) async throws
        -> SSHDownload
    { throw FixtureError("simulated nodes hold no files to copy (\(path) on \(node.name))") }

    /// The node script runs (real and dry), as `node: arguments`.
    var scriptRuns: [String] {
        commands.compactMap { sent in
            guard let start = sent.words.firstIndex(of: "--role") else { return nil }
            return "\(sent.node): " + sent.words[start...].joined(separator: " ")
        }
    }

    /// As the service's SSH shell renders it for a user who is not root.
    func render(_ command: RemoteCommand) -> String {
        SSHRemoteShell(user: "ops", port: 22, keyFile: "", knownHostsFile: "", addresses: [:]).render(command)
    }

    func run(
        _ command: RemoteCommand, on node: NodeFacts, onOutput: (@Sendable (SSHOutputLine) -> Void)?
    ) async throws -> SSHCommandResult {
        let words = command.steps.flatMap { $0 }
        sent.withLock { $0.append(Sent(node: node.name, words: words)) }
        if unreachable.withLock({ $0.contains(node.name) }) {
            throw SSHError(kind: .connectionRefused, destination: "\(node.name):22", detail: "connection refused")
        }
        if words == ["true"] { return Self.result(0) }
        if words.contains("member") && words.contains("list") {
            if etcdUnreadable.withLock({ $0 }) {
                return Self.result(1, stderr: "Error: context deadline exceeded")
            }
            return Self.result(0, await etcdMembers())
        }
        if words.contains("endpoint") && words.contains("health") { return Self.result(0, await etcdHealth()) }
        if let role = Self.value(after: "--role", in: words), let release = Self.value(after: "--release", in: words) {
            return try await nodeScript(node.name, role: role, release: release, dryRun: words.contains("--dry-run"))
        }
        return Self.result(127, stderr: "the simulated node does not know: \(Shell.command(words))")
    }

    private func nodeScript(
        _ node: String, role: String, release: String, dryRun: Bool
    ) async throws
        -> SSHCommandResult
    {
        if failing.withLock({ $0.contains(node) }) {
            return Self.result(1, "update_k8s.sh: apt-get install failed", stderr: "E: simulated failure")
        }
        guard !dryRun else { return Self.result(0, "dry run: nothing changed") }
        let duration = scriptDuration.withLock { $0 }
        if duration > .zero, let clock { try await clock.sleep(for: duration) }
        let interruption = interruptions.withLock { queued -> Interruption? in
            guard let next = queued[node]?.first else { return nil }
            queued[node]?.removeFirst()
            return next
        }
        switch interruption {
        case .sessionDrops?:
            throw SSHError(kind: .connectionLost, destination: "\(node):22", detail: "the simulated session dropped")
        case .stopsWithoutStatus?:
            return Self.result(NodeRun.stoppedWithoutStatus, stderr: "update_k8s.sh: run killed")
        case nil: break
        }
        if role != NodeRole.worker.rawValue { try await store.upgradeControlPlane(node: node, to: release) }
        let patch: JSONValue = .object([
            "status": .object([
                "nodeInfo": .object(["kubeletVersion": .string("v\(release)")]),
                "conditions": .array([
                    .object([
                        "type": .string("Ready"), "status": .string("True"), "reason": .string("KubeletReady"),
                        "message": .string("kubelet is posting ready status"),
                    ])
                ]),
            ])
        ])
        _ = try await store.patch(.nodes, namespace: nil, name: node, patch: patch, strategic: true, status: true)
        for hook in afterScript.withLock({ $0 }) { hook(node) }
        return Self.result(0, "+ kubelet restarted at \(release)")
    }

    private func controlPlanes() async -> [String] {
        await store.list(.nodes, namespace: nil).map(\.object).filter(ClusterStore.isControlPlane)
            .compactMap { $0[["metadata", "name"]]?.stringValue }.sorted()
    }

    private func etcdMembers() async -> String {
        let members = await controlPlanes().map { name -> JSONValue in
            .object(["name": .string(name), "clientURLs": .array([.string("https://\(name):2379")])])
        }
        return Self.text(.object(["members": .array(members)]))
    }

    private func etcdHealth() async -> String {
        let down = etcdDown.withLock { $0 }
        let answers = await controlPlanes().map { name -> JSONValue in
            var answer: [String: JSONValue] = [
                "endpoint": .string("https://\(name):2379"), "health": .bool(!down.contains(name)),
            ]
            if down.contains(name) { answer["error"] = .string("context deadline exceeded") }
            return .object(answer)
        }
        return Self.text(.array(answers))
    }

    static func text(_ value: JSONValue) -> String {
        String(decoding: (try? JSONEncoder().encode(value)) ?? Data(), as: UTF8.self)
    }

    static func value(after flag: String, in words: [String]) -> String? {
        guard let index = words.firstIndex(of: flag), index + 1 < words.count else { return nil }
        return words[index + 1]
    }

    static func result(_ status: Int32, _ stdout: String = "", stderr: String = "") -> SSHCommandResult {
        SSHCommandResult(
            exitStatus: status, exitSignal: nil, stdout: Data((stdout.isEmpty ? "" : stdout + "\n").utf8),
            stderr: Data(stderr.utf8))
    }
}

/// The orchestrator's coordinator and pipeline in this process, over the
/// API simulator's store served on loopback (so the real Kubernetes client
/// is what reads and writes it), simulated nodes, a stub gate and a
/// simulation clock.
struct InProcessOrchestrator {
    let clock: SimulationClock
    let pipeline: UpgradePipeline
    let store: ClusterStore
    let nodes: SimulatedNodes
    let alerts: StubAlerts
    let notices: RecordingNotifier
    let jobs: JobStore
    let coordinator: JobCoordinator
    let cluster: Cluster
    let gauges: GaugePublisher

    struct Options {
        var soak: Duration = .seconds(300)
        var canaryRollback = false
        var nodeReadyTimeout: Duration = .seconds(600)
        var gateWait: Duration = .seconds(1800)
        var drainTimeout: Duration = .seconds(600)
        var scriptTimeout: Duration = .seconds(1800)
        var distribution: any Distribution = KubeadmApt()
        var maintenance = MaintenanceSchedule()
        var nodeEstimate: Duration = .seconds(1200)
        var maxUnavailableWorkers = 1
    }

    /// Runs `body` with an orchestrator over `scenario` (a scenario document).
    static func with<T: Sendable>(
        scenario: String, options: Options = Options(), _ body: @Sendable (InProcessOrchestrator) async throws -> T
    ) async throws -> T {
        let clock = SimulationClock()
        let decoded = try JSONDecoder().decode(Scenario.self, from: Data(scenario.utf8))
        let store = await ClusterStore(scenario: decoded) { [clock] in clock.date }
        // The controllers run once per simulated second (pods turn Ready
        // after a second, graceful deletions take two), not at every 100 ms
        // slice of a sleep.
        let reconciled = Mutex(clock.now())
        clock.onSleep { now in
            guard
                reconciled.withLock({ last in
                    defer { if now - last >= 1 { last = now } }; return now - last >= 1
                })
            else { return }
            await store.reconcile(now: Date(timeIntervalSince1970: now))
        }
        let token = UUID().uuidString
        let handler = ClusterSim.APIHandler(store: store, token: token, faults: decoded.faults)
        let app = Application(
            responder: CallbackResponder { request, context in await handler.respond(to: request, context: context) },
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            logger: Logger(label: "in-process-sim", factory: { _ in SwiftLogNoOpLogHandler() }))
        return try await app.test(.live) { client in
            guard let port = client.port else { throw FixtureError("the in-process simulator has no port") }
            let access = KubernetesAccess(
                server: "http://127.0.0.1:\(port)", tls: TLSConfiguration(), token: .value(token),
                namespace: "k8s-upgrade")
            let orchestrator = try await make(access: access, store: store, clock: clock, options: options)
            let task = Task { try await orchestrator.coordinator.run() }
            defer { task.cancel() }
            try await poll(until: "the coordinator leading") { await orchestrator.coordinator.leading }
            return try await body(orchestrator)
        }
    }

    private static func make(
        access: KubernetesAccess, store: ClusterStore, clock: SimulationClock, options: Options
    ) async throws -> InProcessOrchestrator {
        let log = Logger.silent
        let cluster = Cluster(
            client: KubernetesClient(access: access), annotationPrefix: "k8s-upgrade.io", namespace: "k8s-upgrade")
        var drainer = Drainer(cluster: cluster)
        drainer.timeout = options.drainTimeout
        let nodes = SimulatedNodes(store: store, clock: clock)
        let alerts = StubAlerts()
        let notices = RecordingNotifier()
        let gauges = GaugePublisher(pushgatewayURL: nil, log: log)
        let pipeline = UpgradePipeline(
            settings: PipelineSettings(
                nodeScript: Data("#!/usr/bin/env bash\n".utf8), backupDir: "/var/backups/k8s-upgrade",
                expectedNodes: nil, masterNode: nil, workerOrder: .ascending, soak: options.soak,
                canaryRollback: options.canaryRollback,
                nodeReadyTimeout: options.nodeReadyTimeout, scriptTimeout: options.scriptTimeout, podReadyRatio: 0.9,
                quietPeriodHours: 0, repoBase: "https://pkgs.k8s.io/core:/stable:", distribution: options.distribution,
                maintenance: options.maintenance, nodeEstimate: options.nodeEstimate,
                maxUnavailableWorkers: options.maxUnavailableWorkers),
            cluster: cluster, shell: nodes, drainer: drainer,
            gate: GateCheck(
                alerts: alerts, selector: try GateSelector(parsing: GateSelector.defaultSelector),
                gateWait: options.gateWait),
            notifier: notices, gauges: gauges)
        let path = try TestEnvironment.makeDirectory("in-process").appendingPathComponent("jobs.sqlite").path
        let jobs = try await JobStore(path: path)
        let coordinator = JobCoordinator(
            store: jobs, pipeline: pipeline, admit: { _ in .accepted }, log: log, pollInterval: .seconds(5),
            clock: clock, distribution: options.distribution)
        return InProcessOrchestrator(
            clock: clock, pipeline: pipeline, store: store, nodes: nodes, alerts: alerts, notices: notices, jobs: jobs,
            coordinator: coordinator, cluster: cluster, gauges: gauges)
    }

    // MARK: - Driving a job

    /// Queues a job; `stages` as POST /execute takes them.
    func execute(
        _ target: String = "1.34.5", kind: UpgradeKind = .patch, stages: String = "master,workers",
        dryRun: Bool = false
    ) async throws -> Int64 {
        let request = ExecuteRequest(
            targetVersion: try KubeVersion(strictRelease: target), kind: kind,
            dryRun: dryRun, stages: try StageSelection(parsing: stages))
        guard case let .queued(job) = try await coordinator.submit(request) else {
            throw FixtureError("the job was not queued")
        }
        return job.id
    }

    /// Waits (real time, bounded) until the job reaches `state`; a job that
    /// finishes in another state fails at once.
    func waitFor(_ state: JobState, _ id: Int64) async throws -> JobRecord {
        var reached: JobRecord?
        try await poll(until: "job \(id) becoming \(state.rawValue)") {
            guard let job = try await jobs.job(id) else { return false }
            if job.state == state {
                reached = job
                return true
            }
            if job.state.isFinished {
                throw FixtureError("job \(id) is \(job.state.rawValue), not \(state.rawValue): \(job.progress)")
            }
            return false
        }
        guard let reached else { throw FixtureError("job \(id) vanished") }
        return reached
    }

    func events(_ id: Int64) async throws -> [JobEvent] { try await jobs.events(of: id, after: 0, limit: 100_000) }

    /// Why the job failed (its last event).
    func failure(_ id: Int64) async throws -> String {
        try await events(id).last { $0.kind == .jobFailed }?.message ?? "(no job_failed event)"
    }

    /// Runs `action` once, at the first sleep after `condition` holds (a
    /// sleep of the job: a soak, a wait, a drain's pause).
    func once(when condition: @escaping @Sendable () -> Bool, _ action: @escaping @Sendable () async -> Void) {
        let done = Mutex(false)
        clock.onSleep { _ in
            guard condition(),
                done.withLock({ value in
                    defer { value = true }; return !value
                })
            else { return }
            await action()
        }
    }

    /// `node: version, cordoned` for every node, from the API.
    func nodeStates() async throws -> [String: String] {
        var states: [String: String] = [:]
        for node in try await cluster.nodes() {
            states[node.name] = "\(node.kubelet?.description ?? "?")\(node.unschedulable ? ", cordoned" : "")"
        }
        return states
    }
}

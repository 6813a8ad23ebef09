import ArgumentParser
import FoundationEssentials
import Glibc
import Hummingbird
import Logging
import Shared
import SharedIO

/// `k8s-upgrade serve`: the HTTP service and its job runner.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the orchestrator: the HTTP API and the job runner, one job at a time.",
        discussion: """
            Routes: POST /execute, GET /jobs, GET|DELETE /jobs/{id}, POST /jobs/{id}/resume, \
            GET /metrics, GET /openapi.yaml (bearer token), GET /healthz and /readyz (open). \
            Jobs and their events are kept in an SQLite file; a job found running at start \
            becomes interrupted and can be resumed. SIGTERM stops the running job at its next \
            safe point as interrupted.
            """)

    @Option(help: "Address and port to listen on. (default: 127.0.0.1:8080)")
    var listen: String?

    @Option(help: "Write the bound port to this file once listening (for supervisors and tests). (default: none)")
    var portFile: String?

    @Option(help: "SQLite file of the job store, created if missing. (default: /var/lib/k8s-upgrade/jobs.sqlite)")
    var store: String?

    @Option(help: "File holding the bearer token clients must send. (default: /etc/k8s-upgrade/api/token)")
    var apiTokenFile: String?

    @Option(help: "Prometheus base URL for the halt-on-alert gate; unreachable means closed. (required)")
    var prometheusURL: String?

    @Option(
        help: "Alerts that close the gate: label=value or label!=value, comma-separated. (default: upgrade_gate=true)")
    var gateSelector: String?

    @Option(help: "Alert names the gate ignores, comma-separated; empty ignores none. (default: K8sVersionSkew)")
    var gateIgnore: String?

    @Option(help: "Seconds a stage waits for the gate to open before the job fails. (default: 1800)")
    var gateWait: Double?

    @Option(help: "Seconds between checks while waiting (gate, node, drain). (default: 5)")
    var pollInterval: Double?

    func run() async throws {
        let settings: ServeSettings
        do { settings = try ServeSettings(self, environment: ProcessInfo.processInfo.environment) } catch {
            throw ValidationError("\(error)")
        }
        try await Server(settings: settings).run()
    }
}

/// `serve`'s options after flags, environment and defaults are combined.
struct ServeSettings: Sendable {
    var host: String
    var port: Int
    var portFile: String?
    var store: String
    var apiTokenFile: String
    var prometheusURL: String
    var gate: GateSelector
    var gateWait: Duration
    var pollInterval: Duration

    init(_ flags: ServeCommand, environment: [String: String]) throws {
        let reader = OptionReader(environment: environment)
        (host, port) = try HostPort.parse(
            reader.value(flags.listen, "LISTEN") ?? "127.0.0.1:8080", option: "listen", defaultPort: nil,
            ports: 0...65535)
        portFile = reader.value(flags.portFile, "PORT_FILE")
        store = reader.value(flags.store, "STORE") ?? "/var/lib/k8s-upgrade/jobs.sqlite"
        apiTokenFile = reader.value(flags.apiTokenFile, "API_TOKEN_FILE") ?? "/etc/k8s-upgrade/api/token"
        guard let prometheusURL = try reader.url(flags.prometheusURL, "PROMETHEUS_URL") else {
            throw SettingsError("prometheus-url is required: the gates need Prometheus")
        }
        self.prometheusURL = prometheusURL
        let ignored =
            (reader.value(flags.gateIgnore, "GATE_IGNORE") ?? GateSelector.defaultIgnored.joined(separator: ","))
            .split(separator: ",").map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
        do {
            gate = try GateSelector(
                parsing: reader.value(flags.gateSelector, "GATE_SELECTOR") ?? GateSelector.defaultSelector,
                ignoring: ignored)
        } catch { throw SettingsError("gate-selector: \(error)") }
        gateWait = try reader.seconds(flags.gateWait, "GATE_WAIT", default: 1800, range: 1...86400)
        pollInterval = try reader.seconds(flags.pollInterval, "POLL_INTERVAL", default: 5, range: 0.1...600)
    }
}

/// Wires the store, the coordinator and the HTTP server together and runs
/// them until SIGTERM or SIGINT.
struct Server {
    let settings: ServeSettings

    func run() async throws {
        let log = JSONLog(component: "k8s-upgrade")
        let token = BearerToken(try TokenFile.read(settings.apiTokenFile))
        let store = try await JobStore(path: settings.store)
        for id in try await store.markInterrupted(at: JobContext.now()) {
            log.warning("job found running at start is now interrupted", ["job": String(id)])
        }
        let pipeline = GatedPipeline(
            gate: GateCheck(
                prometheus: Prometheus(baseURL: settings.prometheusURL), selector: settings.gate,
                gateWait: settings.gateWait))
        let coordinator = JobCoordinator(
            store: store, pipeline: pipeline, log: log, pollInterval: settings.pollInterval)
        let metrics = ServiceMetrics(startTime: JobContext.now())
        let handler = APIHandler(coordinator: coordinator, store: store, token: token, metrics: metrics)
        let portFile = settings.portFile
        let app = Application(
            responder: CallbackResponder { request, context in await handler.respond(to: request, context: context) },
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "k8s-upgrade"),
            services: [coordinator],
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                log.info("listening", ["address": "\(settings.host):\(port)", "store": settings.store])
                guard let portFile else { return }
                try? String(port).write(toFile: portFile + ".tmp", atomically: true, encoding: .utf8)
                _ = rename(portFile + ".tmp", portFile)
            },
            logger: .init(label: "k8s-upgrade", factory: { _ in SwiftLogNoOpLogHandler() }))
        try await app.runService()
        log.info("stopped")
    }
}

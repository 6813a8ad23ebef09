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

    @Option(help: "Seconds between checks while waiting (gate, node, soak). (default: 5)")
    var pollInterval: Double?

    @Option(help: "kubeconfig to use (default: in-cluster service account, else $KUBECONFIG, else ~/.kube/config).")
    var kubeconfig: String?

    @Option(help: "SSH user on the nodes; commands run through sudo -n unless it is root. (default: root)")
    var sshUser: String?

    @Option(help: "SSH port of the nodes when --node-address gives none. (default: 22)")
    var sshPort: Int?

    @Option(
        help: "Private key for SSH (ed25519, ECDSA or RSA, no passphrase). (default: /etc/k8s-upgrade/ssh/id_ed25519)")
    var sshKeyFile: String?

    @Option(help: "known_hosts file every node's host key must be in. (default: /etc/k8s-upgrade/ssh/known_hosts)")
    var knownHostsFile: String?

    @Option(
        help: ArgumentHelp(
            "SSH address of a node as NODE=HOST[:PORT], repeatable (in K8SUP_NODE_ADDRESS: comma-separated). (default: the node's InternalIP)",
            valueName: "node=host[:port]"))
    var nodeAddress: [String] = []

    @Option(help: "The node script piped to each node. (default: /usr/share/k8s-upgrade/update_k8s.sh)")
    var nodeScript: String?

    @Option(help: "Pushgateway base URL for the pipeline's gauges; empty pushes nothing. (default: none)")
    var pushgatewayURL: String?

    @Option(help: "File holding the Slack incoming-webhook URL; empty sends no notices. (default: none)")
    var slackWebhookFile: String?

    @Option(help: "Folder on the master for etcd snapshots. (default: /var/lib/etcd-backups)")
    var backupDir: String?

    @Option(
        help:
            "Pre-upgrade snapshots kept in --backup-dir after a new one; the one of an upgrade in flight is never removed, nor are files that are not snapshots. (default: 5)"
    )
    var snapshotKeep: Int?

    @Option(help: "Number of nodes the cluster must have; pre-flight fails otherwise. (default: any)")
    var expectedNodes: Int?

    @Option(help: "The control plane that runs kubeadm upgrade apply. (default: the first control plane by name)")
    var masterNode: String?

    @Option(help: "Worker order: ascending, descending or a comma list of node names. (default: ascending)")
    var workerOrder: String?

    @Option(help: "Seconds each upgraded worker is watched (gate and Ready) before the next. (default: 600)")
    var soak: Double?

    @Option(help: "Seconds a node's drain may take before the job fails naming the pods left. (default: 600)")
    var drainTimeout: Double?

    @Option(help: ServeSettings.drainExcludeHelp)
    var drainExclude: String?

    @Option(help: "Seconds a node has to turn Ready at the target after its kubelet restart. (default: 300)")
    var nodeReadyTimeout: Double?

    @Option(help: "Seconds the node script may run on a node. (default: 1800)")
    var scriptTimeout: Double?

    @Option(help: "Prefix of the annotations the tool writes on nodes and its namespace. (default: k8s-upgrade.io)")
    var annotationPrefix: String?

    @Option(help: "Namespace whose annotations mark an upgrade in flight. (default: k8s-upgrade)")
    var namespace: String?

    @Option(help: "Share of pods that must be Ready after the upgrade, 0 to 1. (default: 0.9)")
    var podReadyRatio: Double?

    @Option(help: "Hours with no gate alert fired before a job may start; 0 turns the check off. (default: 24)")
    var quietPeriod: Int?

    @Option(help: "Base URL of the per-minor package repositories. (default: https://pkgs.k8s.io/core:/stable:)")
    var repoBase: String?

    @Option(
        help:
            "Accept minor upgrades (true or false), as the detector's --allow-minor; a refused request changes nothing. (default: false)"
    )
    var allowMinor: Bool?

    @Option(help: "Accept a new minor only from this patch on, as the detector's --minor-min-patch. (default: 0)")
    var minorMinPatch: Int?

    @Option(
        help:
            "Resume, at start, the job the previous process left interrupted (true or false). (default: true)"
    )
    var autoResume: Bool?

    @Option(help: "Interruptions in a row within --restart-window that stop the self-resume. (default: 3)")
    var restartLimit: Int?

    @Option(help: "Seconds over which interruptions count as in a row. (default: 900)")
    var restartWindow: Double?

    @Option(
        help:
            "Seconds a Kubernetes call that meets connection refused or reset, a timeout, a 5xx or a 429 is tried again, with backoff, before the step fails naming it. (default: 120)"
    )
    var apiRetryBudget: Double?

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
    var kubeconfig: String?
    var sshUser: String
    var sshPort: Int
    var sshKeyFile: String
    var knownHostsFile: String
    var nodeAddresses: [String: (host: String, port: Int)] = [:]
    var nodeScriptPath: String
    var pushgatewayURL: String?
    var slackWebhookFile: String?
    var backupDir: String
    var snapshotKeep: Int
    var expectedNodes: Int?
    var masterNode: String?
    var workerOrder: WorkerOrder
    var soak: Duration
    var drainTimeout: Duration
    var drainExclusion: DrainExclusion
    var nodeReadyTimeout: Duration
    var scriptTimeout: Duration
    var annotationPrefix: String
    var namespace: String
    var podReadyRatio: Double
    var quietPeriodHours: Int
    var repoBase: String
    var policy: DetectionPolicy
    var autoResume: Bool
    var restartPolicy: RestartPolicy
    var apiRetryBudget: RetryBudget

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
        kubeconfig = reader.value(flags.kubeconfig, "KUBECONFIG")
        sshUser = reader.value(flags.sshUser, "SSH_USER") ?? "root"
        guard sshUser.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "@") }) else {
            throw SettingsError("ssh-user \(sshUser) is not a user name")
        }
        sshPort = try reader.integer(flags.sshPort, "SSH_PORT", default: 22, range: 1...65535)
        sshKeyFile = reader.value(flags.sshKeyFile, "SSH_KEY_FILE") ?? "/etc/k8s-upgrade/ssh/id_ed25519"
        knownHostsFile = reader.value(flags.knownHostsFile, "KNOWN_HOSTS_FILE") ?? "/etc/k8s-upgrade/ssh/known_hosts"
        let addresses =
            flags.nodeAddress.isEmpty
            ? (reader.value(nil, "NODE_ADDRESS") ?? "").split(separator: ",").map { $0.trimmingWhitespace() }
                .filter { !$0.isEmpty }
            : flags.nodeAddress
        for assignment in addresses {
            let parts = assignment.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, ObjectName.isDNS1123Subdomain(parts[0]) else {
                throw SettingsError("node-address must be NODE=HOST[:PORT], got \(assignment)")
            }
            nodeAddresses[parts[0]] = try HostPort.parse(parts[1], option: "node-address", defaultPort: sshPort)
        }
        nodeScriptPath = reader.value(flags.nodeScript, "NODE_SCRIPT") ?? "/usr/share/k8s-upgrade/update_k8s.sh"
        pushgatewayURL = try reader.url(flags.pushgatewayURL, "PUSHGATEWAY_URL")
        slackWebhookFile = reader.value(flags.slackWebhookFile, "SLACK_WEBHOOK_FILE").flatMap { $0.isEmpty ? nil : $0 }
        backupDir = reader.value(flags.backupDir, "BACKUP_DIR") ?? "/var/lib/etcd-backups"
        guard backupDir.hasPrefix("/"), !backupDir.contains("\n") else {
            throw SettingsError("backup-dir must be an absolute path, got \(backupDir)")
        }
        snapshotKeep = try reader.integer(flags.snapshotKeep, "SNAPSHOT_KEEP", default: 5, range: 1...1000)
        if flags.expectedNodes != nil || reader.value(nil, "EXPECTED_NODES") != nil {
            expectedNodes = try reader.integer(flags.expectedNodes, "EXPECTED_NODES", default: 0, range: 1...100_000)
        }
        masterNode = reader.value(flags.masterNode, "MASTER_NODE")
        if let masterNode, !ObjectName.isDNS1123Subdomain(masterNode) {
            throw SettingsError("master-node \(masterNode) is not a valid node name (DNS-1123)")
        }
        do {
            workerOrder = try WorkerOrder(parsing: reader.value(flags.workerOrder, "WORKER_ORDER") ?? "ascending")
        } catch {
            throw SettingsError("worker-order: \(error)")
        }
        soak = try reader.seconds(flags.soak, "SOAK", default: 600, range: 0...86400)
        drainTimeout = try Self.drainTimeout(flags.drainTimeout, reader)
        drainExclusion = try Self.drainExclusion(flags.drainExclude, reader, environment: environment)
        nodeReadyTimeout = try reader.seconds(
            flags.nodeReadyTimeout, "NODE_READY_TIMEOUT", default: 300, range: 1...86400)
        scriptTimeout = try reader.seconds(flags.scriptTimeout, "SCRIPT_TIMEOUT", default: 1800, range: 1...86400)
        annotationPrefix = try Self.annotationPrefix(flags.annotationPrefix, reader)
        namespace = reader.value(flags.namespace, "NAMESPACE") ?? "k8s-upgrade"
        guard ObjectName.isDNS1123Subdomain(namespace) else {
            throw SettingsError("namespace \(namespace) is not valid")
        }
        let ratioText = reader.value(flags.podReadyRatio.map { String($0) }, "POD_READY_RATIO") ?? "0.9"
        guard let ratio = Double(ratioText), (0...1).contains(ratio) else {
            throw SettingsError("pod-ready-ratio must be between 0 and 1, got \(ratioText)")
        }
        podReadyRatio = ratio
        quietPeriodHours = try reader.integer(flags.quietPeriod, "QUIET_PERIOD", default: 24, range: 0...720)
        repoBase = try reader.url(flags.repoBase, "REPO_BASE") ?? "https://pkgs.k8s.io/core:/stable:"
        policy = DetectionPolicy(
            allowMinor: try reader.boolean(flags.allowMinor, "ALLOW_MINOR", default: false),
            minimumMinorPatch: try reader.integer(
                flags.minorMinPatch, "MINOR_MIN_PATCH", default: 0, range: 0...1000))
        autoResume = try reader.boolean(flags.autoResume, "AUTO_RESUME", default: true)
        restartPolicy = RestartPolicy(
            limit: try reader.integer(flags.restartLimit, "RESTART_LIMIT", default: 3, range: 1...1000),
            window: try reader.seconds(flags.restartWindow, "RESTART_WINDOW", default: 900, range: 1...604_800).seconds)
        apiRetryBudget = RetryBudget(
            total: try reader.seconds(flags.apiRetryBudget, "API_RETRY_BUDGET", default: 120, range: 0...3600))
    }
}

extension ServeSettings {
    /// The pod this process runs in (`POD_NAMESPACE`, `POD_NAME`); `nil` outside a pod.
    var ownPod: (namespace: String, name: String)? {
        guard let reference = drainExclusion.ownPod, let slash = reference.firstIndex(of: "/") else { return nil }
        return (String(reference[..<slash]), String(reference[reference.index(after: slash)...]))
    }

    /// `--drain-timeout`, which `drain` shares with `serve`.
    static func drainTimeout(_ drainTimeout: Double?, _ reader: OptionReader) throws(SettingsError) -> Duration {
        try reader.seconds(drainTimeout, "DRAIN_TIMEOUT", default: 600, range: 1...86400)
    }

    static let drainExcludeHelp: ArgumentHelp = """
        Pods drain leaves running, as a label selector (key=value, key!=value, key, !key; comma-separated; \
        empty: none). The pod named by POD_NAMESPACE and POD_NAME (downward API) stays too. \
        (default: app.kubernetes.io/name=k8s-upgrade)
        """

    /// `--drain-exclude` and the pod this process runs in (`POD_NAMESPACE`
    /// and `POD_NAME`, set by the downward API), which `drain` shares with
    /// `serve`.
    static func drainExclusion(
        _ drainExclude: String?, _ reader: OptionReader, environment: [String: String]
    ) throws(SettingsError) -> DrainExclusion {
        let selector: PodSelector
        do {
            selector = try PodSelector(
                parsing: reader.value(drainExclude, "DRAIN_EXCLUDE") ?? DrainExclusion.defaultSelector)
        } catch { throw SettingsError("drain-exclude: \(error)") }
        var ownPod: String?
        if let name = environment["POD_NAME"], !name.isEmpty {
            let namespace = environment["POD_NAMESPACE"] ?? ""
            guard ObjectName.isDNS1123Subdomain(name), ObjectName.isDNS1123Subdomain(namespace) else {
                throw SettingsError(
                    "POD_NAME and POD_NAMESPACE must name this pod (set both from the downward API), got \(namespace)/\(name)"
                )
            }
            ownPod = "\(namespace)/\(name)"
        }
        return DrainExclusion(ownPod: ownPod, selector: selector)
    }

    /// `--annotation-prefix`, which `drain` shares with `serve`.
    static func annotationPrefix(_ annotationPrefix: String?, _ reader: OptionReader) throws(SettingsError) -> String {
        let prefix = reader.value(annotationPrefix, "ANNOTATION_PREFIX") ?? "k8s-upgrade.io"
        guard ObjectName.isDNS1123Subdomain(prefix) else {
            throw SettingsError("annotation-prefix must be a DNS subdomain such as k8s-upgrade.io, got \(prefix)")
        }
        return prefix
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
        let access = try KubernetesAccess.resolve(kubeconfig: settings.kubeconfig)
        let nodeScript: Data
        do { nodeScript = try Data(contentsOf: URL(fileURLWithPath: settings.nodeScriptPath)) } catch {
            throw SettingsError("node-script \(settings.nodeScriptPath) cannot be read: \(error)")
        }
        for (option, path) in [("ssh-key-file", settings.sshKeyFile), ("known-hosts-file", settings.knownHostsFile)]
        where !FileManager.default.isReadableFile(atPath: path) {
            throw SettingsError("\(option) \(path) cannot be read")
        }
        // deploy/ mounts the Slack Secret as optional: without it the file is
        // missing and the service runs without notices. A file that is there
        // but unreadable or empty is a mistake, and stops the start.
        var webhook: String?
        if let file = settings.slackWebhookFile {
            if FileManager.default.fileExists(atPath: file) {
                webhook = try TokenFile.read(file, what: "Slack webhook")
            } else {
                log.warning("no Slack notices: the webhook file is missing (its Secret is optional)", ["file": file])
            }
        }
        let notifier = SlackNotifier(webhookURL: webhook, log: log)
        let gauges = GaugePublisher(pushgatewayURL: settings.pushgatewayURL, log: log)
        if let last = try await store.lastSuccess() { gauges.seed { $0.lastSuccess = last } }
        let client = KubernetesClient(access: access, retryBudget: settings.apiRetryBudget)
        let cluster = Cluster(
            client: client, annotationPrefix: settings.annotationPrefix, namespace: settings.namespace)
        var drainer = Drainer(cluster: cluster)
        drainer.timeout = settings.drainTimeout
        drainer.exclusion = settings.drainExclusion
        if let pod = settings.drainExclusion.ownPod {
            log.info("drains leave this pod running", ["pod": pod, "selector": "\(settings.drainExclusion.selector)"])
        }
        let pipeline = UpgradePipeline(
            settings: PipelineSettings(
                nodeScript: nodeScript, backupDir: settings.backupDir, snapshotKeep: settings.snapshotKeep,
                expectedNodes: settings.expectedNodes,
                masterNode: settings.masterNode, workerOrder: settings.workerOrder, soak: settings.soak,
                nodeReadyTimeout: settings.nodeReadyTimeout, scriptTimeout: settings.scriptTimeout,
                podReadyRatio: settings.podReadyRatio, quietPeriodHours: settings.quietPeriodHours,
                repoBase: settings.repoBase),
            cluster: cluster,
            shell: SSHRemoteShell(
                user: settings.sshUser, port: settings.sshPort, keyFile: settings.sshKeyFile,
                knownHostsFile: settings.knownHostsFile, addresses: settings.nodeAddresses),
            drainer: drainer,
            gate: GateCheck(
                prometheus: Prometheus(baseURL: settings.prometheusURL), selector: settings.gate,
                gateWait: settings.gateWait),
            notifier: notifier, gauges: gauges)
        // In a pod, a replacement can start while this one still finishes
        // its node step: only the holder of the leader lease touches jobs.
        let lease = settings.ownPod.map { pod in
            LeaderLease(
                client: client, namespace: pod.namespace, election: LeaderElection(identity: pod.name), log: log)
        }
        // The request waits for these reads: no retries, a short timeout.
        let admitter = Admitter(
            cluster: Cluster(
                client: KubernetesClient(
                    access: access, timeout: .seconds(10), retryBudget: RetryBudget(total: .seconds(5))),
                annotationPrefix: settings.annotationPrefix, namespace: settings.namespace),
            policy: settings.policy)
        let clock = SystemJobClock()
        let coordinator = JobCoordinator(
            store: store, pipeline: pipeline, admit: { try await admitter.admit($0) }, log: log,
            pollInterval: settings.pollInterval, lease: lease, clock: clock,
            progressed: { time in gauges.update { $0.lastProgress = time } })
        await coordinator.whenLeading {
            await takeOver(
                store: store, cluster: cluster, coordinator: coordinator, notifier: notifier, gauges: gauges, log: log)
        }
        let metrics = ServiceMetrics(startTime: clock.now(), gauges: gauges)
        let handler = APIHandler(coordinator: coordinator, store: store, token: token, metrics: metrics)
        let portFile = settings.portFile
        let app = buildApplication(
            handler: handler,
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "k8s-upgrade"),
            services: [notifier, gauges, coordinator],
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                log.info("listening", ["address": "\(settings.host):\(port)", "store": settings.store])
                guard let portFile else { return }
                try? String(port).write(toFile: portFile + ".tmp", atomically: true, encoding: .utf8)
                _ = rename(portFile + ".tmp", portFile)
            })
        try await app.runService()
        log.info("stopped")
    }

    /// The leader's first moves, before its first job: a job the previous
    /// process left running is interrupted, the upgrade in flight adopted
    /// when the store lost it, and an interrupted job resumed (or failed
    /// when the service keeps restarting).
    private func takeOver(
        store: JobStore, cluster: Cluster, coordinator: JobCoordinator, notifier: SlackNotifier,
        gauges: GaugePublisher, log: JSONLog
    ) async {
        do {
            for id in try await store.markInterrupted(at: coordinator.clock.now()) {
                log.warning("job found running at start is now interrupted", ["job": String(id)])
            }
        } catch { log.error("could not mark the jobs left running as interrupted", ["error": "\(error)"]) }
        guard settings.autoResume else { return }
        await adoptInFlightJob(cluster: cluster, coordinator: coordinator, log: log)
        do {
            switch try await coordinator.continueAfterRestart(policy: settings.restartPolicy) {
            case let .resumed(id, restart)?:
                gauges.seed { $0.restarts = restart }
                notifier.notify(
                    Notice(
                        .warning, "Job \(id) resumed after the service restarted",
                        lines: ["restart \(restart) of this job; it continues from the cluster's live state"], jobID: id
                    ))
            case let .stopped(id, reason)?:
                // The job had begun (or it would not have been interrupted), so the cluster may be mid-upgrade.
                gauges.update {
                    $0.crashLoop = true
                    $0.inFlight = true
                }
                notifier.notify(
                    Notice(.failure, "Job \(id) failed: the service keeps restarting", lines: [reason], jobID: id))
            case nil: break
            }
        } catch { log.error("could not resume the interrupted job", ["error": "\(error)"]) }
    }

    /// Reads the cluster's in-flight mark and adopts its job when the store
    /// lost it. The API being away or the mark being unreadable is logged,
    /// not fatal: the service still starts, with what its store holds.
    private func adoptInFlightJob(cluster: Cluster, coordinator: JobCoordinator, log: JSONLog) async {
        let annotations: [String: String]
        do { annotations = try await cluster.namespaceAnnotations() } catch {
            log.error(
                "could not read the in-flight mark; an upgrade whose job this store lost is not adopted",
                [
                    "error": "\(error)"
                ])
            return
        }
        switch InFlightMark.read(annotations) {
        case nil: return
        case let .failure(error)?:
            log.error("the in-flight mark cannot be trusted; nothing adopted", ["error": error.description])
        case let .success(mark)?:
            do { _ = try await coordinator.adopt(mark, namespace: settings.namespace) } catch {
                log.error("could not adopt the in-flight job", ["job": String(mark.jobID), "error": "\(error)"])
            }
        }
    }
}

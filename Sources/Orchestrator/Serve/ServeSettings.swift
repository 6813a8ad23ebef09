import ArgumentParser
import FoundationEssentials
import Glibc
import Hummingbird
import Logging
import Shared
import SharedIO

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
    var logLevel: Logger.Level
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
        kubeconfig = try SharedOptions.kubeconfig.read(flags.kubeconfig, reader)
        sshUser = try SharedOptions.sshUser.read(flags.sshUser, reader)
        sshPort = try SharedOptions.sshPort.read(flags.sshPort, reader)
        sshKeyFile = try SharedOptions.sshKeyFile.read(flags.sshKeyFile, reader)
        knownHostsFile = try SharedOptions.knownHostsFile.read(flags.knownHostsFile, reader)
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
        pushgatewayURL = try SharedOptions.pushgatewayURL.read(flags.pushgatewayURL, reader)
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
        repoBase = try SharedOptions.repoBase.read(flags.repoBase, reader)
        policy = try SharedOptions.policy(allowMinor: flags.allowMinor, minorMinPatch: flags.minorMinPatch, reader)
        autoResume = try reader.boolean(flags.autoResume, "AUTO_RESUME", default: true)
        let level = reader.value(flags.logLevel, "LOG_LEVEL") ?? "info"
        guard let logLevel = ["debug": Logger.Level.debug, "info": .info, "warning": .warning, "error": .error][level]
        else { throw SettingsError("log-level must be debug, info, warning or error, got \(level)") }
        self.logLevel = logLevel
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

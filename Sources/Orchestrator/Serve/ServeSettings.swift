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
    var distribution: any Distribution
    var slackWebhookFile: String?
    var backupDir: String
    var backupCopyDir: String?
    var restoreRehearsal: Bool
    var snapshotKeep: Int
    var expectedNodes: Int?
    var masterNode: String?
    var workerOrder: WorkerOrder
    var soak: Duration
    var patchDrain: Bool
    var canaryRollback: Bool
    var allowSUCPlans: Bool
    var drainTimeout: Duration
    var drainExclusion: DrainExclusion
    var nodeReadyTimeout: Duration
    var scriptTimeout: Duration
    var annotationPrefix: String
    var namespace: String
    var podReadyRatio: Double
    var quietPeriodHours: Int
    var maintenance: MaintenanceSchedule
    var nodeEstimate: Duration
    var maxUnavailableWorkers: Int
    var repoBase: String
    var policy: DetectionPolicy
    var autoResume: Bool
    var logLevel: Logger.Level
    var restartPolicy: RestartPolicy
    var apiRetryBudget: RetryBudget

    init(_ flags: ServeCommand, environment: [String: String]) throws {
        let reader = OptionReader(environment: environment)
        (host, port) = try HostPort.parse(
            try ServeOptions.listen.read(flags.listen, reader), option: "listen", defaultPort: nil, ports: 0...65535)
        portFile = try ServeOptions.portFile.read(flags.portFile, reader)
        store = try ServeOptions.store.read(flags.store, reader)
        apiTokenFile = try ServeOptions.apiTokenFile.read(flags.apiTokenFile, reader)
        prometheusURL = try ServeOptions.prometheusURL.read(flags.prometheusURL, reader)
        let ignored = try ServeOptions.gateIgnore.read(flags.gateIgnore, reader)
        do {
            gate = try GateSelector(
                parsing: try ServeOptions.gateSelector.read(flags.gateSelector, reader), ignoring: ignored)
        } catch let error as GateError { throw SettingsError("gate-selector: \(error)") }
        gateWait = try ServeOptions.gateWait.read(flags.gateWait, reader)
        pollInterval = try ServeOptions.pollInterval.read(flags.pollInterval, reader)
        kubeconfig = try SharedOptions.kubeconfig.read(flags.kubeconfig, reader)
        sshUser = try SharedOptions.sshUser.read(flags.sshUser, reader)
        sshPort = try SharedOptions.sshPort.read(flags.sshPort, reader)
        sshKeyFile = try SharedOptions.sshKeyFile.read(flags.sshKeyFile, reader)
        knownHostsFile = try SharedOptions.knownHostsFile.read(flags.knownHostsFile, reader)
        for assignment in try ServeOptions.nodeAddress.read(flags.nodeAddress, reader) {
            let parts = assignment.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, ObjectName.isDNS1123Subdomain(parts[0]) else {
                throw SettingsError("node-address must be NODE=HOST[:PORT], got \(assignment)")
            }
            nodeAddresses[parts[0]] = try HostPort.parse(parts[1], option: "node-address", defaultPort: sshPort)
        }
        nodeScriptPath = try ServeOptions.nodeScript.read(flags.nodeScript, reader)
        pushgatewayURL = try SharedOptions.pushgatewayURL.read(flags.pushgatewayURL, reader)
        distribution = try SharedOptions.chosenDistribution(
            flags.distribution, k3sChannelURL: flags.k3sChannelURL, k3sArtifactURL: flags.k3sArtifactURL, reader)
        slackWebhookFile = try ServeOptions.slackWebhookFile.read(flags.slackWebhookFile, reader)
        backupDir = try ServeOptions.backupDir.read(flags.backupDir, reader)
        backupCopyDir = try ServeOptions.backupCopyDir.read(flags.backupCopyDir, reader)
        restoreRehearsal = try ServeOptions.restoreRehearsal.read(flags.restoreRehearsal, reader)
        snapshotKeep = try ServeOptions.snapshotKeep.read(flags.snapshotKeep, reader)
        expectedNodes = try ServeOptions.expectedNodes.read(flags.expectedNodes, reader)
        masterNode = try ServeOptions.masterNode.read(flags.masterNode, reader)
        workerOrder = try ServeOptions.workerOrder.read(flags.workerOrder, reader)
        soak = try ServeOptions.soak.read(flags.soak, reader)
        patchDrain = try ServeOptions.patchDrain.read(flags.patchDrain, reader)
        canaryRollback = try ServeOptions.canaryRollback.read(flags.canaryRollback, reader)
        allowSUCPlans = try ServeOptions.allowSucPlans.read(flags.allowSucPlans, reader)
        drainTimeout = try ServeOptions.drainTimeout.read(flags.drainTimeout, reader)
        drainExclusion = try Self.drainExclusion(flags.drainExclude, reader, environment: environment)
        nodeReadyTimeout = try ServeOptions.nodeReadyTimeout.read(flags.nodeReadyTimeout, reader)
        scriptTimeout = try ServeOptions.scriptTimeout.read(flags.scriptTimeout, reader)
        annotationPrefix = try ServeOptions.annotationPrefix.read(flags.annotationPrefix, reader)
        namespace = try ServeOptions.namespace.read(flags.namespace, reader)
        podReadyRatio = try ServeOptions.podReadyRatio.read(flags.podReadyRatio, reader)
        quietPeriodHours = try ServeOptions.quietPeriod.read(flags.quietPeriod, reader)
        maintenance = try ZoneInfo.schedule(
            windows: flags.maintenanceWindow, exclude: flags.maintenanceExclude, reader, environment: environment)
        nodeEstimate = try ServeOptions.nodeEstimate.read(flags.nodeEstimate, reader)
        maxUnavailableWorkers = try ServeOptions.maxUnavailableWorkers.read(flags.maxUnavailableWorkers, reader)
        repoBase = try SharedOptions.repoBase.read(flags.repoBase, reader)
        policy = try SharedOptions.policy(allowMinor: flags.allowMinor, minorMinPatch: flags.minorMinPatch, reader)
        autoResume = try ServeOptions.autoResume.read(flags.autoResume, reader)
        logLevel = try ServeOptions.logLevel.read(flags.logLevel, reader)
        restartPolicy = RestartPolicy(
            limit: try ServeOptions.restartLimit.read(flags.restartLimit, reader),
            window: try ServeOptions.restartWindow.read(flags.restartWindow, reader).seconds)
        apiRetryBudget = RetryBudget(total: try ServeOptions.apiRetryBudget.read(flags.apiRetryBudget, reader))
    }
}

extension ServeSettings {
    /// The pod this process runs in (`POD_NAMESPACE`, `POD_NAME`); `nil` outside a pod.
    var ownPod: (namespace: String, name: String)? {
        guard let reference = drainExclusion.ownPod, let slash = reference.firstIndex(of: "/") else { return nil }
        return (String(reference[..<slash]), String(reference[reference.index(after: slash)...]))
    }

    /// `--drain-exclude` and the pod this process runs in (`POD_NAMESPACE`
    /// and `POD_NAME`, set by the downward API), which `drain` shares with
    /// `serve`.
    static func drainExclusion(
        _ drainExclude: String?, _ reader: OptionReader, environment: [String: String]
    ) throws -> DrainExclusion {
        let selector: PodSelector
        do {
            selector = try PodSelector(parsing: try ServeOptions.drainExclude.read(drainExclude, reader))
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
}

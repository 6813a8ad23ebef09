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

    @Option(help: ArgumentHelp(ServeOptions.listen.help))
    var listen: String?

    @Option(help: ArgumentHelp(ServeOptions.portFile.help))
    var portFile: String?

    @Option(help: ArgumentHelp(ServeOptions.store.help))
    var store: String?

    @Option(help: ArgumentHelp(ServeOptions.apiTokenFile.help))
    var apiTokenFile: String?

    @Option(help: ArgumentHelp(ServeOptions.prometheusURL.help))
    var prometheusURL: String?

    @Option(help: ArgumentHelp(ServeOptions.gateSelector.help))
    var gateSelector: String?

    @Option(help: ArgumentHelp(ServeOptions.gateIgnore.help))
    var gateIgnore: String?

    @Option(help: ArgumentHelp(ServeOptions.gateWait.help))
    var gateWait: Double?

    @Option(help: ArgumentHelp(ServeOptions.pollInterval.help))
    var pollInterval: Double?

    @Option(help: ArgumentHelp(SharedOptions.kubeconfig.help))
    var kubeconfig: String?

    @Option(help: ArgumentHelp(SharedOptions.sshUser.help))
    var sshUser: String?

    @Option(help: ArgumentHelp(SharedOptions.sshPort.help))
    var sshPort: Int?

    @Option(help: ArgumentHelp(SharedOptions.sshKeyFile.help))
    var sshKeyFile: String?

    @Option(help: ArgumentHelp(SharedOptions.knownHostsFile.help))
    var knownHostsFile: String?

    @Option(help: ArgumentHelp(ServeOptions.nodeAddress.help, valueName: "node=host[:port]"))
    var nodeAddress: [String] = []

    @Option(help: ArgumentHelp(ServeOptions.nodeScript.help))
    var nodeScript: String?

    @Option(help: ArgumentHelp(SharedOptions.pushgatewayURL.help))
    var pushgatewayURL: String?

    @Option(help: ArgumentHelp(SharedOptions.distribution.help))
    var distribution: String?

    @Option(help: ArgumentHelp(SharedOptions.k3sChannelURL.help))
    var k3sChannelURL: String?

    @Option(help: ArgumentHelp(SharedOptions.k3sArtifactURL.help))
    var k3sArtifactURL: String?

    @Option(help: ArgumentHelp(ServeOptions.slackWebhookFile.help))
    var slackWebhookFile: String?

    @Option(help: ArgumentHelp(ServeOptions.backupDir.help))
    var backupDir: String?

    @Option(help: ArgumentHelp(ServeOptions.backupCopyDir.help))
    var backupCopyDir: String?

    @Option(help: ArgumentHelp(ServeOptions.restoreRehearsal.help))
    var restoreRehearsal: Bool?

    @Option(help: ArgumentHelp(ServeOptions.snapshotKeep.help))
    var snapshotKeep: Int?

    @Option(help: ArgumentHelp(ServeOptions.expectedNodes.help))
    var expectedNodes: Int?

    @Option(help: ArgumentHelp(ServeOptions.masterNode.help))
    var masterNode: String?

    @Option(help: ArgumentHelp(ServeOptions.workerOrder.help))
    var workerOrder: String?

    @Option(help: ArgumentHelp(ServeOptions.soak.help))
    var soak: Double?

    @Option(help: ArgumentHelp(ServeOptions.patchDrain.help))
    var patchDrain: Bool?

    @Option(help: ArgumentHelp(ServeOptions.canaryRollback.help))
    var canaryRollback: Bool?

    @Option(help: ArgumentHelp(ServeOptions.allowSucPlans.help))
    var allowSucPlans: Bool?

    @Option(help: ArgumentHelp(ServeOptions.drainTimeout.help))
    var drainTimeout: Double?

    @Option(help: ArgumentHelp(ServeOptions.drainExclude.help))
    var drainExclude: String?

    @Option(help: ArgumentHelp(ServeOptions.nodeReadyTimeout.help))
    var nodeReadyTimeout: Double?

    @Option(help: ArgumentHelp(ServeOptions.scriptTimeout.help))
    var scriptTimeout: Double?

    @Option(help: ArgumentHelp(ServeOptions.annotationPrefix.help))
    var annotationPrefix: String?

    @Option(help: ArgumentHelp(ServeOptions.namespace.help))
    var namespace: String?

    @Option(help: ArgumentHelp(ServeOptions.podReadyRatio.help))
    var podReadyRatio: Double?

    @Option(help: ArgumentHelp(ServeOptions.quietPeriod.help))
    var quietPeriod: Int?

    @Option(help: ArgumentHelp(SharedOptions.maintenanceWindow.help, valueName: "days hh:mm duration zone"))
    var maintenanceWindow: [String] = []

    @Option(help: ArgumentHelp(SharedOptions.maintenanceExclude.help, valueName: "yyyy-mm-dd"))
    var maintenanceExclude: [String] = []

    @Option(help: ArgumentHelp(ServeOptions.nodeEstimate.help))
    var nodeEstimate: Double?

    @Option(help: ArgumentHelp(ServeOptions.maxUnavailableWorkers.help))
    var maxUnavailableWorkers: Int?

    @Option(help: ArgumentHelp(SharedOptions.repoBase.help))
    var repoBase: String?

    @Option(help: ArgumentHelp(SharedOptions.allowMinor.help))
    var allowMinor: Bool?

    @Option(help: ArgumentHelp(SharedOptions.minorMinPatch.help))
    var minorMinPatch: Int?

    @Option(help: ArgumentHelp(ServeOptions.autoResume.help))
    var autoResume: Bool?

    @Option(help: ArgumentHelp(ServeOptions.logLevel.help))
    var logLevel: String?

    @Option(help: ArgumentHelp(ServeOptions.restartLimit.help))
    var restartLimit: Int?

    @Option(help: ArgumentHelp(ServeOptions.restartWindow.help))
    var restartWindow: Double?

    @Option(help: ArgumentHelp(ServeOptions.apiRetryBudget.help))
    var apiRetryBudget: Double?

    func run() async throws {
        let settings: ServeSettings
        do { settings = try ServeSettings(self, environment: ProcessInfo.processInfo.environment) } catch {
            throw ValidationError("\(error)")
        }
        try await Server(settings: settings).run()
    }
}

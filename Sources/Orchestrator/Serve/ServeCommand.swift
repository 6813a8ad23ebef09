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

    @Option(
        help: ArgumentHelp(
            "SSH address of a node as NODE=HOST[:PORT], repeatable (in K8SUP_NODE_ADDRESS: comma-separated). (default: the node's InternalIP)",
            valueName: "node=host[:port]"))
    var nodeAddress: [String] = []

    @Option(help: "The node script piped to each node. (default: /usr/share/k8s-upgrade/update_k8s.sh)")
    var nodeScript: String?

    @Option(help: ArgumentHelp(SharedOptions.pushgatewayURL.help))
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

    @Option(help: ArgumentHelp(SharedOptions.repoBase.help))
    var repoBase: String?

    @Option(help: ArgumentHelp(SharedOptions.allowMinor.help))
    var allowMinor: Bool?

    @Option(help: ArgumentHelp(SharedOptions.minorMinPatch.help))
    var minorMinPatch: Int?

    @Option(
        help:
            "Resume, at start, the job the previous process left interrupted (true or false). (default: true)"
    )
    var autoResume: Bool?

    @Option(help: "Least level logged: debug (every request, with its id), info, warning or error. (default: info)")
    var logLevel: String?

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

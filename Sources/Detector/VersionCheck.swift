import ArgumentParser
import FoundationEssentials
import Logging
import Shared
import SharedIO

/// `k8s-version-check`: the weekly detector.
@main
struct VersionCheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "k8s-version-check",
        abstract: "Find Kubernetes patch and minor releases for a kubeadm cluster and dispatch the upgrade.",
        discussion: """
            Reads the running version (every kubelet and the API server), asks the master over SSH for \
            `apt-cache madison kubeadm` to find the newest patch of the running minor, asks the package \
            repository whether the next minor is published (HEAD <repo-base>/v1.<N+1>/deb/Release; 403 and \
            404 mean not yet), decides patch / minor / nothing (patch first; a minor only when allowed), \
            replaces the Pushgateway group of job k8s-version-check, and POSTs /execute to the orchestrator.

            Every option can also be set by an environment variable: K8SUP_ and the option name in upper \
            case with underscores (--repo-base → K8SUP_REPO_BASE). Flags take precedence; an empty \
            variable counts as unset. Operator's guide: docs/runbooks/k8s-version-upgrade.md.

            \(DetectorExit.help)
            """,
        version: "0.1.0")

    @Option(help: ArgumentHelp(SharedOptions.kubeconfig.help))
    var kubeconfig: String?

    @Option(help: ArgumentHelp(DetectorOptions.masterNode.help))
    var masterNode: String?

    @Option(help: ArgumentHelp(DetectorOptions.masterAddress.help))
    var masterAddress: String?

    @Option(help: ArgumentHelp(SharedOptions.sshPort.help))
    var sshPort: Int?

    @Option(help: ArgumentHelp(SharedOptions.sshUser.help))
    var sshUser: String?

    @Option(help: ArgumentHelp(SharedOptions.sshKeyFile.help))
    var sshKeyFile: String?

    @Option(help: ArgumentHelp(SharedOptions.knownHostsFile.help))
    var knownHostsFile: String?

    @Option(help: ArgumentHelp(SharedOptions.repoBase.help))
    var repoBase: String?

    @Option(help: ArgumentHelp(SharedOptions.allowMinor.help))
    var allowMinor: Bool?

    @Option(help: ArgumentHelp(SharedOptions.minorMinPatch.help))
    var minorMinPatch: Int?

    @Option(help: ArgumentHelp(SharedOptions.pushgatewayURL.help))
    var pushgatewayURL: String?

    @Option(help: ArgumentHelp(SharedOptions.distribution.help))
    var distribution: String?

    @Option(help: ArgumentHelp(SharedOptions.k3sChannelURL.help))
    var k3sChannelURL: String?

    @Option(help: ArgumentHelp(SharedOptions.k3sArtifactURL.help))
    var k3sArtifactURL: String?

    @Option(help: ArgumentHelp(DetectorOptions.orchestratorURL.help))
    var orchestratorURL: String?

    @Option(help: ArgumentHelp(DetectorOptions.orchestratorTokenFile.help))
    var orchestratorTokenFile: String?

    @Option(help: ArgumentHelp(DetectorOptions.jobDryRun.help))
    var jobDryRun: Bool?

    @Option(help: ArgumentHelp(DetectorOptions.stages.help))
    var stages: String?

    @Option(help: ArgumentHelp(SharedOptions.maintenanceWindow.help, valueName: "days hh:mm duration zone"))
    var maintenanceWindow: [String] = []

    @Option(help: ArgumentHelp(SharedOptions.maintenanceExclude.help, valueName: "yyyy-mm-dd"))
    var maintenanceExclude: [String] = []

    @Flag(help: "Detect and push metrics, but stop right before the POST and print what would be sent.")
    var detectOnly = false

    @Option(help: ArgumentHelp(DetectorOptions.timeout.help))
    var timeout: Int?

    mutating func run() async throws {
        ProcessMemory.keepSmall()
        let settings: Settings
        do { settings = try Settings(self, environment: ProcessInfo.processInfo.environment) } catch {
            throw ValidationError("\(error)")
        }
        var run = Run(settings: settings, log: Logger.json("k8s-version-check"))
        run.distribution = settings.distribution
        let code = await run.execute()
        if code != .ok { throw ExitCode(code.rawValue) }
    }
}

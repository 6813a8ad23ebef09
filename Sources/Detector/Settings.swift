import FoundationEssentials
import Shared
import SharedIO

/// The detector's options after flags, `K8SUP_*` environment variables and
/// defaults are combined and validated. Nothing runs with a bad value.
struct Settings: Sendable {
    var kubeconfig: String?
    var masterNode: String?
    /// The master's SSH endpoint when configured; otherwise its InternalIP is used.
    var masterAddress: (host: String, port: Int)?
    var sshPort: Int
    var sshUser: String
    var sshKeyFile: String
    var knownHostsFile: String
    var repoBase: String
    var policy: DetectionPolicy
    var pushgatewayURL: String?
    var distribution: any Distribution
    var orchestratorURL: String?
    var orchestratorTokenFile: String
    var jobDryRun: Bool
    var stages: StageSelection
    /// Dispatch only inside these windows; empty: any time.
    var maintenance: MaintenanceSchedule
    var detectOnly: Bool
    var timeout: Duration

    init(_ options: VersionCheck, environment: [String: String]) throws {
        let reader = OptionReader(environment: environment)
        kubeconfig = try SharedOptions.kubeconfig.read(options.kubeconfig, reader)
        masterNode = try DetectorOptions.masterNode.read(options.masterNode, reader)
        sshPort = try SharedOptions.sshPort.read(options.sshPort, reader)
        if let text = try DetectorOptions.masterAddress.read(options.masterAddress, reader) {
            masterAddress = try HostPort.parse(text, option: "master-address", defaultPort: sshPort)
        }
        sshUser = try SharedOptions.sshUser.read(options.sshUser, reader)
        sshKeyFile = try SharedOptions.sshKeyFile.read(options.sshKeyFile, reader)
        knownHostsFile = try SharedOptions.knownHostsFile.read(options.knownHostsFile, reader)
        repoBase = try SharedOptions.repoBase.read(options.repoBase, reader)
        policy = try SharedOptions.policy(allowMinor: options.allowMinor, minorMinPatch: options.minorMinPatch, reader)
        pushgatewayURL = try SharedOptions.pushgatewayURL.read(options.pushgatewayURL, reader)
        distribution = try SharedOptions.chosenDistribution(
            options.distribution, k3sChannelURL: options.k3sChannelURL, k3sArtifactURL: options.k3sArtifactURL,
            reader)
        orchestratorURL = try DetectorOptions.orchestratorURL.read(options.orchestratorURL, reader)
        orchestratorTokenFile = try DetectorOptions.orchestratorTokenFile.read(options.orchestratorTokenFile, reader)
        jobDryRun = try DetectorOptions.jobDryRun.read(options.jobDryRun, reader)
        do { stages = try StageSelection(parsing: try DetectorOptions.stages.read(options.stages, reader)) } catch let
            error as RequestValidationError
        {
            throw SettingsError("stages: \(error.rule)")
        }
        maintenance = try ZoneInfo.schedule(
            windows: options.maintenanceWindow, exclude: options.maintenanceExclude, reader, environment: environment)
        detectOnly = try options.detectOnly || reader.boolean(nil, "DETECT_ONLY")
        timeout = .seconds(try DetectorOptions.timeout.read(options.timeout, reader))
    }

    /// The master's SSH host and port: the configured address, else its
    /// InternalIP (an address, IPv6 included, never with a port) and `--ssh-port`.
    func sshEndpoint(internalIP: String?) throws -> (host: String, port: Int) {
        if let masterAddress { return masterAddress }
        guard let internalIP, !internalIP.isEmpty else {
            throw SettingsError("the master has no InternalIP; set --master-address")
        }
        return (internalIP, sshPort)
    }
}

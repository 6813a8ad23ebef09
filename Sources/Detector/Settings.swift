import FoundationEssentials
import Shared

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
    var orchestratorURL: String?
    var orchestratorTokenFile: String
    var jobDryRun: Bool
    var stages: StageSelection
    var detectOnly: Bool
    var timeout: Duration

    init(_ options: VersionCheck, environment: [String: String]) throws {
        let reader = OptionReader(environment: environment)
        kubeconfig = try SharedOptions.kubeconfig.read(options.kubeconfig, reader)
        masterNode = reader.value(options.masterNode, "MASTER_NODE")
        if let name = masterNode, !Self.isDNS1123(name) {
            throw SettingsError("master-node \(name) is not a valid node name (DNS-1123)")
        }
        sshPort = try SharedOptions.sshPort.read(options.sshPort, reader)
        if let text = reader.value(options.masterAddress, "MASTER_ADDRESS") {
            masterAddress = try HostPort.parse(text, option: "master-address", defaultPort: sshPort)
        }
        sshUser = try SharedOptions.sshUser.read(options.sshUser, reader)
        sshKeyFile = try SharedOptions.sshKeyFile.read(options.sshKeyFile, reader)
        knownHostsFile = try SharedOptions.knownHostsFile.read(options.knownHostsFile, reader)
        repoBase = try SharedOptions.repoBase.read(options.repoBase, reader)
        policy = try SharedOptions.policy(allowMinor: options.allowMinor, minorMinPatch: options.minorMinPatch, reader)
        pushgatewayURL = try SharedOptions.pushgatewayURL.read(options.pushgatewayURL, reader)
        orchestratorURL = try reader.url(options.orchestratorURL, "ORCHESTRATOR_URL")
        orchestratorTokenFile =
            reader.value(options.orchestratorTokenFile, "ORCHESTRATOR_TOKEN_FILE") ?? "/etc/k8s-upgrade/api/token"
        jobDryRun = try reader.boolean(options.jobDryRun, "JOB_DRY_RUN")
        do { stages = try StageSelection(parsing: reader.value(options.stages, "STAGES") ?? "all") } catch {
            throw SettingsError("stages: \(error.rule)")
        }
        detectOnly = try options.detectOnly || reader.boolean(nil, "DETECT_ONLY")
        timeout = .seconds(try reader.integer(options.timeout, "TIMEOUT", default: 30, range: 1...3600))
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

    static func isDNS1123(_ name: String) -> Bool { ObjectName.isDNS1123Subdomain(name) }
}

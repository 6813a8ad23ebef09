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
        let options = (reader: OptionReader(environment: environment), flags: options)
        func value(_ flag: String?, _ name: String) -> String? { options.reader.value(flag, name) }
        func integer(_ flag: Int?, _ name: String, default fallback: Int, range: ClosedRange<Int>) throws -> Int {
            try options.reader.integer(flag, name, default: fallback, range: range)
        }
        func boolean(_ flag: Bool?, _ name: String) throws -> Bool { try options.reader.boolean(flag, name) }
        func url(_ text: String?, _ name: String) throws -> String? {
            try options.reader.url(text, name.uppercased().replacing("-", with: "_"))
        }

        kubeconfig = value(options.flags.kubeconfig, "KUBECONFIG")
        masterNode = value(options.flags.masterNode, "MASTER_NODE")
        if let name = masterNode, !Self.isDNS1123(name) {
            throw SettingsError("master-node \(name) is not a valid node name (DNS-1123)")
        }
        sshPort = try integer(options.flags.sshPort, "SSH_PORT", default: 22, range: 1...65535)
        if let text = value(options.flags.masterAddress, "MASTER_ADDRESS") {
            masterAddress = try Self.parseAddress(text, defaultPort: sshPort)
        }
        sshUser = value(options.flags.sshUser, "SSH_USER") ?? "root"
        sshKeyFile = value(options.flags.sshKeyFile, "SSH_KEY_FILE") ?? "/etc/k8s-upgrade/ssh/id_ed25519"
        knownHostsFile = value(options.flags.knownHostsFile, "KNOWN_HOSTS_FILE") ?? "/etc/k8s-upgrade/ssh/known_hosts"
        repoBase = try url(
            value(options.flags.repoBase, "REPO_BASE") ?? "https://pkgs.k8s.io/core:/stable:", "repo-base")!
        policy = DetectionPolicy(
            allowMinor: try boolean(options.flags.allowMinor, "ALLOW_MINOR"),
            minimumMinorPatch: try integer(options.flags.minorMinPatch, "MINOR_MIN_PATCH", default: 0, range: 0...1000))
        pushgatewayURL = try url(value(options.flags.pushgatewayURL, "PUSHGATEWAY_URL"), "pushgateway-url")
        orchestratorURL = try url(value(options.flags.orchestratorURL, "ORCHESTRATOR_URL"), "orchestrator-url")
        orchestratorTokenFile =
            value(options.flags.orchestratorTokenFile, "ORCHESTRATOR_TOKEN_FILE") ?? "/etc/k8s-upgrade/api/token"
        jobDryRun = try boolean(options.flags.jobDryRun, "JOB_DRY_RUN")
        do { stages = try StageSelection(parsing: value(options.flags.stages, "STAGES") ?? "all") } catch {
            throw SettingsError("stages: \(error.rule)")
        }
        detectOnly = try options.flags.detectOnly || boolean(nil, "DETECT_ONLY")
        timeout = .seconds(try integer(options.flags.timeout, "TIMEOUT", default: 30, range: 1...3600))
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

    /// Reads `host`, `host:port` or `[v6]:port`; a port, when given, must be 1…65535.
    static func parseAddress(_ address: String, defaultPort: Int) throws -> (host: String, port: Int) {
        let host: Substring
        let port: Substring?
        if address.hasPrefix("[") {
            guard let close = address.firstIndex(of: "]") else {
                throw SettingsError("master-address \(address) has an unclosed [")
            }
            host = address[address.index(after: address.startIndex)..<close]
            let rest = address[address.index(after: close)...]
            guard rest.isEmpty || rest.hasPrefix(":") else {
                throw SettingsError("master-address must be host, host:port or [v6]:port, got \(address)")
            }
            port = rest.isEmpty ? nil : rest.dropFirst()
        } else {
            let parts = address.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2, !parts[0].isEmpty else {
                throw SettingsError("master-address must be host, host:port or [v6]:port, got \(address)")
            }
            host = parts[0]
            port = parts.count == 2 ? parts[1] : nil
        }
        guard !host.isEmpty else { throw SettingsError("master-address \(address) has no host") }
        guard let port else { return (String(host), defaultPort) }
        guard let number = Int(port), (1...65535).contains(number) else {
            throw SettingsError("master-address \(address) has no valid port")
        }
        return (String(host), number)
    }

    static func isDNS1123(_ name: String) -> Bool { ObjectName.isDNS1123Subdomain(name) }
}

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
        func value(_ flag: String?, _ name: String) -> String? {
            if let flag { return flag }
            let fromEnvironment = environment["K8SUP_" + name]
            return fromEnvironment?.isEmpty == true ? nil : fromEnvironment
        }
        func integer(_ flag: Int?, _ name: String, default fallback: Int, range: ClosedRange<Int>) throws -> Int {
            let result: Int
            if let flag {
                result = flag
            } else if let text = value(nil, name) {
                guard let parsed = Int(text) else { throw SettingsError("K8SUP_\(name)=\(text) is not a number") }
                result = parsed
            } else {
                result = fallback
            }
            guard range.contains(result) else {
                throw SettingsError("\(name.lowercased()) must be in \(range), got \(result)")
            }
            return result
        }
        func boolean(_ flag: Bool?, _ name: String) throws -> Bool {
            if let flag { return flag }
            guard let text = value(nil, name) else { return false }
            switch text.lowercased() {
            case "true", "1", "yes": return true
            case "false", "0", "no": return false
            default: throw SettingsError("K8SUP_\(name)=\(text) is not true or false")
            }
        }
        func url(_ text: String?, _ name: String) throws -> String? {
            guard let text, !text.isEmpty else { return nil }
            guard text.hasPrefix("http://") || text.hasPrefix("https://") else {
                throw SettingsError("\(name) must be an http(s) URL, got \(text)")
            }
            return text.hasSuffix("/") ? String(text.dropLast()) : text
        }

        kubeconfig = value(options.kubeconfig, "KUBECONFIG")
        masterNode = value(options.masterNode, "MASTER_NODE")
        if let name = masterNode, !Self.isDNS1123(name) {
            throw SettingsError("master-node \(name) is not a valid node name (DNS-1123)")
        }
        sshPort = try integer(options.sshPort, "SSH_PORT", default: 22, range: 1...65535)
        if let text = value(options.masterAddress, "MASTER_ADDRESS") {
            masterAddress = try Self.parseAddress(text, defaultPort: sshPort)
        }
        sshUser = value(options.sshUser, "SSH_USER") ?? "root"
        sshKeyFile = value(options.sshKeyFile, "SSH_KEY_FILE") ?? "/etc/k8s-upgrade/ssh/id_ed25519"
        knownHostsFile = value(options.knownHostsFile, "KNOWN_HOSTS_FILE") ?? "/etc/k8s-upgrade/ssh/known_hosts"
        repoBase = try url(value(options.repoBase, "REPO_BASE") ?? "https://pkgs.k8s.io/core:/stable:", "repo-base")!
        policy = DetectionPolicy(
            allowMinor: try boolean(options.allowMinor, "ALLOW_MINOR"),
            minimumMinorPatch: try integer(options.minorMinPatch, "MINOR_MIN_PATCH", default: 0, range: 0...1000))
        pushgatewayURL = try url(value(options.pushgatewayURL, "PUSHGATEWAY_URL"), "pushgateway-url")
        orchestratorURL = try url(value(options.orchestratorURL, "ORCHESTRATOR_URL"), "orchestrator-url")
        orchestratorTokenFile =
            value(options.orchestratorTokenFile, "ORCHESTRATOR_TOKEN_FILE") ?? "/etc/k8s-upgrade/api/token"
        jobDryRun = try boolean(options.jobDryRun, "JOB_DRY_RUN")
        do { stages = try StageSelection(parsing: value(options.stages, "STAGES") ?? "all") } catch {
            throw SettingsError("stages: \(error.rule)")
        }
        detectOnly = try options.detectOnly || boolean(nil, "DETECT_ONLY")
        timeout = .seconds(try integer(options.timeout, "TIMEOUT", default: 30, range: 1...3600))
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

struct SettingsError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

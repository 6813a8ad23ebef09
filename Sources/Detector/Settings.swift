import FoundationEssentials
import Shared

/// The detector's options after flags, `K8SUP_*` environment variables and
/// defaults are combined and validated. Nothing runs with a bad value.
struct Settings: Sendable {
    var kubeconfig: String?
    var masterNode: String?
    var masterAddress: String?
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
        masterAddress = value(options.masterAddress, "MASTER_ADDRESS")
        if let address = masterAddress {
            // host, host:port or [v6]:port, with a port in range when one is given.
            let port: Substring?
            if address.hasPrefix("[") {
                guard let close = address.firstIndex(of: "]") else {
                    throw SettingsError("master-address \(address) has an unclosed [")
                }
                let rest = address[address.index(after: close)...]
                port = rest.isEmpty ? nil : rest.hasPrefix(":") ? rest.dropFirst() : rest
            } else {
                let parts = address.split(separator: ":", omittingEmptySubsequences: false)
                guard parts.count <= 2, !parts[0].isEmpty else {
                    throw SettingsError("master-address must be host, host:port or [v6]:port, got \(address)")
                }
                port = parts.count == 2 ? parts[1] : nil
            }
            if let port, !(Int(port).map { (1...65535).contains($0) } ?? false) {
                throw SettingsError("master-address \(address) has no valid port")
            }
        }
        sshPort = try integer(options.sshPort, "SSH_PORT", default: 22, range: 1...65535)
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

    /// The master's SSH host and port: `host`, `host:port` or `[v6]:port`.
    func sshEndpoint(internalIP: String?) throws -> (host: String, port: Int) {
        guard let address = masterAddress ?? internalIP else {
            throw SettingsError("the master has no InternalIP; set --master-address")
        }
        if address.hasPrefix("["), let close = address.firstIndex(of: "]") {
            let host = String(address[address.index(after: address.startIndex)..<close])
            let rest = address[address.index(after: close)...]
            return (host, rest.hasPrefix(":") ? Int(rest.dropFirst()) ?? sshPort : sshPort)
        }
        let parts = address.split(separator: ":")
        if parts.count == 2, let port = Int(parts[1]) { return (String(parts[0]), port) }
        return (address, sshPort)
    }

    static func isDNS1123(_ name: String) -> Bool { ObjectName.isDNS1123Subdomain(name) }
}

struct SettingsError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

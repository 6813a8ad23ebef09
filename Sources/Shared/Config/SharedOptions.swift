/// An option more than one command takes (the detector, `serve`, `drain`):
/// its name, help text with its default, environment variable and
/// validation, defined once here. The commands' `@Option`s take `help`
/// from it and their settings read it with ``read(_:_:)``; the runbook test
/// checks every definition against both commands' help and the runbook.
public struct SharedOption<Flag: Sendable, Value: Sendable>: Sendable {
    /// The flag without dashes: `ssh-user`.
    public let name: String
    /// The help text, ending with `(default: …)`.
    public let help: String
    private let reading: @Sendable (Flag?, OptionReader) throws -> Value

    init(_ name: String, help: String, read: @escaping @Sendable (Flag?, OptionReader) throws -> Value) {
        self.name = name
        self.help = help
        self.reading = read
    }

    /// `K8SUP_SSH_USER`'s `SSH_USER`.
    public var variable: String { String(name.uppercased().map { $0 == "-" ? "_" : $0 }) }

    /// The flag, else the variable, else the default; validated.
    public func read(_ flag: Flag?, _ reader: OptionReader) throws -> Value { try reading(flag, reader) }
}

public enum SharedOptions {
    public static let kubeconfig = SharedOption<String, String?>(
        "kubeconfig",
        help: "kubeconfig to use (default: in-cluster service account, else $KUBECONFIG, else ~/.kube/config)."
    ) { flag, reader in reader.value(flag, "KUBECONFIG") }

    public static let sshUser = SharedOption<String, String>(
        "ssh-user", help: "SSH user on the nodes; commands run through sudo -n unless it is root. (default: root)"
    ) { flag, reader in
        let user = reader.value(flag, "SSH_USER") ?? "root"
        guard !user.isEmpty, user.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "@") }) else {
            throw SettingsError("ssh-user \(user) is not a user name")
        }
        return user
    }

    public static let sshPort = SharedOption<Int, Int>(
        "ssh-port", help: "SSH port of a node whose address gives none. (default: 22)"
    ) { flag, reader in try reader.integer(flag, "SSH_PORT", default: 22, range: 1...65535) }

    public static let sshKeyFile = SharedOption<String, String>(
        "ssh-key-file",
        help: "Private key for SSH (ed25519, ECDSA or RSA, no passphrase). (default: /etc/k8s-upgrade/ssh/id_ed25519)"
    ) { flag, reader in reader.value(flag, "SSH_KEY_FILE") ?? "/etc/k8s-upgrade/ssh/id_ed25519" }

    public static let knownHostsFile = SharedOption<String, String>(
        "known-hosts-file",
        help: "known_hosts file every node's host key must be in. (default: /etc/k8s-upgrade/ssh/known_hosts)"
    ) { flag, reader in reader.value(flag, "KNOWN_HOSTS_FILE") ?? "/etc/k8s-upgrade/ssh/known_hosts" }

    public static let repoBase = SharedOption<String, String>(
        "repo-base",
        help:
            "Base URL of the per-minor package repositories, <base>/v1.N/deb/. (default: https://pkgs.k8s.io/core:/stable:)"
    ) { flag, reader in try reader.url(flag, "REPO_BASE") ?? "https://pkgs.k8s.io/core:/stable:" }

    public static let allowMinor = SharedOption<Bool, Bool>(
        "allow-minor",
        help:
            "Minor upgrades may be dispatched and accepted (true or false); keep the detector's and the service's the same. (default: false)"
    ) { flag, reader in try reader.boolean(flag, "ALLOW_MINOR", default: false) }

    public static let minorMinPatch = SharedOption<Int, Int>(
        "minor-min-patch", help: "A new minor only once its newest patch is at least this. (default: 0)"
    ) { flag, reader in try reader.integer(flag, "MINOR_MIN_PATCH", default: 0, range: 0...1000) }

    public static let pushgatewayURL = SharedOption<String, String?>(
        "pushgateway-url", help: "Pushgateway base URL for the gauges; empty pushes nothing. (default: none)"
    ) { flag, reader in try reader.url(flag, "PUSHGATEWAY_URL") }

    /// Every shared option's name and help, for the runbook test.
    public static let all: [(name: String, help: String)] = [
        (kubeconfig.name, kubeconfig.help), (sshUser.name, sshUser.help), (sshPort.name, sshPort.help),
        (sshKeyFile.name, sshKeyFile.help), (knownHostsFile.name, knownHostsFile.help),
        (repoBase.name, repoBase.help), (allowMinor.name, allowMinor.help), (minorMinPatch.name, minorMinPatch.help),
        (pushgatewayURL.name, pushgatewayURL.help),
    ]

    /// Both minor rules, as the detector decides and the service admits.
    public static func policy(
        allowMinor flag: Bool?, minorMinPatch patch: Int?, _ reader: OptionReader
    ) throws
        -> DetectionPolicy
    {
        DetectionPolicy(
            allowMinor: try allowMinor.read(flag, reader), minimumMinorPatch: try minorMinPatch.read(patch, reader))
    }
}

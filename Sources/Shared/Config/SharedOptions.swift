/// One option: its name, help text with its default, environment variable
/// and validation, defined once. The commands' `@Option`s take `help` from
/// it and their settings read it with ``read(_:_:)``; the runbook test
/// checks the reads and every default against the runbook. Options more
/// than one command takes (the detector, `serve`, `drain`) are in
/// ``SharedOptions``.
public struct OptionDefinition<Flag: Sendable, Value: Sendable>: Sendable {
    /// The flag without dashes: `ssh-user`.
    public let name: String
    /// The help text, ending with `(default: …)`.
    public let help: String
    private let reading: @Sendable (Flag?, OptionReader, String) throws -> Value

    /// `read` gets the flag, the reader and the option's variable (`SSH_USER`).
    public init(
        _ name: String, help: String, read: @escaping @Sendable (Flag?, OptionReader, String) throws -> Value
    ) {
        self.name = name
        self.help = help
        self.reading = read
    }

    /// `K8SUP_SSH_USER`'s `SSH_USER`.
    public var variable: String { String(name.uppercased().map { $0 == "-" ? "_" : $0 }) }

    /// The flag, else the variable, else the default; validated.
    public func read(_ flag: Flag?, _ reader: OptionReader) throws -> Value { try reading(flag, reader, variable) }
}

/// The kinds of option, each stating its default in its help from the same
/// value it reads with: the default is written once.
public enum Define {
    /// A repeatable flag's values, else the variable's, split at `separator`.
    public static func repeated(
        _ flag: [String]?, _ reader: OptionReader, _ variable: String, separator: Character
    ) -> [String] {
        guard let flag, !flag.isEmpty else {
            return (reader.value(nil, variable) ?? "").split(separator: separator).map { $0.trimmingWhitespace() }
                .filter { !$0.isEmpty }
        }
        return flag
    }

    /// `summary (default: defaultText)`, for an option of its own kind.
    public static func helpText(_ summary: String, _ defaultText: String) -> String {
        "\(summary) (default: \(defaultText))"
    }

    static func number(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    /// A string with a default; `check` answers what is wrong with a value.
    public static func text(
        _ name: String, _ summary: String, default fallback: String,
        check: (@Sendable (String) -> String?)? = nil
    ) -> OptionDefinition<String, String> {
        return OptionDefinition<String, String>(name, help: helpText(summary, fallback)) { flag, reader, variable in
            let value = reader.value(flag, variable) ?? fallback
            if let problem = check?(value) { throw SettingsError("\(name) \(problem)") }
            return value
        }
    }

    /// A string that may be absent (`absent` says what that means in the help).
    public static func optionalText(
        _ name: String, _ summary: String, absent: String = "none", check: (@Sendable (String) -> String?)? = nil
    ) -> OptionDefinition<String, String?> {
        return OptionDefinition<String, String?>(name, help: helpText(summary, absent)) { flag, reader, variable in
            guard let value = reader.value(flag, variable), !value.isEmpty else { return nil }
            if let problem = check?(value) { throw SettingsError("\(name) \(problem)") }
            return value
        }
    }

    /// An http(s) URL that may be absent.
    public static func url(
        _ name: String, _ summary: String, absent: String = "none"
    )
        -> OptionDefinition<String, String?>
    {
        return OptionDefinition<String, String?>(name, help: helpText(summary, absent)) { flag, reader, variable in
            try reader.url(flag, variable)
        }
    }

    /// Seconds, decimals allowed, within `range`.
    public static func seconds(
        _ name: String, _ summary: String, default fallback: Double, range: ClosedRange<Double>
    ) -> OptionDefinition<Double, Duration> {
        return OptionDefinition<Double, Duration>(name, help: helpText(summary, number(fallback))) {
            flag, reader, variable in
            try reader.seconds(flag, variable, default: fallback, range: range)
        }
    }

    /// An integer within `range`.
    public static func integer(
        _ name: String, _ summary: String, default fallback: Int, range: ClosedRange<Int>
    ) -> OptionDefinition<Int, Int> {
        return OptionDefinition<Int, Int>(name, help: helpText(summary, String(fallback))) { flag, reader, variable in
            try reader.integer(flag, variable, default: fallback, range: range)
        }
    }

    /// An http(s) URL with a default.
    public static func url(
        _ name: String, _ summary: String, default fallback: String
    )
        -> OptionDefinition<String, String>
    {
        return OptionDefinition<String, String>(name, help: helpText(summary, fallback)) { flag, reader, variable in
            try reader.url(flag, variable) ?? fallback
        }
    }

    /// true or false.
    public static func boolean(
        _ name: String, _ summary: String, default fallback: Bool
    )
        -> OptionDefinition<Bool, Bool>
    {
        return OptionDefinition<Bool, Bool>(name, help: helpText(summary, String(fallback))) { flag, reader, variable in
            try reader.boolean(flag, variable, default: fallback)
        }
    }
}

public enum SharedOptions {
    public static let maintenanceWindow = OptionDefinition<[String], [String]>(
        "maintenance-window",
        help: Define.helpText(
            "When nodes may be changed, as DAYS HH:MM DURATION ZONE (such as 'Sat,Sun 02:00 4h Europe/Berlin'), repeatable (in K8SUP_MAINTENANCE_WINDOW: separated by ';'). serve: a job outside every window waits for the next, and a node starts only if its forecast fits before the window closes, else the job parks until the next window; rollbacks ignore windows. k8s-version-check: dispatches only inside a window.",
            "none: any time")
    ) { flag, reader, variable in Define.repeated(flag, reader, variable, separator: ";") }
    public static let maintenanceExclude = OptionDefinition<[String], [CivilDate]>(
        "maintenance-exclude",
        help: Define.helpText(
            "A date, YYYY-MM-DD, on which no maintenance window opens (the window's local date), repeatable (in K8SUP_MAINTENANCE_EXCLUDE: comma-separated).",
            "none")
    ) { flag, reader, variable in
        try Define.repeated(flag, reader, variable, separator: ",").map { text in
            guard let date = CivilDate(parsing: text) else {
                throw SettingsError("maintenance-exclude must be a date YYYY-MM-DD, got \(text)")
            }
            return date
        }
    }

    public static let kubeconfig = Define.optionalText(
        "kubeconfig", "kubeconfig to use", absent: "in-cluster service account, else $KUBECONFIG, else ~/.kube/config")

    public static let sshUser = Define.text(
        "ssh-user", "SSH user on the nodes; commands run through sudo -n unless it is root.", default: "root"
    ) { user in
        !user.isEmpty && user.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "@") })
            ? nil : "\(user) is not a user name"
    }

    public static let sshPort = Define.integer(
        "ssh-port", "SSH port of a node whose address gives none.", default: 22, range: 1...65535)

    public static let sshKeyFile = Define.text(
        "ssh-key-file", "Private key for SSH (ed25519, ECDSA or RSA, no passphrase).",
        default: "/etc/k8s-upgrade/ssh/id_ed25519")

    public static let knownHostsFile = Define.text(
        "known-hosts-file", "known_hosts file every node's host key must be in.",
        default: "/etc/k8s-upgrade/ssh/known_hosts")

    public static let repoBase = Define.url(
        "repo-base", "Base URL of the per-minor package repositories, <base>/v1.N/deb/.",
        default: "https://pkgs.k8s.io/core:/stable:")

    public static let allowMinor = Define.boolean(
        "allow-minor",
        "Minor upgrades may be dispatched and accepted (true or false); keep the detector's and the service's the same.",
        default: false)

    public static let minorMinPatch = Define.integer(
        "minor-min-patch", "A new minor only once its newest patch is at least this.", default: 0, range: 0...1000)

    public static let distribution = Define.text(
        "distribution",
        "How the nodes install Kubernetes: kubeadm (apt packages from pkgs.k8s.io), microk8s (the snap) or k3s (the k3s binary, from the channel server and the artifact URL); keep the detector's and the service's the same.",
        default: "kubeadm"
    ) { name in
        Distributions.named(name) == nil ? "\(name) is not one of \(Distributions.names.joined(separator: ", "))" : nil
    }

    public static let k3sChannelURL = Define.url(
        "k3s-channel-url",
        "K3s: the channel server's channel list, whose v1.X channels name each minor's newest release (a mirror's for air-gapped sites).",
        default: K3s.defaultChannelServer)

    public static let k3sArtifactURL = Define.url(
        "k3s-artifact-url",
        "K3s: where releases are published in GitHub's layout, <url>/v<release>/k3s and sha256sum-<arch>.txt (a mirror's for air-gapped sites).",
        default: K3s.defaultArtifacts)

    public static let pushgatewayURL = Define.url(
        "pushgateway-url", "Pushgateway base URL for the gauges; empty pushes nothing.")

    /// Every shared option's name and help, for the runbook test.
    public static let all: [(name: String, help: String)] = [
        (kubeconfig.name, kubeconfig.help), (sshUser.name, sshUser.help), (sshPort.name, sshPort.help),
        (sshKeyFile.name, sshKeyFile.help), (knownHostsFile.name, knownHostsFile.help),
        (repoBase.name, repoBase.help), (allowMinor.name, allowMinor.help), (minorMinPatch.name, minorMinPatch.help),
        (pushgatewayURL.name, pushgatewayURL.help), (distribution.name, distribution.help),
        (k3sChannelURL.name, k3sChannelURL.help), (k3sArtifactURL.name, k3sArtifactURL.help),
    ]

    /// The distribution `--distribution` names, validated; K3s with its
    /// channel server and artifact URL.
    public static func chosenDistribution(
        _ flag: String?, k3sChannelURL channels: String? = nil, k3sArtifactURL artifacts: String? = nil,
        _ reader: OptionReader
    ) throws -> any Distribution {
        let name = try distribution.read(flag, reader)
        if name == "k3s" {
            let channelServer = try k3sChannelURL.read(channels, reader)
            let artifactURL = try k3sArtifactURL.read(artifacts, reader)
            do { _ = try K3s(channelServer: channelServer) } catch {
                throw SettingsError("\(k3sChannelURL.name): \(error.description)")
            }
            do { return try K3s(channelServer: channelServer, artifacts: artifactURL) } catch {
                throw SettingsError("\(k3sArtifactURL.name): \(error.description)")
            }
        }
        guard let chosen = Distributions.named(name) else { throw SettingsError("distribution \(name) is unknown") }
        return chosen
    }

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

import FoundationEssentials
import Shared
import SharedIO

/// One command for a node, as words: rendered through ``Shell`` by the
/// remote shell alone, which also alone decides how to run it as root.
struct RemoteCommand: Sendable {
    /// Run in order, each only when the one before succeeded (`&&`).
    var steps: [[String]]
    var asRoot: Bool
    var stdin: Data?
    var timeout: Duration

    init(_ words: [String], asRoot: Bool = true, stdin: Data? = nil, timeout: Duration = .seconds(60)) {
        self.init(steps: [words], asRoot: asRoot, stdin: stdin, timeout: timeout)
    }

    init(steps: [[String]], asRoot: Bool = true, stdin: Data? = nil, timeout: Duration = .seconds(60)) {
        self.steps = steps
        self.asRoot = asRoot
        self.stdin = stdin
        self.timeout = timeout
    }
}

/// Runs commands on a cluster node.
protocol RemoteShell: Sendable {
    func run(
        _ command: RemoteCommand, on node: NodeFacts, onOutput: (@Sendable (SSHOutputLine) -> Void)?
    ) async throws -> SSHCommandResult
    /// The command line `run` sends, for what a dry run would do.
    func render(_ command: RemoteCommand) -> String
}

/// SSH to a node: its mapped address, else its InternalIP on the default
/// port; host keys checked against known_hosts, under the node's name when
/// known_hosts lists it (as OpenSSH's `HostKeyAlias`), else under the address.
struct SSHRemoteShell: RemoteShell {
    let user: String
    let port: Int
    let keyFile: String
    let knownHostsFile: String
    /// Explicit `node → (host, port)` addresses.
    let addresses: [String: (host: String, port: Int)]

    func endpoint(of node: NodeFacts) throws -> (host: String, port: Int) {
        if let mapped = addresses[node.name] { return mapped }
        guard let address = node.internalIP, !address.isEmpty else {
            throw JobFailure("node \(node.name) has no InternalIP; map it with --node-address \(node.name)=HOST[:PORT]")
        }
        return (address, port)
    }

    func run(
        _ command: RemoteCommand, on node: NodeFacts, onOutput: (@Sendable (SSHOutputLine) -> Void)? = nil
    ) async throws -> SSHCommandResult {
        let (host, port) = try endpoint(of: node)
        let client = SSHClient(
            configuration: SSHConfiguration(
                host: host, port: port, user: user, privateKeyFile: keyFile, knownHostsFile: knownHostsFile,
                hostKeyAlias: node.name))
        return try await client.run(
            render(command), stdin: command.stdin, timeout: command.timeout, onOutput: onOutput)
    }

    /// Each step through ``Shell``, as root through `sudo -n` unless the SSH
    /// user is root: the one place a command line is made.
    func render(_ command: RemoteCommand) -> String {
        let sudo = command.asRoot && user != "root" ? ["sudo", "-n"] : []
        return command.steps.map { Shell.command(sudo + $0) }.joined(separator: " && ")
    }
}

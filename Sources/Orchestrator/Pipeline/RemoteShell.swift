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
    /// Copies the node's file at `path` (readable by root) to `localPath`
    /// here: its length and the SHA-256 of what was written.
    func download(
        _ path: String, from node: NodeFacts, to localPath: String, timeout: Duration
    ) async throws
        -> SSHDownload
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

    /// The node's SSH client, its host key looked up under its name.
    private func client(for node: NodeFacts) throws -> SSHClient {
        let (host, port) = try endpoint(of: node)
        return SSHClient(
            configuration: SSHConfiguration(
                host: host, port: port, user: user, privateKeyFile: keyFile, knownHostsFile: knownHostsFile,
                hostKeyAlias: node.name))
    }

    func run(
        _ command: RemoteCommand, on node: NodeFacts, onOutput: (@Sendable (SSHOutputLine) -> Void)? = nil
    ) async throws -> SSHCommandResult {
        try await client(for: node).run(
            render(command), stdin: command.stdin, timeout: command.timeout, onOutput: onOutput)
    }

    /// Over SCP. A user other than root copies a private copy of the
    /// file that root made for it (`install -m 0600`), removed afterwards.
    func download(
        _ path: String, from node: NodeFacts, to localPath: String, timeout: Duration
    ) async throws -> SSHDownload {
        let client = try client(for: node)
        guard user != "root" else { return try await client.download(path, to: localPath, timeout: timeout) }
        let staged = "/tmp/k8s-upgrade-copy-\(UInt64.random(in: 0...UInt64.max))"
        let stage = RemoteCommand(["install", "-m", "0600", "-o", user, "--", path, staged])
        let made = try await run(stage, on: node)
        guard made.succeeded else {
            throw JobFailure("\(path) could not be made readable for \(user) on \(node.name): \(made.stderrText)")
        }
        do {
            let copied = try await client.download(staged, to: localPath, timeout: timeout)
            _ = try? await run(RemoteCommand(["rm", "-f", "--", staged], asRoot: false), on: node)
            return copied
        } catch {
            _ = try? await run(RemoteCommand(["rm", "-f", "--", staged], asRoot: false), on: node)
            throw error
        }
    }

    /// Each step through ``Shell``, as root through `sudo -n` unless the SSH
    /// user is root: the one place a command line is made.
    func render(_ command: RemoteCommand) -> String {
        let sudo = command.asRoot && user != "root" ? ["sudo", "-n"] : []
        return command.steps.map { Shell.command(sudo + $0) }.joined(separator: " && ")
    }
}

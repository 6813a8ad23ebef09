import FoundationEssentials
import Shared
import SharedIO

/// Runs commands on a cluster node.
protocol RemoteShell: Sendable {
    func run(
        _ command: String, on node: NodeFacts, stdin: Data?, timeout: Duration,
        onOutput: (@Sendable (SSHOutputLine) -> Void)?
    ) async throws -> SSHCommandResult
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
        _ command: String, on node: NodeFacts, stdin: Data?, timeout: Duration,
        onOutput: (@Sendable (SSHOutputLine) -> Void)?
    ) async throws -> SSHCommandResult {
        let (host, port) = try endpoint(of: node)
        let client = SSHClient(
            configuration: SSHConfiguration(
                host: host, port: port, user: user, privateKeyFile: keyFile, knownHostsFile: knownHostsFile,
                hostKeyAlias: node.name))
        return try await client.run(command, stdin: stdin, timeout: timeout, onOutput: onOutput)
    }

    /// Commands run as root: through `sudo -n` unless the SSH user is root.
    var sudo: [String] { user == "root" ? [] : ["sudo", "-n"] }
}

public import Foundation
public import SharedIO

/// A node with the real apt, dpkg and apt-mark (`testbed/real_apt.py`): a
/// minimal Debian root built once per machine with debootstrap and copied
/// for each node, a signed repository in the pkgs.k8s.io shape with small
/// real packages, and a real sshd whose sessions run chrooted into the
/// node as its root. Started for one test and removed with it.
public final class RealAptNode: Sendable {
    public let directory: URL
    public let port: Int
    public let knownHosts: String
    public let key: String
    /// The node's root folder on this machine.
    public let root: URL
    public let repositoryURL: String

    private static let script = TestEnvironment.fixtures.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("testbed/real_apt.py").path
    /// Kept under .build (the test runs' folder is removed after each run),
    /// so that a second run on this machine reuses it.
    private static let baseCache = TestEnvironment.fixtures.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/debian-base-bookworm").path
    /// debootstrap runs once per test process, before any node is copied.
    private static let baseResult = Result {
        let python = try TestEnvironment.tool("python3")
        let result = try TestEnvironment.execute(python, [script, "base", "--base-cache", baseCache])
        guard result.status == 0 else { throw FixtureError("real_apt.py base failed: \(result.stderr)") }
    }

    /// A node whose Kubernetes apt source is in the one-line `.list` or the
    /// deb822 `.sources` format, with `role`'s packages at 1.34.3, held.
    public static func start(sources: String = "list", role: String = "worker") async throws -> RealAptNode {
        try await offThePool {
            try baseResult.get()
            return try RealAptNode(sources: sources, role: role)
        }
    }

    private init(sources: String, role: String) throws {
        directory = try TestEnvironment.makeDirectory("real-apt")
        let python = try TestEnvironment.tool("python3")
        let result = try TestEnvironment.execute(
            python,
            [
                Self.script, "up", "--dir", directory.path, "--base-cache", Self.baseCache, "--sources", sources,
                "--role", role,
            ])
        guard result.status == 0, let line = result.stdout.split(separator: "\n").last,
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let port = object["port"] as? Int, let knownHosts = object["known_hosts"] as? String,
            let key = object["key"] as? String, let node = object["node"] as? String,
            let repositoryURL = object["repo_url"] as? String
        else {
            throw FixtureError("real_apt.py up failed (\(result.status)): \(result.stderr)\(result.stdout)")
        }
        self.port = port
        self.knownHosts = knownHosts
        self.key = key
        self.root = URL(fileURLWithPath: node)
        self.repositoryURL = repositoryURL
    }

    deinit {
        if let python = try? TestEnvironment.tool("python3") {
            _ = try? TestEnvironment.execute(python, [Self.script, "down", "--dir", directory.path])
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// An SSH client for the node, as root.
    public var ssh: SSHClient {
        SSHClient(
            configuration: SSHConfiguration(
                host: "127.0.0.1", port: port, user: "root", privateKeyFile: key, knownHostsFile: knownHosts,
                connectTimeout: .seconds(5)))
    }
}

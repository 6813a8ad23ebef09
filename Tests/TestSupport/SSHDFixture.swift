public import Foundation
public import SharedIO

/// A real OpenSSH server on 127.0.0.1 with throwaway keys: RSA, ECDSA and
/// ed25519 host keys, as a stock Debian or Ubuntu server has, an ed25519 and
/// an RSA user key (both authorised), an unauthorised key, an encrypted
/// key, and known_hosts files (the ed25519 key only, as the runbook tells
/// operators to collect; ECDSA only; RSA only; all three; hashed; one with a
/// different key for the same host; one without the host).
///
/// ``shared`` runs with OpenSSH's defaults. ``acceptingSHA1RSA`` also accepts
/// `ssh-rsa` signatures, the only RSA signatures libssh2 before 1.11 (Debian
/// 12 ships 1.10) makes for user authentication.
public struct SSHDFixture: Sendable {
    public let directory: URL
    public let port: Int
    public let user: String
    public let server: ServerProcess

    public var ed25519Key: String { path("id_ed25519") }
    public var rsaKey: String { path("id_rsa") }
    public var unauthorisedKey: String { path("id_stranger") }
    public var encryptedKey: String { path("id_encrypted") }
    public var knownHosts: String { path("known_hosts") }
    public var ecdsaKnownHosts: String { path("known_hosts_ecdsa") }
    public var rsaKnownHosts: String { path("known_hosts_rsa") }
    public var allKnownHosts: String { path("known_hosts_all") }
    public var hashedKnownHosts: String { path("known_hosts_hashed") }
    public var changedKnownHosts: String { path("known_hosts_changed") }
    public var emptyKnownHosts: String { path("known_hosts_other") }
    /// The host's key under the name `node-a` and under its address, and
    /// another key under `node-b`: host-key aliases.
    public var aliasKnownHosts: String { path("known_hosts_alias") }
    /// `SHA256:…` of the host key, as `ssh-keygen -l` prints it.
    public let hostKeyFingerprint: String

    private static let sharedResult = Result { try start(acceptSHA1RSA: false) }
    private static let acceptingSHA1RSAResult = Result { try start(acceptSHA1RSA: true) }

    /// The server with OpenSSH's defaults, started once per test process.
    public static func shared() async throws -> SSHDFixture { try await offThePool { try sharedResult.get() } }

    /// The server that also accepts `ssh-rsa` signatures.
    public static func acceptingSHA1RSA() async throws -> SSHDFixture {
        try await offThePool { try acceptingSHA1RSAResult.get() }
    }

    public func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// A configuration for this server; override what a test needs.
    public func configuration(key: String? = nil, knownHosts: String? = nil) -> SSHConfiguration {
        SSHConfiguration(
            host: "127.0.0.1", port: port, user: user, privateKeyFile: key ?? ed25519Key,
            knownHostsFile: knownHosts ?? self.knownHosts, connectTimeout: .seconds(5))
    }

    private static func start(acceptSHA1RSA: Bool) throws -> SSHDFixture {
        let sshd = try TestEnvironment.tool("sshd", candidates: ["/usr/sbin/sshd"])
        let keygen = try TestEnvironment.tool("ssh-keygen")
        let dir = try TestEnvironment.makeDirectory("sshd")
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        func keygenRun(_ arguments: [String]) throws { try TestEnvironment.run(keygen, ["-q"] + arguments) }

        try keygenRun(["-t", "ed25519", "-N", "", "-f", path("host_ed25519"), "-C", "host"])
        try keygenRun(["-t", "ecdsa", "-b", "256", "-N", "", "-f", path("host_ecdsa"), "-C", "host"])
        try keygenRun(["-t", "rsa", "-b", "3072", "-N", "", "-f", path("host_rsa"), "-C", "host"])
        try keygenRun(["-t", "ed25519", "-N", "", "-f", path("other_host_ed25519"), "-C", "other"])
        try keygenRun(["-t", "ed25519", "-N", "", "-f", path("id_ed25519"), "-C", "user-ed25519"])
        try keygenRun(["-t", "rsa", "-b", "3072", "-N", "", "-f", path("id_rsa"), "-C", "user-rsa"])
        try keygenRun(["-t", "ed25519", "-N", "", "-f", path("id_stranger"), "-C", "stranger"])
        try keygenRun(["-t", "ed25519", "-N", "correct horse", "-f", path("id_encrypted"), "-C", "encrypted"])

        let authorized = try ["id_ed25519.pub", "id_rsa.pub"].map {
            try String(contentsOfFile: path($0), encoding: .utf8)
        }
        try authorized.joined().write(toFile: path("authorized_keys"), atomically: true, encoding: .utf8)

        let port = try TestEnvironment.freePort()
        let hostKey = try String(contentsOfFile: path("host_ed25519.pub"), encoding: .utf8).split(separator: " ")
        let otherKey = try String(contentsOfFile: path("other_host_ed25519.pub"), encoding: .utf8).split(separator: " ")
        let entry = "[127.0.0.1]:\(port) \(hostKey[0]) \(hostKey[1])\n"
        try entry.write(toFile: path("known_hosts"), atomically: true, encoding: .utf8)
        var all = entry
        for type in ["ecdsa", "rsa"] {
            let key = try String(contentsOfFile: path("host_\(type).pub"), encoding: .utf8).split(separator: " ")
            let line = "[127.0.0.1]:\(port) \(key[0]) \(key[1])\n"
            try line.write(toFile: path("known_hosts_\(type)"), atomically: true, encoding: .utf8)
            all = line + all
        }
        try all.write(toFile: path("known_hosts_all"), atomically: true, encoding: .utf8)
        try entry.write(toFile: path("known_hosts_hashed"), atomically: true, encoding: .utf8)
        try keygenRun(["-H", "-f", path("known_hosts_hashed")])
        try "[127.0.0.1]:\(port) \(otherKey[0]) \(otherKey[1])\n"
            .write(toFile: path("known_hosts_changed"), atomically: true, encoding: .utf8)
        try "node-a \(hostKey[0]) \(hostKey[1])\nnode-b \(otherKey[0]) \(otherKey[1])\n\(entry)"
            .write(toFile: path("known_hosts_alias"), atomically: true, encoding: .utf8)
        try "[10.0.0.99]:22 \(hostKey[0]) \(hostKey[1])\n"
            .write(toFile: path("known_hosts_other"), atomically: true, encoding: .utf8)
        let fingerprint = try TestEnvironment.run(keygen, ["-l", "-E", "sha256", "-f", path("host_ed25519.pub")])
            .split(separator: " ")[1]

        // sshd needs its privilege-separation directory; as root it is /run/sshd.
        if getuid() == 0 {
            try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        }
        let config = """
            Port \(port)
            ListenAddress 127.0.0.1
            HostKey \(path("host_rsa"))
            HostKey \(path("host_ecdsa"))
            HostKey \(path("host_ed25519"))
            PidFile \(path("sshd-daemon.pid"))
            AuthorizedKeysFile \(path("authorized_keys"))
            StrictModes no
            UsePAM no
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PubkeyAuthentication yes
            PermitRootLogin prohibit-password
            MaxStartups 64:30:128
            MaxSessions 64
            LogLevel VERBOSE
            \(acceptSHA1RSA ? "PubkeyAcceptedAlgorithms +ssh-rsa" : "")

            """
        try config.write(toFile: path("sshd_config"), atomically: true, encoding: .utf8)
        let user = String(cString: getpwuid(getuid())!.pointee.pw_name)
        let server = try ServerProcess(sshd, ["-D", "-e", "-f", path("sshd_config")], directory: dir, name: "sshd")
        do {
            try TestEnvironment.wait(for: "sshd on port \(port)") {
                !server.isRunning || Self.accepts(port: port)
            }
        } catch {
            throw FixtureError("\(error): \(server.log)")
        }
        guard server.isRunning else { throw FixtureError("sshd exited: \(server.log)") }
        return SSHDFixture(
            directory: dir, port: port, user: user, server: server, hostKeyFingerprint: String(fingerprint))
    }

    /// A proxy to this server that forwards each connection for
    /// `freezeAfter` seconds, then goes silent with the connection open
    /// (`Tests/Fixtures/freeze_proxy.py`); its port.
    public func freezingProxy(after freezeAfter: Double) throws -> (port: Int, server: ServerProcess) {
        let python = try TestEnvironment.tool("python3")
        let dir = try TestEnvironment.makeDirectory("freeze-proxy")
        let portFile = dir.appendingPathComponent("port")
        let server = try ServerProcess(
            python,
            [
                TestEnvironment.fixtures.appendingPathComponent("freeze_proxy.py").path, "--target-port", "\(port)",
                "--freeze-after", "\(freezeAfter)", "--port-file", portFile.path,
            ], directory: dir, name: "freeze-proxy")
        return (try server.waitForPort(in: portFile, what: "the freezing proxy"), server)
    }

    private static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}

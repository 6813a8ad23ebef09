public import Foundation

/// Throwaway certificates made with `openssl` for one test process: a CA, a
/// server certificate for 127.0.0.1 and localhost, a client certificate,
/// and a second, unrelated CA with its own client certificate.
public struct TestPKI: Sendable {
    public let directory: URL
    public var caCertificate: URL { directory.appendingPathComponent("ca.crt") }
    public var serverCertificate: URL { directory.appendingPathComponent("server.crt") }
    public var serverKey: URL { directory.appendingPathComponent("server.key") }
    public var clientCertificate: URL { directory.appendingPathComponent("client.crt") }
    public var clientKey: URL { directory.appendingPathComponent("client.key") }
    public var otherCACertificate: URL { directory.appendingPathComponent("other-ca.crt") }
    public var strangerCertificate: URL { directory.appendingPathComponent("stranger.crt") }
    public var strangerKey: URL { directory.appendingPathComponent("stranger.key") }

    /// Made once per test process.
    static let sharedResult: Result<TestPKI, any Error> = Result { try TestPKI.make() }

    /// Made once per test process.
    public static func shared() async throws -> TestPKI { try await offThePool { try sharedResult.get() } }

    private static func make() throws -> TestPKI {
        let openssl = try TestEnvironment.tool("openssl")
        let dir = try TestEnvironment.makeDirectory("pki")
        let pki = TestPKI(directory: dir)
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

        for ca in ["ca", "other-ca"] {
            try TestEnvironment.run(
                openssl,
                ["req", "-x509"] + ec + [
                    "-keyout", path("\(ca).key"), "-out", path("\(ca).crt"), "-days", "2", "-subj",
                    "/CN=k8s-upgrade \(ca)",
                ])
        }
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
            .write(toFile: path("server.ext"), atomically: true, encoding: .utf8)
        try "extendedKeyUsage=clientAuth\n".write(toFile: path("client.ext"), atomically: true, encoding: .utf8)
        let leaves = [
            ("server", "ca", "server.ext", "/CN=localhost"),
            ("client", "ca", "client.ext", "/CN=k8s-upgrade-test-client"),
            ("stranger", "other-ca", "client.ext", "/CN=stranger"),
        ]
        for (name, ca, ext, subject) in leaves {
            try TestEnvironment.run(
                openssl, ["req"] + ec + ["-keyout", path("\(name).key"), "-out", path("\(name).csr"), "-subj", subject])
            try TestEnvironment.run(
                openssl,
                [
                    "x509", "-req", "-in", path("\(name).csr"), "-CA", path("\(ca).crt"), "-CAkey", path("\(ca).key"),
                    "-CAcreateserial", "-out", path("\(name).crt"), "-days", "2", "-extfile", path(ext),
                ])
        }
        return pki
    }
}

/// The Python echo server (`Tests/Fixtures/echo_server.py`) in one of its modes.
public struct EchoServer: Sendable {
    public let port: Int
    public let server: ServerProcess

    public var httpURL: String { "http://127.0.0.1:\(port)" }
    public var httpsURL: String { "https://127.0.0.1:\(port)" }
    public var localhostURL: String { "https://localhost:\(port)" }

    private static let plainResult = Result { try start(name: "http", tls: false, mutual: false) }
    private static let tlsResult = Result { try start(name: "https", tls: true, mutual: false) }
    private static let mutualTLSResult = Result { try start(name: "mtls", tls: true, mutual: true) }

    public static func plain() async throws -> EchoServer { try await offThePool { try plainResult.get() } }
    public static func tls() async throws -> EchoServer { try await offThePool { try tlsResult.get() } }
    public static func mutualTLS() async throws -> EchoServer { try await offThePool { try mutualTLSResult.get() } }

    private static func start(name: String, tls: Bool, mutual: Bool) throws -> EchoServer {
        let python = try TestEnvironment.tool("python3")
        let dir = try TestEnvironment.makeDirectory("echo-\(name)")
        let portFile = dir.appendingPathComponent("port")
        var arguments = [
            TestEnvironment.fixtures.appendingPathComponent("echo_server.py").path, "--port-file", portFile.path,
        ]
        if tls {
            let pki = try TestPKI.sharedResult.get()
            arguments += ["--cert", pki.serverCertificate.path, "--key", pki.serverKey.path]
            if mutual { arguments += ["--client-ca", pki.caCertificate.path] }
        }
        let server = try ServerProcess(python, arguments, directory: dir, name: "echo-\(name)")
        let port = try server.waitForPort(in: portFile, what: "the \(name) echo server")
        return EchoServer(port: port, server: server)
    }
}

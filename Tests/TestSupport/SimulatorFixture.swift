public import Foundation
public import SharedIO

/// A running `k8s-cluster-sim` over HTTPS (the test CA's server certificate)
/// with a bearer token, a kubeconfig for the real kubectl, and an HTTP
/// client for checking outcomes through the API.
public final class SimulatorFixture: Sendable {
    public let directory: URL
    public let port: Int
    public let token: String
    public let server: ServerProcess
    public let pki: TestPKI

    public var baseURL: String { "https://127.0.0.1:\(port)" }
    public var kubeconfig: String { directory.appendingPathComponent("kubeconfig").path }

    /// Starts a simulator with a built-in scenario name or a scenario document.
    public static func start(scenario: String? = nil, scenarioJSON: String? = nil) async throws -> SimulatorFixture {
        try await offThePool { try SimulatorFixture(scenario: scenario, scenarioJSON: scenarioJSON) }
    }

    private init(scenario: String?, scenarioJSON: String?) throws {
        pki = try TestPKI.sharedResult.get()
        directory = try TestEnvironment.makeDirectory("sim")
        token = UUID().uuidString
        let tokenFile = directory.appendingPathComponent("token").path
        try token.write(toFile: tokenFile, atomically: true, encoding: .utf8)
        var scenarioArgument = scenario ?? "default"
        if let scenarioJSON {
            scenarioArgument = directory.appendingPathComponent("scenario.json").path
            try scenarioJSON.write(toFile: scenarioArgument, atomically: true, encoding: .utf8)
        }
        let binary = TestEnvironment.productsDirectory.appendingPathComponent("k8s-cluster-sim").path
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw FixtureError("\(binary) is missing; build with `swift build --build-tests` (./scripts/test.sh does)")
        }
        let portFile = directory.appendingPathComponent("port")
        server = try ServerProcess(
            binary,
            [
                "--scenario", scenarioArgument, "--token-file", tokenFile, "--port-file", portFile.path,
                "--tls-cert", pki.serverCertificate.path, "--tls-key", pki.serverKey.path,
            ], directory: directory, name: "k8s-cluster-sim")
        port = try server.waitForPort(in: portFile, what: "k8s-cluster-sim")
        let kubeconfig = """
            apiVersion: v1
            kind: Config
            clusters:
            - name: sim
              cluster:
                server: https://127.0.0.1:\(port)
                certificate-authority: \(pki.caCertificate.path)
            users:
            - name: admin
              user:
                token: \(token)
            contexts:
            - name: sim
              context: {cluster: sim, user: admin, namespace: default}
            current-context: sim

            """
        try kubeconfig.write(toFile: self.kubeconfig, atomically: true, encoding: .utf8)
    }

    deinit { server.stop() }

    /// Runs the real kubectl against this simulator.
    public func kubectl(_ arguments: String...) async throws -> (status: Int32, stdout: String, stderr: String) {
        let kubectl = try TestEnvironment.tool("kubectl")
        let prefix = [
            "--kubeconfig", kubeconfig, "--cache-dir", directory.appendingPathComponent("cache").path,
            "--request-timeout", "20s",
        ]
        return try await offThePool { try TestEnvironment.execute(kubectl, prefix + arguments) }
    }

    /// An HTTP client that trusts the simulator and sends its token.
    public func request(
        _ method: String = "GET", _ path: String, body: String? = nil, contentType: String = "application/json",
        authenticated: Bool = true
    ) async throws -> HTTPResponse {
        var configuration = HTTPClient.Configuration()
        configuration.tls = TLSConfiguration(trustRoots: .file(pki.caCertificate.path))
        let request = HTTPRequest(
            method: method, url: baseURL + path,
            headers: [("Accept", "application/json"), ("Content-Type", contentType)], body: body.map { Data($0.utf8) },
            bearerToken: authenticated ? token : nil)
        return try await HTTPClient(configuration: configuration).send(request)
    }

    /// GETs `path` and decodes the JSON body.
    public func json(_ path: String) async throws -> [String: Any] {
        let response = try await request("GET", path)
        guard response.status == 200,
            let object = try JSONSerialization.jsonObject(with: response.body) as? [String: Any]
        else { throw FixtureError("GET \(path): HTTP \(response.status): \(response.text)") }
        return object
    }
}

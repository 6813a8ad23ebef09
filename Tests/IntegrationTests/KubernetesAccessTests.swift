import Foundation
import Shared
import SharedIO
import TestSupport
import Testing

/// The two ways the product reaches an API server, checked against the simulator.
@Suite("Kubernetes access")
struct KubernetesAccessTests {
    @Test func inClusterServiceAccount() async throws {
        let sim = try await SimulatorFixture.start()
        let accountDir = try await offThePool { try TestEnvironment.makeDirectory("serviceaccount") }
        try sim.token.write(to: accountDir.appendingPathComponent("token"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(at: sim.pki.caCertificate, to: accountDir.appendingPathComponent("ca.crt"))
        try "k8s-upgrade\n".write(to: accountDir.appendingPathComponent("namespace"), atomically: true, encoding: .utf8)
        let access = try KubernetesAccess.inCluster(
            environment: ["KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": String(sim.port)],
            directory: accountDir.path)
        #expect(access.server == "https://127.0.0.1:\(sim.port)")
        #expect(access.namespace == "k8s-upgrade")
        let nodes = try await KubernetesClient(access: access).nodes(pageSize: 2)
        #expect(nodes.map(\.name) == ["master", "worker-1", "worker-2", "worker-3", "worker-4"])
        #expect(nodes.first?.isControlPlane == true)
        #expect(
            try await KubernetesClient(access: access).serverVersion() == KubeVersion(major: 1, minor: 34, patch: 3))

        #expect(throws: KubernetesAccessError.self) {
            try KubernetesAccess.inCluster(environment: [:], directory: accountDir.path)
        }
    }

    @Test func kubeconfigWithInlineDataAndRelativePaths() async throws {
        let sim = try await SimulatorFixture.start()
        let folder = try await offThePool { try TestEnvironment.makeDirectory("kubeconfig") }
        let caData = try Data(contentsOf: sim.pki.caCertificate).base64EncodedString()
        try sim.token.write(to: folder.appendingPathComponent("token"), atomically: true, encoding: .utf8)
        let inline = """
            apiVersion: v1
            kind: Config
            clusters:
            - cluster:
                certificate-authority-data: \(caData)
                server: https://127.0.0.1:\(sim.port)
              name: sim
            contexts:
            - context:
                cluster: sim
                user: admin
                namespace: kube-system
              name: admin@sim
            - context: {cluster: sim, user: nobody}
              name: other
            current-context: admin@sim
            users:
            - name: admin
              user:
                tokenFile: token
            - name: nobody
              user:
                exec: {command: aws}
            """
        let path = folder.appendingPathComponent("config").path
        try inline.write(toFile: path, atomically: true, encoding: .utf8)
        let access = try KubernetesAccess.kubeconfig(path: path)
        #expect(access.namespace == "kube-system")
        #expect(access.token == .file(folder.appendingPathComponent("token").path))
        #expect(try await KubernetesClient(access: access).nodes().count == 5)

        #expect {
            try KubernetesAccess.kubeconfig(path: path, context: "other")
        } throws: { error in
            "\(error)".contains("user authentication by exec is not supported")
        }
        #expect {
            try KubernetesAccess.kubeconfig(path: path, context: "missing")
        } throws: { error in
            "\(error)".contains("no context named \"missing\"")
        }
    }

    @Test func aWrongTokenIsAnAPIErrorWithItsReason() async throws {
        let sim = try await SimulatorFixture.start()
        let access = KubernetesAccess(
            server: sim.baseURL, tls: TLSConfiguration(trustRoots: .file(sim.pki.caCertificate.path)),
            token: .value("wrong"))
        await #expect {
            try await KubernetesClient(access: access).nodes()
        } throws: { error in
            guard let error = error as? KubernetesAPIError else { return false }
            return error.status == 401 && error.reason == "Unauthorized"
        }
    }
}

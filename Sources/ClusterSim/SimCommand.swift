import ArgumentParser
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOSSL
import Shared

/// `k8s-cluster-sim`: a Kubernetes API server whose control plane is
/// simulated, for the test bed. Real HTTP, real JSON, real kubectl.
@main
struct SimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "k8s-cluster-sim",
        abstract: "Serve a simulated Kubernetes cluster's API for tests and demos.",
        discussion: """
            Serves discovery, nodes, pods (with evictions under PodDisruptionBudgets), namespaces, \
            leases, DaemonSets and ReplicaSets, and runs small controllers: graceful pod deletion, \
            ReplicaSet replacements scheduled on schedulable nodes, budget status. \
            PUT /sim/v1/control-plane/NODE {"version":"X.Y.Z"} moves a control plane's static pods, \
            as kubeadm upgrade does; /version follows the first control plane.
            """)

    @Option(help: "A built-in scenario (default, ha, synthetic-N) or the path of a scenario JSON file.")
    var scenario = "default"

    @Option(help: "Run every node (kubelet and control plane) at this release instead of the scenario's.")
    var runningVersion: String?

    @Option(
        help: ArgumentHelp(
            "Report this container runtime on a node, as NODE=X.Y.Z (containerd); repeatable.",
            valueName: "node=version"))
    var containerd: [String] = []

    @Option(
        help: ArgumentHelp(
            "Serve a custom resource as if its CRD were installed: plans.upgrade.cattle.io (system-upgrade-controller's Plans) or etcdsnapshotfiles.k3s.cattle.io (K3s' snapshot records); repeatable.",
            valueName: "plural.group"))
    var crd: [String] = []

    @Option(
        help:
            "Keep ConfigMaps in this etcd (https://HOST:PORT), as an API server keeps its objects: every write goes through to it and every read comes from it."
    )
    var etcdEndpoint: String?

    @Option(help: "With --etcd-endpoint: the etcd CA, client certificate and key (PEM files), comma-separated.")
    var etcdTLS: String?

    @Option(help: "Address to listen on.")
    var address = "127.0.0.1"

    @Option(help: "Port to listen on; 0 picks a free one.")
    var port = 0

    @Option(help: "Write the bound port to this file once listening.")
    var portFile: String?

    @Option(help: "File holding the bearer token clients must send.")
    var tokenFile: String

    @Option(help: "PEM certificate chain; with --tls-key, serve HTTPS (kubectl sends tokens only over TLS).")
    var tlsCert: String?

    @Option(help: "PEM private key of --tls-cert.")
    var tlsKey: String?

    func run() async throws {
        var scenario = try loadScenario()
        if let runningVersion {
            guard (try? KubeVersion(strictRelease: runningVersion)) != nil else {
                throw ValidationError("--running-version must be X.Y.Z")
            }
            for index in scenario.nodes.indices { scenario.nodes[index].kubeletVersion = runningVersion }
        }
        for assignment in containerd {
            let parts = assignment.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, (try? KubeVersion(strictRelease: parts[1])) != nil,
                let index = scenario.nodes.firstIndex(where: { $0.name == parts[0] })
            else { throw ValidationError("--containerd must be NODE=X.Y.Z naming a scenario node, got \(assignment)") }
            scenario.nodes[index].containerRuntimeVersion = "containerd://\(parts[1])"
        }
        let token = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw ValidationError("\(tokenFile) is empty") }
        let store = await ClusterStore(scenario: scenario)
        for name in crd where !Resource.customResourceNames.contains(name) {
            throw ValidationError(
                "--crd knows \(Resource.customResourceNames.joined(separator: " and ")) only, got \(name)")
        }
        var etcd: EtcdObjects?
        if let etcdEndpoint {
            let files = (etcdTLS ?? "").split(separator: ",").map(String.init)
            guard files.count == 3 else {
                throw ValidationError("--etcd-endpoint needs --etcd-tls CA,CERT,KEY")
            }
            etcd = EtcdObjects(endpoint: etcdEndpoint, caFile: files[0], certificateFile: files[1], keyFile: files[2])
        }
        let handler = APIHandler(
            store: store, token: token, faults: scenario.faults, customResources: Set(crd), etcd: etcd)
        let portFile = portFile
        let server: HTTPServerBuilder
        switch (tlsCert, tlsKey) {
        case let (cert?, key?):
            let chain = try NIOSSLCertificate.fromPEMFile(cert).map { NIOSSLCertificateSource.certificate($0) }
            let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
            server = try .tls(
                .http1(),
                tlsConfiguration: .makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(privateKey))
            )
        case (nil, nil):
            server = .http1()
        default:
            throw ValidationError("--tls-cert and --tls-key go together")
        }
        let app = Application(
            responder: CallbackResponder { request, context in await handler.respond(to: request, context: context) },
            server: server,
            configuration: .init(address: .hostname(address, port: port), serverName: "k8s-cluster-sim"),
            onServerRunning: { channel in
                guard let portFile, let port = channel.localAddress?.port else { return }
                try? String(port).write(toFile: portFile + ".tmp", atomically: true, encoding: .utf8)
                _ = rename(portFile + ".tmp", portFile)
            })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService() }
            group.addTask {
                while !Task.isCancelled {
                    await store.reconcile()
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    private func loadScenario() throws -> Scenario {
        if let builtIn = Scenario.named(scenario) { return builtIn }
        guard FileManager.default.fileExists(atPath: scenario) else {
            throw ValidationError("no built-in scenario or file named \(scenario)")
        }
        return try JSONDecoder().decode(Scenario.self, from: Data(contentsOf: URL(fileURLWithPath: scenario)))
    }
}

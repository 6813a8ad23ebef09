import ArgumentParser
import FoundationEssentials
import Glibc
import Shared
import SharedIO

/// `k8s-upgrade drain NODE`: the pipeline's drain on its own, for an
/// operator's rollback and for the benchmark against kubectl drain.
struct DrainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drain",
        abstract: "Cordon and drain one node the way the pipeline does.",
        discussion: """
            Same rules as kubectl drain --ignore-daemonsets --delete-emptydir-data (refuses pods with \
            no controller), evictions in parallel, refused evictions retried with backoff, deletions \
            confirmed by UID. The node stays cordoned, marked as cordoned by this tool. \
            Exit 0 when drained, 1 when refused or timed out (the pods left and their budgets are printed).
            """)

    @Argument(help: "The node to drain.")
    var node: String

    @Option(help: ArgumentHelp(SharedOptions.kubeconfig.help))
    var kubeconfig: String?

    @Option(help: ArgumentHelp(ServeOptions.drainTimeout.help))
    var drainTimeout: Double?

    @Option(help: ArgumentHelp(ServeOptions.drainExclude.help))
    var drainExclude: String?

    @Option(help: ArgumentHelp(ServeOptions.annotationPrefix.help))
    var annotationPrefix: String?

    func run() async throws {
        guard ObjectName.isDNS1123Subdomain(node) else { throw ValidationError("\(node) is not a node name") }
        // The same variables as `serve`, so one environment configures both.
        let reader = OptionReader(environment: ProcessInfo.processInfo.environment)
        let timeout: Duration
        let prefix: String
        let exclusion: DrainExclusion
        do {
            timeout = try ServeOptions.drainTimeout.read(drainTimeout, reader)
            exclusion = try ServeSettings.drainExclusion(
                drainExclude, reader, environment: ProcessInfo.processInfo.environment)
            prefix = try ServeOptions.annotationPrefix.read(annotationPrefix, reader)
        } catch { throw ValidationError("\(error)") }
        let access = try KubernetesAccess.resolve(kubeconfig: try SharedOptions.kubeconfig.read(kubeconfig, reader))
        let cluster = Cluster(
            client: KubernetesClient(access: access), annotationPrefix: prefix, namespace: "k8s-upgrade")
        var drainer = Drainer(cluster: cluster)
        drainer.timeout = timeout
        drainer.exclusion = exclusion
        let facts = try await cluster.node(node)
        if !facts.unschedulable { try await cluster.cordon(node, by: "k8s-upgrade drain") }
        print("node/\(node) cordoned")
        do {
            let outcome = try await drainer.drain(node, checkpoint: {}) { message in print(message) }
            print("node/\(node) drained: \(outcome.evicted) pods evicted")
        } catch {
            print("error: \(error)")
            fflush(nil)
            throw ExitCode(1)
        }
        fflush(nil)
    }
}

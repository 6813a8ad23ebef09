import FoundationEssentials
import Shared
import SharedIO

/// The pipeline's view of the Kubernetes API: typed reads and the few
/// writes it makes (cordon, uncordon, evict, namespace annotations).
struct Cluster: Sendable {
    let client: KubernetesClient
    /// `<prefix>/cordoned-by` on nodes; `<prefix>/in-flight`, `target`, `snapshot-path` on the namespace.
    let annotationPrefix: String
    let namespace: String
    /// Where a control plane's API server version is read.
    var distribution: any Distribution = KubeadmApt()

    var cordonAnnotation: String { "\(annotationPrefix)/cordoned-by" }

    func nodes() async throws -> [NodeFacts] {
        try await client.nodes(cordonAnnotation: cordonAnnotation)
    }

    func node(_ name: String) async throws -> NodeFacts {
        NodeFacts(node: try await client.getJSON("/api/v1/nodes/\(name)"), cordonAnnotation: cordonAnnotation)
    }

    /// The version of a control plane's API server, from the image of the
    /// distribution's API server pod (kubeadm's `kube-apiserver-<node>`
    /// static pod), or where the API server runs in the kubelet's process
    /// (MicroK8s' kubelite) the kubelet's; `nil` when it has none.
    func apiServerVersion(on node: String) async throws -> KubeVersion? {
        guard let path = distribution.apiServerPod(on: node) else { return try await self.node(node).kubelet }
        guard let pod = try await client.getIfExists(path),
            let image = pod[["spec", "containers"]]?.arrayValue?.first?[["image"]]?.stringValue,
            let tag = image.split(separator: ":").last
        else { return nil }
        return try? KubeVersion(parsing: String(tag))
    }

    /// Each control plane's API server version (its static pod's image);
    /// control planes without one are left out.
    func apiServerVersions(of nodes: [NodeFacts]) async throws -> [String: KubeVersion] {
        try await apiServerVersions(ofControlPlanes: nodes.filter(\.isControlPlane).map(\.name))
    }

    /// The API server versions of the control planes named.
    func apiServerVersions(ofControlPlanes names: [String]) async throws -> [String: KubeVersion] {
        var versions: [String: KubeVersion] = [:]
        for name in names {
            if let version = try await apiServerVersion(on: name) { versions[name] = version }
        }
        return versions
    }

    /// Every API server's version: the control planes' static pods, else
    /// (a control plane without one) what the API answers on `/version`.
    func runningAPIServers(of nodes: [NodeFacts]) async throws -> [KubeVersion] {
        let versions = Array(try await apiServerVersions(of: nodes).values)
        return versions.isEmpty ? [try await client.serverVersion()] : versions
    }

    /// Cordons `node`, recording in its annotation that this tool did it.
    func cordon(_ node: String, by owner: String) async throws {
        try await client.mergePatch(
            "/api/v1/nodes/\(node)",
            .object([
                "metadata": .object(["annotations": .object([cordonAnnotation: .string(owner)])]),
                "spec": .object(["unschedulable": .bool(true)]),
            ]))
    }

    /// Uncordons `node` and removes the cordon annotation.
    func uncordon(_ node: String) async throws {
        try await client.mergePatch(
            "/api/v1/nodes/\(node)",
            .object([
                "metadata": .object(["annotations": .object([cordonAnnotation: .null])]),
                "spec": .object(["unschedulable": .null]),
            ]))
    }

    func pods(on node: String) async throws -> [JSONValue] {
        try await client.list("/api/v1/pods?fieldSelector=" + KubernetesClient.percentEncoded("spec.nodeName=\(node)"))
    }

    /// Every node as the scheduler sees it (allocatable, taints, labels).
    func rooms() async throws -> [NodeRoom] { try await nodesWithRooms().rooms }

    /// Every node's facts and room from one list of the nodes, each page
    /// reduced before the next is read (pre-flight and the plan need both;
    /// a second list of 5,000 nodes costs a third of a second).
    func nodesWithRooms() async throws -> (nodes: [NodeFacts], rooms: [NodeRoom]) {
        var nodes: [NodeFacts] = []
        var rooms: [NodeRoom] = []
        try await client.forEachPage("/api/v1/nodes") { page in
            for object in page {
                let facts = NodeFacts(node: object, cordonAnnotation: cordonAnnotation)
                nodes.append(facts)
                rooms.append(NodeRoom(node: object, facts: facts))
            }
        }
        return (nodes, rooms)
    }

    /// Every pod on a node, with what placing it again needs; each page is
    /// reduced before the next is read.
    func placements() async throws -> [PodPlacement] {
        var pods: [PodPlacement] = []
        try await client.forEachPage("/api/v1/pods") { page in pods += page.compactMap(PodPlacement.init(pod:)) }
        return pods
    }

    /// `namespace/name` of every DaemonSet.
    func daemonSetNames() async throws -> Set<String> {
        var names = Set<String>()
        try await client.forEachPage("/apis/apps/v1/daemonsets") { page in
            for set in page {
                names.insert(
                    "\(set[["metadata", "namespace"]]?.stringValue ?? "")/\(set[["metadata", "name"]]?.stringValue ?? "")"
                )
            }
        }
        return names
    }

    func budgets() async throws -> [BudgetFacts] {
        try await client.list("/apis/policy/v1/poddisruptionbudgets").map(BudgetFacts.init(budget:))
    }

    func daemonSetExists(namespace: String, name: String) async throws -> Bool {
        try await client.getIfExists("/apis/apps/v1/namespaces/\(namespace)/daemonsets/\(name)") != nil
    }

    func evict(_ pod: PodFacts) async throws -> KubernetesClient.EvictionAnswer {
        try await client.evict(namespace: pod.namespace, name: pod.name)
    }

    /// The API's answer to a dry-run eviction of each pod (`namespace/name`),
    /// eight questions at a time: nothing is evicted, no budget is spent.
    func dryRunEvictions(_ pods: [String]) async -> [String: DrainForecast.APIAnswer] {
        await withTaskGroup(of: (String, DrainForecast.APIAnswer).self) { group in
            var answers: [String: DrainForecast.APIAnswer] = [:]
            var next = pods.makeIterator()
            func ask(_ pod: String) {
                group.addTask { [client] in
                    let parts = pod.split(separator: "/", maxSplits: 1).map(String.init)
                    guard parts.count == 2 else { return (pod, .unanswered("not namespace/name")) }
                    do {
                        switch try await client.evict(namespace: parts[0], name: parts[1], dryRun: true) {
                        case .accepted, .gone: return (pod, .allowed)
                        case let .refusedByBudget(cause): return (pod, .refused(cause))
                        case let .multipleBudgets(text): return (pod, .multipleBudgets(text))
                        case let .namespaceTerminating(text): return (pod, .refused(text))
                        }
                    } catch { return (pod, .unanswered("\(error)")) }
                }
            }
            for _ in 0..<8 {
                guard let pod = next.next() else { break }
                ask(pod)
            }
            for await (pod, answer) in group {
                answers[pod] = answer
                if let pod = next.next() { ask(pod) }
            }
            return answers
        }
    }

    /// The tool's annotations on its namespace, without the prefix.
    func namespaceAnnotations() async throws -> [String: String] {
        let object = try await client.getJSON("/api/v1/namespaces/\(namespace)")
        var values: [String: String] = [:]
        for (key, value) in object.stringMap("metadata.annotations") where key.hasPrefix(annotationPrefix + "/") {
            values[String(key.dropFirst(annotationPrefix.count + 1))] = value
        }
        return values
    }

    /// Removes the in-flight mark (``InFlightMark/keys``).
    func clearInFlightMark() async throws {
        try await annotateNamespace(Dictionary(uniqueKeysWithValues: InFlightMark.keys.map { ($0, String?.none) }))
    }

    /// Sets (or, with `nil`, removes) annotations of the tool's namespace.
    func annotateNamespace(_ values: [String: String?]) async throws {
        let annotations = Dictionary(
            uniqueKeysWithValues: values.map { key, value in
                ("\(annotationPrefix)/\(key)", value.map(JSONValue.string) ?? .null)
            })
        try await client.mergePatch(
            "/api/v1/namespaces/\(namespace)", .object(["metadata": .object(["annotations": .object(annotations)])]))
    }
}

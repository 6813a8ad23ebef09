import Shared

/// The legacy (non-aggregated) discovery documents kubectl reads to map
/// `kubectl get nodes` to `/api/v1/nodes`.
enum Discovery {
    static let apiVersions: JSONValue = .object([
        "kind": .string("APIVersions"), "versions": .array([.string("v1")]),
        "serverAddressByClientCIDRs": .array([
            .object(["clientCIDR": .string("0.0.0.0/0"), "serverAddress": .string("127.0.0.1:6443")])
        ]),
    ])

    private static let groups: [(group: String, version: String)] = [
        ("apps", "v1"), ("policy", "v1"), ("coordination.k8s.io", "v1"),
    ]
    /// The groups of custom resources, listed once a CRD of theirs is installed.
    private static func customGroups(_ customResources: Set<String>) -> [(group: String, version: String)] {
        Resource.allCases.filter { $0.customResourceName.map(customResources.contains) ?? false }.map {
            let parts = $0.apiVersion.split(separator: "/")
            return (String(parts[0]), String(parts[1]))
        }
    }

    static func groupList(customResources: Set<String>) -> JSONValue {
        .object([
            "kind": .string("APIGroupList"), "apiVersion": .string("v1"),
            "groups": .array(
                (groups + customGroups(customResources)).map { group, version in
                    let entry: JSONValue = .object([
                        "groupVersion": .string("\(group)/\(version)"), "version": .string(version),
                    ])
                    return .object([
                        "name": .string(group), "versions": .array([entry]), "preferredVersion": entry,
                    ])
                }),
        ])
    }

    private struct Entry {
        let name: String
        let singular: String
        let namespaced: Bool
        let kind: String
        let verbs: [String]
        var shortNames: [String] = []
        var group: String? = nil
        var version: String? = nil
    }

    private static let read = ["get", "list"]
    private static let all = ["create", "delete", "get", "list", "patch", "update"]

    private static let entries: [String: [Entry]] = [
        "v1": [
            Entry(name: "nodes", singular: "node", namespaced: false, kind: "Node", verbs: all, shortNames: ["no"]),
            Entry(
                name: "nodes/status", singular: "", namespaced: false, kind: "Node", verbs: ["get", "patch", "update"]),
            Entry(name: "pods", singular: "pod", namespaced: true, kind: "Pod", verbs: all, shortNames: ["po"]),
            Entry(
                name: "pods/eviction", singular: "", namespaced: true, kind: "Eviction", verbs: ["create"],
                group: "policy", version: "v1"),
            Entry(name: "pods/status", singular: "", namespaced: true, kind: "Pod", verbs: ["get", "patch", "update"]),
            Entry(
                name: "namespaces", singular: "namespace", namespaced: false, kind: "Namespace", verbs: all,
                shortNames: ["ns"]),
            Entry(
                name: "configmaps", singular: "configmap", namespaced: true, kind: "ConfigMap", verbs: all,
                shortNames: ["cm"]),
        ],
        "apps/v1": [
            Entry(
                name: "daemonsets", singular: "daemonset", namespaced: true, kind: "DaemonSet", verbs: read,
                shortNames: ["ds"]),
            Entry(
                name: "replicasets", singular: "replicaset", namespaced: true, kind: "ReplicaSet", verbs: read,
                shortNames: ["rs"]),
        ],
        "policy/v1": [
            Entry(
                name: "poddisruptionbudgets", singular: "poddisruptionbudget", namespaced: true,
                kind: "PodDisruptionBudget", verbs: read, shortNames: ["pdb"])
        ],
        "coordination.k8s.io/v1": [
            Entry(name: "leases", singular: "lease", namespaced: true, kind: "Lease", verbs: all)
        ],
        "upgrade.cattle.io/v1": [
            Entry(name: "plans", singular: "plan", namespaced: true, kind: "Plan", verbs: all)
        ],
        "k3s.cattle.io/v1": [
            Entry(
                name: "etcdsnapshotfiles", singular: "etcdsnapshotfile", namespaced: false, kind: "ETCDSnapshotFile",
                verbs: all)
        ],
    ]

    static func resources(groupVersion: String, customResources: Set<String>) throws(APIError) -> JSONValue {
        let custom = Set(customGroups(customResources).map { "\($0.group)/\($0.version)" })
        let builtIn = groups.map { "\($0.group)/\($0.version)" } + ["v1"]
        guard let list = entries[groupVersion], builtIn.contains(groupVersion) || custom.contains(groupVersion) else {
            throw APIError(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
        }
        return .object([
            "kind": .string("APIResourceList"), "apiVersion": .string("v1"), "groupVersion": .string(groupVersion),
            "resources": .array(
                list.map { entry in
                    var object: [String: JSONValue] = [
                        "name": .string(entry.name), "singularName": .string(entry.singular),
                        "namespaced": .bool(entry.namespaced), "kind": .string(entry.kind),
                        "verbs": .array(entry.verbs.map(JSONValue.string)),
                    ]
                    if !entry.shortNames.isEmpty {
                        object["shortNames"] = .array(entry.shortNames.map(JSONValue.string))
                    }
                    if let group = entry.group { object["group"] = .string(group) }
                    if let version = entry.version { object["version"] = .string(version) }
                    return .object(object)
                }),
        ])
    }
}

/// What the pipeline reads of a node, parsed from the API's Node object.
public struct NodeFacts: Sendable, Equatable {
    public var name: String
    public var isControlPlane: Bool
    public var kubelet: KubeVersion?
    public var isReady: Bool
    /// `Ready`'s reason and message when it is not True.
    public var readiness: String
    public var unschedulable: Bool
    /// The value of the tool's cordon annotation, when this tool cordoned it.
    public var cordonedBy: String?
    /// `containerd://1.7.24` → 1.7.24.
    public var containerd: KubeVersion?
    public var internalIP: String?
    /// The node's labels (what another upgrader's node selector reads).
    public var labels: [String: String] = [:]

    public init(
        name: String, isControlPlane: Bool = false, kubelet: KubeVersion?, isReady: Bool = true,
        readiness: String = "", unschedulable: Bool = false, cordonedBy: String? = nil,
        containerd: KubeVersion? = nil, internalIP: String? = nil
    ) {
        self.name = name
        self.isControlPlane = isControlPlane
        self.kubelet = kubelet
        self.isReady = isReady
        self.readiness = readiness
        self.unschedulable = unschedulable
        self.cordonedBy = cordonedBy
        self.containerd = containerd
        self.internalIP = internalIP
    }

    /// The labels that mark a control plane: kubeadm's and K3s' role label,
    /// and MicroK8s', whose control planes carry no role label (their
    /// kubelet sets `node.kubernetes.io/microk8s-controlplane`).
    public static let controlPlaneLabels = [
        "node-role.kubernetes.io/control-plane", "node.kubernetes.io/microk8s-controlplane",
    ]

    /// Reads a Node object; `cordonAnnotation` is the annotation key this
    /// tool writes when it cordons a node.
    public init(node: JSONValue, cordonAnnotation: String) {
        let conditions = node[["status", "conditions"]]?.arrayValue ?? []
        let ready = conditions.first { $0[["type"]]?.stringValue == "Ready" }
        let isReady = ready?[["status"]]?.stringValue == "True"
        let runtime = node[["status", "nodeInfo", "containerRuntimeVersion"]]?.stringValue ?? ""
        let addresses = node[["status", "addresses"]]?.arrayValue ?? []
        self.init(
            name: node[["metadata", "name"]]?.stringValue ?? "",
            isControlPlane: Self.controlPlaneLabels.contains { node[["metadata", "labels", $0]] != nil },
            kubelet: (node[["status", "nodeInfo", "kubeletVersion"]]?.stringValue).flatMap {
                try? KubeVersion(parsing: $0)
            },
            isReady: isReady,
            readiness: isReady
                ? "Ready"
                : ready.map {
                    "Ready=\($0[["status"]]?.stringValue ?? "?") \($0[["reason"]]?.stringValue ?? ""): \($0[["message"]]?.stringValue ?? "")"
                } ?? "no Ready condition",
            unschedulable: node[["spec", "unschedulable"]]?.boolValue ?? false,
            cordonedBy: node[["metadata", "annotations", cordonAnnotation]]?.stringValue,
            containerd: runtime.hasPrefix("containerd://")
                ? try? KubeVersion(parsing: String(runtime.dropFirst("containerd://".count))) : nil,
            internalIP: addresses.first { $0[["type"]]?.stringValue == "InternalIP" }?[["address"]]?.stringValue)
        labels = (node[["metadata", "labels"]]?.objectValue ?? [:]).compactMapValues(\.stringValue)
    }
}

/// A node's part in the upgrade. The raw values are the job report's and
/// the API's vocabulary; what each role means on a node (kubeadm's `upgrade
/// apply` or `upgrade node`, a snap refresh, a binary swap) is the
/// ``Distribution``'s.
public enum NodeRole: String, Sendable, Equatable, Codable {
    /// The first control plane, upgraded before every other node.
    case master
    /// Further control planes, one at a time.
    case controlPlane = "control-plane"
    case worker
}

/// The order workers go in.
public enum WorkerOrder: Sendable, Equatable, CustomStringConvertible {
    case ascending
    case descending
    /// These names first, in this order; workers not listed follow by name.
    case explicit([String])

    /// `ascending`, `descending` or a comma list of node names.
    public init(parsing text: String) throws(PlanError) {
        switch text {
        case "ascending": self = .ascending
        case "descending": self = .descending
        default:
            let names = text.split(separator: ",").map { $0.trimmingWhitespace() }
            guard !names.isEmpty, names.allSatisfy(ObjectName.isDNS1123Subdomain) else {
                throw PlanError(
                    "worker order must be ascending, descending or a comma list of node names, got \"\(text)\"")
            }
            guard Set(names).count == names.count else { throw PlanError("worker order lists a node twice: \(text)") }
            self = .explicit(names)
        }
    }

    public var description: String {
        switch self {
        case .ascending: "ascending"
        case .descending: "descending"
        case let .explicit(names): names.joined(separator: ",")
        }
    }
}

public struct PlanError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// What to do with one node, decided from its live state.
public enum NodeAction: Sendable, Equatable {
    /// Drain, run the script, uncordon, verify.
    case upgrade
    /// The script already ran (kubelet at target) but the node is still
    /// cordoned by this tool: uncordon and verify only.
    case finish
    /// Nothing to do; the text says why.
    case skip(String)
}

/// One node's step of the plan.
public struct NodeStep: Sendable, Equatable {
    public var node: String
    public var role: NodeRole
    public var action: NodeAction
    public var from: KubeVersion?

    public init(node: String, role: NodeRole, action: NodeAction, from: KubeVersion?) {
        self.node = node
        self.role = role
        self.action = action
        self.from = from
    }
}

/// The node steps of a job: control planes one at a time (the first with
/// `--role master`), then workers in the configured order.
public struct UpgradePlan: Sendable, Equatable {
    public var controlPlanes: [NodeStep]
    public var workers: [NodeStep]

    public init(controlPlanes: [NodeStep], workers: [NodeStep]) {
        self.controlPlanes = controlPlanes
        self.workers = workers
    }

    /// Plans from live state. A node already at the target is skipped, or
    /// only finished when this tool left it cordoned; that makes a rerun or
    /// a resume continue where the last run stopped.
    ///
    /// - Parameters:
    ///   - apiServers: each control plane's API server version (its static pod), when known.
    ///   - master: the control plane upgraded first; default the first by name.
    public static func make(
        nodes: [NodeFacts], apiServers: [String: KubeVersion], target: KubeVersion, master: String? = nil,
        order: WorkerOrder = .ascending
    ) throws(PlanError) -> UpgradePlan {
        let controlPlanes = nodes.filter(\.isControlPlane).sorted { $0.name < $1.name }
        guard !controlPlanes.isEmpty else { throw PlanError("the cluster has no control-plane node") }
        var orderedPlanes = controlPlanes
        if let master {
            guard let index = orderedPlanes.firstIndex(where: { $0.name == master }) else {
                throw PlanError("master node \(master) is not a control-plane node of the cluster")
            }
            orderedPlanes.insert(orderedPlanes.remove(at: index), at: 0)
        }
        let workers = try orderWorkers(nodes.filter { !$0.isControlPlane }, order: order)
        let planeSteps = orderedPlanes.enumerated().map { index, node in
            NodeStep(
                node: node.name, role: index == 0 ? .master : .controlPlane,
                action: action(for: node, apiServer: apiServers[node.name], target: target, isControlPlane: true),
                from: node.kubelet)
        }
        let workerSteps = workers.map { node in
            NodeStep(
                node: node.name, role: .worker,
                action: action(for: node, apiServer: nil, target: target, isControlPlane: false), from: node.kubelet)
        }
        return UpgradePlan(controlPlanes: planeSteps, workers: workerSteps)
    }

    static func orderWorkers(_ workers: [NodeFacts], order: WorkerOrder) throws(PlanError) -> [NodeFacts] {
        let byName = workers.sorted { $0.name < $1.name }
        switch order {
        case .ascending: return byName
        case .descending: return byName.reversed()
        case let .explicit(names):
            let known = Set(workers.map(\.name))
            if let unknown = names.first(where: { !known.contains($0) }) {
                throw PlanError("worker order names \(unknown), which is not a worker of the cluster")
            }
            let listed = names.compactMap { name in workers.first { $0.name == name } }
            return listed + byName.filter { !names.contains($0.name) }
        }
    }

    /// One node's action from its live state.
    public static func action(
        for node: NodeFacts, apiServer: KubeVersion?, target: KubeVersion, isControlPlane: Bool
    )
        -> NodeAction
    {
        let kubeletDone = node.kubelet?.release == target.release
        let apiDone = !isControlPlane || apiServer?.release == target.release
        guard kubeletDone && apiDone else { return .upgrade }
        if node.unschedulable && node.cordonedBy != nil { return .finish }
        if node.unschedulable { return .skip("already at \(target); cordoned by someone else, left so") }
        return .skip("already at \(target)")
    }

    /// Every step, control planes first.
    public var steps: [NodeStep] { controlPlanes + workers }

    /// One line per node, for the job and the start notice.
    /// One line per node; `script` gives the node script's arguments for a role, as shell words.
    public func lines(target: KubeVersion, script: (NodeRole) -> String) -> [String] {
        steps.enumerated().map { index, step in
            let what: String
            switch step.action {
            case .upgrade:
                what = "\(step.from?.description ?? "?") → \(target) (update_k8s.sh \(script(step.role)))"
            case .finish: what = "at \(target); uncordon and verify"
            case let .skip(reason): what = "skip: \(reason)"
            }
            return "\(index + 1). \(step.node): \(what)"
        }
    }
}

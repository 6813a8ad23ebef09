/// One step of a node's procedure. The pipeline's step runner carries each
/// out, or in a dry run records what it would do; the list itself is
/// decided here, from the node's role and live action, without I/O.
public enum NodeOperation: Sendable, Equatable, CustomStringConvertible {
    /// The halt-on-alert gate before the node.
    case gate
    /// The datastore stays quorate while this control plane's member restarts.
    case quorum
    /// The node's job events begin (`node_started`).
    case start
    /// The worker's kubelet may not get ahead of the oldest API server.
    case kubeletSkew
    /// The node answers over SSH before anything changes it.
    case reach
    /// Cordoned by this job, unless it is already unschedulable.
    case cordon
    case drain
    /// The node script with these arguments (the distribution's node step).
    case script([String])
    /// Uncordoned only when this tool cordoned it.
    case uncordon
    /// Ready at the target: kubelet, and the API server on a control plane.
    case verify
    /// The node's job events end (`node_succeeded`).
    case done
    /// The gate and the node watched for the soak time.
    case soak

    public var description: String {
        switch self {
        case .gate: "gate"
        case .quorum: "quorum"
        case .start: "start"
        case .kubeletSkew: "kubelet skew"
        case .reach: "reach"
        case .cordon: "cordon"
        case .drain: "drain"
        case let .script(arguments): "script \(arguments.joined(separator: " "))"
        case .uncordon: "uncordon"
        case .verify: "verify"
        case .done: "done"
        case .soak: "soak"
        }
    }

    /// A failure here leaves the node's software half-changed or not back
    /// (the node step failed, or the node never returned at the target):
    /// a distribution with a revert takes the node back to its release.
    public var revertsOnFailure: Bool {
        switch self {
        case .script, .verify: true
        default: false
        }
    }

    /// Between `start` and `done`: a failure here fails the node.
    public var isNodeStep: Bool {
        switch self {
        case .gate, .quorum, .soak: false
        default: true
        }
    }
}

public enum NodeProcedure {
    /// Whether nodes are drained: always for a minor (kubelets of a new
    /// minor may not take over the old one's pods, kubernetes#129385), for
    /// a patch unless `--patch-drain` says no.
    public static func drains(kind: UpgradeKind, patchDrain: Bool) -> Bool {
        kind == .minor || patchDrain
    }

    /// What happens to a node in `role` whose live action is `action`:
    ///
    /// - every node waits at the gate first; a control plane's datastore
    ///   must stay quorate without it;
    /// - `upgrade` checks the kubelet skew (workers), reaches the node, cordons,
    ///   drains (unless `drains` is false: a patch whose restart keeps the
    ///   node's containers running), runs `script`, uncordons, verifies;
    /// - `finish` (the script ran, the node is still cordoned by this tool)
    ///   only uncordons and verifies;
    /// - a worker soaks afterwards when `soaks`; `skip` does nothing.
    public static func operations(
        role: NodeRole, action: NodeAction, script: [String], soaks: Bool, drains: Bool = true
    ) -> [NodeOperation] {
        let worker = role == .worker
        let work: [NodeOperation]
        switch action {
        case .skip: return []
        case .upgrade:
            work =
                (worker ? [.kubeletSkew] : []) + [.reach, .cordon] + (drains ? [.drain] : [])
                + [.script(script), .uncordon, .verify]
        case .finish: work = [.uncordon, .verify]
        }
        return [.gate] + (worker ? [] : [.quorum]) + [.start] + work + [.done] + (worker && soaks ? [.soak] : [])
    }

    /// What a rollback does to the worker it takes back (`action` judged
    /// against the older release): the same steps as an upgrade with the
    /// distribution's rollback `script`, without the halt-on-alert gate (an
    /// alert is why one rolls back), the kubelet skew check (an older
    /// kubelet never gets ahead of the API servers) or a soak.
    public static func rollbackOperations(action: NodeAction, script: [String], drains: Bool) -> [NodeOperation] {
        switch action {
        case .skip: []
        case .upgrade:
            [.start, .reach, .cordon] + (drains ? [.drain] : []) + [.script(script), .uncordon, .verify, .done]
        case .finish: [.start, .uncordon, .verify, .done]
        }
    }

    /// What a control plane's rollback does (`action` judged against the
    /// older release): the distribution's restore `script` (which stops the
    /// control plane's static pods itself), then Ready at the older release.
    /// Neither cordon nor drain: a single control plane's pods have nowhere
    /// else to go, and the orchestrator may be one of them.
    public static func restoreOperations(action: NodeAction, script: [String]) -> [NodeOperation] {
        switch action {
        case .skip: []
        case .upgrade: [.start, .reach, .script(script), .verify, .done]
        case .finish: [.start, .verify, .done]
        }
    }
}

/// What drain needs to know about one pod.
public struct PodFacts: Sendable, Equatable {
    public var namespace: String
    public var name: String
    public var uid: String
    public var phase: String
    public var labels: [String: String]
    /// The controlling owner (`ownerReferences[controller=true]`).
    public var controllerKind: String?
    public var controllerName: String?
    public var isMirror: Bool
    public var hasEmptyDir: Bool
    public var isDeleting: Bool

    public init(
        namespace: String, name: String, uid: String = "", phase: String = "Running", labels: [String: String] = [:],
        controllerKind: String? = nil, controllerName: String? = nil, isMirror: Bool = false,
        hasEmptyDir: Bool = false, isDeleting: Bool = false
    ) {
        self.namespace = namespace
        self.name = name
        self.uid = uid
        self.phase = phase
        self.labels = labels
        self.controllerKind = controllerKind
        self.controllerName = controllerName
        self.isMirror = isMirror
        self.hasEmptyDir = hasEmptyDir
        self.isDeleting = isDeleting
    }

    /// `namespace/name`.
    public var reference: String { "\(namespace)/\(name)" }

    var isFinished: Bool { phase == "Succeeded" || phase == "Failed" }

    /// Reads a pod object of the Kubernetes API.
    public init(pod: JSONValue) {
        let owners = pod[["metadata", "ownerReferences"]]?.arrayValue ?? []
        let controller = owners.first { $0[["controller"]]?.boolValue == true }
        let volumes = pod[["spec", "volumes"]]?.arrayValue ?? []
        self.init(
            namespace: pod[["metadata", "namespace"]]?.stringValue ?? "",
            name: pod[["metadata", "name"]]?.stringValue ?? "",
            uid: pod[["metadata", "uid"]]?.stringValue ?? "",
            phase: pod[["status", "phase"]]?.stringValue ?? "Pending",
            labels: pod.stringMap("metadata.labels"),
            controllerKind: controller?[["kind"]]?.stringValue,
            controllerName: controller?[["name"]]?.stringValue,
            isMirror: pod[["metadata", "annotations", "kubernetes.io/config.mirror"]] != nil,
            hasEmptyDir: volumes.contains { $0[["emptyDir"]] != nil },
            isDeleting: pod[["metadata", "deletionTimestamp"]] != nil)
    }
}

/// A PodDisruptionBudget as drain reads it.
public struct BudgetFacts: Sendable, Equatable {
    public var namespace: String
    public var name: String
    /// `nil`: a null selector, or one the API server cannot use; it covers no pod.
    public var selector: LabelSelector?
    public var disruptionsAllowed: Int
    public var currentHealthy: Int
    public var desiredHealthy: Int

    public init(
        namespace: String, name: String, selector: LabelSelector?, disruptionsAllowed: Int = 0,
        currentHealthy: Int = 0, desiredHealthy: Int = 0
    ) {
        self.namespace = namespace
        self.name = name
        self.selector = selector
        self.disruptionsAllowed = disruptionsAllowed
        self.currentHealthy = currentHealthy
        self.desiredHealthy = desiredHealthy
    }

    public init(budget: JSONValue) {
        self.init(
            namespace: budget[["metadata", "namespace"]]?.stringValue ?? "",
            name: budget[["metadata", "name"]]?.stringValue ?? "",
            selector: LabelSelector(json: budget[["spec", "selector"]]),
            disruptionsAllowed: budget[["status", "disruptionsAllowed"]]?.intValue ?? 0,
            currentHealthy: budget[["status", "currentHealthy"]]?.intValue ?? 0,
            desiredHealthy: budget[["status", "desiredHealthy"]]?.intValue ?? 0)
    }

    /// Whether this budget covers `pod`, as the eviction API decides: same
    /// namespace and a selector matching its labels (policy/v1: `{}` covers
    /// every pod of the namespace, a null selector none).
    public func covers(_ pod: PodFacts) -> Bool {
        pod.namespace == namespace && selector?.matches(pod.labels) == true
    }

    /// `ns/name (allows N disruptions; healthy H of D needed)`.
    public var summary: String {
        "\(namespace)/\(name) (\(disruptionsAllowed) disruptions allowed; \(currentHealthy) healthy, \(desiredHealthy) needed)"
    }
}

/// kubectl drain's consent flags.
public struct DrainConsent: Sendable, Equatable {
    /// `--ignore-daemonsets`: leave DaemonSet pods in place.
    public var ignoreDaemonSets: Bool
    /// `--delete-emptydir-data`: evict pods that keep data in emptyDir volumes.
    public var deleteEmptyDirData: Bool
    /// `--force`: evict pods that no controller will recreate.
    public var force: Bool

    public init(ignoreDaemonSets: Bool = true, deleteEmptyDirData: Bool = true, force: Bool = false) {
        self.ignoreDaemonSets = ignoreDaemonSets
        self.deleteEmptyDirData = deleteEmptyDirData
        self.force = force
    }
}

/// Which pods of a node drain evicts, which it leaves, and which stop it.
public struct DrainSelection: Sendable, Equatable {
    public var evict: [PodFacts] = []
    /// Pods left in place and why (DaemonSet, mirror pod).
    public var kept: [(pod: String, reason: String)] = []
    /// Pods that stop the drain before any eviction, grouped by reason as kubectl prints them.
    public var refusals: [String] = []
    /// Evicted with a warning (emptyDir data lost, unreplicated with --force).
    public var warnings: [String] = []
    /// Pods left on the node on purpose (the orchestrator itself, the
    /// exclusion selector); also in `kept` with their reason.
    public var excluded: [String] = []

    public init() {}

    /// The excluded pods with their reasons, in the node's order.
    public var leftOnPurpose: [(pod: String, reason: String)] { kept.filter { excluded.contains($0.pod) } }

    public static func == (lhs: DrainSelection, rhs: DrainSelection) -> Bool {
        lhs.evict == rhs.evict && lhs.kept.map(\.pod) == rhs.kept.map(\.pod)
            && lhs.kept.map(\.reason) == rhs.kept.map(\.reason) && lhs.refusals == rhs.refusals
            && lhs.warnings == rhs.warnings && lhs.excluded == rhs.excluded
    }
}

/// kubectl drain's pod filters (`pkg/drain/filters.go`), in its order and
/// with its messages, as a pure function.
public enum DrainRules {
    /// Sorts a node's pods. `daemonSetExists` answers whether the pod's
    /// DaemonSet still exists (kubectl GETs it). Pods the exclusion names
    /// are kept before any of kubectl's filters, so the orchestrator's own
    /// pod is never evicted, refused or warned about.
    public static func select(
        _ pods: [PodFacts], consent: DrainConsent, exclusion: DrainExclusion = .none,
        daemonSetExists: (PodFacts) -> Bool = { _ in true }
    ) -> DrainSelection {
        var selection = DrainSelection()
        var refused: [(String, String)] = []
        var warned: [(String, String)] = []
        for pod in pods {
            if let reason = exclusion.reason(for: pod) {
                selection.kept.append((pod.reference, reason))
                selection.excluded.append(pod.reference)
                continue
            }
            if pod.isMirror {
                selection.kept.append((pod.reference, "mirror pod"))
                continue
            }
            if pod.controllerKind == "DaemonSet", !pod.isFinished {
                if !daemonSetExists(pod) {
                    if consent.force {
                        warned.append(("deleting Pods whose DaemonSet is gone", pod.reference))
                        selection.evict.append(pod)
                    } else {
                        refused.append(
                            ("Pods of a DaemonSet that no longer exists (use --force to override)", pod.reference))
                    }
                    continue
                }
                if consent.ignoreDaemonSets {
                    selection.kept.append((pod.reference, "DaemonSet-managed"))
                } else {
                    refused.append(("DaemonSet-managed Pods (use --ignore-daemonsets to ignore)", pod.reference))
                }
                continue
            }
            if pod.hasEmptyDir, !pod.isFinished {
                guard consent.deleteEmptyDirData else {
                    refused.append(("Pods with local storage (use --delete-emptydir-data to override)", pod.reference))
                    continue
                }
                warned.append(("deleting Pods with local storage", pod.reference))
            }
            if pod.controllerKind == nil, !pod.isFinished {
                guard consent.force else {
                    refused.append(("Pods that declare no controller (use --force to override)", pod.reference))
                    continue
                }
                warned.append(("deleting Pods that declare no controller", pod.reference))
            }
            selection.evict.append(pod)
        }
        selection.refusals = grouped(refused).map { "cannot delete \($0)" }
        selection.warnings = grouped(warned)
        return selection
    }

    /// `message: ns/a, ns/b` per distinct message, in first-seen order.
    private static func grouped(_ pairs: [(String, String)]) -> [String] {
        var order: [String] = []
        var pods: [String: [String]] = [:]
        for (message, pod) in pairs {
            if pods[message] == nil { order.append(message) }
            pods[message, default: []].append(pod)
        }
        return order.map { "\($0): \(pods[$0]!.joined(separator: ", "))" }
    }

    /// For every pod still on the node, the budget that holds it (if any),
    /// as `ns/pod (held by PodDisruptionBudget ns/pdb …)`.
    public static func blockers(remaining: [PodFacts], budgets: [BudgetFacts]) -> [String] {
        remaining.map { pod in
            let holding = budgets.filter { $0.covers(pod) }
            guard !holding.isEmpty else { return "\(pod.reference) (no PodDisruptionBudget; still terminating)" }
            return "\(pod.reference) (held by PodDisruptionBudget \(holding.map(\.summary).joined(separator: ", ")))"
        }
    }
}

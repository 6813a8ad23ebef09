/// One system-upgrade-controller Plan and the cluster's nodes it selects.
public struct PlanSelection: Sendable, Equatable, CustomStringConvertible {
    /// `namespace/name`.
    public var plan: String
    public var nodes: [String]

    public init(plan: String, nodes: [String]) {
        self.plan = plan
        self.nodes = nodes
    }

    public var description: String { "Plan \(plan) selects \(nodes.joined(separator: ", "))" }
}

/// Another upgrader on the same nodes: system-upgrade-controller's Plans
/// (`plans.upgrade.cattle.io`), which K3s and RKE2 clusters often run.
/// Two upgraders on one node race (one drains while the other swaps the
/// binary), so pre-flight refuses unless told otherwise.
public enum OtherUpgraders {
    /// Every Plan in every namespace; 404 where the CRD is not installed.
    public static let plansPath = "/apis/upgrade.cattle.io/v1/plans"

    /// The Plans that select at least one of `nodes`, each with those nodes,
    /// by name.
    public static func selections(plans: [JSONValue], nodes: [NodeFacts]) -> [PlanSelection] {
        plans.compactMap { plan in
            let name =
                (plan[["metadata", "namespace"]]?.stringValue).map { "\($0)/" }.map {
                    $0 + (plan[["metadata", "name"]]?.stringValue ?? "?")
                } ?? (plan[["metadata", "name"]]?.stringValue ?? "?")
            let selected = nodes.filter { matches(plan[["spec", "nodeSelector"]], labels: $0.labels) }.map(\.name)
            return selected.isEmpty ? nil : PlanSelection(plan: name, nodes: selected.sorted())
        }
        .sorted { $0.plan < $1.plan }
    }

    /// A LabelSelector as system-upgrade-controller reads a Plan's: absent
    /// selects no node, `{}` every node; `matchLabels` and
    /// `matchExpressions` (In, NotIn, Exists, DoesNotExist) must all hold.
    /// An operator it does not know counts as matching: when in doubt, the
    /// Plan is taken to select the node.
    public static func matches(_ selector: JSONValue?, labels: [String: String]) -> Bool {
        guard let selector, selector.objectValue != nil else { return false }
        for (key, value) in selector[["matchLabels"]]?.objectValue ?? [:] where labels[key] != value.stringValue {
            return false
        }
        for expression in selector[["matchExpressions"]]?.arrayValue ?? [] {
            let key = expression[["key"]]?.stringValue ?? ""
            let values = (expression[["values"]]?.arrayValue ?? []).compactMap(\.stringValue)
            let holds: Bool
            switch expression[["operator"]]?.stringValue {
            case "In": holds = labels[key].map(values.contains) ?? false
            case "NotIn": holds = labels[key].map { !values.contains($0) } ?? true
            case "Exists": holds = labels[key] != nil
            case "DoesNotExist": holds = labels[key] == nil
            default: holds = true
            }
            if !holds { return false }
        }
        return true
    }

    /// The pre-flight check: `found` is `nil` where Plans are not served
    /// (no CRD), else the Plans that select nodes; `allowed` is
    /// `--allow-suc-plans`.
    public static func check(_ found: Result<[PlanSelection]?, PlanError>, allowed: Bool) -> CheckResult {
        let name = "other upgraders"
        let how =
            "delete those Plans or narrow their nodeSelector (runbook: K3s, moving from system-upgrade-controller), "
            + "or start with --allow-suc-plans"
        switch found {
        case .success(nil):
            return CheckResult(name, .passed, "no system-upgrade-controller: plans.upgrade.cattle.io is not served")
        case .success(let selections?) where selections.isEmpty:
            return CheckResult(name, .passed, "no system-upgrade-controller Plan selects these nodes")
        case .success(let selections?):
            let text = selections.map(\.description).joined(separator: "; ")
            return allowed
                ? CheckResult(name, .warning, "\(text): two upgraders may race (allowed by --allow-suc-plans)")
                : CheckResult(name, .failed, "system-upgrade-controller \(text): two upgraders would race; \(how)")
        case .failure(let error):
            return allowed
                ? CheckResult(name, .warning, "could not be checked (allowed by --allow-suc-plans): \(error)")
                : CheckResult(
                    name, .failed,
                    "system-upgrade-controller Plans could not be listed: \(error); grant list on "
                        + "plans.upgrade.cattle.io (deploy/'s ClusterRole has it), or start with --allow-suc-plans")
        }
    }
}

import Shared
import Testing

/// system-upgrade-controller's Plans against the cluster's nodes: which
/// nodes a Plan's selector takes, and the pre-flight verdict.
@Suite struct OtherUpgradersTests {
    static func json(_ text: String) -> JSONValue { try! JSONValue.parse(text) }

    static let server = ["node-role.kubernetes.io/control-plane": "true", "kubernetes.io/hostname": "server-1"]
    static let agent = ["kubernetes.io/hostname": "agent-1", "k3s-upgrade": "true"]

    @Test(arguments: [
        ("null", server, false),  // no nodeSelector: SUC selects no node
        ("{}", server, true),  // an empty selector: every node
        (#"{"matchLabels":{"k3s-upgrade":"true"}}"#, agent, true),
        (#"{"matchLabels":{"k3s-upgrade":"true"}}"#, server, false),
        (
            #"{"matchExpressions":[{"key":"node-role.kubernetes.io/control-plane","operator":"In","values":["true"]}]}"#,
            server, true
        ),
        (
            #"{"matchExpressions":[{"key":"node-role.kubernetes.io/control-plane","operator":"In","values":["true"]}]}"#,
            agent, false
        ),
        (
            #"{"matchExpressions":[{"key":"node-role.kubernetes.io/control-plane","operator":"DoesNotExist"}]}"#,
            agent, true
        ),
        (#"{"matchExpressions":[{"key":"node-role.kubernetes.io/control-plane","operator":"Exists"}]}"#, agent, false),
        (
            #"{"matchExpressions":[{"key":"kubernetes.io/hostname","operator":"NotIn","values":["agent-1"]}]}"#,
            agent, false
        ),
        (#"{"matchExpressions":[{"key":"zone","operator":"NotIn","values":["a"]}]}"#, agent, true),
        // An operator this reading does not know: taken to select, when in doubt.
        (#"{"matchExpressions":[{"key":"zone","operator":"Gt","values":["1"]}]}"#, agent, true),
        (
            #"{"matchLabels":{"k3s-upgrade":"true"},"matchExpressions":[{"key":"zone","operator":"Exists"}]}"#, agent,
            false
        ),
    ])
    func aSelectorTakesTheNodesItMatches(selector: String, labels: [String: String], selected: Bool) {
        #expect(OtherUpgraders.matches(Self.json(selector), labels: labels) == selected)
    }

    @Test func plansAreNamedWithTheNodesTheySelect() {
        var server = NodeFacts(name: "server-1", isControlPlane: true, kubelet: nil)
        server.labels = Self.server
        var agent = NodeFacts(name: "agent-1", kubelet: nil)
        agent.labels = Self.agent
        let plans = [
            #"{"metadata":{"namespace":"system-upgrade","name":"server-plan"},"spec":{"nodeSelector":{"matchExpressions":[{"key":"node-role.kubernetes.io/control-plane","operator":"In","values":["true"]}]}}}"#,
            #"{"metadata":{"namespace":"system-upgrade","name":"agent-plan"},"spec":{"nodeSelector":{"matchExpressions":[{"key":"node-role.kubernetes.io/control-plane","operator":"DoesNotExist"}]}}}"#,
            #"{"metadata":{"namespace":"system-upgrade","name":"nothing"},"spec":{"nodeSelector":{"matchLabels":{"os":"windows"}}}}"#,
            #"{"metadata":{"namespace":"system-upgrade","name":"unset"},"spec":{}}"#,
        ].map(Self.json)
        #expect(
            OtherUpgraders.selections(plans: plans, nodes: [server, agent]) == [
                PlanSelection(plan: "system-upgrade/agent-plan", nodes: ["agent-1"]),
                PlanSelection(plan: "system-upgrade/server-plan", nodes: ["server-1"]),
            ])
    }

    @Test func preflightRefusesARaceUnlessAllowed() {
        let found = [PlanSelection(plan: "system-upgrade/k3s-agent", nodes: ["agent-1", "agent-2"])]
        #expect(
            OtherUpgraders.check(.success(nil), allowed: false)
                == CheckResult(
                    "other upgraders", .passed, "no system-upgrade-controller: plans.upgrade.cattle.io is not served"))
        #expect(OtherUpgraders.check(.success([]), allowed: false).outcome == .passed)
        let refused = OtherUpgraders.check(.success(found), allowed: false)
        #expect(refused.outcome == .failed)
        #expect(
            refused.detail.hasPrefix(
                "system-upgrade-controller Plan system-upgrade/k3s-agent selects agent-1, agent-2: two upgraders would race; "
            ), "\(refused.detail)")
        #expect(refused.detail.hasSuffix("or start with --allow-suc-plans"))
        #expect(OtherUpgraders.check(.success(found), allowed: true).outcome == .warning)
        let unreadable = OtherUpgraders.check(.failure(PlanError("403 Forbidden")), allowed: false)
        #expect(unreadable.outcome == .failed && unreadable.detail.contains("grant list on plans.upgrade.cattle.io"))
        #expect(OtherUpgraders.check(.failure(PlanError("403 Forbidden")), allowed: true).outcome == .warning)
    }
}

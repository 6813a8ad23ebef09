import Foundation
import Shared
import Testing

@testable import ClusterSim

/// The simulator's scheduler, which decides where an evicted pod's
/// replacement goes and so what a drain meets: taints against tolerations,
/// by the scheduler's rule.
@Suite struct SimulatorSchedulingTests {
    static func node(taints: String) throws -> JSONValue {
        try JSONValue(parsing: Array(#"{"spec":{"taints":\#(taints)}}"#.utf8))
    }

    static func pod(tolerations: String) throws -> JSONValue {
        try JSONValue(parsing: Array(#"{"spec":{"tolerations":\#(tolerations)}}"#.utf8))
    }

    static let controlPlane = #"[{"key":"node-role.kubernetes.io/control-plane","effect":"NoSchedule"}]"#

    @Test(arguments: [
        (controlPlane, "[]", false),
        (controlPlane, #"[{"operator":"Exists"}]"#, true),
        (controlPlane, #"[{"key":"node-role.kubernetes.io/control-plane","operator":"Exists"}]"#, true),
        (controlPlane, #"[{"key":"node-role.kubernetes.io/control-plane","effect":"NoSchedule"}]"#, true),
        (controlPlane, #"[{"key":"node-role.kubernetes.io/control-plane","effect":"NoExecute"}]"#, false),
        (controlPlane, #"[{"key":"node-role.kubernetes.io/control-plane","value":"x"}]"#, false),
        (controlPlane, #"[{"key":"other","operator":"Exists"}]"#, false),
        (#"[{"key":"gpu","value":"a100","effect":"NoExecute"}]"#, #"[{"key":"gpu","value":"a100"}]"#, true),
        (#"[{"key":"gpu","effect":"PreferNoSchedule"}]"#, "[]", true),
        ("[]", "[]", true),
    ])
    func aTaintKeepsOffEveryPodThatDoesNotTolerateIt(taints: String, tolerations: String, fits: Bool) throws {
        #expect(ClusterStore.tolerates(try Self.pod(tolerations: tolerations), try Self.node(taints: taints)) == fits)
    }

    /// worker-1 is cordoned and its two pods evicted: the one that
    /// tolerates the control plane's taint comes back on the master, the
    /// other stays Pending (worker-2 has no room for either).
    @Test func aReplacementThatToleratesTheControlPlaneLandsOnIt() async throws {
        let room = #""allocatable":{"cpu":"1","memory":"4Gi","pods":"110"}"#
        let scenario = try JSONDecoder().decode(
            Scenario.self,
            from: Data(
                """
                {"nodes":[{"name":"master","roles":["control-plane"],"kubeletVersion":"1.34.3"},
                          {"name":"worker-1","kubeletVersion":"1.34.3",\(room)},
                          {"name":"worker-2","kubeletVersion":"1.34.3",\(room)}],
                 "workloads":[{"kind":"ReplicaSet","name":"tolerant","labels":{"app":"tolerant"},"nodes":["worker-1"],
                               "requests":{"cpu":"800m"},
                               "tolerations":[{"key":"node-role.kubernetes.io/control-plane","operator":"Exists"}]},
                              {"kind":"ReplicaSet","name":"plain","labels":{"app":"plain"},"nodes":["worker-1"],
                               "requests":{"cpu":"800m"}},
                              {"kind":"ReplicaSet","name":"filler","labels":{"app":"filler"},"nodes":["worker-2"],
                               "requests":{"cpu":"800m"}}]}
                """.utf8))
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let store = await ClusterStore(scenario: scenario) { start }
        _ = try await store.patch(
            .nodes, namespace: nil, name: "worker-1", patch: .object(["spec": .object(["unschedulable": .bool(true)])]),
            strategic: false, status: false)
        for (_, pod) in await store.list(.pods, namespace: "default") {
            let name = pod[["metadata", "name"]]?.stringValue ?? ""
            try await store.evict(namespace: "default", name: name, gracePeriodSeconds: 0)
        }
        await store.reconcile(now: start.addingTimeInterval(1))
        let placed = Dictionary(
            await store.list(.pods, namespace: "default").map { _, pod in
                (
                    pod[["metadata", "labels", "app"]]?.stringValue ?? "",
                    pod[["spec", "nodeName"]]?.stringValue ?? "Pending"
                )
            }
        ) { first, _ in first }
        #expect(placed == ["tolerant": "master", "plain": "Pending", "filler": "worker-2"])
    }
}

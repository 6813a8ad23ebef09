import Testing

@testable import Shared

/// The drain rehearsal as a pure function: kubectl's rules, budgets one
/// node at a time, and whether each replacement has somewhere to go.
@Suite("drain forecast: evictions, budgets and room, node by node")
struct DrainForecastTests {
    static let gi: Int64 = 1_073_741_824

    static func room(
        _ name: String, cpu: Int64 = 4000, memory: Int64 = 8, pods: Int64 = 110, taints: [Taint] = [],
        labels: [String: String] = [:], schedulable: Bool = true
    ) -> NodeRoom {
        NodeRoom(
            name: name, allocatable: Resources(milliCPU: cpu, memory: memory * gi, pods: pods), taints: taints,
            labels: labels, schedulable: schedulable)
    }

    static func pod(
        _ name: String, on node: String, app: String = "web", cpu: Int64 = 100, kind: String? = "ReplicaSet",
        tolerations: [Toleration] = [], selector: [String: String] = [:]
    ) -> PodPlacement {
        PodPlacement(
            pod: PodFacts(
                namespace: "default", name: name, labels: ["app": app], controllerKind: kind, controllerName: app),
            node: node, requests: Resources(milliCPU: cpu, memory: gi / 4, pods: 1), tolerations: tolerations,
            nodeSelector: selector)
    }

    static func budget(_ app: String, allowed: Int, healthy: Int = 3, needed: Int = 2) -> BudgetFacts {
        BudgetFacts(
            namespace: "default", name: "\(app)-pdb", selector: LabelSelector(matchLabels: ["app": app]),
            disruptionsAllowed: allowed, currentHealthy: healthy, desiredHealthy: needed)
    }

    static let control = Taint(key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule")

    @Test(arguments: [
        ("500m", 500, 1), ("1", 1000, 1), ("1.5", 1500, 2), ("0.1", 100, 1), ("128Mi", 134_217_728_000, 134_217_728),
        ("1Gi", 1_073_741_824_000, 1_073_741_824), ("1G", 1_000_000_000_000, 1_000_000_000), ("1e3", 1_000_000, 1000),
        ("100k", 100_000_000, 100_000), ("250n", 1, 1),
    ])
    func readsQuantities(text: String, milli: Int64, value: Int64) {
        #expect(Quantity.milli(text) == milli)
        #expect(Quantity.value(text) == value)
    }

    @Test(arguments: ["", "abc", "-1", "1.5.5", "Mi", "12Qi"])
    func refusesBadQuantities(text: String) {
        #expect(Quantity.value(text) == nil)
    }

    @Test func aPodRequestsItsContainersSumAtLeastEachInitContainerAndLimitsWhereNoRequests() {
        let spec: JSONValue = .object([
            "containers": .array([
                .object([
                    "resources": .object(["requests": .object(["cpu": .string("250m"), "memory": .string("64Mi")])])
                ]),
                .object(["resources": .object(["limits": .object(["cpu": .string("1"), "memory": .string("1Gi")])])]),
            ]),
            "initContainers": .array([
                .object(["resources": .object(["requests": .object(["cpu": .string("2"), "memory": .string("10Mi")])])])
            ]),
        ])
        #expect(Resources(podSpec: spec) == Resources(milliCPU: 2000, memory: 64 * 1_048_576 + Self.gi, pods: 1))
    }

    @Test(arguments: [
        (Toleration(key: "", exists: true), true),
        (Toleration(key: "node-role.kubernetes.io/control-plane", exists: true), true),
        (Toleration(key: "node-role.kubernetes.io/control-plane", exists: true, effect: "NoExecute"), false),
        (Toleration(key: "node-role.kubernetes.io/control-plane", value: ""), true),
        (Toleration(key: "node-role.kubernetes.io/control-plane", value: "true"), false),
        (Toleration(key: "other", exists: true), false),
    ])
    func tolerationsMatchTaintsAsTheSchedulerDoes(toleration: Toleration, tolerates: Bool) {
        #expect(toleration.tolerates(Self.control) == tolerates)
    }

    /// A budget at its limit blocks; one allowing one eviction serialises
    /// a node's two pods (a note, not a blocker); replacements go where
    /// there is room and count on later nodes.
    @Test func budgetsAndRoomNodeByNode() {
        let rooms = [Self.room("master", taints: [Self.control]), Self.room("w1"), Self.room("w2"), Self.room("w3")]
        let pods = [
            Self.pod("web-1", on: "w1"), Self.pod("web-2", on: "w1"), Self.pod("web-3", on: "w2"),
            Self.pod("db-0", on: "w2", app: "db"),
        ]
        let forecast = DrainForecast.rehearse(
            order: ["w1", "w2", "w3"], rooms: rooms, pods: pods,
            budgets: [Self.budget("web", allowed: 1), Self.budget("db", allowed: 0, healthy: 1, needed: 1)])
        // w1's two pods go to w3 (the most CPU free), w2's web-3 to the
        // drained w1: w3 then has two pods to evict.
        #expect(forecast.nodes.map(\.evicted) == [2, 1, 2])
        #expect(
            forecast.nodes[0].notes == [
                "default/web-pdb: 2 pods evicted one at a time as replacements turn Ready (1 disruption allowed)"
            ])
        #expect(forecast.nodes[0].blockers.isEmpty)
        #expect(
            forecast.nodes[1].blockers == [
                .budget(
                    pod: "default/db-0", budget: "default/db-pdb", reason: "allows no disruption (1 healthy, 1 needed)")
            ])
        #expect(
            forecast.summary.hasPrefix(
                "1 blockers on w2: w2: default/db-0: PodDisruptionBudget default/db-pdb allows no disruption"))
    }

    /// The API is asked about the first eviction under each budget and
    /// every pod a budget blocks now (not about what an earlier drain of
    /// the job would change); its dry-run answers confirm the forecast,
    /// add a blocker where it refuses, and lift one where it allows (an
    /// unready pod under a met budget).
    @Test func theAPIsDryRunAnswersConfirmAddAndLiftBlockers() {
        let rooms = [Self.room("w1"), Self.room("w2"), Self.room("w3")]
        let pods = [
            Self.pod("web-1", on: "w1"), Self.pod("web-2", on: "w1"), Self.pod("web-3", on: "w2"),
            Self.pod("db-0", on: "w2", app: "db"), Self.pod("db-1", on: "w3", app: "db"),
            Self.pod("free-0", on: "w3", app: "free"),
        ]
        let forecast = DrainForecast.rehearse(
            order: ["w1", "w2", "w3"], rooms: rooms, pods: pods,
            budgets: [Self.budget("web", allowed: 1), Self.budget("db", allowed: 0, healthy: 1, needed: 1)])
        #expect(forecast.nodes.map(\.asked) == [["default/web-1"], ["default/db-0"], ["default/db-1"]])
        #expect(forecast.asked == ["default/web-1", "default/db-0", "default/db-1"])

        let agreed = forecast.confirmed(by: [
            "default/web-1": .allowed, "default/db-0": .refused("db-pdb needs 1"), "default/db-1": .refused("x"),
        ])
        #expect(agreed.nodes.map(\.blockers) == forecast.nodes.map(\.blockers))
        #expect(
            agreed.nodes.map(\.confirmation)
                == Array(repeating: "the API's dry-run evictions: 1 of 1 as forecast", count: 3))
        #expect(forecast.nodes[0].line + "; the API's dry-run evictions: 1 of 1 as forecast" == agreed.nodes[0].line)

        let differing = forecast.confirmed(by: [
            "default/web-1": .refused("The disruption budget web-pdb needs 3 healthy pods and has 3 currently"),
            "default/db-0": .allowed, "default/db-1": .unanswered("connection refused"),
        ])
        #expect(
            differing.nodes[0].blockers == [
                .apiRefuses(
                    pod: "default/web-1",
                    answer: "The disruption budget web-pdb needs 3 healthy pods and has 3 currently")
            ])
        #expect(differing.nodes[0].evicted == 2)
        #expect(differing.nodes[1].blockers.isEmpty)
        #expect(differing.nodes[1].evicted == forecast.nodes[1].evicted + 1)
        #expect(
            differing.nodes[1].confirmation
                == "the API's dry-run evictions: 0 of 1 as forecast (default/db-0: the API allows its eviction now, "
                + "which the budget's status did not)")
        #expect(differing.nodes[2].blockers == forecast.nodes[2].blockers)
        #expect(
            differing.nodes[2].confirmation
                == "the API's dry-run evictions: 0 of 1 as forecast (default/db-1: not answered (connection refused))")
        #expect(differing.blockers.map(\.node) == ["w1", "w3"])
    }

    /// A pod too large for what the other nodes have free, one whose
    /// selector matches only its own node, and one that does not tolerate
    /// the control plane's taint while the workers are full.
    @Test func aReplacementWithNowhereToGoIsABlockerNamingWhy() {
        let rooms = [
            Self.room("master", taints: [Self.control]), Self.room("w1", cpu: 2000, labels: ["disk": "ssd"]),
            Self.room("w2", cpu: 2000),
        ]
        let pods = [
            Self.pod("big-0", on: "w1", app: "big", cpu: 1500), Self.pod("big-1", on: "w2", app: "big", cpu: 1500),
            Self.pod("ssd-0", on: "w1", app: "ssd", cpu: 100, selector: ["disk": "ssd"]),
        ]
        let forecast = DrainForecast.rehearse(order: ["w1", "w2"], rooms: rooms, pods: pods, budgets: [])
        let blockers = forecast.nodes[0].blockers.map(\.description)
        #expect(
            blockers == [
                "default/big-0 (cpu 1500m, memory 256Mi) fits on no other schedulable node (master: taint node-role.kubernetes.io/control-plane:NoSchedule not tolerated; w2: cpu 500m, memory 7936Mi free, 109 pods); its replacement would stay Pending",
                "default/ssd-0 (cpu 100m, memory 256Mi) fits on no other schedulable node (master: taint node-role.kubernetes.io/control-plane:NoSchedule not tolerated; w2: nodeSelector disk=ssd does not match); its replacement would stay Pending",
            ], "\(blockers)")
        // Tolerating the taint, big-0 goes to the master.
        let tolerant = pods.map { placement -> PodPlacement in
            var placement = placement
            placement.tolerations = [Toleration(key: "", exists: true)]
            return placement
        }
        let relieved = DrainForecast.rehearse(order: ["w1"], rooms: rooms, pods: tolerant, budgets: [])
        #expect(relieved.nodes[0].blockers.count == 1, "\(relieved.nodes[0].blockers)")
    }

    /// Required node affinity: a term must match; the pod's only matching
    /// node is the one it drains from, so it has nowhere to go.
    @Test func requiredNodeAffinityIsHonoured() {
        let rooms = [
            Self.room("w1", labels: ["zone": "a", "gen": "5"]), Self.room("w2", labels: ["zone": "b", "gen": "3"]),
            Self.room("w3", labels: ["zone": "b", "gen": "4"]),
        ]
        func pod(_ terms: [NodeSelectorTerm]) -> [PodPlacement] {
            var placement = Self.pod("pinned", on: "w1", app: "pinned")
            placement.affinity = terms
            return [placement]
        }
        typealias R = NodeSelectorTerm.Requirement
        let zoneA = [NodeSelectorTerm(requirements: [R(key: "zone", operation: "In", values: ["a"])])]
        let stuck = DrainForecast.rehearse(order: ["w1"], rooms: rooms, pods: pod(zoneA), budgets: [])
        #expect(
            stuck.nodes[0].blockers.first?.description.contains("w2: required node affinity does not match") == true)
        // One of two terms is enough; Gt reads numbers; matchFields the node's name.
        let terms = [
            NodeSelectorTerm(requirements: [R(key: "zone", operation: "In", values: ["a"])]),
            NodeSelectorTerm(requirements: [R(key: "gen", operation: "Gt", values: ["3"])]),
        ]
        #expect(DrainForecast.rehearse(order: ["w1"], rooms: rooms, pods: pod(terms), budgets: []).blockers.isEmpty)
        let named = [
            NodeSelectorTerm(requirements: [R(key: "metadata.name", operation: "In", values: ["w2"], field: true)])
        ]
        #expect(DrainForecast.rehearse(order: ["w1"], rooms: rooms, pods: pod(named), budgets: []).blockers.isEmpty)
        // An empty term selects nothing.
        let empty = DrainForecast.rehearse(
            order: ["w1"], rooms: rooms, pods: pod([NodeSelectorTerm(requirements: [])]), budgets: [])
        #expect(empty.blockers.count == 1)
    }

    /// A replacement with no room waits for a node to come back; while none
    /// can take it (w1 was cordoned by someone else and stays so), its
    /// budget stays short and the next node's pod of it is blocked.
    @Test func aPodWithNoRoomUsesUpItsBudgetForLaterNodes() {
        let rooms = [Self.room("w1", cpu: 1000, schedulable: false), Self.room("w2", cpu: 1000)]
        let pods = [
            Self.pod("big-0", on: "w1", app: "big", cpu: 800), Self.pod("big-1", on: "w2", app: "big", cpu: 800),
        ]
        let forecast = DrainForecast.rehearse(
            order: ["w1", "w2"], rooms: rooms, pods: pods,
            budgets: [Self.budget("big", allowed: 1, healthy: 2, needed: 1)])
        #expect(forecast.nodes[0].blockers.count == 1)
        #expect(forecast.nodes[0].blockers.first?.pod == "default/big-0")
        #expect(
            forecast.nodes[1].blockers == [
                .budget(
                    pod: "default/big-1", budget: "default/big-pdb",
                    reason: "allows no further disruption: the pods it lost earlier have no room to come back")
            ])
    }

    /// The replacement that found no room lands on the drained node once it
    /// is back, and gives its budget back.
    @Test func aPendingReplacementLandsOnTheNodeThatComesBack() {
        let rooms = [Self.room("w1", cpu: 1000), Self.room("w2", cpu: 1000), Self.room("w3", cpu: 1000)]
        let pods = [
            Self.pod("big-0", on: "w1", app: "big", cpu: 800), Self.pod("big-1", on: "w2", app: "big", cpu: 800),
            Self.pod("big-2", on: "w3", app: "big", cpu: 800),
        ]
        let forecast = DrainForecast.rehearse(
            order: ["w1", "w2", "w3"], rooms: rooms, pods: pods,
            budgets: [Self.budget("big", allowed: 1, healthy: 3, needed: 2)])
        // Each node's pod finds no room while its node drains, lands back on
        // it afterwards; no budget blocks.
        #expect(forecast.nodes.map { $0.blockers.count } == [1, 1, 1])
        #expect(forecast.nodes.allSatisfy { $0.blockers.first?.budget == nil })
    }

    /// kubectl's refusals, two budgets over one pod, cordoned and NotReady
    /// nodes taking nothing, DaemonSet and mirror pods left.
    @Test func refusalsAndMultipleBudgetsAndUnschedulableNodes() {
        let rooms = [Self.room("w1"), Self.room("w2", schedulable: false), Self.room("w3")]
        let pods = [
            Self.pod("bare", on: "w1", app: "bare", kind: nil),
            Self.pod("proxy", on: "w3", app: "proxy", kind: "DaemonSet"),
            Self.pod("shared", on: "w3", app: "shared"),
        ]
        let budgets = [
            Self.budget("shared", allowed: 1),
            BudgetFacts(
                namespace: "default", name: "all", selector: LabelSelector(matchLabels: [:]), disruptionsAllowed: 5),
        ]
        let forecast = DrainForecast.rehearse(order: ["w1", "w3"], rooms: rooms, pods: pods, budgets: budgets)
        #expect(
            forecast.nodes[0].blockers == [
                .refused("cannot delete Pods that declare no controller (use --force to override): default/bare")
            ])
        #expect(forecast.nodes[0].evicted == 0)
        #expect(forecast.nodes[1].kept == 1)
        #expect(
            forecast.nodes[1].blockers.map(\.description) == [
                "default/shared: covered by PodDisruptionBudgets default/shared-pdb and default/all; the eviction API refuses it"
            ])
    }
}

/// Which workers may be drained at the same time.
@Suite("drain forecast: a batch of workers drained together")
struct BatchConflictTests {
    typealias F = DrainForecastTests

    @Test func aBatchHoldsWhileEveryBudgetAllowsAllItsEvictionsAndThereIsRoomOutsideIt() {
        let rooms = [
            F.room("w1", cpu: 1000), F.room("w2", cpu: 1000), F.room("w3", cpu: 1000), F.room("w4", cpu: 1000),
        ]
        let pods = [
            F.pod("web-1", on: "w1", cpu: 300), F.pod("web-2", on: "w2", cpu: 300), F.pod("web-3", on: "w3", cpu: 300),
        ]
        #expect(
            DrainForecast.batchConflicts(
                ["w1", "w2"], rooms: rooms, pods: pods, budgets: [F.budget("web", allowed: 2)]
            ).isEmpty)
        #expect(
            DrainForecast.batchConflicts(
                ["w1", "w2"], rooms: rooms, pods: pods, budgets: [F.budget("web", allowed: 1)])
                == ["PodDisruptionBudget default/web-pdb allows 1 disruption, the batch would need 2 at once"])
        // Two pods of the budget on w1 are evicted one at a time by w1's own
        // drain: w1 may share a batch with w4, which holds none.
        let paired = pods + [F.pod("web-4", on: "w1", cpu: 300)]
        #expect(
            DrainForecast.batchConflicts(
                ["w1", "w4"], rooms: rooms, pods: paired, budgets: [F.budget("web", allowed: 1)]
            )
            .isEmpty)
        // Three of four workers down: the fourth cannot take 3 × 400m… with 1000m it takes two.
        let heavy = pods.map { placement -> PodPlacement in
            var placement = placement
            placement.requests.milliCPU = 400
            return placement
        }
        #expect(
            DrainForecast.batchConflicts(["w1", "w2", "w3"], rooms: rooms, pods: heavy, budgets: [])
                == ["default/web-3 (w3) would have no room while the batch is drained"])
    }
}

/// The drain rehearsal: what draining each node in turn would do, read
/// before the first node is touched. For every node, in upgrade order, the
/// pods drain would evict, leave or refuse (kubectl's rules, as the drainer
/// applies them), the budgets covering the evictions and whether each can
/// tolerate them, and whether each evicted pod's replacement fits on the
/// nodes that stay schedulable (requests against allocatable, taints and
/// tolerations, node selectors, required node affinity). Replacements are
/// placed as the job goes, so a later node sees the pods earlier drains
/// moved onto it. Preferred affinity, pod (anti-)affinity, topology spread,
/// volume topology and extended resources are not modelled.
public struct DrainForecast: Sendable, Equatable {
    /// What stops or stalls a drain.
    public enum Blocker: Sendable, Equatable, CustomStringConvertible {
        /// kubectl's refusal before any eviction (an unmanaged pod, a gone DaemonSet).
        case refused(String)
        /// The pod's budget allows no disruption: the eviction waits until the drain's timeout.
        case budget(pod: String, budget: String, reason: String)
        /// More than one budget covers the pod: the eviction API refuses it.
        case multipleBudgets(pod: String, budgets: [String])
        /// The pod's replacement fits on no node that stays schedulable.
        case nowhere(pod: String, requests: Resources, why: String)
        /// A dry-run eviction of the pod (`dryRun=All`) was refused by the API.
        case apiRefuses(pod: String, answer: String)

        /// The budget a blocked eviction waits on (for comparing with a drain's timeout).
        public var budget: String? {
            if case let .budget(_, budget, _) = self { return budget }
            return nil
        }

        /// The pod it is about.
        public var pod: String? {
            switch self {
            case .refused: nil
            case let .budget(pod, _, _), let .multipleBudgets(pod, _), let .nowhere(pod, _, _),
                let .apiRefuses(pod, _):
                pod
            }
        }

        public var description: String {
            switch self {
            case let .refused(text): text
            case let .budget(pod, budget, reason):
                "\(pod): PodDisruptionBudget \(budget) \(reason); the drain would wait for it until its timeout"
            case let .multipleBudgets(pod, budgets):
                "\(pod): covered by PodDisruptionBudgets \(budgets.joined(separator: " and ")); the eviction API refuses it"
            case let .nowhere(pod, requests, why):
                "\(pod) (\(requests)) fits on no other schedulable node (\(why)); its replacement would stay Pending"
            case let .apiRefuses(pod, answer):
                "\(pod): the API refuses its eviction now (a dry-run eviction answered: \(answer))"
            }
        }
    }

    public struct Node: Sendable, Equatable {
        public var name: String
        public var evicted: Int
        /// Pods left in place (DaemonSet, mirror, the exclusion).
        public var kept: Int
        /// Budgets that serialise this node's evictions, for people.
        public var notes: [String]
        public var blockers: [Blocker]
        /// The pods whose eviction the API is asked about in a dry run
        /// (``DrainForecast/confirmed(by:)``): each one a budget blocks now,
        /// and the first eviction under each budget.
        public var asked: [String] = []
        /// What the API's dry-run answers said of the forecast, once asked.
        public var confirmation: String?

        public init(name: String, evicted: Int, kept: Int, notes: [String], blockers: [Blocker]) {
            (self.name, self.evicted, self.kept, self.notes, self.blockers) = (name, evicted, kept, notes, blockers)
        }

        /// `worker-1: 12 pods evicted, 2 left; blocked: …`.
        public var line: String {
            var text = "\(name): \(evicted) pods evicted, \(kept) left"
            if !notes.isEmpty { text += "; " + notes.joined(separator: "; ") }
            if let confirmation { text += "; " + confirmation }
            if !blockers.isEmpty { text += "; BLOCKED: " + blockers.map(\.description).joined(separator: "; ") }
            return text
        }
    }

    public var nodes: [Node]

    /// Every blocker, with its node.
    public var blockers: [(node: String, blocker: Blocker)] {
        nodes.flatMap { node in node.blockers.map { (node.name, $0) } }
    }

    /// One line: none, or how many on which nodes.
    public var summary: String {
        let blocked = nodes.filter { !$0.blockers.isEmpty }
        let evicted = nodes.map(\.evicted).reduce(0, +)
        guard !blocked.isEmpty else {
            return "\(nodes.count) nodes, \(evicted) pods evicted, nothing blocks"
        }
        return "\(blockers.count) blockers on \(blocked.map(\.name).joined(separator: ", ")): "
            + blockers.map { "\($0.node): \($0.blocker)" }.joined(separator: "; ")
    }

    /// Rehearses draining the nodes in `order` one at a time.
    public static func rehearse(
        order: [String], rooms: [NodeRoom], pods: [PodPlacement], budgets: [BudgetFacts],
        consent: DrainConsent = DrainConsent(), exclusion: DrainExclusion = .none,
        daemonSetExists: (PodFacts) -> Bool = { _ in true }
    ) -> DrainForecast {
        var onNode = Dictionary(grouping: pods, by: \.node)
        var used = Self.used(by: pods)
        // Disruptions a budget loses for good: evicted pods whose replacement
        // found no room never turn Ready again.
        var lost: [String: Int] = [:]
        // Those replacements, Pending until a node with room comes back, and their budget.
        var pending: [(placement: PodPlacement, budget: String?)] = []
        var forecast: [Node] = []
        // Budgets whose first eviction the API will be asked about.
        var firstAsked: Set<String> = []
        for name in order {
            let here = onNode[name] ?? []
            let byReference = Dictionary(here.map { ($0.pod.reference, $0) }) { first, _ in first }
            let selection = DrainRules.select(
                here.map(\.pod), consent: consent, exclusion: exclusion, daemonSetExists: daemonSetExists)
            var node = Node(
                name: name, evicted: 0, kept: selection.kept.count, notes: [],
                blockers: selection.refusals.map(Blocker.refused))
            guard selection.refusals.isEmpty else {
                forecast.append(node)
                continue
            }
            // While it drains, the node takes no new pods; the others are
            // tried with the most CPU free first (the scheduler's
            // least-allocated scoring), as they stand when the drain starts.
            let targets =
                selection.evict.isEmpty
                ? []
                : rooms.filter { $0.name != name }.sorted { a, b in
                    Self.order(a, b, used)
                }
            var covered: [String: (count: Int, allowed: Int)] = [:]
            var staying = here.filter { placement in
                !selection.evict.contains { $0.reference == placement.pod.reference }
            }
            for pod in selection.evict {
                guard let placement = byReference[pod.reference] else { continue }
                // The eviction API does not ask a budget about a pod that finished.
                let covering = pod.isFinished ? [] : budgets.filter { $0.covers(pod) }
                if covering.count > 1 {
                    node.blockers.append(.multipleBudgets(pod: pod.reference, budgets: covering.map(\.key)))
                    node.asked.append(pod.reference)
                    staying.append(placement)
                    continue
                }
                if let budget = covering.first {
                    let allowed = budget.disruptionsAllowed - lost[budget.key, default: 0]
                    // The API answers for now: what no earlier drain of this job has changed.
                    if lost[budget.key, default: 0] == 0, allowed <= 0 || firstAsked.insert(budget.key).inserted {
                        node.asked.append(pod.reference)
                    }
                    guard allowed > 0 else {
                        let reason =
                            lost[budget.key, default: 0] > 0
                            ? "allows no further disruption: the pods it lost earlier have no room to come back"
                            : "allows no disruption (\(budget.currentHealthy) healthy, \(budget.desiredHealthy) needed)"
                        node.blockers.append(.budget(pod: pod.reference, budget: budget.key, reason: reason))
                        staying.append(placement)
                        continue
                    }
                    covered[budget.key] = (covered[budget.key, default: (0, allowed)].count + 1, allowed)
                }
                node.evicted += 1
                guard !pod.isFinished else { continue }
                used[name, default: Resources()] = used[name, default: Resources()] - placement.requests
                // A controller recreates it elsewhere; a pod without one is gone.
                guard pod.controllerKind != nil else { continue }
                if let target = place(placement, on: targets, used: used) {
                    used[target, default: Resources()] = used[target, default: Resources()] + placement.requests
                    var moved = placement
                    moved.node = target
                    onNode[target, default: []].append(moved)
                } else {
                    node.blockers.append(
                        .nowhere(
                            pod: pod.reference,
                            requests: Resources(
                                milliCPU: placement.requests.milliCPU, memory: placement.requests.memory),
                            why: misfits(placement, on: targets, used: used)))
                    if let budget = covering.first { lost[budget.key, default: 0] += 1 }
                    pending.append((placement, covering.first?.key))
                }
            }
            for (key, count) in covered.sorted(by: { $0.key < $1.key }) where count.count > count.allowed {
                node.notes.append(
                    "\(key): \(count.count) pods evicted one at a time as replacements turn Ready "
                        + "(\(count.allowed) disruption\(count.allowed == 1 ? "" : "s") allowed)")
            }
            onNode[name] = staying
            forecast.append(node)
            // The node is back (uncordoned): Pending replacements may land now.
            if !pending.isEmpty {
                let open = rooms.sorted { a, b in Self.order(a, b, used) }
                pending = pending.filter { waiting in
                    guard let target = place(waiting.placement, on: open, used: used) else { return true }
                    used[target, default: Resources()] = used[target, default: Resources()] + waiting.placement.requests
                    var moved = waiting.placement
                    moved.node = target
                    onNode[target, default: []].append(moved)
                    if let budget = waiting.budget { lost[budget, default: 0] -= 1 }
                    return false
                }
            }
        }
        return DrainForecast(nodes: forecast)
    }

    /// What the API answered a dry-run eviction (`dryRun=All`) of one pod:
    /// the checks of a real eviction, budgets included, with nothing changed.
    public enum APIAnswer: Sendable, Equatable {
        case allowed
        /// 429: a budget refuses it now (the cause, naming the budget).
        case refused(String)
        /// 500: more than one budget covers it.
        case multipleBudgets(String)
        /// The question could not be asked (the error).
        case unanswered(String)
    }

    /// Every pod the API is to be asked about, once.
    public var asked: [String] {
        var seen: Set<String> = []
        return nodes.flatMap(\.asked).filter { seen.insert($0).inserted }
    }

    /// The forecast after the API's dry-run answers for ``asked``: where
    /// the API refuses an eviction the forecast expected to pass, that is a
    /// blocker (``Blocker/apiRefuses(pod:answer:)``); where it allows one a
    /// budget blocks now (an unready pod under a met budget, or a budget
    /// that moved since it was read), the blocker goes and the pod counts
    /// as evicted. Each node says how the answers compared.
    public func confirmed(by answers: [String: APIAnswer]) -> DrainForecast {
        var result = self
        for index in result.nodes.indices {
            var node = result.nodes[index]
            guard !node.asked.isEmpty else { continue }
            var agreed = 0
            var differences: [String] = []
            for pod in node.asked {
                guard let answer = answers[pod] else { continue }
                let blocked = node.blockers.firstIndex { blocker in
                    switch blocker {
                    case let .budget(blocked, _, _), let .multipleBudgets(blocked, _): blocked == pod
                    default: false
                    }
                }
                switch (answer, blocked) {
                case (.allowed, nil), (.refused, _?), (.multipleBudgets, _?):
                    agreed += 1
                case let (.allowed, index?):
                    guard case .budget = node.blockers[index] else {
                        differences.append("\(pod): the API allows its eviction, though more than one budget covers it")
                        continue
                    }
                    node.blockers.remove(at: index)
                    node.evicted += 1
                    differences.append("\(pod): the API allows its eviction now, which the budget's status did not")
                case let (.refused(text), nil), let (.multipleBudgets(text), nil):
                    node.blockers.append(.apiRefuses(pod: pod, answer: text))
                    differences.append("\(pod): the API refuses its eviction")
                case let (.unanswered(error), _):
                    differences.append("\(pod): not answered (\(error))")
                }
            }
            let count = agreed + differences.count
            node.confirmation =
                "the API's dry-run evictions: \(agreed) of \(count) as forecast"
                + (differences.isEmpty ? "" : " (" + differences.joined(separator: "; ") + ")")
            result.nodes[index] = node
        }
        return result
    }

    /// Why the nodes of `batch` may not be drained at the same time, or
    /// nothing when they may: every evicted pod's replacement must fit on
    /// the nodes outside the batch, and every budget must allow all of the
    /// batch's evictions it covers at once (a budget allowing fewer would
    /// hold the batch's drains for one another). kubectl's refusals and a
    /// pod under two budgets count too.
    public static func batchConflicts(
        _ batch: [String], rooms: [NodeRoom], pods: [PodPlacement], budgets: [BudgetFacts],
        consent: DrainConsent = DrainConsent(), exclusion: DrainExclusion = .none,
        daemonSetExists: (PodFacts) -> Bool = { _ in true }
    ) -> [String] {
        let members = Set(batch)
        var used = Self.used(by: pods)
        let targets = rooms.filter { !members.contains($0.name) }.sorted { a, b in
            Self.order(a, b, used)
        }
        var conflicts: [String] = []
        // Per budget, the batch's nodes with an eviction under it: each
        // node's drain evicts its own pods of a budget one at a time, so
        // the batch needs one disruption per such node at once.
        var covered: [String: Set<String>] = [:]
        let onNode = Dictionary(grouping: pods.filter { members.contains($0.node) }, by: \.node)
        for name in batch {
            let here = onNode[name] ?? []
            let byReference = Dictionary(here.map { ($0.pod.reference, $0) }) { first, _ in first }
            let selection = DrainRules.select(
                here.map(\.pod), consent: consent, exclusion: exclusion, daemonSetExists: daemonSetExists)
            conflicts += selection.refusals.map { "\(name): \($0)" }
            for pod in selection.evict {
                let covering = pod.isFinished ? [] : budgets.filter { $0.covers(pod) }
                if covering.count > 1 { conflicts.append("\(pod.reference) is covered by more than one budget") }
                if let budget = covering.first { covered[budget.key, default: []].insert(name) }
                guard let placement = byReference[pod.reference], !pod.isFinished, pod.controllerKind != nil else {
                    continue
                }
                if let target = place(placement, on: targets, used: used) {
                    used[target, default: Resources()] = used[target, default: Resources()] + placement.requests
                } else {
                    conflicts.append("\(pod.reference) (\(name)) would have no room while the batch is drained")
                }
            }
        }
        for budget in budgets.sorted(by: { $0.key < $1.key }) {
            guard let nodes = covered[budget.key], nodes.count > budget.disruptionsAllowed else { continue }
            conflicts.append(
                "PodDisruptionBudget \(budget.key) allows \(budget.disruptionsAllowed) disruption"
                    + "\(budget.disruptionsAllowed == 1 ? "" : "s"), the batch would need \(nodes.count) at once")
        }
        return conflicts
    }

    /// What the pods that still run take on each node.
    static func used(by pods: [PodPlacement]) -> [String: Resources] {
        var used: [String: Resources] = [:]
        for placement in pods where !placement.pod.isFinished {
            used[placement.node, default: Resources()] = used[placement.node, default: Resources()] + placement.requests
        }
        return used
    }

    /// The node a replacement lands on: the first of `rooms` it fits.
    private static func place(_ pod: PodPlacement, on rooms: [NodeRoom], used: [String: Resources]) -> String? {
        rooms.first { pod.misfit(on: $0, used: used[$0.name] ?? Resources()) == nil }?.name
    }

    /// Most CPU free first (the scheduler's least-allocated scoring), then
    /// the fewest pods (its spreading, and all there is to go by on nodes
    /// that report no allocatable), then by name.
    private static func order(_ a: NodeRoom, _ b: NodeRoom, _ used: [String: Resources]) -> Bool {
        (-free(a, used), used[a.name]?.pods ?? 0, a.name) < (-free(b, used), used[b.name]?.pods ?? 0, b.name)
    }

    /// Millicores free on `room` (a node reporting no allocatable: all).
    private static func free(_ room: NodeRoom, _ used: [String: Resources]) -> Int64 {
        room.allocatable.map { $0.milliCPU - (used[room.name]?.milliCPU ?? 0) } ?? Int64.max / 2
    }

    /// Why each node refuses the pod, the first three named.
    private static func misfits(_ pod: PodPlacement, on rooms: [NodeRoom], used: [String: Resources]) -> String {
        let reasons = rooms.compactMap { room in
            pod.misfit(on: room, used: used[room.name] ?? Resources()).map { "\(room.name): \($0)" }
        }
        guard !reasons.isEmpty else { return "no other node" }
        return reasons.prefix(3).joined(separator: "; ") + (reasons.count > 3 ? "; and \(reasons.count - 3) more" : "")
    }

    public static func == (lhs: DrainForecast, rhs: DrainForecast) -> Bool { lhs.nodes == rhs.nodes }
}

extension BudgetFacts {
    /// `namespace/name`.
    public var key: String { "\(namespace)/\(name)" }
}

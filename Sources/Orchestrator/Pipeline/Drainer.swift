import FoundationEssentials
import Shared
import SharedIO
import Synchronization

/// A drain that could not finish: the pods still on the node and what holds each.
struct DrainTimeout: Error, CustomStringConvertible {
    let node: String
    let timeout: Duration
    /// `(pod, budget)`; budget is empty when no PodDisruptionBudget covers the pod.
    let held: [(pod: String, budget: String)]
    let lines: [String]

    var description: String {
        "drain of \(node) timed out after \(JobContext.format(timeout.seconds)); still on the node: "
            + lines.joined(separator: "; ")
    }
}

/// Empties a node the way `kubectl drain --ignore-daemonsets
/// --delete-emptydir-data` does (same filters, same Eviction API, 429 means
/// a budget says wait), but evicts in parallel, retries a refused eviction
/// with a short doubling backoff instead of a flat 5 s, confirms each
/// deletion by UID, and on timeout names every pod left and its budget.
struct Drainer: Sendable {
    struct Outcome: Sendable {
        var evicted = 0
        /// Distinct refusals met (budget messages), in the order first seen.
        var blockers: [String] = []
        /// Pods left on the node on purpose (``DrainExclusion``).
        var excluded: [String] = []
    }

    let cluster: Cluster
    var consent = DrainConsent()
    /// Pods never evicted: the orchestrator's own, the exclusion selector's.
    var exclusion = DrainExclusion()
    var timeout: Duration = .seconds(600)
    /// The wait after a 429 while the pod has been refused for less than
    /// `quickRetries`: a budget frees as soon as a replacement is Ready,
    /// and an eviction tried again a second late holds the whole chain
    /// behind it a second. A budget that stays closed longer is asked less
    /// and less often, doubling up to `maximumRetryDelay` (kubectl's drain
    /// asks every 5 s).
    var retryDelay: Duration = .milliseconds(250)
    var quickRetries: Duration = .seconds(10)
    var maximumRetryDelay: Duration = .seconds(5)
    /// How often the pods still terminating are checked: one list of the
    /// node's pods for all of them (``PodsOnNode``), not a read per pod.
    var deletionPoll: Duration = .milliseconds(250)
    /// The most evictions in flight at once (kubectl's drain has no bound).
    var parallelism = 256
    /// The drain's deadline and its pauses (a job's clock in the pipeline).
    var clock: any JobClock = SystemJobClock()

    /// The pods drain would evict and what it would leave, read from the
    /// cluster; refusals (kubectl's "cannot delete …") are in the selection.
    func select(_ node: String) async throws -> DrainSelection {
        let pods = try await cluster.pods(on: node).map(PodFacts.init(pod:))
        var daemonSets: [String: Bool] = [:]
        for pod in pods where pod.controllerKind == "DaemonSet" {
            let key = "\(pod.namespace)/\(pod.controllerName ?? "")"
            if daemonSets[key] == nil {
                daemonSets[key] = try await cluster.daemonSetExists(
                    namespace: pod.namespace, name: pod.controllerName ?? "")
            }
        }
        return DrainRules.select(pods, consent: consent, exclusion: exclusion) {
            daemonSets["\($0.namespace)/\($0.controllerName ?? "")"] ?? false
        }
    }

    /// Evicts every selected pod of `node` and waits until each is gone.
    ///
    /// - Parameters:
    ///   - checkpoint: called often; throws to stop (abort).
    ///   - report: told each warning, and each refusal the first time it is met.
    func drain(
        _ node: String, checkpoint: @escaping @Sendable () throws -> Void,
        report: @escaping @Sendable (String) async -> Void
    ) async throws -> Outcome {
        let selection = try await select(node)
        guard selection.refusals.isEmpty else {
            throw JobFailure("cannot drain \(node): " + selection.refusals.joined(separator: "; "))
        }
        for (pod, reason) in selection.leftOnPurpose {
            await report("leaving \(pod) on \(node): \(reason)")
        }
        for warning in selection.warnings { await report("Warning: \(warning)") }
        let deadline = clock.now() + timeout.seconds
        let seen = Refusals()
        let onNode = PodsOnNode(cluster: cluster, node: node, clock: clock, freshFor: deletionPoll)
        let stuck = try await withThrowingTaskGroup(of: PodFacts?.self) { group in
            var pending = selection.evict[...]
            var stuck: [PodFacts] = []
            var running = 0
            while true {
                while running < parallelism, let pod = pending.popFirst() {
                    running += 1
                    group.addTask { [self] in
                        let done = try await evictAndWait(
                            pod, onNode: onNode, deadline: deadline, checkpoint: checkpoint
                        ) { message in
                            if seen.firstTime(message) {
                                await report("eviction of \(pod.reference) refused, retrying: \(message)")
                            }
                        }
                        return done ? nil : pod
                    }
                }
                guard let result = try await group.next() else { break }
                running -= 1
                if let result { stuck.append(result) }
            }
            return stuck
        }
        guard stuck.isEmpty else {
            let budgets = (try? await cluster.budgets()) ?? []
            let lines = DrainRules.blockers(remaining: stuck, budgets: budgets)
            let held = stuck.map { pod in
                (pod.reference, budgets.first { $0.covers(pod) }.map { "\($0.namespace)/\($0.name)" } ?? "")
            }
            throw DrainTimeout(node: node, timeout: timeout, held: held, lines: lines)
        }
        return Outcome(evicted: selection.evict.count, blockers: seen.all, excluded: selection.excluded)
    }

    /// One pod: evict until accepted, then wait for its deletion. Answers
    /// false when the deadline passed first.
    private func evictAndWait(
        _ pod: PodFacts, onNode: PodsOnNode, deadline: Double, checkpoint: @Sendable () throws -> Void,
        refused: @Sendable (String) async -> Void
    ) async throws -> Bool {
        var delay = retryDelay
        var refusedSince: Double?
        evicting: while true {
            try checkpoint()
            if clock.now() >= deadline { return false }
            switch try await cluster.evict(pod) {
            case .accepted: break evicting
            case .gone: return true
            case let .multipleBudgets(message):
                let budgets = (try? await cluster.budgets().filter { $0.covers(pod) }) ?? []
                throw JobFailure(
                    "cannot evict \(pod.reference): \(message) It is covered by "
                        + (budgets.isEmpty
                            ? "more than one budget"
                            : budgets.map { "PodDisruptionBudget \($0.namespace)/\($0.name)" }.joined(
                                separator: " and "))
                        + "; kubectl drain fails the same way. Remove or merge one of them, then resume the job")
            case let .refusedByBudget(message), let .namespaceTerminating(message):
                await refused(message)
                let since = refusedSince ?? clock.now()
                refusedSince = since
                try await clock.sleep(for: min(delay, .seconds(max(0, deadline - clock.now()))))
                if clock.now() - since >= quickRetries.seconds { delay = min(delay * 2, maximumRetryDelay) }
            }
        }
        while true {
            if try await onNode.isGone(pod) { return true }
            try checkpoint()
            if clock.now() >= deadline { return false }
            try await clock.sleep(for: deletionPoll)
        }
    }
}

/// The distinct refusals a drain met, shared by its eviction tasks.
private final class Refusals: Sendable {
    private let list = Mutex<[String]>([])

    /// Records `message`; true the first time it is seen.
    func firstTime(_ message: String) -> Bool {
        list.withLock { list in
            guard !list.contains(message) else { return false }
            list.append(message)
            return true
        }
    }

    var all: [String] { list.withLock { $0 } }
}

/// The node's pods as one list shared by every eviction of a drain that
/// waits for its pod to go: a list younger than `freshFor` answers them all,
/// and callers arriving while it is read wait for that same read. So the
/// API server sees one list per poll for the whole node, where kubectl
/// sends a read per pod per second.
actor PodsOnNode {
    let cluster: Cluster
    let node: String
    let clock: any JobClock
    let freshFor: Duration
    /// `namespace/name` → UID of the pods the last list held, and when it was read.
    private var present: [String: String] = [:]
    private var readAt: Double = -.infinity
    private var reading: Task<[String: String], any Error>?

    init(cluster: Cluster, node: String, clock: any JobClock, freshFor: Duration) {
        self.cluster = cluster
        self.node = node
        self.clock = clock
        self.freshFor = freshFor
    }

    /// Whether `pod` (this UID; a pod of the same name is another pod) is gone.
    func isGone(_ pod: PodFacts) async throws -> Bool {
        if clock.now() - readAt >= freshFor.seconds {
            if let reading {
                present = try await reading.value
            } else {
                let cluster = cluster
                let node = node
                let task = Task {
                    var uids: [String: String] = [:]
                    for item in try await cluster.pods(on: node) {
                        let facts = PodFacts(pod: item)
                        uids["\(facts.namespace)/\(facts.name)"] = facts.uid
                    }
                    return uids
                }
                reading = task
                defer { reading = nil }
                present = try await task.value
                readAt = clock.now()
            }
        }
        return present["\(pod.namespace)/\(pod.name)"] != pod.uid
    }
}

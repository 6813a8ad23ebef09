/// How long the next node is expected to take, for the maintenance
/// window's "does it fit before the close" question: the longest node of
/// its kind (control plane or worker) this run has timed, else the
/// operator's estimate; a worker's soak on top, since the next node
/// starts only after it.
public struct NodeTimeForecast: Sendable, Equatable {
    /// Seconds a node takes before this run has timed one of its kind (`--node-estimate`).
    public var estimate: Double
    /// Seconds each worker is soaked.
    public var soak: Double
    /// The longest node work (start to done, without the soak) timed so far, by kind.
    public var longest: [Kind: Double]
    /// The same from the last upgrade that succeeded, and its job.
    public var history: (job: Int64, longest: [Kind: Double])?

    public enum Kind: Sendable, Hashable {
        case controlPlane, worker
        public init(_ role: NodeRole) { self = role == .worker ? .worker : .controlPlane }
    }

    public init(
        estimate: Double, soak: Double, longest: [Kind: Double] = [:],
        history: (job: Int64, longest: [Kind: Double])? = nil
    ) {
        self.estimate = estimate
        self.soak = soak
        self.longest = longest
        self.history = history
    }

    public static func == (lhs: NodeTimeForecast, rhs: NodeTimeForecast) -> Bool {
        lhs.estimate == rhs.estimate && lhs.soak == rhs.soak && lhs.longest == rhs.longest
            && lhs.history?.job == rhs.history?.job && lhs.history?.longest == rhs.history?.longest
    }

    /// A finished job's report: the longest node of each kind it upgraded
    /// (its `work_seconds`), and the time it spent outside its nodes
    /// (pre-flight, snapshot, post-flight and the gates between them).
    public static func timings(of report: JSONValue) -> (longest: [Kind: Double], overhead: Double) {
        var longest: [Kind: Double] = [:]
        var inNodes = 0.0
        for node in report[dotted: "nodes"]?.arrayValue ?? [] {
            let work = node[dotted: "work_seconds"]?.doubleValue ?? 0
            inNodes += work + (node[dotted: "soak_seconds"]?.doubleValue ?? 0)
            guard work > 0, node[dotted: "outcome"]?.stringValue == "upgraded",
                let role = node[dotted: "role"]?.stringValue.flatMap(NodeRole.init(rawValue:))
            else { continue }
            longest[Kind(role)] = max(longest[Kind(role)] ?? 0, work)
        }
        return (longest, max(0, (report[dotted: "total_seconds"]?.doubleValue ?? 0) - inNodes))
    }

    /// The time a job takes for `roles` (its nodes with work left, in
    /// order): each control plane in turn, the workers in batches of up to
    /// `batch` side by side, plus `overhead`.
    public func total(roles: [NodeRole], batch: Int, overhead: Double) -> Double {
        let workers = roles.filter { $0 == .worker }.count
        let controlPlanes = roles.filter { $0 != .worker }.map(seconds(for:)).reduce(0, +)
        let batches = (workers + max(1, batch) - 1) / max(1, batch)
        return overhead + controlPlanes + Double(batches) * (workers > 0 ? seconds(for: .worker) : 0)
    }

    /// Records one node's work, timed from its start to its verification.
    public mutating func timed(_ role: NodeRole, seconds: Double) {
        longest[Kind(role), default: 0] = max(longest[Kind(role)] ?? 0, seconds)
    }

    /// Seconds the next node of `role` is expected to take, soak included.
    public func seconds(for role: NodeRole) -> Double {
        (longest[Kind(role)] ?? history?.longest[Kind(role)] ?? estimate) + (role == .worker ? soak : 0)
    }

    /// Where the figure comes from, for the job's events.
    public func basis(for role: NodeRole) -> String {
        let kind = Kind(role) == .worker ? "worker" : "control plane"
        let work =
            longest[Kind(role)] != nil
            ? "the longest \(kind) so far"
            : history.flatMap { $0.longest[Kind(role)] != nil ? "job \($0.job)'s longest \(kind)" : nil }
                ?? "--node-estimate"
        return role == .worker && soak > 0 ? "\(work) and the soak" : work
    }
}

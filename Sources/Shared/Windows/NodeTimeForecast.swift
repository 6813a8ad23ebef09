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

    public enum Kind: Sendable, Hashable {
        case controlPlane, worker
        public init(_ role: NodeRole) { self = role == .worker ? .worker : .controlPlane }
    }

    public init(estimate: Double, soak: Double, longest: [Kind: Double] = [:]) {
        self.estimate = estimate
        self.soak = soak
        self.longest = longest
    }

    /// Records one node's work, timed from its start to its verification.
    public mutating func timed(_ role: NodeRole, seconds: Double) {
        longest[Kind(role), default: 0] = max(longest[Kind(role)] ?? 0, seconds)
    }

    /// Seconds the next node of `role` is expected to take, soak included.
    public func seconds(for role: NodeRole) -> Double {
        (longest[Kind(role)] ?? estimate) + (role == .worker ? soak : 0)
    }

    /// Where the figure comes from, for the job's events.
    public func basis(for role: NodeRole) -> String {
        let work =
            longest[Kind(role)] != nil
            ? "the longest \(Kind(role) == .worker ? "worker" : "control plane") so far"
            : "--node-estimate"
        return role == .worker && soak > 0 ? "\(work) and the soak" : work
    }
}

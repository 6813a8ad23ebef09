/// Who may run jobs: the holder of one `coordination.k8s.io` Lease. A
/// Deployment starts the replacement pod while the old one is still
/// terminating (an eviction, a deletion, a rolling restart), and both may
/// see the same job store and the same in-flight job; only the lease holder
/// marks jobs interrupted, adopts, resumes and runs them. The rules follow
/// client-go's `tryAcquireOrRenew`: a lease held by another is free only
/// once it was released, once it went unrenewed for its whole duration as
/// observed locally (clocks of two machines are not compared), or, beyond
/// client-go, once the holder's pod is gone from the API.
public struct LeaderElection: Sendable, Equatable {
    /// This process's identity: its pod's name.
    public var identity: String
    /// Seconds a lease not renewed stays held.
    public var leaseDuration: Double

    public init(identity: String, leaseDuration: Double = 30) {
        self.identity = identity
        self.leaseDuration = leaseDuration
    }

    /// The lease as read from the API.
    public struct Record: Sendable, Equatable {
        /// Empty when released.
        public var holder: String
        public var transitions: Int
        /// Changes with every write; a change means the holder is alive.
        public var resourceVersion: String

        public init(holder: String, transitions: Int, resourceVersion: String) {
            self.holder = holder
            self.transitions = transitions
            self.resourceVersion = resourceVersion
        }
    }

    public enum Decision: Sendable, Equatable {
        /// No lease yet: create it, held by us.
        case create
        /// Ours already (a restarted container of the same pod): renew it.
        case renew
        /// Write ourselves in as holder, with this transition count; `why` is for the log.
        case take(transitions: Int, why: String)
        /// Held by a live holder: ask again later.
        case wait(holder: String)
    }

    /// Decides from the lease read now (`nil`: none exists), the local
    /// time at which its current version was first seen, and whether the
    /// holder's pod still exists (`nil`: unknown).
    public func decide(_ record: Record?, firstSeenAt: Double, now: Double, holderPodExists: Bool?) -> Decision {
        guard let record else { return .create }
        if record.holder == identity { return .renew }
        let next = record.transitions + 1
        if record.holder.isEmpty { return .take(transitions: next, why: "released") }
        if holderPodExists == false {
            return .take(transitions: next, why: "its holder \(record.holder) is gone")
        }
        if now - firstSeenAt >= leaseDuration {
            return .take(
                transitions: next,
                why: "its holder \(record.holder) did not renew it for \(JobText.duration(leaseDuration))")
        }
        return .wait(holder: record.holder)
    }
}

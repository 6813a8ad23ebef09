/// What `serve` does at start with a job the previous process left
/// interrupted: resume it by itself, level-triggered from live state as a
/// Kubernetes controller would, unless the job keeps getting interrupted,
/// which means the service is crash-looping and a person must look.
public struct RestartPolicy: Sendable, Equatable {
    /// Interruptions in a row, within `window` seconds, that stop the self-resume.
    public var limit: Int
    /// Seconds over which interruptions count as in a row.
    public var window: Double

    public static let standard = RestartPolicy(limit: 3, window: 900)

    public init(limit: Int, window: Double) {
        self.limit = limit
        self.window = window
    }

    public enum Decision: Sendable, Equatable {
        /// Resume; `restart` is this restart's number for the job (1 for the first).
        case resume(restart: Int)
        /// Stop resuming: the job fails with this reason.
        case stop(reason: String)
    }

    /// Decides from the job's events (oldest first) at `now`. Interruptions
    /// count back from the newest one, stopping at the first node finished
    /// in between (progress breaks the streak) or at one older than the
    /// window.
    public func decide(events: [JobEvent], now: Double) -> Decision {
        let restarts = events.filter { $0.kind == .jobInterrupted }.count
        var streak = 0
        for event in events.reversed() {
            if event.kind == .nodeSucceeded || event.kind == .jobSucceeded { break }
            guard event.kind == .jobInterrupted else { continue }
            if event.time < now - window { break }
            streak += 1
        }
        guard streak < limit else {
            return .stop(
                reason:
                    "interrupted \(streak) times in a row within \(JobText.duration(window)) with no node finished "
                    + "in between: the service looks crash-looping, so it stopped resuming the job by itself; "
                    + "find the cause, then resume the job by hand")
        }
        return .resume(restart: restarts)
    }
}

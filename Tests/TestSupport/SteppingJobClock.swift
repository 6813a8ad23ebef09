public import Shared
import Synchronization

/// A job clock on which time passes only when the job sleeps: each sleep
/// moves it on by exactly what was asked, at once. A 30-minute wait with
/// 5-second polls runs in milliseconds, and its events carry the times it
/// would have had. Time is kept as a `Duration`, so that many short sleeps
/// add up exactly.
public final class SteppingJobClock: JobClock {
    private let start: Double
    private let elapsed = Mutex(Duration.zero)

    public init(start: Double = 1_800_000_000) { self.start = start }

    public func now() -> Double {
        let (seconds, attoseconds) = slept.components
        return start + Double(seconds) + Double(attoseconds) / 1e18
    }

    /// All the time slept so far.
    public var slept: Duration { elapsed.withLock { $0 } }

    public func sleep(for duration: Duration) async throws {
        try Task.checkCancellation()
        elapsed.withLock { $0 += duration }
        await Task.yield()
    }
}

public import FoundationEssentials

/// A job's time: wall time for its events and deadlines, and the sleeps of
/// every wait, soak and poll. The service uses ``SystemJobClock``; tests
/// use a clock they advance, so a 30-minute wait takes milliseconds.
public protocol JobClock: Sendable {
    /// Seconds since 1970.
    func now() -> Double
    /// Sleeps `duration` of this clock's time; throws when cancelled.
    func sleep(for duration: Duration) async throws
}

/// The machine's clock.
public struct SystemJobClock: JobClock {
    public init() {}
    public func now() -> Double { Date().timeIntervalSince1970 }
    public func sleep(for duration: Duration) async throws { try await Task.sleep(for: duration) }
}

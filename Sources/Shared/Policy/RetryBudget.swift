/// How long a call to a service that went away is tried again: bounded
/// exponential backoff (doubling from `firstDelay` up to `maximumDelay`)
/// until `total` has passed since the first try. A control plane's API
/// server refuses connections for tens of seconds while kubeadm restarts
/// its static pod; two minutes rides that out and still fails a step that
/// will not recover.
public struct RetryBudget: Sendable, Equatable {
    /// Time from the first try after which no further try starts.
    public var total: Duration
    /// The pause after the first failed try.
    public var firstDelay: Duration
    /// The longest pause between two tries.
    public var maximumDelay: Duration

    /// Two minutes, pauses from 0.2 s doubling up to 5 s.
    public static let standard = RetryBudget(total: .seconds(120))

    /// No retries: the first failure is the answer.
    public static let none = RetryBudget(total: .zero)

    public init(total: Duration, firstDelay: Duration = .milliseconds(200), maximumDelay: Duration = .seconds(5)) {
        self.total = total
        self.firstDelay = firstDelay
        self.maximumDelay = maximumDelay
    }

    /// The pause before the next try, after `tries` failed tries (1 or
    /// more) that took `elapsed` since the first began; `nil` when the
    /// budget is spent. The last pause is cut short so that the last try
    /// starts when the budget ends, not after.
    public func delay(afterTries tries: Int, elapsed: Duration) -> Duration? {
        guard tries >= 1, elapsed < total else { return nil }
        var delay = firstDelay
        for _ in 1..<min(tries, 32) where delay < maximumDelay { delay *= 2 }
        return min(delay, maximumDelay, total - elapsed)
    }
}

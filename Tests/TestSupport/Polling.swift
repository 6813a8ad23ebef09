/// Polls `condition` until it holds, every `interval` of real time, and
/// throws naming `what` when `limit` passes first.
///
/// The limit is real time and only a hang should reach it: the test command
/// runs every suite at once on two cores, where a job on a test clock that
/// takes half a second alone can take half a minute. A bound counted in
/// polls (`for _ in 0..<2000` with 5 ms sleeps) is not a bound in time and
/// failed there.
public func poll(
    until what: @autoclosure () -> String, within limit: Duration = .seconds(120),
    every interval: Duration = .milliseconds(5), _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + limit
    while true {
        if try await condition() { return }
        guard ContinuousClock.now < deadline else {
            throw PollTimedOut("\(what()) did not happen within \(limit) of real time")
        }
        try await Task.sleep(for: interval)
    }
}

/// ``poll(until:within:every:_:)``'s limit passed before its condition held.
public struct PollTimedOut: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

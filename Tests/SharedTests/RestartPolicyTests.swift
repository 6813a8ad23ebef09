import Shared
import Testing

@Suite("restart policy: resume after a restart, stop when crash-looping")
struct RestartPolicyTests {
    static func event(_ kind: JobEvent.Kind, at time: Double) -> JobEvent {
        JobEvent(time: time, kind: kind, message: "")
    }

    static let policy = RestartPolicy.standard  // 3 within 900 s

    @Test(arguments: [
        // (interruption times, nodes finished in between, now, expected)
        ([1000.0], [], 1001.0, RestartPolicy.Decision.resume(restart: 1)),
        ([1000, 1010], [], 1020, .resume(restart: 2)),
        // Three in a row within the window: stop.
        ([1000, 1010, 1020], [], 1030, .stop(reason: "")),
        // A node finished between them breaks the streak.
        ([1000, 1010, 1020], [1005.0], 1030, .resume(restart: 3)),
        // The oldest is outside the window: only two count.
        ([100, 1010, 1020], [], 1030, .resume(restart: 3)),
    ])
    func decides(interruptions: [Double], finished: [Double], now: Double, expected: RestartPolicy.Decision) {
        let events =
            (interruptions.map { Self.event(.jobInterrupted, at: $0) }
            + finished.map { Self.event(.nodeSucceeded, at: $0) }).sorted { $0.time < $1.time }
        let decision = Self.policy.decide(events: [Self.event(.jobStarted, at: 0)] + events, now: now)
        switch (decision, expected) {
        case let (.stop(reason), .stop):
            #expect(reason.hasPrefix("interrupted 3 times in a row within 15 min with no node finished in between"))
        default: #expect(decision == expected)
        }
    }

    @Test func aLimitOfOneStopsAtTheFirstInterruption() {
        let policy = RestartPolicy(limit: 1, window: 60)
        guard case .stop = policy.decide(events: [Self.event(.jobInterrupted, at: 10)], now: 20) else {
            Issue.record("a limit of 1 resumed")
            return
        }
    }
}

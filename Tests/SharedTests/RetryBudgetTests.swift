import Shared
import Testing

@Suite("retry budget: bounded exponential backoff within a total")
struct RetryBudgetTests {
    static let budget = RetryBudget(total: .seconds(120))

    @Test(
        "the pause doubles from 0.2 s and stops growing at 5 s",
        arguments: [
            (1, Duration.zero, Duration.milliseconds(200)),
            (2, .milliseconds(200), .milliseconds(400)),
            (3, .milliseconds(600), .milliseconds(800)),
            (4, .milliseconds(1400), .milliseconds(1600)),
            (5, .seconds(3), .milliseconds(3200)),
            (6, .milliseconds(6200), .seconds(5)),
            (7, .seconds(11), .seconds(5)),
            (40, .seconds(100), .seconds(5)),
            (Int.max, .seconds(100), .seconds(5)),
        ])
    func backoff(tries: Int, elapsed: Duration, expected: Duration) {
        #expect(Self.budget.delay(afterTries: tries, elapsed: elapsed) == expected)
    }

    @Test("the last pause ends when the budget does, and a spent budget answers no more tries")
    func spent() {
        #expect(Self.budget.delay(afterTries: 20, elapsed: .seconds(118)) == .seconds(2))
        #expect(Self.budget.delay(afterTries: 20, elapsed: .seconds(120)) == nil)
        #expect(Self.budget.delay(afterTries: 20, elapsed: .seconds(300)) == nil)
        #expect(RetryBudget.none.delay(afterTries: 1, elapsed: .zero) == nil)
        #expect(Self.budget.delay(afterTries: 0, elapsed: .zero) == nil)
    }

    @Test("a 2 min budget against a server that never answers: 29 tries, the last at 120 s")
    func wholeBudget() {
        var elapsed = Duration.zero
        var tries = 1
        while let delay = Self.budget.delay(afterTries: tries, elapsed: elapsed) {
            elapsed += delay
            tries += 1
        }
        #expect(elapsed == .seconds(120))
        #expect(tries == 29)
    }
}

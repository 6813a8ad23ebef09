import Foundation
import Testing

@testable import Shared

/// The API's timestamps, judged against Foundation's ISO 8601 format style
/// that they replace.
@Suite struct TimestampTests {
    static let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    @Test(arguments: [
        0, 0.001, 0.3, 0.999, 0.9999, 59.5, 86_399.999, 86_400, 951_782_400, 951_868_799.5, 1_796_110_410.123,
        1_796_110_410.9996, 4_102_444_800, 253_402_300_799.999, -0.001, -1, -86_400.5, 1_700_000_000.2,
    ])
    func writesWhatFoundationWrites(_ seconds: Double) {
        #expect(Timestamp.rfc3339(seconds) == Self.style.format(Date(timeIntervalSince1970: seconds)))
    }

    @Test func agreesWithFoundationOverTenThousandTimesAcrossTwoCenturies() {
        var generator = SplitMix(seed: 0x1234_5678)
        for _ in 0..<10_000 {
            let seconds = Double(generator.next() % 6_311_520_000_000) / 1000 + Double(generator.next() % 1000) / 1e6
            let ours = Timestamp.rfc3339(seconds)
            let foundations = Self.style.format(Date(timeIntervalSince1970: seconds))
            guard ours == foundations else {
                Issue.record("\(seconds): \(ours) vs \(foundations)")
                return
            }
        }
    }

    @Test func daysBecomeCivilDates() {
        #expect(Timestamp.civil(0) == (1970, 1, 1))
        #expect(Timestamp.civil(-1) == (1969, 12, 31))
        #expect(Timestamp.civil(11_016) == (2000, 2, 29))
        #expect(Timestamp.civil(20_792) == (2026, 12, 5))
    }
}

/// A small deterministic generator, so that a failure can be replayed.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

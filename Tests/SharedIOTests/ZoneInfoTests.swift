import Foundation
import TestSupport
import Testing

@testable import Shared
@testable import SharedIO

/// The zone reader against the C library: for zones with summer time in
/// either hemisphere, none, half hours and negative summer time, every
/// transition and a sweep from 1950 to 2100 (past 2037 the files' POSIX
/// footer rule applies) give the offset `date +%z` gives.
@Suite("time zones read from tzdata agree with the C library")
struct ZoneInfoTests {
    static let zones = [
        "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "America/Sao_Paulo",
        "Pacific/Chatham", "Europe/Dublin", "America/St_Johns", "Africa/Casablanca", "UTC",
    ]

    @Test(arguments: zones)
    func offsetsMatchTheCLibrary(zone: String) throws {
        let rules = try ZoneInfo.rules(named: zone, environment: [:])
        var times = Array(stride(from: Int64(-631_152_000), through: 4_102_444_800, by: 40_031))
        for transition in rules.transitions where transition.at > -631_152_000 {
            times += [transition.at - 1, transition.at]
        }
        let directory = try TestEnvironment.makeDirectory("zones")
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("times").path
        try times.map { "@\($0)" }.joined(separator: "\n").write(toFile: input, atomically: true, encoding: .utf8)
        let output = try TestEnvironment.run("/usr/bin/env", ["TZ=\(zone)", "date", "-f", input, "+%z"])
        let expected = output.split(separator: "\n").map { line -> Int32 in
            let sign: Int32 = line.first == "-" ? -1 : 1
            let digits = line.dropFirst()
            return sign * (Int32(digits.prefix(2))! * 3600 + Int32(digits.suffix(2))! * 60)
        }
        #expect(expected.count == times.count)
        let wrong = zip(times, expected).filter { rules.offset(at: $0.0) != $0.1 }
        #expect(
            wrong.isEmpty, "\(zone): \(wrong.prefix(5).map { "\($0.0): ours \(rules.offset(at: $0.0)), libc \($0.1)" })"
        )
    }

    @Test func localTimesAroundTheChangesResolveAsMktimeDoes() throws {
        let berlin = try ZoneInfo.rules(named: "Europe/Berlin", environment: [:])
        let newYork = try ZoneInfo.rules(named: "America/New_York", environment: [:])
        func local(_ date: String, _ hours: Int64, _ minutes: Int64) -> Int64 {
            CivilDate(parsing: date)!.days * 86_400 + hours * 3600 + minutes * 60
        }
        // Plain winter and summer times.
        #expect(berlin.instant(local: local("2027-01-16", 2, 0)) == local("2027-01-16", 1, 0))
        #expect(berlin.instant(local: local("2027-07-16", 2, 0)) == local("2027-07-16", 0, 0))
        // Skipped: read with the offset before the change.
        #expect(berlin.instant(local: local("2027-03-28", 2, 30)) == local("2027-03-28", 1, 30))
        #expect(newYork.instant(local: local("2027-03-14", 2, 30)) == local("2027-03-14", 7, 30))
        // Twice: the first.
        #expect(berlin.instant(local: local("2027-10-31", 2, 30)) == local("2027-10-31", 0, 30))
        #expect(newYork.instant(local: local("2027-11-07", 1, 30)) == local("2027-11-07", 5, 30))
        // Far past the table: the footer's rule.
        #expect(berlin.instant(local: local("2090-03-26", 2, 30)) == local("2090-03-26", 1, 30))
    }

    @Test func badNamesAndMissingZonesAreClearErrors() {
        #expect {
            try ZoneInfo.rules(named: "../../etc/passwd", environment: [:])
        } throws: { "\($0)" == "'../../etc/passwd' is not a time zone name" }
        #expect {
            try ZoneInfo.rules(named: "Mars/Olympus", environment: [:])
        } throws: {
            "\($0)"
                == "time zone Mars/Olympus: cannot read /usr/share/zoneinfo/Mars/Olympus (is the tzdata package installed?)"
        }
        #expect {
            try ZoneInfo.rules(named: "Europe/Berlin", environment: ["TZDIR": "/etc"])
        } throws: { "\($0)".hasPrefix("time zone Europe/Berlin: cannot read /etc/Europe/Berlin") }
        #expect(throws: Never.self) { try ZoneInfo.rules(named: "UTC", environment: ["TZDIR": "/nonexistent"]) }
        #expect {
            try ZoneInfo.rules(named: "passwd", environment: ["TZDIR": "/etc"])
        } throws: { "\($0)" == "time zone passwd: /etc/passwd: not a TZif file" }
    }
}

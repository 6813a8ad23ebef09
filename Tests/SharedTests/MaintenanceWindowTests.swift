import Testing

@testable import Shared

/// Window arithmetic over fixed zone rules (the POSIX rules tzdata gives
/// these zones today), no files: parsing, the next opening, a step that
/// does not fit before the close, clocks that change, excluded dates.
@Suite("maintenance windows: parsing and the arithmetic of when a step may start")
struct MaintenanceWindowTests {
    static let berlin = ZoneRules(
        name: "Europe/Berlin", transitions: [], initialOffset: 3600,
        rule: try! PosixRule(parsing: "CET-1CEST,M3.5.0,M10.5.0/3"))
    static let newYork = ZoneRules(
        name: "America/New_York", transitions: [], initialOffset: -18000,
        rule: try! PosixRule(parsing: "EST5EDT,M3.2.0,M11.1.0"))
    static let sydney = ZoneRules(
        name: "Australia/Sydney", transitions: [], initialOffset: 36000,
        rule: try! PosixRule(parsing: "AEST-10AEDT,M10.1.0,M4.1.0/3"))

    static func zone(_ name: String) throws -> ZoneRules {
        switch name {
        case "Europe/Berlin": berlin
        case "America/New_York": newYork
        case "Australia/Sydney": sydney
        case "UTC": .utc
        default: throw MaintenanceWindow.ParseError("unknown zone \(name)")
        }
    }

    static func window(_ text: String) throws -> MaintenanceWindow { try MaintenanceWindow.parse(text, zone: zone) }

    /// Seconds since 1970 of a UTC date and time.
    static func utc(_ date: String, _ hours: Int64, _ minutes: Int64 = 0) -> Int64 {
        CivilDate(parsing: date)!.days * 86_400 + hours * 3600 + minutes * 60
    }

    @Test(arguments: [
        ("Sat,Sun 02:00 4h Europe/Berlin", "Sun,Sat 02:00 4h Europe/Berlin"),
        ("mon-fri 22:00 90m UTC", "Mon,Tue,Wed,Thu,Fri 22:00 1h30m UTC"),
        ("Fri-Mon 23:30 1h30m UTC", "Sun,Mon,Fri,Sat 23:30 1h30m UTC"),
        ("daily 00:00 168h America/New_York", "daily 00:00 168h America/New_York"),
        ("Wednesday 06:05 1m UTC", "Wed 06:05 1m UTC"),
    ])
    func parsesWindows(text: String, description: String) throws {
        #expect(try Self.window(text).description == description)
    }

    @Test(arguments: [
        ("Sat 02:00 4h", "a window is DAYS HH:MM DURATION ZONE"),
        ("Sat,Funday 02:00 4h UTC", "unknown day 'Funday'"),
        ("Sat 24:00 4h UTC", "start time must be HH:MM from 00:00 to 23:59, got '24:00'"),
        ("Sat 2:00 4h UTC", "start time must be HH:MM"),
        ("Sat 02:00 0m UTC", "duration must be like 4h"),
        ("Sat 02:00 169h UTC", "duration must be like 4h"),
        ("Sat 02:00 30m4h UTC", "duration must be like 4h"),
        ("Sat 02:00 4 UTC", "duration must be like 4h"),
        ("Sat 02:00 4h ../../etc/passwd", "'../../etc/passwd' is not a time zone name"),
        ("Sat 02:00 4h Mars/Olympus", "unknown zone Mars/Olympus"),
    ])
    func refusesBadWindows(text: String, error: String) {
        #expect {
            try Self.window(text)
        } throws: { "\($0)".contains(error) }
    }

    @Test func aDailyWindowLetsAStepStartOnlyIfItFitsBeforeTheClose() throws {
        let schedule = MaintenanceSchedule(windows: [try Self.window("daily 02:00 4h UTC")])
        let day = "2027-01-15"
        // Before the window: wait for today's opening.
        #expect(
            schedule.decide(now: Self.utc(day, 1), needs: 1800)
                == .wait(
                    until: .init(start: Self.utc(day, 2), end: Self.utc(day, 6), zone: .utc),
                    reason: "outside the maintenance windows"))
        // Inside, with room.
        #expect(schedule.decide(now: Self.utc(day, 3), needs: 1800) == .go(closes: Self.utc(day, 6)))
        #expect(schedule.decide(now: Self.utc(day, 5, 30), needs: 1800) == .go(closes: Self.utc(day, 6)))
        // Inside, without room: tomorrow's window.
        #expect(
            schedule.decide(now: Self.utc(day, 5, 45), needs: 1800)
                == .wait(
                    until: .init(start: Self.utc("2027-01-16", 2), end: Self.utc("2027-01-16", 6), zone: .utc),
                    reason: "it needs 30 min and the window closes at Fri 2027-01-15 06:00 UTC (15 min left)"))
        // A step longer than the window never fits.
        #expect(
            schedule.decide(now: Self.utc(day, 3), needs: 5 * 3600)
                == .never(
                    "it needs 5 h 0 min, longer than any maintenance window in the next 400 days (the longest lasts 4 h 0 min)"
                ))
        // No windows: any time.
        #expect(MaintenanceSchedule().decide(now: Self.utc(day, 3), needs: 86_400) == .go(closes: nil))
    }

    /// A whole job walked through a nightly 4 h window: 1 h of stages
    /// with the first node, then 90-minute nodes; each starts only where it
    /// fits, so the third waits for the next night.
    @Test func aJobWalkedThroughTheWindowsParksWhereANodeNoLongerFits() throws {
        let schedule = MaintenanceSchedule(windows: [try Self.window("daily 02:00 4h UTC")])
        let day = "2027-01-15"
        let hour: Int64 = 3600
        // 02:00 + 1 h + 1.5 h = 04:30; the next 1.5 h ends 06:00, which fits; the third waits.
        let walked = schedule.walk(start: Self.utc(day, 2), steps: [hour + 90 * 60, 90 * 60, 90 * 60])
        #expect(walked?.end == Self.utc("2027-01-16", 3, 30))
        #expect(walked?.windows == 2)
        // Started before the window, the job's first wait is its start, not a park.
        #expect(schedule.walk(start: Self.utc(day, 1), steps: [hour])?.windows == 1)
        #expect(schedule.walk(start: Self.utc(day, 1), steps: [hour])?.end == Self.utc(day, 3))
        // A node longer than any window: never.
        #expect(schedule.walk(start: Self.utc(day, 2), steps: [hour, 5 * hour]) == nil)
        // No windows: straight through.
        #expect(
            MaintenanceSchedule().walk(start: 0, steps: [hour, hour]).map { [$0.end, Int64($0.windows)] } == [
                2 * hour, 1,
            ])
    }

    /// The nights the clocks change in Berlin: a 02:30 start that does not
    /// exist opens at 03:30 local (01:30 UTC), one that happens twice at
    /// its first occurrence (00:30 UTC); a week later it is 01:30 UTC again.
    @Test func aStartTimeOnTheNightsClocksChangeOpensWhereMktimePutsIt() throws {
        let schedule = MaintenanceSchedule(windows: [try Self.window("Sun 02:30 2h Europe/Berlin")])
        let openings = schedule.spans(from: Self.utc("2027-03-20", 0)).prefix(2).map(\.start)
        #expect(openings == [Self.utc("2027-03-21", 1, 30), Self.utc("2027-03-28", 0, 30) + 3600])
        #expect(schedule.spans(from: Self.utc("2027-03-28", 0))[0].end == Self.utc("2027-03-28", 3, 30))
        let autumn = schedule.spans(from: Self.utc("2027-10-30", 0)).prefix(2).map(\.start)
        #expect(autumn == [Self.utc("2027-10-31", 0, 30), Self.utc("2027-11-07", 1, 30)])
        #expect(
            MaintenanceSchedule.local(Self.utc("2027-10-31", 0, 30), Self.berlin)
                == "Sun 2027-10-31 02:30 Europe/Berlin")
        #expect(
            MaintenanceSchedule.local(Self.utc("2027-10-31", 1, 30), Self.berlin)
                == "Sun 2027-10-31 02:30 Europe/Berlin")
    }

    /// Southern hemisphere: Sydney's summer time spans the new year.
    @Test func aSouthernZoneKeepsItsSummerTimeAcrossTheNewYear() throws {
        let schedule = MaintenanceSchedule(windows: [try Self.window("daily 03:00 1h Australia/Sydney")])
        // 03:00 AEDT (+11) in January, 03:00 AEST (+10) in July.
        #expect(schedule.spans(from: Self.utc("2027-01-10", 0))[0].start == Self.utc("2027-01-10", 16))
        #expect(schedule.spans(from: Self.utc("2027-07-10", 0))[0].start == Self.utc("2027-07-10", 17))
    }

    @Test func anExcludedDateDoesNotOpen() throws {
        let schedule = MaintenanceSchedule(
            windows: [try Self.window("daily 02:00 4h UTC")], exclusions: [CivilDate(parsing: "2027-01-16")!])
        guard case let .wait(until, _) = schedule.decide(now: Self.utc("2027-01-15", 7), needs: 600) else {
            Issue.record("expected a wait")
            return
        }
        #expect(until.start == Self.utc("2027-01-17", 2))
        #expect(schedule.summary == "daily 02:00 4h UTC; not on 2027-01-16")
    }

    /// Windows that overlap or touch are one stretch: a step may span both.
    @Test func windowsThatTouchMakeOneStretch() throws {
        let schedule = MaintenanceSchedule(windows: [
            try Self.window("daily 22:00 4h UTC"), try Self.window("daily 02:00 2h UTC"),
        ])
        #expect(
            schedule.decide(now: Self.utc("2027-01-15", 23), needs: 4 * 3600)
                == .go(closes: Self.utc("2027-01-16", 4)))
    }

    /// A window that opens late on a Saturday in New York closes on Sunday,
    /// and the range Fri-Mon wraps over the weekend.
    @Test func aWindowRunsPastMidnightAndRangesWrap() throws {
        let schedule = MaintenanceSchedule(windows: [try Self.window("Sat 23:00 4h America/New_York")])
        // 2027-01-16 is a Saturday; 23:00 EST is 04:00 UTC on Sunday.
        #expect(
            schedule.decide(now: Self.utc("2027-01-17", 6), needs: 3600)
                == .go(closes: Self.utc("2027-01-17", 8)))
        #expect(try MaintenanceWindow.weekdays("Fri-Mon") == [5, 6, 0, 1])
    }

    @Test(arguments: [
        ("2027-02-29", false), ("2028-02-29", true), ("2027-13-01", false), ("2027-1-01", false),
        ("1970-01-01", true), ("２０２７-01-01", false),
    ])
    func parsesCivilDates(text: String, valid: Bool) {
        #expect((CivilDate(parsing: text) != nil) == valid)
    }

    @Test func civilDatesRoundTripAndKnowTheirWeekday() {
        for days in stride(from: Int64(-800_000), through: 800_000, by: 997) {
            let date = CivilDate(days: days)
            #expect(date.days == days)
        }
        #expect(CivilDate.weekday(days: CivilDate(parsing: "2027-01-16")!.days) == 6)
        #expect(CivilDate.weekday(days: -1) == 3)
    }
}

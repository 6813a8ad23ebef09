/// One recurring maintenance window: the days it opens on, its local start
/// time, how long it stays open and the time zone it is read in, such as
/// `Sat,Sun 02:00 4h Europe/Berlin` or `Mon-Fri 22:00 6h30m UTC`.
///
/// The days are the local days the window opens on (a window opening at
/// 23:00 for 4 h closes the next day). The duration is elapsed time: on
/// the night clocks change, a 02:00 window that lasts 4 h still lasts 4 h.
/// A start time the clocks skip (02:30 when they jump from 02:00 to 03:00)
/// opens at the instant the C library's `mktime` gives it (03:30); one
/// they pass twice opens at its first occurrence.
public struct MaintenanceWindow: Sendable, Equatable, CustomStringConvertible {
    /// 0 Sunday … 6 Saturday.
    public let weekdays: Set<Int>
    /// Seconds after local midnight.
    public let start: Int64
    /// Seconds the window stays open.
    public let duration: Int64
    public let zone: ZoneRules

    static let dayNames = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    static let longest: Int64 = 7 * 86_400

    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    public init(weekdays: Set<Int>, start: Int64, duration: Int64, zone: ZoneRules) {
        self.weekdays = weekdays
        self.start = start
        self.duration = duration
        self.zone = zone
    }

    /// Parses `DAYS HH:MM DURATION ZONE`: DAYS is `daily` or a comma list
    /// of days and ranges (`Mon-Fri,Sun`), DURATION like `4h`, `90m` or
    /// `1h30m` (1 minute to 7 days), ZONE a name under the zoneinfo folder,
    /// which `zone` reads.
    public static func parse(
        _ text: String, zone lookup: (String) throws -> ZoneRules
    ) throws -> MaintenanceWindow {
        let words = text.split(whereSeparator: \.isWhitespace).map(String.init)
        let form = "a window is DAYS HH:MM DURATION ZONE, such as 'Sat,Sun 02:00 4h Europe/Berlin'"
        guard words.count == 4 else { throw ParseError("\(form); got '\(text)'") }
        let days = try weekdays(words[0])
        guard let start = clockTime(words[1]) else {
            throw ParseError("start time must be HH:MM from 00:00 to 23:59, got '\(words[1])'")
        }
        guard let duration = Self.duration(words[2]), (60...longest).contains(duration) else {
            throw ParseError("duration must be like 4h, 90m or 1h30m, from 1m to 168h, got '\(words[2])'")
        }
        guard ZoneName.isValid(words[3]) else { throw ParseError("'\(words[3])' is not a time zone name") }
        return MaintenanceWindow(weekdays: days, start: start, duration: duration, zone: try lookup(words[3]))
    }

    static func weekdays(_ text: String) throws -> Set<Int> {
        if ["daily", "*"].contains(text.lowercased()) { return Set(0..<7) }
        var days = Set<Int>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let ends = part.split(separator: "-", omittingEmptySubsequences: false).map { day(String($0)) }
            switch ends.count {
            case 1:
                guard let day = ends[0] else { throw ParseError("unknown day '\(part)' (use Mon, Tue, … or daily)") }
                days.insert(day)
            case 2:
                guard let first = ends[0], let last = ends[1] else {
                    throw ParseError("unknown day in '\(part)' (use Mon, Tue, … or daily)")
                }
                // Fri-Mon wraps over the weekend.
                var day = first
                while true {
                    days.insert(day)
                    if day == last { break }
                    day = (day + 1) % 7
                }
            default: throw ParseError("'\(part)' is not a day or a range of days")
            }
        }
        return days
    }

    private static func day(_ text: String) -> Int? {
        let lower = text.lowercased()
        guard lower.count >= 3 else { return nil }
        let full = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
        return full.firstIndex { $0 == lower || $0.prefix(3) == lower }
    }

    private static func clockTime(_ text: String) -> Int64? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 2, parts[1].count == 2, let hours = Int64(parts[0]),
            let minutes = Int64(parts[1]), (0..<24).contains(hours), (0..<60).contains(minutes)
        else { return nil }
        return hours * 3600 + minutes * 60
    }

    /// `4h`, `90m`, `1h30m`: seconds.
    static func duration(_ text: String) -> Int64? {
        var total: Int64 = 0
        var number: Int64?
        var units = ""
        for character in text {
            if let digit = character.wholeNumberValue, character.isASCII {
                number = (number ?? 0) * 10 + Int64(digit)
                if number! > 1_000_000 { return nil }
            } else if let value = number, ["h", "m"].contains(character), !units.contains(character),
                units.isEmpty || (units == "h" && character == "m")
            {
                total += value * (character == "h" ? 3600 : 60)
                units.append(character)
                number = nil
            } else {
                return nil
            }
        }
        return number == nil && !units.isEmpty ? total : nil
    }

    public var description: String {
        let days: String
        if weekdays.count == 7 {
            days = "daily"
        } else {
            days = (0..<7).filter(weekdays.contains).map { Self.dayNames[$0] }.joined(separator: ",")
        }
        let hours = start / 3600
        let minutes = (start % 3600) / 60
        let length =
            duration % 3600 == 0
            ? "\(duration / 3600)h"
            : duration < 3600
                ? "\(duration / 60)m"
                : "\(duration / 3600)h\((duration % 3600) / 60)m"
        return "\(days) \(hours < 10 ? "0" : "")\(hours):\(minutes < 10 ? "0" : "")\(minutes) \(length) \(zone.name)"
    }
}

/// A time zone name as found under the zoneinfo folder: letters, digits,
/// `_`, `+`, `-`, with `/` between parts, and never `..`.
public enum ZoneName {
    public static func isValid(_ name: String) -> Bool {
        guard !name.isEmpty, name.count <= 64 else { return false }
        return name.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { part in
            !part.isEmpty && part != "." && part != ".."
                && part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_+-".contains($0)) }
                && part.first != "-"
        }
    }
}

/// When a job may change nodes: inside one of the windows, never on an
/// excluded date. No windows means any time.
public struct MaintenanceSchedule: Sendable, Equatable {
    public var windows: [MaintenanceWindow]
    /// Local dates (in each window's zone) on which a window does not open.
    public var exclusions: Set<CivilDate>

    public init(windows: [MaintenanceWindow] = [], exclusions: Set<CivilDate> = []) {
        self.windows = windows
        self.exclusions = exclusions
    }

    /// No window is set: a job runs whenever it is dispatched.
    public var isAlways: Bool { windows.isEmpty }

    /// A stretch of time the schedule is open, and the zone to name it in.
    public struct Span: Sendable, Equatable {
        public var start: Int64
        public var end: Int64
        public var zone: ZoneRules
    }

    /// What a job about to start a step of `needs` seconds at `now` does.
    public enum Verdict: Sendable, Equatable {
        /// Go: the step fits before the window closes (`closes`, nil
        /// without windows).
        case go(closes: Int64?)
        /// Wait until `opens`; the text says why.
        case wait(until: Span, reason: String)
        /// No window in the coming year is long enough for the step.
        case never(String)
    }

    /// How far ahead a window is looked for.
    static let horizonDays: Int64 = 400

    /// The open spans from the local day before `from` to `horizonDays`
    /// later: every window's openings, overlapping or touching ones merged.
    public func spans(from: Int64) -> [Span] {
        let firstDay = floorDivide(from, 86_400) - 8
        var spans: [Span] = []
        for window in windows {
            for day in firstDay...(firstDay + Self.horizonDays + 8) {
                guard window.weekdays.contains(CivilDate.weekday(days: day)),
                    !exclusions.contains(CivilDate(days: day))
                else { continue }
                let start = window.zone.instant(local: day * 86_400 + window.start)
                spans.append(Span(start: start, end: start + window.duration, zone: window.zone))
            }
        }
        spans.sort { ($0.start, $0.end) < ($1.start, $1.end) }
        var merged: [Span] = []
        for span in spans where span.end > from {
            if let last = merged.last, span.start <= last.end {
                merged[merged.count - 1].end = max(last.end, span.end)
            } else {
                merged.append(span)
            }
        }
        return merged
    }

    /// Whether a step of `needs` seconds may start at `now`.
    public func decide(now: Int64, needs: Int64) -> Verdict {
        guard !isAlways else { return .go(closes: nil) }
        let spans = spans(from: now)
        let current = spans.first { $0.start <= now && now < $0.end }
        if let current, current.end - now >= needs { return .go(closes: current.end) }
        guard let next = spans.first(where: { $0.start > now && $0.end - $0.start >= needs }) else {
            let longest = windows.map(\.duration).max() ?? 0
            return .never(
                spans.isEmpty
                    ? "no maintenance window opens in the next \(Self.horizonDays) days (every one falls on an excluded date)"
                    : "it needs \(Self.minutes(needs)), longer than any maintenance window in the next \(Self.horizonDays) days (the longest lasts \(Self.minutes(longest)))"
            )
        }
        let reason: String
        if let current {
            reason =
                "it needs \(Self.minutes(needs)) and the window closes at \(Self.local(current.end, current.zone)) "
                + "(\(Self.minutes(current.end - now)) left)"
        } else {
            reason = "outside the maintenance windows"
        }
        return .wait(until: next, reason: reason)
    }

    /// Walks a job's steps (their seconds, in order) through the windows
    /// from `start`, each starting only where it fits before its window
    /// closes, as the job's check before each node decides: when the last
    /// ends, and in how many windows; nil when a step fits in none.
    public func walk(start: Int64, steps: [Int64]) -> (end: Int64, windows: Int)? {
        var now = start
        var windows = 1
        for step in steps {
            switch decide(now: now, needs: step) {
            case .go: now += step
            case let .wait(span, _):
                windows += now == start ? 0 : 1
                now = span.start + step
            case .never: return nil
            }
        }
        return (now, windows)
    }

    /// `Sat 2027-01-16 02:00 Europe/Berlin`.
    public static func local(_ time: Int64, _ zone: ZoneRules) -> String {
        let local = time + Int64(zone.offset(at: time))
        let days = floorDivide(local, 86_400)
        let seconds = local - days * 86_400
        let hours = seconds / 3600
        let minutes = (seconds % 3600) / 60
        return "\(MaintenanceWindow.dayNames[CivilDate.weekday(days: days)]) \(CivilDate(days: days)) "
            + "\(hours < 10 ? "0" : "")\(hours):\(minutes < 10 ? "0" : "")\(minutes) \(zone.name)"
    }

    public static func minutes(_ seconds: Int64) -> String {
        let minutes = (seconds + 59) / 60
        return minutes < 90 ? "\(minutes) min" : "\(minutes / 60) h \(minutes % 60) min"
    }

    /// The windows and exclusions, for people.
    public var summary: String {
        guard !isAlways else { return "none: jobs run whenever they are dispatched" }
        let excluded = exclusions.sorted().map(\.description)
        return windows.map(\.description).joined(separator: "; ")
            + (excluded.isEmpty ? "" : "; not on \(excluded.joined(separator: ", "))")
    }
}

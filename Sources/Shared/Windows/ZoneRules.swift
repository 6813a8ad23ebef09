/// A time zone's offsets from UTC, read from its TZif file (RFC 8536, the
/// files under `/usr/share/zoneinfo`): the table of transitions, and after
/// the last one the POSIX rule in the file's footer. Pure: the file's
/// bytes in, offsets out, so maintenance windows are computed the way the
/// C library computes local time, without Foundation's ICU.
public struct ZoneRules: Sendable, Equatable {
    /// The zone's name, as asked for (`Europe/Berlin`, `UTC`).
    public let name: String
    /// Transition times (seconds since 1970) and the UTC offset from each on, ascending.
    let transitions: [(at: Int64, offset: Int32)]
    /// The offset before the first transition.
    let initialOffset: Int32
    /// The footer's rule for times after the last transition.
    let rule: PosixRule?

    public static func == (lhs: ZoneRules, rhs: ZoneRules) -> Bool {
        lhs.name == rhs.name && lhs.initialOffset == rhs.initialOffset && lhs.rule == rhs.rule
            && lhs.transitions.elementsEqual(rhs.transitions) { $0.at == $1.at && $0.offset == $1.offset }
    }

    /// UTC itself.
    public static let utc = ZoneRules(name: "UTC", transitions: [], initialOffset: 0, rule: nil)

    init(name: String, transitions: [(at: Int64, offset: Int32)], initialOffset: Int32, rule: PosixRule?) {
        self.name = name
        self.transitions = transitions
        self.initialOffset = initialOffset
        self.rule = rule
    }

    /// Seconds east of UTC at `time` (seconds since 1970).
    public func offset(at time: Int64) -> Int32 {
        if let last = transitions.last, time >= last.at, let rule { return rule.offset(at: time) }
        guard let first = transitions.first else { return rule?.offset(at: time) ?? initialOffset }
        if time < first.at { return initialOffset }
        var low = 0
        var high = transitions.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if transitions[middle].at <= time { low = middle } else { high = middle - 1 }
        }
        return transitions[low].offset
    }

    /// The instant a local wall-clock time (seconds since 1970 as if the
    /// zone were UTC) names. A time that occurs twice (clocks go back) is
    /// its first occurrence; a time that does not exist (clocks go
    /// forward) is read with the offset before the change, so 02:30 on the
    /// night clocks jump from 02:00 to 03:00 is 03:30, as `mktime` does.
    public func instant(local: Int64) -> Int64 {
        let before = offset(at: local - 86_400)
        let after = offset(at: local + 86_400)
        let candidates = [Int64(before), Int64(after)].map { local - $0 }.filter {
            Int64(offset(at: $0)) == local - $0
        }
        return candidates.min() ?? local - Int64(before)
    }

    // MARK: - Reading a TZif file

    public struct FormatError: Error, CustomStringConvertible, Equatable {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// Parses a TZif file's bytes (version 1, 2, 3 or 4).
    public static func parse(_ bytes: [UInt8], name: String) throws -> ZoneRules {
        var reader = Reader(bytes: bytes)
        let header = try reader.header()
        guard header.version >= 2 else {
            let table = try reader.table(header, timeSize: 4)
            return ZoneRules(
                name: name, transitions: table.transitions, initialOffset: table.initialOffset, rule: nil)
        }
        try reader.skip(header.dataSize(timeSize: 4))
        let second = try reader.header()
        let table = try reader.table(second, timeSize: 8)
        let footer = try reader.footer()
        let rule = try footer.isEmpty ? nil : PosixRule(parsing: footer)
        return ZoneRules(name: name, transitions: table.transitions, initialOffset: table.initialOffset, rule: rule)
    }

    private struct Header {
        var version: Int
        var isUTCCount, isStandardCount, leapCount, timeCount, typeCount, characterCount: Int

        func dataSize(timeSize: Int) -> Int {
            timeCount * timeSize + timeCount + typeCount * 6 + characterCount + leapCount * (timeSize + 4)
                + isStandardCount + isUTCCount
        }
    }

    private struct Reader {
        let bytes: [UInt8]
        var position = 0

        mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
            guard count >= 0, position + count <= bytes.count else { throw FormatError("truncated TZif data") }
            defer { position += count }
            return bytes[position..<position + count]
        }

        mutating func skip(_ count: Int) throws { _ = try take(count) }

        mutating func integer(_ size: Int) throws -> Int64 {
            let raw = try take(size).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            // Sign-extends a 4-byte value.
            return size == 4 ? Int64(Int32(bitPattern: UInt32(truncatingIfNeeded: raw))) : Int64(bitPattern: raw)
        }

        mutating func header() throws -> Header {
            guard Array(try take(4)) == Array("TZif".utf8) else { throw FormatError("not a TZif file") }
            let versionByte = try take(1).first ?? 0
            let version = versionByte == 0 ? 1 : Int(versionByte) - Int(UInt8(ascii: "0"))
            guard (1...9).contains(version) else { throw FormatError("unknown TZif version") }
            try skip(15)
            var counts: [Int] = []
            for _ in 0..<6 {
                let count = try integer(4)
                guard (0...1_000_000).contains(count) else { throw FormatError("implausible TZif count \(count)") }
                counts.append(Int(count))
            }
            guard counts[4] >= 1 else { throw FormatError("TZif file without a local time type") }
            return Header(
                version: version, isUTCCount: counts[0], isStandardCount: counts[1], leapCount: counts[2],
                timeCount: counts[3], typeCount: counts[4], characterCount: counts[5])
        }

        mutating func table(
            _ header: Header, timeSize: Int
        ) throws -> (transitions: [(at: Int64, offset: Int32)], initialOffset: Int32) {
            var times: [Int64] = []
            for _ in 0..<header.timeCount { times.append(try integer(timeSize)) }
            let indices = Array(try take(header.timeCount))
            var offsets: [Int32] = []
            for _ in 0..<header.typeCount {
                offsets.append(Int32(truncatingIfNeeded: try integer(4)))
                try skip(2)
            }
            try skip(header.characterCount + header.leapCount * (timeSize + 4))
            try skip(header.isStandardCount + header.isUTCCount)
            var transitions: [(at: Int64, offset: Int32)] = []
            for (time, index) in zip(times, indices) {
                guard Int(index) < offsets.count else { throw FormatError("TZif transition names a missing type") }
                transitions.append((time, offsets[Int(index)]))
            }
            return (transitions, offsets[0])
        }

        mutating func footer() throws -> String {
            guard position < bytes.count else { return "" }
            guard try take(1).first == UInt8(ascii: "\n") else { throw FormatError("TZif footer missing") }
            let rest = bytes[position...]
            guard let end = rest.firstIndex(of: UInt8(ascii: "\n")) else { throw FormatError("TZif footer unended") }
            return String(decoding: rest[..<end], as: UTF8.self)
        }
    }
}

/// A POSIX `TZ` rule such as `CET-1CEST,M3.5.0,M10.5.0/3`: a standard
/// offset, and optionally a daylight offset with the dates it starts and
/// ends each year (RFC 8536 section 3.3, with its hours from -167 to 167).
struct PosixRule: Sendable, Equatable {
    enum Day: Sendable, Equatable {
        /// `Jn`: day 1 to 365, February 29 never counted.
        case julian(Int)
        /// `n`: day 0 to 365, February 29 counted in leap years.
        case zeroBased(Int)
        /// `Mm.w.d`: weekday `d` (0 Sunday) of week `w` (5 the last) of month `m`.
        case monthWeekDay(month: Int, week: Int, weekday: Int)
    }

    struct Change: Sendable, Equatable {
        var day: Day
        /// Seconds after local midnight, in the time in effect before the change.
        var time: Int64
    }

    /// Seconds east of UTC.
    var standard: Int32
    var daylight: (offset: Int32, start: Change, end: Change)?

    static func == (lhs: PosixRule, rhs: PosixRule) -> Bool {
        lhs.standard == rhs.standard && lhs.daylight?.offset == rhs.daylight?.offset
            && lhs.daylight?.start == rhs.daylight?.start && lhs.daylight?.end == rhs.daylight?.end
    }

    init(parsing text: String) throws {
        var scanner = Scanner(Array(text.utf8))
        try scanner.name()
        guard let westOfUTC = try scanner.offset() else { throw ZoneRules.FormatError("no offset in TZ rule \(text)") }
        standard = Int32(-westOfUTC)
        if scanner.atEnd {
            daylight = nil
            return
        }
        try scanner.name()
        let daylightOffset = try scanner.offset().map { Int32(-$0) } ?? standard + 3600
        guard scanner.consume(","), let start = try scanner.change(), scanner.consume(","),
            let end = try scanner.change(), scanner.atEnd
        else { throw ZoneRules.FormatError("unsupported TZ rule \(text)") }
        daylight = (daylightOffset, start, end)
    }

    func offset(at time: Int64) -> Int32 {
        guard let daylight else { return standard }
        let year = CivilDate(days: floorDivide(time + Int64(standard), 86_400)).year
        let start = instant(of: daylight.start, year: year, offsetBefore: standard)
        let end = instant(of: daylight.end, year: year, offsetBefore: daylight.offset)
        let inDaylight = start < end ? (time >= start && time < end) : !(time >= end && time < start)
        return inDaylight ? daylight.offset : standard
    }

    private func instant(of change: Change, year: Int64, offsetBefore: Int32) -> Int64 {
        let day: Int64
        switch change.day {
        case let .julian(n):
            let leap = CivilDate.isLeap(year) && n >= 60 ? 1 : 0
            day = CivilDate(year: year, month: 1, day: 1).days + Int64(n - 1 + leap)
        case let .zeroBased(n):
            day = CivilDate(year: year, month: 1, day: 1).days + Int64(n)
        case let .monthWeekDay(month, week, weekday):
            let first = CivilDate(year: year, month: month, day: 1).days
            var candidate = first + Int64((weekday - CivilDate.weekday(days: first) + 7) % 7) + Int64(week - 1) * 7
            let nextMonth =
                month == 12
                ? CivilDate(year: year + 1, month: 1, day: 1)
                : CivilDate(
                    year: year, month: month + 1, day: 1)
            while candidate >= nextMonth.days { candidate -= 7 }
            day = candidate
        }
        return day * 86_400 + change.time - Int64(offsetBefore)
    }

    private struct Scanner {
        let bytes: [UInt8]
        var position = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { position == bytes.count }
        var next: UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func consume(_ character: Character) -> Bool {
            guard let next, next == character.asciiValue else { return false }
            position += 1
            return true
        }

        mutating func name() throws {
            if consume("<") {
                while let next, next != UInt8(ascii: ">") { position += 1 }
                guard consume(">") else { throw ZoneRules.FormatError("unended <name> in TZ rule") }
                return
            }
            let start = position
            while let next, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(next | 0x20) { position += 1 }
            guard position - start >= 3 else { throw ZoneRules.FormatError("short zone name in TZ rule") }
        }

        mutating func number() -> Int64? {
            var value: Int64?
            while let next, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(next) {
                value = (value ?? 0) * 10 + Int64(next - UInt8(ascii: "0"))
                position += 1
                if value! > 100_000 { return nil }
            }
            return value
        }

        /// `[+-]hh[:mm[:ss]]` in seconds, or nil when there is none here.
        mutating func offset() throws -> Int64? {
            let negative = consume("-")
            if !negative { _ = consume("+") }
            guard let hours = number() else { return nil }
            var seconds = hours * 3600
            if consume(":") {
                guard let minutes = number() else { throw ZoneRules.FormatError("bad minutes in TZ rule") }
                seconds += minutes * 60
                if consume(":") {
                    guard let secs = number() else { throw ZoneRules.FormatError("bad seconds in TZ rule") }
                    seconds += secs
                }
            }
            guard hours <= 167 else { throw ZoneRules.FormatError("hours out of range in TZ rule") }
            return negative ? -seconds : seconds
        }

        mutating func change() throws -> Change? {
            let day: Day
            if consume("M") {
                guard let month = number(), consume("."), let week = number(), consume("."), let weekday = number(),
                    (1...12).contains(month), (1...5).contains(week), (0...6).contains(weekday)
                else { return nil }
                day = .monthWeekDay(month: Int(month), week: Int(week), weekday: Int(weekday))
            } else if consume("J") {
                guard let n = number(), (1...365).contains(n) else { return nil }
                day = .julian(Int(n))
            } else {
                guard let n = number(), (0...365).contains(n) else { return nil }
                day = .zeroBased(Int(n))
            }
            var time: Int64 = 7200
            if consume("/") {
                guard let given = try offset() else { return nil }
                time = given
            }
            return Change(day: day, time: time)
        }
    }
}

/// A date in the proleptic Gregorian calendar, and its day number since
/// 1970-01-01 (Howard Hinnant's algorithms: exact, no tables).
public struct CivilDate: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var year: Int64
    public var month: Int
    public var day: Int

    public init(year: Int64, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    public init(days: Int64) {
        let z = days + 719_468
        let era = floorDivide(z, 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        day = Int(dayOfYear - (153 * shiftedMonth + 2) / 5 + 1)
        month = Int(shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9)
        year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    }

    /// `YYYY-MM-DD`, a real date.
    public init?(parsing text: some StringProtocol) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            parts.allSatisfy({ $0.allSatisfy(\.isASCII) }),
            let year = Int64(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
            (1...12).contains(month), day >= 1
        else { return nil }
        self.init(year: year, month: month, day: day)
        guard CivilDate(days: days) == self else { return nil }
    }

    /// Days since 1970-01-01.
    public var days: Int64 {
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = floorDivide(shiftedYear, 400)
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = Int64((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1)
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// 0 Sunday … 6 Saturday.
    public static func weekday(days: Int64) -> Int { Int(floorModulo(days + 4, 7)) }

    public static func isLeap(_ year: Int64) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    public static func < (lhs: CivilDate, rhs: CivilDate) -> Bool { lhs.days < rhs.days }

    public var description: String {
        let pad = { (value: Int) in value < 10 ? "0\(value)" : "\(value)" }
        return "\(year)-\(pad(month))-\(pad(day))"
    }
}

func floorDivide(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }
func floorModulo(_ a: Int64, _ b: Int64) -> Int64 { a - floorDivide(a, b) * b }

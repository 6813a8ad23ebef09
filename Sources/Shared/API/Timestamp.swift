/// RFC 3339 timestamps in UTC with milliseconds (`2026-12-05T17:56:18.123Z`),
/// the form the API writes every time in, computed from seconds since the
/// epoch by arithmetic alone: Foundation's ISO 8601 format style goes
/// through a calendar and cost a tenth of every job read. The text is the
/// style's to the millisecond: like `Date`, the time is taken relative to
/// 2001-01-01 and its fraction of a second truncated.
public enum Timestamp {
    public static func rfc3339(_ seconds: Double) -> String {
        let sinceReference = seconds - 978_307_200
        let whole = sinceReference.rounded(.down)
        let fraction = Int64((sinceReference - whole) * 1000)
        let milliseconds = (Int64(whole) + 978_307_200) * 1000 + fraction
        let (days, dayMilliseconds) = floorDivision(milliseconds, 86_400_000)
        let (year, month, day) = civil(days)
        let secondsOfDay = dayMilliseconds / 1000
        var text = ""
        text.reserveCapacity(24)
        append(year, 4, to: &text)
        text += "-"
        append(month, 2, to: &text)
        text += "-"
        append(day, 2, to: &text)
        text += "T"
        append(secondsOfDay / 3600, 2, to: &text)
        text += ":"
        append(secondsOfDay / 60 % 60, 2, to: &text)
        text += ":"
        append(secondsOfDay % 60, 2, to: &text)
        text += "."
        append(dayMilliseconds % 1000, 3, to: &text)
        text += "Z"
        return text
    }

    private static func floorDivision(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let quotient = value / divisor
        let remainder = value % divisor
        return remainder < 0 ? (quotient - 1, remainder + divisor) : (quotient, remainder)
    }

    /// Year, month and day of a day count since 1970-01-01 (Howard
    /// Hinnant's `civil_from_days`, proleptic Gregorian calendar).
    static func civil(_ days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func append(_ value: Int64, _ width: Int, to text: inout String) {
        let digits = String(value)
        if digits.count < width { text += String(repeating: "0", count: width - digits.count) }
        text += digits
    }
}

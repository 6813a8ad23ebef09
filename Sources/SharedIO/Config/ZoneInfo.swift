import FoundationEssentials
public import Shared

/// Reads time zones from the zoneinfo folder (`TZDIR`, else
/// `/usr/share/zoneinfo`, Debian's `tzdata`), as the C library does.
public enum ZoneInfo {
    public static func rules(named name: String, environment: [String: String]) throws(SettingsError) -> ZoneRules {
        guard ZoneName.isValid(name) else { throw SettingsError("'\(name)' is not a time zone name") }
        let folder = environment["TZDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/usr/share/zoneinfo"
        let path = folder + "/" + name
        guard let data = FileManager.default.contents(atPath: path) else {
            if ["UTC", "Etc/UTC"].contains(name) { return .utc }
            throw SettingsError("time zone \(name): cannot read \(path) (is the tzdata package installed?)")
        }
        do { return try ZoneRules.parse(Array(data), name: name) } catch {
            throw SettingsError("time zone \(name): \(path): \(error)")
        }
    }

    /// `--maintenance-window` and `--maintenance-exclude` (flags, else
    /// their variables) as a schedule, each zone read from the zoneinfo
    /// folder; an exclusion without a window is a mistake.
    public static func schedule(
        windows: [String]?, exclude: [String]?, _ reader: OptionReader, environment: [String: String]
    ) throws -> MaintenanceSchedule {
        let schedule = MaintenanceSchedule(
            windows: try SharedOptions.maintenanceWindow.read(windows, reader).map { text in
                do {
                    return try MaintenanceWindow.parse(text) { try rules(named: $0, environment: environment) }
                } catch { throw SettingsError("maintenance-window: \(error)") }
            },
            exclusions: Set(try SharedOptions.maintenanceExclude.read(exclude, reader)))
        if schedule.isAlways, !schedule.exclusions.isEmpty {
            throw SettingsError("maintenance-exclude needs at least one maintenance-window")
        }
        return schedule
    }
}

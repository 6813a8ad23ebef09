/// Combines a command's flags with `K8SUP_*` environment variables and
/// defaults, and validates each value. A flag wins over the environment; an
/// empty variable counts as unset. Every error names the option.
public struct OptionReader: Sendable {
    public static let prefix = "K8SUP_"
    public let environment: [String: String]

    public init(environment: [String: String]) { self.environment = environment }

    /// The flag, else `K8SUP_<NAME>`, else nil.
    public func value(_ flag: String?, _ name: String) -> String? {
        if let flag { return flag }
        let fromEnvironment = environment[Self.prefix + name]
        return fromEnvironment?.isEmpty == true ? nil : fromEnvironment
    }

    public func integer(
        _ flag: Int?, _ name: String, default fallback: Int, range: ClosedRange<Int>
    ) throws(SettingsError)
        -> Int
    {
        let result: Int
        if let flag {
            result = flag
        } else if let text = value(nil, name) {
            guard let parsed = Int(text) else { throw SettingsError("\(Self.prefix)\(name)=\(text) is not a number") }
            result = parsed
        } else {
            result = fallback
        }
        guard range.contains(result) else {
            throw SettingsError("\(Self.optionName(name)) must be in \(range), got \(result)")
        }
        return result
    }

    /// A duration given in seconds (decimals allowed).
    public func seconds(
        _ flag: Double?, _ name: String, default fallback: Double, range: ClosedRange<Double>
    )
        throws(SettingsError) -> Duration
    {
        let result: Double
        if let flag {
            result = flag
        } else if let text = value(nil, name) {
            guard let parsed = Double(text) else {
                throw SettingsError("\(Self.prefix)\(name)=\(text) is not a number of seconds")
            }
            result = parsed
        } else {
            result = fallback
        }
        guard range.contains(result), result.isFinite else {
            throw SettingsError("\(Self.optionName(name)) must be in \(range) seconds, got \(result)")
        }
        return .milliseconds(Int64((result * 1000).rounded()))
    }

    public func boolean(_ flag: Bool?, _ name: String, default fallback: Bool = false) throws(SettingsError) -> Bool {
        if let flag { return flag }
        guard let text = value(nil, name) else { return fallback }
        switch text.lowercased() {
        case "true", "1", "yes": return true
        case "false", "0", "no": return false
        default: throw SettingsError("\(Self.prefix)\(name)=\(text) is not true or false")
        }
    }

    /// An http(s) URL without its trailing slash, or nil when unset or empty.
    public func url(_ flag: String?, _ name: String) throws(SettingsError) -> String? {
        guard let text = value(flag, name), !text.isEmpty else { return nil }
        guard text.hasPrefix("http://") || text.hasPrefix("https://") else {
            throw SettingsError("\(Self.optionName(name)) must be an http(s) URL, got \(text)")
        }
        return text.hasSuffix("/") ? String(text.dropLast()) : text
    }

    /// `SSH_KEY_FILE` → `ssh-key-file`, the flag's spelling.
    public static func optionName(_ name: String) -> String {
        String(name.lowercased().map { $0 == "_" ? "-" : $0 })
    }
}

/// A configuration value that cannot be used, and why.
public struct SettingsError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

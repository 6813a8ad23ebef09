import FoundationEssentials
public import Shared

/// Secrets come from files: reads a bearer token, trimmed of surrounding
/// whitespace. An unreadable or empty file is an error naming the file,
/// never the token.
public enum TokenFile {
    public static func read(_ path: String, what: String = "API token") throws(SettingsError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SettingsError("cannot read the \(what) file \(path)")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingWhitespace()
        guard !token.isEmpty else { throw SettingsError("the \(what) file \(path) is empty") }
        return token
    }
}

/// Reads network addresses given as options: `host`, `host:port` or
/// `[v6]:port`. Every error names the option.
public enum HostPort {
    /// - Parameters:
    ///   - option: the option's name, for error messages (`master-address`).
    ///   - defaultPort: the port when none is given; nil makes the port required.
    ///   - ports: the ports allowed (`0…65535` lets a server pick one).
    public static func parse(
        _ address: String, option: String, defaultPort: Int?, ports: ClosedRange<Int> = 1...65535
    ) throws(SettingsError) -> (host: String, port: Int) {
        let forms = defaultPort == nil ? "host:port or [v6]:port" : "host, host:port or [v6]:port"
        let host: Substring
        let port: Substring?
        if address.hasPrefix("[") {
            guard let close = address.firstIndex(of: "]") else {
                throw SettingsError("\(option) \(address) has an unclosed [")
            }
            host = address[address.index(after: address.startIndex)..<close]
            let rest = address[address.index(after: close)...]
            guard rest.isEmpty || rest.hasPrefix(":") else {
                throw SettingsError("\(option) must be \(forms), got \(address)")
            }
            port = rest.isEmpty ? nil : rest.dropFirst()
        } else {
            let parts = address.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2, !parts[0].isEmpty else {
                throw SettingsError("\(option) must be \(forms), got \(address)")
            }
            host = parts[0]
            port = parts.count == 2 ? parts[1] : nil
        }
        guard !host.isEmpty else { throw SettingsError("\(option) \(address) has no host") }
        guard let port else {
            guard let defaultPort else { throw SettingsError("\(option) must be \(forms), got \(address)") }
            return (String(host), defaultPort)
        }
        guard let number = Int(port), ports.contains(number) else {
            throw SettingsError("\(option) \(address) has no valid port")
        }
        return (String(host), number)
    }
}

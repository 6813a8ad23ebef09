import Crypto
import FoundationEssentials

/// What an OpenSSH known_hosts file lists for one host: which key types,
/// so that the handshake asks the server for a key the file can verify.
/// A stock node offers RSA, ECDSA and ed25519 host keys and libssh2 prefers
/// ECDSA; with a file that holds only the ed25519 key, the handshake would
/// pick a key the file does not list and the host would look unknown.
/// OpenSSH's client avoids that the same way: the algorithms of the keys it
/// knows for the host come first.
struct KnownHosts: Sendable {
    /// One key line: who it is for and the key's type.
    struct Entry: Sendable, Equatable {
        enum Hosts: Sendable, Equatable {
            /// Comma-separated patterns (`*`, `?`, `!` for negation, `[host]:port`).
            case patterns([String])
            /// `|1|salt|hash`: HMAC-SHA1 of the host label with the salt.
            case hashed(salt: [UInt8], hash: [UInt8])
        }
        var hosts: Hosts
        /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, …
        var keyType: String
    }

    let entries: [Entry]

    /// Parses the file's text; comments, blank lines, `@revoked` and
    /// `@cert-authority` lines and malformed lines are left out.
    init(text: String) {
        var entries: [Entry] = []
        for line in text.split(whereSeparator: \.isNewline) {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let first = fields.first, !first.hasPrefix("#"), !first.hasPrefix("@"), fields.count >= 3 else {
                continue
            }
            let hosts: Entry.Hosts
            if first.hasPrefix("|1|") {
                let parts = first.split(separator: "|", omittingEmptySubsequences: true)
                guard parts.count == 3, let salt = Data(base64Encoded: String(parts[1])),
                    let hash = Data(base64Encoded: String(parts[2]))
                else { continue }
                hosts = .hashed(salt: [UInt8](salt), hash: [UInt8](hash))
            } else {
                hosts = .patterns(first.split(separator: ",").map(String.init))
            }
            entries.append(Entry(hosts: hosts, keyType: fields[1]))
        }
        self.entries = entries
    }

    /// The label OpenSSH looks a host up by: `name`, or `[name]:port` off port 22.
    static func label(name: String, port: Int) -> String { port == 22 ? name : "[\(name)]:\(port)" }

    /// The key types listed for `name` at `port`, in file order, each once.
    func keyTypes(forHost name: String, port: Int) -> [String] {
        let label = Self.label(name: name, port: port)
        var types: [String] = []
        for entry in entries where Self.matches(entry.hosts, label: label) && !types.contains(entry.keyType) {
            types.append(entry.keyType)
        }
        return types
    }

    private static func matches(_ hosts: Entry.Hosts, label: String) -> Bool {
        switch hosts {
        case let .hashed(salt, hash):
            let code = HMAC<Insecure.SHA1>.authenticationCode(for: Data(label.utf8), using: SymmetricKey(data: salt))
            return [UInt8](code) == hash
        case let .patterns(patterns):
            var matched = false
            for pattern in patterns {
                if pattern.hasPrefix("!") {
                    if wildcard(String(pattern.dropFirst()), matches: label) { return false }
                } else if wildcard(pattern, matches: label) {
                    matched = true
                }
            }
            return matched
        }
    }

    /// OpenSSH's pattern match: `*` any run, `?` one character, case-insensitive.
    static func wildcard(_ pattern: String, matches text: String) -> Bool {
        let pattern = Array(pattern.lowercased())
        let text = Array(text.lowercased())
        var p = 0
        var t = 0
        var star: Int?
        var resume = 0
        while t < text.count {
            if p < pattern.count, pattern[p] == "?" || pattern[p] == text[t] {
                p += 1
                t += 1
            } else if p < pattern.count, pattern[p] == "*" {
                star = p
                resume = t
                p += 1
            } else if let star {
                p = star + 1
                resume += 1
                t = resume
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == "*" { p += 1 }
        return p == pattern.count
    }

    /// Every host-key algorithm, strongest first: what is asked for when
    /// known_hosts lists nothing for the host.
    static let defaultMethods = [
        "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "rsa-sha2-512",
        "rsa-sha2-256", "ssh-rsa",
    ]

    /// The host-key algorithms to ask the server for, as libssh2's
    /// comma-separated preference: those that verify a key type listed for
    /// the host first (an RSA key by its SHA-2 signatures before SHA-1),
    /// then the rest, so that a server that changed its key type is still
    /// reached and refused with "unknown" rather than failing to negotiate.
    static func methods(for keyTypes: [String]) -> String {
        var first: [String] = []
        for type in keyTypes {
            let methods = type == "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [type]
            for method in methods where defaultMethods.contains(method) && !first.contains(method) {
                first.append(method)
            }
        }
        return (first + defaultMethods.filter { !first.contains($0) }).joined(separator: ",")
    }
}

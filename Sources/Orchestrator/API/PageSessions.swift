import Shared
import Synchronization

/// The status page's browser sessions: signing in with the API token gives
/// a random session id in an `HttpOnly`, `SameSite=Strict` cookie with no
/// expiry, so the browser keeps it for its session only; the id never
/// reaches a script, and the token never leaves the sign-in. Each session
/// has its own token for the page's forms (CSRF), and ends after
/// ``lifetime`` or at sign-out. Kept in memory: a restart signs everyone out.
final class PageSessions: Sendable {
    static let cookie = "k8sup_session"
    static let lifetime: Double = 12 * 3600
    /// At most this many; past it the oldest go first.
    static let limit = 256

    struct Session: Sendable {
        let id: String
        let csrf: String
        let expires: Double
    }

    private let sessions = Mutex<[String: Session]>([:])

    /// A new session from `now`.
    func create(now: Double) -> Session {
        let session = Session(id: Self.random(), csrf: Self.random(), expires: now + Self.lifetime)
        sessions.withLock { sessions in
            sessions = sessions.filter { $0.value.expires > now }
            if sessions.count >= Self.limit, let oldest = sessions.values.min(by: { $0.expires < $1.expires }) {
                sessions[oldest.id] = nil
            }
            sessions[session.id] = session
        }
        return session
    }

    /// The live session named by the request's `Cookie` header, if any.
    func session(cookieHeader: String?, now: Double) -> Session? {
        guard let id = Self.id(in: cookieHeader) else { return nil }
        return sessions.withLock { sessions in
            guard let session = sessions[id] else { return nil }
            guard session.expires > now else {
                sessions[id] = nil
                return nil
            }
            return session
        }
    }

    func end(_ id: String) { _ = sessions.withLock { $0.removeValue(forKey: id) } }

    /// The session id in a `Cookie` header (`a=1; k8sup_session=…`).
    static func id(in header: String?) -> String? {
        guard let header else { return nil }
        for pair in header.split(separator: ";") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0].trimmingWhitespace() == cookie {
                let value = parts[1].trimmingWhitespace()
                return value.isEmpty ? nil : value
            }
        }
        return nil
    }

    /// 32 random bytes from the system's generator, as hex.
    static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in
            let byte = UInt8.random(in: 0...255, using: &generator)
            return (byte < 16 ? "0" : "") + String(byte, radix: 16)
        }.joined()
    }

    /// Whether `given` is the session's form token, compared in constant time.
    static func matches(_ given: String?, _ expected: String) -> Bool {
        let a = Array((given ?? "").utf8)
        let b = Array(expected.utf8)
        var difference = a.count ^ b.count
        for index in b.indices { difference |= Int(b[index] ^ (index < a.count ? a[index] : 0)) }
        return difference == 0
    }
}

import FoundationEssentials
import Synchronization

/// Connections kept open between commands to the same host, as OpenSSH's
/// `ControlPersist` keeps them: a node's reads, its script and its checks
/// then pay for one key exchange and one authentication instead of one
/// each (on the bed a quarter of a second a command).
///
/// A connection is kept only after a command on it ended cleanly, for at
/// most ``idleLimit`` and at most ``perHost`` a host (an expired one is
/// closed by the next command that takes or keeps a connection, on that
/// command's thread: never by a thread of its own, which could be freeing
/// a session while the process exits and OpenSSL tears itself down); it is taken out for
/// one command at a time (libssh2 sessions are used by one thread at a
/// time). It is looked up by everything that decided how it was made and
/// checked (address, user, key file, known_hosts file, host-key alias),
/// so a connection verified for one configuration never serves another.
/// A kept connection that the server or the network closed meanwhile fails
/// to open its channel, before any command was sent: it is dropped and a
/// new connection made, so reuse never runs a command twice.
final class SSHSessionPool: Sendable {
    static let shared = SSHSessionPool()
    static let idleLimit: Duration = .seconds(30)
    static let perHost = 2

    struct Key: Hashable {
        let host: String
        let port: Int
        let user: String
        let privateKeyFile: String
        let knownHostsFile: String
        let hostKeyAlias: String?

        init(_ configuration: SSHConfiguration) {
            host = configuration.host
            port = configuration.port
            user = configuration.user
            privateKeyFile = configuration.privateKeyFile
            knownHostsFile = configuration.knownHostsFile
            hostKeyAlias = configuration.hostKeyAlias
        }
    }

    /// A session handed between threads through the pool's lock, and used
    /// by the one thread that took it out.
    final class Kept: @unchecked Sendable {
        let session: SSHSession
        let since: ContinuousClock.Instant
        init(_ session: SSHSession) {
            self.session = session
            since = .now
        }
    }

    private struct State {
        var idle: [Key: [Kept]] = [:]
    }

    private let state = Mutex(State())

    /// A kept session for `key`, the most recently used first; expired ones
    /// are closed here, outside the lock.
    func take(_ key: Key) -> SSHSession? {
        let now = ContinuousClock.now
        let (found, expired) = state.withLock { state -> (Kept?, [Kept]) in
            var list = state.idle[key] ?? []
            let expired = list.filter { now - $0.since >= Self.idleLimit }
            list.removeAll { now - $0.since >= Self.idleLimit }
            let found = list.popLast()
            state.idle[key] = list.isEmpty ? nil : list
            return (found, expired)
        }
        _ = expired
        return found?.session
    }

    /// Keeps a session whose command ended cleanly; closes, here, the
    /// ones that expired for any host.
    func put(_ session: SSHSession, for key: Key) {
        let kept = Kept(session)
        let now = ContinuousClock.now
        let dropped = state.withLock { state -> [Kept] in
            var dropped: [Kept] = []
            for (other, list) in state.idle {
                dropped += list.filter { now - $0.since >= Self.idleLimit }
                let left = list.filter { now - $0.since < Self.idleLimit }
                state.idle[other] = left.isEmpty ? nil : left
            }
            var list = state.idle[key] ?? []
            list.append(kept)
            while list.count > Self.perHost { dropped.append(list.removeFirst()) }
            state.idle[key] = list
            return dropped
        }
        _ = dropped
    }
}

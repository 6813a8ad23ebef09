import FoundationEssentials
import Glibc
import Synchronization

/// Connections kept open between commands to the same host, as OpenSSH's
/// `ControlPersist` keeps them: a node's reads, its script and its checks
/// then pay for one key exchange and one authentication instead of one
/// each (on the bed a quarter of a second a command).
///
/// A connection is kept only after a command on it ended cleanly, for at
/// most ``idleLimit`` and at most ``perHost`` a host; it is taken out for
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
        var reaping = false
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

    /// Keeps a session whose command ended cleanly.
    func put(_ session: SSHSession, for key: Key) {
        let kept = Kept(session)
        let (startReaper, dropped) = state.withLock { state -> (Bool, [Kept]) in
            var list = state.idle[key] ?? []
            list.append(kept)
            var dropped: [Kept] = []
            while list.count > Self.perHost { dropped.append(list.removeFirst()) }
            state.idle[key] = list
            let start = !state.reaping
            state.reaping = true
            return (start, dropped)
        }
        _ = dropped
        if startReaper { BlockingWork.startThread { [self] in reap() } }
    }

    /// How many sessions are kept now (for tests).
    var count: Int { state.withLock { $0.idle.values.reduce(0) { $0 + $1.count } } }

    /// Closes every kept session (for tests, and at exit).
    func closeAll() {
        let all = state.withLock { state -> [Kept] in
            defer { state.idle.removeAll() }
            return state.idle.values.flatMap { $0 }
        }
        _ = all
    }

    /// Closes sessions as they expire, once a second, until none is kept.
    private func reap() {
        while true {
            usleep(1_000_000)
            let now = ContinuousClock.now
            let (expired, done) = state.withLock { state -> ([Kept], Bool) in
                var expired: [Kept] = []
                for (key, list) in state.idle {
                    expired += list.filter { now - $0.since >= Self.idleLimit }
                    let left = list.filter { now - $0.since < Self.idleLimit }
                    state.idle[key] = left.isEmpty ? nil : left
                }
                if state.idle.isEmpty { state.reaping = false }
                return (expired, state.idle.isEmpty)
            }
            _ = expired
            if done { return }
        }
    }
}

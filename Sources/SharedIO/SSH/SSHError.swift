/// Why an SSH connection or command failed. A command that ran and exited
/// non-zero is not an error: see ``SSHCommandResult/exitStatus``.
public struct SSHError: Error, Sendable, CustomStringConvertible {
    /// The kinds of failure that callers treat differently.
    public enum Kind: Sendable, Equatable {
        case nameNotResolved
        case connectionRefused
        case connectFailed
        /// Connecting, key exchange or authentication took longer than the connect timeout.
        case connectTimedOut
        /// The SSH handshake (key exchange) failed.
        case handshakeFailed
        /// The server's key is not in known_hosts.
        case unknownHostKey
        /// known_hosts lists the server with a different key.
        case hostKeyChanged
        /// The known_hosts file could not be read.
        case knownHostsUnreadable
        /// The private key file is missing or unreadable.
        case keyFileUnreadable
        /// The private key is protected by a passphrase, which this tool does not use.
        case keyEncrypted
        /// The server did not accept the key.
        case authenticationFailed
        /// The command ran longer than its timeout; its channel was closed.
        case commandTimedOut
        /// A channel could not be opened or the command not started.
        case channelFailed
        /// Nothing arrived from the server for three keepalive intervals
        /// while a command ran: the connection was dropped on the way.
        case connectionLost
        /// The connection broke.
        case transport
    }

    /// What went wrong.
    public let kind: Kind
    /// `user@host:port`.
    public let destination: String
    /// Details: libssh2's message, the offered key's fingerprint, the file at fault.
    public let detail: String

    public init(kind: Kind, destination: String, detail: String) {
        self.kind = kind
        self.destination = destination
        self.detail = detail
    }

    public var description: String {
        let what: String =
            switch kind {
            case .nameNotResolved: "host name not resolved"
            case .connectionRefused: "connection refused"
            case .connectFailed: "could not connect"
            case .connectTimedOut: "connect timed out"
            case .handshakeFailed: "SSH handshake failed"
            case .unknownHostKey: "host key unknown (not in known_hosts)"
            case .hostKeyChanged: "HOST KEY CHANGED (known_hosts lists another key)"
            case .knownHostsUnreadable: "known_hosts unreadable"
            case .keyFileUnreadable: "private key unreadable"
            case .keyEncrypted: "private key is encrypted"
            case .authenticationFailed: "authentication failed"
            case .commandTimedOut: "command timed out"
            case .channelFailed: "channel failed"
            case .connectionLost: "connection lost"
            case .transport: "connection failed"
            }
        return "ssh \(destination): \(what): \(detail)"
    }
}

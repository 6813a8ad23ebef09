public import FoundationEssentials

/// Where and as whom to connect, and how to trust the server.
public struct SSHConfiguration: Sendable {
    /// Host name or address to connect to.
    public var host: String
    /// TCP port. Default 22.
    public var port: Int
    /// The remote user.
    public var user: String
    /// A passphrase-less ed25519, ECDSA or RSA private key (OpenSSH or PEM format).
    public var privateKeyFile: String
    /// The known_hosts file the server's key must be listed in (plain or hashed entries).
    public var knownHostsFile: String
    /// The name the host's key is listed under in known_hosts, the way
    /// OpenSSH's `HostKeyAlias` works (a node's name, say): when known_hosts
    /// lists keys for it (as a plain name, without a port), only those keys
    /// are accepted, whatever the address lists; otherwise the host is looked
    /// up by ``host`` and ``port``. So a node that reports another machine's
    /// address cannot get that machine used in its place.
    public var hostKeyAlias: String?
    /// Time allowed to connect, exchange keys and authenticate. Default 10 s.
    public var connectTimeout: Duration
    /// How often a keepalive asking for an answer is sent while a command
    /// runs; when nothing at all arrives for three intervals the connection
    /// is declared lost (``SSHError/Kind/connectionLost``). Default 15 s,
    /// so a silently dropped connection is noticed within 45 s. libssh2
    /// counts in whole seconds, and at least 2.
    public var keepaliveInterval: Duration

    public init(
        host: String, port: Int = 22, user: String, privateKeyFile: String, knownHostsFile: String,
        hostKeyAlias: String? = nil, connectTimeout: Duration = .seconds(10), keepaliveInterval: Duration = .seconds(15)
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.privateKeyFile = privateKeyFile
        self.knownHostsFile = knownHostsFile
        self.hostKeyAlias = hostKeyAlias
        self.connectTimeout = connectTimeout
        self.keepaliveInterval = keepaliveInterval
    }

    /// `user@host:port`, for messages.
    public var destination: String { "\(user)@\(host):\(port)" }
}

/// Which output stream a line came from.
public enum SSHStream: String, Sendable {
    case stdout
    case stderr
}

/// One line of a remote command's output, delivered while the command runs.
public struct SSHOutputLine: Sendable, Equatable {
    public let stream: SSHStream
    /// The line without its line break.
    public let text: String

    public init(stream: SSHStream, text: String) {
        self.stream = stream
        self.text = text
    }
}

/// A file copied from a host: its length and the SHA-256 of what was written here.
public struct SSHDownload: Sendable, Equatable {
    public let bytes: Int
    /// Lower-case hex, as `sha256sum` prints it.
    public let sha256: String

    public init(bytes: Int, sha256: String) {
        self.bytes = bytes
        self.sha256 = sha256
    }
}

/// How a remote command ended and what it printed.
public struct SSHCommandResult: Sendable {
    /// The exit status; `nil` when the command was killed by a signal.
    public let exitStatus: Int32?
    /// The signal that killed the command (`TERM`, `KILL`, …), without `SIG`.
    public let exitSignal: String?
    /// Everything written to standard output.
    public let stdout: Data
    /// Everything written to standard error.
    public let stderr: Data

    public init(exitStatus: Int32?, exitSignal: String?, stdout: Data, stderr: Data) {
        self.exitStatus = exitStatus
        self.exitSignal = exitSignal
        self.stdout = stdout
        self.stderr = stderr
    }

    /// Whether the command exited with status 0.
    public var succeeded: Bool { exitStatus == 0 }
    /// Standard output as UTF-8 text.
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    /// Standard error as UTF-8 text.
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

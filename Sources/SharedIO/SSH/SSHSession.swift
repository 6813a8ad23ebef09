import CLibSSH2
import FoundationEssentials
import Glibc

/// `libssh2_init` must run once, before any session is created and before
/// threads race to create them; a lazily initialised global is exactly that.
private let libssh2InitResult: Int32 = libssh2_init(0)

/// Owns one TCP socket and the libssh2 session on it, both freed in
/// `deinit`. The session runs in non-blocking mode: every call that would
/// block returns `LIBSSH2_ERROR_EAGAIN`, and ``waitForSocket(until:timeoutKind:)``
/// polls the socket in short slices so that deadlines and cancellation are
/// honoured. Used by one thread at a time.
final class SSHSession {
    let raw: OpaquePointer
    private let socket: Int32
    let destination: String
    /// The cancellation of the command the session serves now (a kept
    /// session serves one command after another).
    var cancellation: CancellationFlag

    /// Connects to `host:port` and starts a session on the socket (no handshake yet).
    init(
        host: String, port: Int, destination: String, deadline: ContinuousClock.Instant,
        cancellation: CancellationFlag
    ) throws {
        guard libssh2InitResult == 0 else {
            throw SSHError(kind: .transport, destination: destination, detail: "libssh2_init failed")
        }
        self.destination = destination
        self.cancellation = cancellation
        let socket = try Self.connect(
            host: host, port: port, destination: destination, deadline: deadline, cancellation: cancellation)
        guard let raw = clibssh2_session_init() else {
            close(socket)
            throw SSHError(kind: .transport, destination: destination, detail: "libssh2_session_init failed")
        }
        self.raw = raw
        self.socket = socket
        libssh2_session_set_blocking(raw, 0)
    }

    deinit {
        // Bounded blocking mode for the goodbye: a non-blocking free could
        // return EAGAIN and leak the session.
        libssh2_session_set_timeout(raw, 2000)
        libssh2_session_set_blocking(raw, 1)
        _ = clibssh2_session_disconnect(raw, "k8s-upgrade done")
        libssh2_session_free(raw)
        close(socket)
    }

    // MARK: - Handshake, host key, authentication

    /// Exchanges keys with the server, asking for its host key by
    /// `hostKeyMethods` (libssh2's comma-separated preference) when given.
    func handshake(hostKeyMethods: String?, until deadline: ContinuousClock.Instant) throws {
        if let hostKeyMethods {
            let set = libssh2_session_method_pref(raw, LIBSSH2_METHOD_HOSTKEY, hostKeyMethods)
            guard set == 0 else { throw error(.handshakeFailed, set) }
        }
        let rc = try retry(until: deadline, timeoutKind: .connectTimedOut) {
            libssh2_session_handshake(raw, socket)
        }
        guard rc == 0 else { throw error(.handshakeFailed, rc) }
    }

    /// Checks the server's key against `knownHostsFile`, looking it up as
    /// `name` at `port` (`[name]:port` or `name`), or as the plain `name`
    /// only when `port` is nil (a host-key alias). Unknown and changed keys
    /// are both refused; the error names the offered key's fingerprint and,
    /// when known_hosts lists other key types for the host (`listedTypes`),
    /// which ones and why they were not used.
    func verifyHostKey(
        knownHostsFile: String, name: String, port: Int?, isAlias: Bool = false, listedTypes: [String] = []
    ) throws {
        var length = 0
        var type: Int32 = 0
        guard let key = libssh2_session_hostkey(raw, &length, &type) else {
            throw error(.handshakeFailed, libssh2_session_last_errno(raw))
        }
        let offered = "\(Self.keyTypeName(type)) key \(fingerprint())"
        let hostLabel = port.map { KnownHosts.label(name: name, port: $0) } ?? name
        guard let knownHosts = libssh2_knownhost_init(raw) else {
            throw SSHError(kind: .transport, destination: destination, detail: "libssh2_knownhost_init failed")
        }
        defer { libssh2_knownhost_free(knownHosts) }
        guard FileManager.default.isReadableFile(atPath: knownHostsFile) else {
            throw SSHError(
                kind: .knownHostsUnreadable, destination: destination,
                detail: "cannot read \(knownHostsFile); the server offered \(offered)")
        }
        let entries = libssh2_knownhost_readfile(knownHosts, knownHostsFile, LIBSSH2_KNOWNHOST_FILE_OPENSSH)
        guard entries >= 0 else {
            throw SSHError(
                kind: .knownHostsUnreadable, destination: destination,
                detail: "\(knownHostsFile): \(lastErrorMessage()); the server offered \(offered)")
        }
        let typeMask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | Self.knownHostKeyBits(type)
        // libssh2 checks `[name]:port` and then `name` for a port, only `name` for -1.
        let check = libssh2_knownhost_checkp(knownHosts, name, Int32(port ?? -1), key, length, typeMask, nil)
        switch check {
        case LIBSSH2_KNOWNHOST_CHECK_MATCH:
            return
        case LIBSSH2_KNOWNHOST_CHECK_MISMATCH where isAlias:
            throw SSHError(
                kind: .hostKeyChanged, destination: destination,
                detail:
                    "\(knownHostsFile) lists another \(Self.keyTypeName(type)) key for \(hostLabel) (looked up by "
                    + "its name), but \(destination) offered \(offered); refusing to connect: the address may be "
                    + "another machine's, the node reinstalled, or someone in the middle")
        case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
            throw SSHError(
                kind: .hostKeyChanged, destination: destination,
                detail:
                    "\(knownHostsFile) lists another \(Self.keyTypeName(type)) key for \(hostLabel), but the server "
                    + "offered \(offered); refusing to connect (a reinstalled node or someone in the middle)")
        case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
            var detail =
                "\(hostLabel) is not in \(knownHostsFile); the server offered \(offered); "
                + "add it only after checking the fingerprint out of band"
            if !listedTypes.isEmpty {
                detail =
                    "\(knownHostsFile) lists only \(listedTypes.joined(separator: ", ")) for \(hostLabel), and the "
                    + "server offered \(offered) instead"
                if listedTypes.allSatisfy({ $0 == "ssh-rsa" }) {
                    detail +=
                        ": this libssh2 verifies RSA host keys by SHA-1 signatures only (ssh-rsa), which OpenSSH 8.8 "
                        + "and later no longer offer; add the host's ed25519 or ECDSA key (ssh-keyscan -t ed25519), "
                        + "checking its fingerprint out of band"
                } else {
                    detail += "; add that key only after checking its fingerprint out of band"
                }
            }
            throw SSHError(kind: .unknownHostKey, destination: destination, detail: detail)
        default:
            throw SSHError(
                kind: .knownHostsUnreadable, destination: destination,
                detail: "checking \(knownHostsFile) failed: \(lastErrorMessage())")
        }
    }

    /// Authenticates `user` with a passphrase-less private key.
    func authenticate(user: String, privateKeyFile: String, until deadline: ContinuousClock.Instant) throws {
        guard let keyText = try? String(contentsOfFile: privateKeyFile, encoding: .utf8) else {
            throw SSHError(kind: .keyFileUnreadable, destination: destination, detail: "cannot read \(privateKeyFile)")
        }
        guard let format = PrivateKeyFormat(text: keyText) else {
            throw SSHError(
                kind: .keyFileUnreadable, destination: destination,
                detail: "\(privateKeyFile) is not an OpenSSH or PEM private key")
        }
        if format.isEncrypted {
            throw SSHError(
                kind: .keyEncrypted, destination: destination,
                detail: "\(privateKeyFile) is protected by a passphrase; this tool needs a passphrase-less key")
        }
        let rc = try retry(until: deadline, timeoutKind: .connectTimedOut) {
            libssh2_userauth_publickey_fromfile_ex(raw, user, UInt32(user.utf8.count), nil, privateKeyFile, "")
        }
        switch rc {
        case 0:
            return
        case LIBSSH2_ERROR_FILE, LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED:
            throw error(.keyFileUnreadable, rc, prefix: "\(privateKeyFile): ")
        default:
            var failure = error(.authenticationFailed, rc, prefix: "user \(user) with key \(privateKeyFile): ")
            if format.keyType == "ssh-rsa", Self.signsRSAWithSHA1Only {
                failure = SSHError(
                    kind: .authenticationFailed, destination: destination,
                    detail: failure.detail
                        + "; libssh2 \(Self.libraryVersion) signs RSA keys with SHA-1 (ssh-rsa), which OpenSSH 8.8 "
                        + "and later refuse by default: use an ed25519 key, or add ssh-rsa to the server's "
                        + "PubkeyAcceptedAlgorithms")
            }
            throw failure
        }
    }

    /// The libssh2 version this process runs with.
    static let libraryVersion: String = libssh2_version(0).map { String(cString: $0) } ?? "unknown"

    /// libssh2 before 1.11 cannot sign with rsa-sha2-256/512 for user authentication.
    static let signsRSAWithSHA1Only: Bool = libssh2_version(0x010B00) == nil

    // MARK: - Keepalives

    /// Has libssh2 send a keepalive that asks for an answer every
    /// `interval` (whole seconds, at least 2) from now on; returns the
    /// interval used.
    func startKeepalives(every interval: Duration) -> Duration {
        let seconds = max(2, Int(interval.components.seconds))
        libssh2_keepalive_config(raw, 1, UInt32(seconds))
        return .seconds(seconds)
    }

    /// Sends a keepalive when one is due, and throws `connectionLost` when
    /// nothing has arrived on the connection for `lostAfter` (the kernel's
    /// count, so bytes libssh2 has not read yet count as arrived).
    func keepAlive(lostAfter: Duration) throws {
        var next: Int32 = 0
        _ = libssh2_keepalive_send(raw, &next)
        var info = tcp_info()
        var length = socklen_t(MemoryLayout<tcp_info>.size)
        guard getsockopt(socket, Int32(IPPROTO_TCP), TCP_INFO, &info, &length) == 0 else { return }
        let silent = Duration.milliseconds(Int64(info.tcpi_last_data_recv))
        if silent > lostAfter {
            throw SSHError(
                kind: .connectionLost, destination: destination,
                detail: "nothing from the server for \(silent.roundedSeconds) s though keepalives asked for an "
                    + "answer; the connection was dropped on the way")
        }
    }

    // MARK: - Waiting

    /// Runs a libssh2 call until it stops answering `EAGAIN`, waiting on the
    /// socket in between; fails with `timeoutKind` at the deadline.
    func retry(
        until deadline: ContinuousClock.Instant, timeoutKind: SSHError.Kind, _ call: () -> Int32
    ) throws -> Int32 {
        while true {
            let rc = call()
            guard rc == LIBSSH2_ERROR_EAGAIN else { return rc }
            try waitForSocket(until: deadline, timeoutKind: timeoutKind)
        }
    }

    /// Waits until the socket is ready in the direction libssh2 is blocked
    /// on, for at most 100 ms at a time so cancellation is noticed.
    func waitForSocket(until deadline: ContinuousClock.Instant, timeoutKind: SSHError.Kind) throws {
        if cancellation.isCancelled { throw CancellationError() }
        let now = ContinuousClock.now
        guard now < deadline else {
            throw SSHError(kind: timeoutKind, destination: destination, detail: "deadline passed")
        }
        let directions = libssh2_session_block_directions(raw)
        var events: Int16 = 0
        if directions & LIBSSH2_SESSION_BLOCK_INBOUND != 0 { events |= Int16(POLLIN) }
        if directions & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 { events |= Int16(POLLOUT) }
        if events == 0 { events = Int16(POLLIN) }
        var descriptor = pollfd(fd: socket, events: events, revents: 0)
        let remaining = deadline - now
        _ = poll(&descriptor, 1, Int32(min(100, max(1, remaining.milliseconds))))
    }

    // MARK: - Errors

    func lastErrorMessage() -> String {
        var message: UnsafeMutablePointer<CChar>?
        var length: Int32 = 0
        _ = libssh2_session_last_error(raw, &message, &length, 0)
        guard let message else { return "unknown libssh2 error" }
        return String(cString: message)
    }

    func error(_ kind: SSHError.Kind, _ code: Int32, prefix: String = "") -> SSHError {
        SSHError(kind: kind, destination: destination, detail: "\(prefix)\(lastErrorMessage()) (libssh2 \(code))")
    }

    /// `SHA256:` and the unpadded base64 of the key's SHA-256, as `ssh-keygen -l` prints it.
    private func fingerprint() -> String {
        guard let hash = libssh2_hostkey_hash(raw, LIBSSH2_HOSTKEY_HASH_SHA256) else { return "SHA256:?" }
        let bytes = Data(bytes: hash, count: 32)
        return "SHA256:" + bytes.base64EncodedString().filter { $0 != "=" }
    }

    private static func keyTypeName(_ type: Int32) -> String {
        switch type {
        case LIBSSH2_HOSTKEY_TYPE_RSA: "ssh-rsa"
        case LIBSSH2_HOSTKEY_TYPE_DSS: "ssh-dss"
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: "ecdsa-sha2-nistp256"
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: "ecdsa-sha2-nistp384"
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: "ecdsa-sha2-nistp521"
        case LIBSSH2_HOSTKEY_TYPE_ED25519: "ssh-ed25519"
        default: "unknown-type"
        }
    }

    private static func knownHostKeyBits(_ type: Int32) -> Int32 {
        switch type {
        case LIBSSH2_HOSTKEY_TYPE_RSA: LIBSSH2_KNOWNHOST_KEY_SSHRSA
        case LIBSSH2_HOSTKEY_TYPE_DSS: LIBSSH2_KNOWNHOST_KEY_SSHDSS
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: LIBSSH2_KNOWNHOST_KEY_ECDSA_256
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: LIBSSH2_KNOWNHOST_KEY_ECDSA_384
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: LIBSSH2_KNOWNHOST_KEY_ECDSA_521
        case LIBSSH2_HOSTKEY_TYPE_ED25519: LIBSSH2_KNOWNHOST_KEY_ED25519
        default: LIBSSH2_KNOWNHOST_KEY_UNKNOWN
        }
    }

    // MARK: - TCP

    /// Resolves `host` and connects without blocking past `deadline`.
    private static func connect(
        host: String, port: Int, destination: String, deadline: ContinuousClock.Instant,
        cancellation: CancellationFlag
    ) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &list)
        guard resolved == 0, let first = list else {
            throw SSHError(
                kind: .nameNotResolved, destination: destination, detail: String(cString: gai_strerror(resolved)))
        }
        defer { freeaddrinfo(list) }
        var failure = SSHError(kind: .connectFailed, destination: destination, detail: "no address")
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            candidate = info.pointee.ai_next
            // Close-on-exec: a process spawned meanwhile must not inherit the connection.
            let fd = Glibc.socket(
                info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue),
                info.pointee.ai_protocol)
            guard fd >= 0 else { continue }
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            guard clibssh2_fcntl_set_nonblocking(fd) == 0 else {
                close(fd)
                continue
            }
            var code: Int32 = Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 ? 0 : errno
            if code == EINPROGRESS {
                code = waitForConnect(fd, deadline: deadline, cancellation: cancellation)
            }
            if code == 0 { return fd }
            close(fd)
            if code == ECANCELED { throw CancellationError() }
            switch code {
            case ECONNREFUSED:
                failure = SSHError(kind: .connectionRefused, destination: destination, detail: "\(host):\(port)")
            case ETIMEDOUT:
                failure = SSHError(
                    kind: .connectTimedOut, destination: destination, detail: "no answer from \(host):\(port)")
            default:
                failure = SSHError(
                    kind: .connectFailed, destination: destination, detail: String(cString: strerror(code)))
            }
        }
        throw failure
    }

    /// Polls a connecting socket; returns 0 when connected, else an errno
    /// (`ETIMEDOUT` at the deadline, `ECANCELED` when the task was cancelled).
    private static func waitForConnect(
        _ fd: Int32, deadline: ContinuousClock.Instant, cancellation: CancellationFlag
    ) -> Int32 {
        while true {
            if cancellation.isCancelled { return ECANCELED }
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { return ETIMEDOUT }
            var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&descriptor, 1, Int32(min(100, max(1, remaining.milliseconds))))
            if ready > 0 {
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                return error
            }
        }
    }
}

extension Duration {
    /// Whole seconds, for messages.
    var roundedSeconds: Int64 {
        (components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 + 500) / 1000
    }

    /// The duration in whole milliseconds, rounded up.
    var milliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int((attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
    }
}

import CLibSSH2
import Crypto
public import FoundationEssentials
import Glibc

/// Runs commands on a remote host over SSH (libssh2): public-key
/// authentication, strict host-key checking against known_hosts, standard
/// input streamed in, standard output and error kept apart and delivered
/// line by line while the command runs.
///
/// Each command runs on its own thread, off Swift's cooperative pool, on a
/// connection of its own: a new one, or one that an earlier command to the
/// same host with the same configuration ended cleanly on
/// (``SSHSessionPool``).
public struct SSHClient: Sendable {
    /// Where and as whom to connect.
    public let configuration: SSHConfiguration

    public init(configuration: SSHConfiguration) {
        self.configuration = configuration
    }

    /// Runs `command` (a shell command line, quoted by the caller) and waits for it to end.
    ///
    /// - Parameters:
    ///   - stdin: bytes sent to the command's standard input, then EOF
    ///     (the `bash -s -- ARGS < script` pattern); `nil` sends EOF at once.
    ///   - timeout: time allowed from channel open to exit; the channel is
    ///     closed when it passes.
    ///   - onOutput: called on the I/O thread with every complete line as it arrives.
    /// - Returns: exit status or signal, and everything printed.
    /// - Throws: ``SSHError``, or `CancellationError` when the task was cancelled
    ///   (the channel is closed first).
    public func run(
        _ command: String, stdin: Data? = nil, timeout: Duration = .seconds(1800),
        onOutput: (@Sendable (SSHOutputLine) -> Void)? = nil
    ) async throws -> SSHCommandResult {
        let configuration = configuration
        return try await BlockingWork.run(named: "ssh \(configuration.host)") { cancellation in
            try Self.execute(
                command, stdin: stdin ?? Data(), timeout: timeout, configuration: configuration,
                cancellation: cancellation, onOutput: onOutput)
        }
    }

    /// Copies the host's file `remotePath` to `localPath` over SCP, on the
    /// same kind of connection as ``run(_:stdin:timeout:onOutput:)``: the
    /// bytes go to `localPath.partial`, which is renamed only once all of
    /// them arrived, and are hashed (SHA-256) as they are written.
    ///
    /// - Throws: ``SSHError`` (a missing file: `channelFailed`; a copy cut
    ///   short: `connectionLost`), an error from writing here, or
    ///   `CancellationError`. Nothing is left at `localPath` then.
    public func download(
        _ remotePath: String, to localPath: String, timeout: Duration = .seconds(1800)
    ) async throws -> SSHDownload {
        let configuration = configuration
        return try await BlockingWork.run(named: "scp \(configuration.host)") { cancellation in
            let key = SSHSessionPool.Key(configuration)
            let deadline = ContinuousClock.now + timeout
            if let kept = SSHSessionPool.shared.take(key) {
                kept.cancellation = cancellation
                do {
                    let copied = try Self.receive(
                        remotePath, to: localPath, deadline: deadline, configuration: configuration, on: kept)
                    SSHSessionPool.shared.put(kept, for: key)
                    return copied
                } catch is ChannelNotOpened {
                    if cancellation.isCancelled { throw CancellationError() }
                }
            }
            let session = try Self.connect(configuration, cancellation: cancellation)
            let copied: SSHDownload
            do {
                copied = try Self.receive(
                    remotePath, to: localPath, deadline: deadline, configuration: configuration, on: session)
            } catch let error as ChannelNotOpened { throw error.underlying }
            SSHSessionPool.shared.put(session, for: key)
            return copied
        }
    }

    // MARK: - On the I/O thread

    /// One SCP copy on a channel of `session`.
    private static func receive(
        _ remotePath: String, to localPath: String, deadline: ContinuousClock.Instant,
        configuration: SSHConfiguration, on session: SSHSession
    ) throws -> SSHDownload {
        let channel: SSHChannel
        do {
            channel = try SSHChannel(
                session: session, receiving: remotePath,
                until: min(deadline, ContinuousClock.now + configuration.connectTimeout))
        } catch { throw ChannelNotOpened(underlying: error) }
        let size = channel.fileSize ?? 0
        let partial = localPath + ".partial"
        let fd = open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            _ = channel.close()
            throw SSHError(
                kind: .transport, destination: configuration.destination,
                detail: "cannot write \(partial): \(String(cString: strerror(errno)))")
        }
        var closed = false
        defer {
            if !closed { close(fd) }
            unlink(partial)
        }
        var hasher = SHA256()
        var received = 0
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while received < size {
            let count = channel.read(stream: 0, into: &buffer)
            if count > 0 {
                let taken = min(count, size - received)
                var written = 0
                while written < taken {
                    let rc = buffer.withUnsafeBytes { write(fd, $0.baseAddress! + written, taken - written) }
                    guard rc > 0 else {
                        _ = channel.close()
                        throw SSHError(
                            kind: .transport, destination: configuration.destination,
                            detail: "writing \(partial): \(String(cString: strerror(errno)))")
                    }
                    written += rc
                }
                hasher.update(data: buffer[0..<taken])
                received += taken
            } else if count == Int(LIBSSH2_ERROR_EAGAIN) {
                try session.waitForSocket(until: deadline, timeoutKind: .commandTimedOut)
            } else if count == 0 && channel.isAtEOF {
                throw SSHError(
                    kind: .connectionLost, destination: configuration.destination,
                    detail: "the copy of \(remotePath) ended after \(received) of \(size) bytes")
            } else if count < 0 {
                throw session.error(.transport, Int32(count), prefix: "copying \(remotePath): ")
            }
        }
        guard fsync(fd) == 0, close(fd) == 0 else {
            closed = true
            throw SSHError(
                kind: .transport, destination: configuration.destination,
                detail: "writing \(partial): \(String(cString: strerror(errno)))")
        }
        closed = true
        guard rename(partial, localPath) == 0 else {
            throw SSHError(
                kind: .transport, destination: configuration.destination,
                detail: "renaming \(partial): \(String(cString: strerror(errno)))")
        }
        let closeDeadline = ContinuousClock.now + .seconds(5)
        _ = try session.retry(until: closeDeadline, timeoutKind: .transport) { channel.sendEOF() }
        _ = try session.retry(until: closeDeadline, timeoutKind: .transport) { channel.close() }
        _ = try session.retry(until: closeDeadline, timeoutKind: .transport) { channel.waitClosed() }
        return SSHDownload(
            bytes: received,
            sha256: hasher.finalize().map { String($0 >> 4, radix: 16) + String($0 & 0xF, radix: 16) }.joined())
    }

    private static func execute(
        _ command: String, stdin: Data, timeout: Duration, configuration: SSHConfiguration,
        cancellation: CancellationFlag, onOutput: (@Sendable (SSHOutputLine) -> Void)?
    ) throws -> SSHCommandResult {
        let key = SSHSessionPool.Key(configuration)
        let command = Command(
            text: command, stdin: stdin, timeout: timeout, configuration: configuration, onOutput: onOutput)
        if let kept = SSHSessionPool.shared.take(key) {
            kept.cancellation = cancellation
            // A kept connection that opens no channel within the connect
            // timeout is given up (nothing was asked of the host yet) for a new one.
            do {
                let outcome = try run(command, on: kept)
                SSHSessionPool.shared.put(kept, for: key)
                return outcome
            } catch is ChannelNotOpened {
                if cancellation.isCancelled { throw CancellationError() }
            }
        }
        let session = try connect(configuration, cancellation: cancellation)
        let outcome: SSHCommandResult
        do { outcome = try run(command, on: session) } catch let error as ChannelNotOpened { throw error.underlying }
        SSHSessionPool.shared.put(session, for: key)
        return outcome
    }

    /// What one command runs with.
    private struct Command {
        let text: String
        let stdin: Data
        let timeout: Duration
        let configuration: SSHConfiguration
        let onOutput: (@Sendable (SSHOutputLine) -> Void)?
    }

    /// The channel could not be opened: nothing was asked of the host.
    private struct ChannelNotOpened: Error {
        let underlying: any Error
    }

    /// Runs `command` on a channel of `session`, opened within the connect
    /// timeout. The channel lives only in here, so it is freed before the
    /// session can be kept.
    private static func run(_ command: Command, on session: SSHSession) throws -> SSHCommandResult {
        let channel: SSHChannel
        do {
            channel = try SSHChannel(
                session: session, until: ContinuousClock.now + command.configuration.connectTimeout)
        } catch { throw ChannelNotOpened(underlying: error) }
        let configuration = command.configuration
        let deadline = ContinuousClock.now + command.timeout
        try channel.exec(command.text, until: deadline)
        var pump = OutputPump(onOutput: command.onOutput)
        do {
            try exchange(
                channel, session: session, stdin: command.stdin, deadline: deadline,
                keepalive: configuration.keepaliveInterval, pump: &pump)
        } catch {
            // Timed out or cancelled: close the channel without waiting long;
            // the connection is dropped right after.
            _ = channel.close()
            if let error = error as? SSHError, error.kind == .commandTimedOut {
                throw SSHError(
                    kind: .commandTimedOut, destination: configuration.destination,
                    detail: "no exit within \(command.timeout); channel closed")
            }
            throw error
        }
        pump.finish()
        let closeDeadline = ContinuousClock.now + .seconds(5)
        _ = try session.retry(until: closeDeadline, timeoutKind: .transport) { channel.close() }
        _ = try session.retry(until: closeDeadline, timeoutKind: .transport) { channel.waitClosed() }
        let signal = channel.exitSignal
        return SSHCommandResult(
            exitStatus: signal == nil ? channel.exitStatus : nil, exitSignal: signal, stdout: pump.stdout,
            stderr: pump.stderr)
    }

    /// A new connection, its host key verified and the user authenticated.
    private static func connect(
        _ configuration: SSHConfiguration, cancellation: CancellationFlag
    ) throws -> SSHSession {
        let connectDeadline = ContinuousClock.now + configuration.connectTimeout
        let session = try SSHSession(
            host: configuration.host, port: configuration.port, destination: configuration.destination,
            deadline: connectDeadline, cancellation: cancellation)
        // Ask for a host key of a type known_hosts lists for this host (an
        // unreadable file is reported by the verification below). A host-key
        // alias that known_hosts lists is the only name looked up.
        let knownHosts = (try? String(contentsOfFile: configuration.knownHostsFile, encoding: .utf8))
            .map(KnownHosts.init(text:))
        var lookup = (name: configuration.host, port: Optional(configuration.port), alias: false)
        if let alias = configuration.hostKeyAlias, knownHosts?.keyTypes(forHost: alias, port: 22).isEmpty == false {
            lookup = (alias, nil, true)
        }
        let known = knownHosts.map { $0.keyTypes(forHost: lookup.name, port: lookup.port ?? 22) }
        try session.handshake(hostKeyMethods: known.map(KnownHosts.methods(for:)), until: connectDeadline)
        try session.verifyHostKey(
            knownHostsFile: configuration.knownHostsFile, name: lookup.name, port: lookup.port,
            isAlias: lookup.alias, listedTypes: known ?? [])
        try session.authenticate(
            user: configuration.user, privateKeyFile: configuration.privateKeyFile, until: connectDeadline)
        return session
    }

    /// Feeds standard input and drains both output streams until the
    /// server signals EOF, never blocking on one while the other needs
    /// attention (a full stdout window would otherwise stall stdin). While
    /// it waits it sends keepalives that ask for an answer, and gives up on
    /// a connection that brought nothing for three intervals: a connection
    /// dropped on the way (a NAT or firewall forgetting it, a host gone)
    /// shows nothing at all otherwise until the command's timeout.
    private static func exchange(
        _ channel: SSHChannel, session: SSHSession, stdin: Data, deadline: ContinuousClock.Instant,
        keepalive: Duration, pump: inout OutputPump
    ) throws {
        let interval = session.startKeepalives(every: keepalive)
        var sent = 0
        var inputOpen = true
        var buffer = [UInt8](repeating: 0, count: 32 * 1024)
        while true {
            var progressed = false
            if inputOpen {
                if sent < stdin.count {
                    let written = stdin.withUnsafeBytes { bytes in
                        channel.write(
                            UnsafeRawBufferPointer(rebasing: bytes[sent..<min(stdin.count, sent + 32 * 1024)]))
                    }
                    if written > 0 {
                        sent += written
                        progressed = true
                    } else if written != Int(LIBSSH2_ERROR_EAGAIN) {
                        // The command closed its input (or exited): what it
                        // did not read is not ours to force on it.
                        inputOpen = false
                    }
                }
                if inputOpen && sent == stdin.count {
                    let rc = channel.sendEOF()
                    if rc != LIBSSH2_ERROR_EAGAIN { inputOpen = false }
                }
            }
            for (stream, kind) in [(Int32(0), SSHStream.stdout), (Int32(1), SSHStream.stderr)] {
                while true {
                    let count = channel.read(stream: stream, into: &buffer)
                    if count > 0 {
                        pump.append(Data(buffer[0..<count]), from: kind)
                        progressed = true
                    } else if count == 0 || count == Int(LIBSSH2_ERROR_EAGAIN) {
                        break
                    } else {
                        throw session.error(.transport, Int32(count), prefix: "reading \(kind.rawValue): ")
                    }
                }
            }
            if channel.isAtEOF { return }
            if !progressed {
                try session.keepAlive(lostAfter: interval * 3)
                try session.waitForSocket(until: deadline, timeoutKind: .commandTimedOut)
            }
        }
    }
}

/// Collects both output streams and hands out complete lines as they form.
private struct OutputPump {
    let onOutput: (@Sendable (SSHOutputLine) -> Void)?
    var stdout = Data()
    var stderr = Data()
    private var stdoutLines = LineSplitter()
    private var stderrLines = LineSplitter()

    init(onOutput: (@Sendable (SSHOutputLine) -> Void)?) {
        self.onOutput = onOutput
    }

    mutating func append(_ bytes: Data, from stream: SSHStream) {
        switch stream {
        case .stdout:
            stdout.append(bytes)
            if let onOutput { stdoutLines.append(bytes).forEach { onOutput(SSHOutputLine(stream: .stdout, text: $0)) } }
        case .stderr:
            stderr.append(bytes)
            if let onOutput { stderrLines.append(bytes).forEach { onOutput(SSHOutputLine(stream: .stderr, text: $0)) } }
        }
    }

    mutating func finish() {
        guard let onOutput else { return }
        if let rest = stdoutLines.finish() { onOutput(SSHOutputLine(stream: .stdout, text: rest)) }
        if let rest = stderrLines.finish() { onOutput(SSHOutputLine(stream: .stderr, text: rest)) }
    }
}

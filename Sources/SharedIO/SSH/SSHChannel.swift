import CLibSSH2
import FoundationEssentials

/// Owns one libssh2 channel, freed in `deinit`. Holds its session so the
/// session outlives it, as libssh2 requires.
final class SSHChannel {
    private let raw: OpaquePointer
    private let session: SSHSession
    /// The length of the file an SCP channel carries; `nil` for a command's channel.
    let fileSize: Int?

    /// Opens a `session` channel; nothing runs on it yet. Failing here
    /// (a kept connection the server closed), nothing was asked of the host.
    init(session: SSHSession, until deadline: ContinuousClock.Instant) throws {
        self.session = session
        var opened: OpaquePointer?
        while opened == nil {
            opened = clibssh2_channel_open_session(session.raw)
            if opened == nil {
                let code = libssh2_session_last_errno(session.raw)
                guard code == LIBSSH2_ERROR_EAGAIN else {
                    throw session.error(.channelFailed, code, prefix: "opening a channel: ")
                }
                try session.waitForSocket(until: deadline, timeoutKind: .commandTimedOut)
            }
        }
        raw = opened!
        fileSize = nil
    }

    /// Opens an SCP channel that carries `path`'s contents (the host runs
    /// `scp -f`); ``fileSize`` is their length.
    init(session: SSHSession, receiving path: String, until deadline: ContinuousClock.Instant) throws {
        self.session = session
        var size: Int64 = -1
        var opened: OpaquePointer?
        while opened == nil {
            opened = clibssh2_scp_recv(session.raw, path, &size)
            if opened == nil {
                let code = libssh2_session_last_errno(session.raw)
                guard code == LIBSSH2_ERROR_EAGAIN else {
                    throw session.error(.channelFailed, code, prefix: "copying \(path): ")
                }
                try session.waitForSocket(until: deadline, timeoutKind: .commandTimedOut)
            }
        }
        raw = opened!
        fileSize = Int(size)
    }

    /// Starts `command` on the open channel.
    func exec(_ command: String, until deadline: ContinuousClock.Instant) throws {
        let raw = raw
        let rc = try session.retry(until: deadline, timeoutKind: .commandTimedOut) {
            clibssh2_channel_exec(raw, command, UInt32(command.utf8.count))
        }
        guard rc == 0 else { throw session.error(.channelFailed, rc, prefix: "starting the command: ") }
    }

    deinit {
        // Bounded blocking mode: a non-blocking free could return EAGAIN and leak.
        libssh2_session_set_timeout(session.raw, 2000)
        libssh2_session_set_blocking(session.raw, 1)
        libssh2_channel_free(raw)
        // Back to non-blocking, without a timeout: the session may serve
        // another command (``SSHSessionPool``).
        libssh2_session_set_blocking(session.raw, 0)
        libssh2_session_set_timeout(session.raw, 0)
    }

    /// Reads what is available on `stream` (0 stdout, 1 stderr) into `buffer`:
    /// a byte count, 0 at end of stream, `LIBSSH2_ERROR_EAGAIN`, or another error.
    func read(stream: Int32, into buffer: inout [UInt8]) -> Int {
        buffer.withUnsafeMutableBufferPointer { pointer in
            pointer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: pointer.count) {
                libssh2_channel_read_ex(raw, stream, $0, pointer.count)
            }
        }
    }

    /// Writes part of `bytes` to the command's standard input: the count
    /// written, `LIBSSH2_ERROR_EAGAIN`, or another error.
    func write(_ bytes: UnsafeRawBufferPointer) -> Int {
        libssh2_channel_write_ex(raw, 0, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
    }

    func sendEOF() -> Int32 { libssh2_channel_send_eof(raw) }

    /// Whether the server sent EOF and no unread data is left on either stream.
    var isAtEOF: Bool { libssh2_channel_eof(raw) != 0 }

    func close() -> Int32 { libssh2_channel_close(raw) }

    func waitClosed() -> Int32 { libssh2_channel_wait_closed(raw) }

    var exitStatus: Int32 { libssh2_channel_get_exit_status(raw) }

    /// The signal that ended the command, without `SIG`; `nil` if it exited.
    var exitSignal: String? {
        var name: UnsafeMutablePointer<CChar>?
        var length = 0
        _ = libssh2_channel_get_exit_signal(raw, &name, &length, nil, nil, nil, nil)
        guard let name else { return nil }
        // The string is allocated by libssh2 and must be released by it.
        defer { libssh2_free(session.raw, name) }
        return length > 0 ? String(decoding: UnsafeRawBufferPointer(start: name, count: length), as: UTF8.self) : nil
    }
}

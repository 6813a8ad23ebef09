import CLibSSH2
import FoundationEssentials
import Glibc

/// A program run on this machine (the orchestrator's own side, such as the
/// restore rehearsal's etcd): spawned with stdin from /dev/null and its
/// output in files, waited for on a thread of its own, off Swift's
/// cooperative pool.
public struct LocalProcess: Sendable {
    public let pid: Int32
    /// Where its standard output and error go.
    public let logFile: String

    /// How a program ended and what it printed.
    public struct Outcome: Sendable {
        /// The exit status; `nil` when a signal ended it.
        public let status: Int32?
        public let output: String
        public var succeeded: Bool { status == 0 }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Starts `arguments[0]` (a path, or a name looked up in `PATH`), its
    /// output and errors in `logFile`, written anew.
    public static func start(_ arguments: [String], logFile: String) throws -> LocalProcess {
        try start(arguments, stdout: logFile, stderr: nil, appending: false)
    }

    /// Starts `arguments[0]` with its output in `stdout` and its errors in
    /// `stderr` (`nil`: in `stdout` too), appended to or written anew.
    public static func start(
        _ arguments: [String], stdout: String, stderr: String?, appending: Bool
    ) throws -> LocalProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let mode = O_WRONLY | O_CREAT | (appending ? O_APPEND : O_TRUNC)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, mode, 0o644)
        if let stderr {
            posix_spawn_file_actions_addopen(&actions, 2, stderr, mode, 0o644)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        // No blocked signals and default handlers: this process's threads
        // block some, and a child inheriting that would ignore SIGTERM.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, environ)
        guard rc == 0 else {
            throw Failure(description: "cannot start \(arguments[0]): \(String(cString: strerror(rc)))")
        }
        return LocalProcess(pid: pid, logFile: stdout)
    }

    /// How a process ended.
    public enum End: Sendable, Equatable {
        case exited(Int32)
        case signalled
        /// Killed (SIGKILL) when its time was up.
        case timedOut
    }

    /// Runs `arguments` to its end; killed when `timeout` passes.
    public static func run(_ arguments: [String], logFile: String, timeout: Duration) async throws -> Outcome {
        let process = try start(arguments, logFile: logFile)
        let end = await process.wait(timeout: timeout)
        let output = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
        switch end {
        case let .exited(status): return Outcome(status: status, output: output)
        case .signalled: return Outcome(status: nil, output: output)
        case .timedOut:
            throw Failure(description: "\(arguments[0]) did not end within \(timeout): \(output.suffix(300))")
        }
    }

    /// Waits for the end; SIGKILL when `timeout` passes.
    public func wait(timeout: Duration) async -> End {
        let pid = pid
        let end = try? await BlockingWork.run(named: "wait \(pid)") { _ -> End in
            let deadline = ContinuousClock.now + timeout
            var status: Int32 = 0
            while true {
                let rc = waitpid(pid, &status, WNOHANG)
                if rc == pid { break }
                if rc < 0 && errno != EINTR { return .signalled }
                if ContinuousClock.now >= deadline {
                    kill(pid, SIGKILL)
                    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                    return .timedOut
                }
                usleep(20_000)
            }
            return status & 0x7f == 0 ? .exited((status >> 8) & 0xff) : .signalled
        }
        return end ?? .signalled
    }

    /// A TCP port free on 127.0.0.1 just now (the kernel's pick).
    public static func freeLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "no socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(fd, socketAddress, length) == 0 && getsockname(fd, socketAddress, &length) == 0
            }
        }
        guard bound else { throw Failure(description: "no free port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port` now (a
    /// loopback connect answers at once, accepted or refused).
    public static func acceptsConnections(onLoopbackPort port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    /// The first executable named `name` in `PATH`, or `nil`.
    public static func find(_ name: String) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { access($0, X_OK) == 0 }
    }

    /// SIGTERM, then SIGKILL after `grace`; waits for the end.
    public func stop(grace: Duration = .seconds(5)) async {
        kill(pid, SIGTERM)
        _ = await wait(timeout: grace)
    }
}

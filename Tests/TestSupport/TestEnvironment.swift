public import Foundation
import SharedIO
import Synchronization

/// Where test fixtures keep their files, how they find tools, and how the
/// servers they start are stopped when the test process ends.
public enum TestEnvironment {
    /// The folder for this test process's fixtures. `scripts/test.sh` sets
    /// `K8SUP_TEST_ROOT` and stops whatever is left there after the run.
    public static let root: URL = {
        let base = ProcessInfo.processInfo.environment["K8SUP_TEST_ROOT"] ?? NSTemporaryDirectory() + "k8sup-tests"
        let url = URL(fileURLWithPath: base).appendingPathComponent("run-\(getpid())")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    /// `Tests/Fixtures`: scripts and files the fixtures use.
    public static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// The folder holding the package's built products (`k8s-cluster-sim`, …),
    /// which is where the test runner itself lives.
    public static let productsDirectory: URL = {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.pathComponents.count > 1 && !url.lastPathComponent.hasSuffix(".xctest") {
            url = url.deletingLastPathComponent()
        }
        return url.deletingLastPathComponent()
    }()

    /// A new, empty folder below ``root``.
    public static func makeDirectory(_ name: String) throws -> URL {
        let url = root.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// The absolute path of a tool, or an error that says how to install it.
    public static func tool(_ name: String, candidates: [String] = []) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let searched = candidates + path.split(separator: ":").map { "\($0)/\(name)" } + ["/usr/sbin/\(name)"]
        if let found = searched.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) { return found }
        throw FixtureError("\(name) is not installed; run ./scripts/setup.sh (it installs every test prerequisite)")
    }

    /// Runs a command to completion and returns its standard output; a
    /// non-zero exit is an error carrying its standard error.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let result = try execute(executable, arguments)
        guard result.status == 0 else {
            throw FixtureError(
                "\(executable) \(arguments.joined(separator: " ")) exited \(result.status): \(result.stderr)")
        }
        return result.stdout
    }

    /// Runs a command to completion and returns how it ended and what it printed.
    public static func execute(
        _ executable: String, _ arguments: [String]
    ) throws -> (
        status: Int32, stdout: String, stderr: String
    ) {
        let scratch = try makeDirectory("run")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = scratch.appendingPathComponent("stdout").path
        let err = scratch.appendingPathComponent("stderr").path
        let pid = try ChildProcess.spawn(executable, arguments, stdout: out, stderr: err)
        let status = ChildProcess.wait(pid)
        let stdout = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
        return (status, stdout, stderr)
    }

    /// A TCP port on 127.0.0.1 that nothing listens on right now.
    public static func freePort() throws -> Int {
        // Below the kernel's ephemeral range (32768 and up), where outgoing
        // connections take their ports: a port the kernel hands out could be
        // taken by one before its server binds it. Never the same one twice.
        for _ in 0..<1000 {
            let port = Int.random(in: 20000...32000)
            guard handedOut.withLock({ !$0.contains(port) }), canBind(port) else { continue }
            handedOut.withLock { _ = $0.insert(port) }
            return port
        }
        throw FixtureError("no free loopback port between 20000 and 32000")
    }

    private static let handedOut = Mutex<Set<Int>>([])

    private static func canBind(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let length = socklen_t(MemoryLayout<sockaddr_in>.size)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        } == 0
    }

    /// Waits until `condition` holds, checking every 20 ms, or fails after `timeout`.
    public static func wait(for what: String, timeout: TimeInterval = 10, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            guard Date() < deadline else { throw FixtureError("timed out after \(timeout) s waiting for \(what)") }
            usleep(20_000)
        }
    }
}

/// Runs blocking fixture work (spawning and waiting for processes, polling
/// for a port) on a thread of its own: Swift's cooperative pool has only as
/// many threads as cores, and a fixture blocking them stalls every other
/// test's awaits, which then measure the wait instead of the code.
public func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// A test prerequisite failed; the message says what to do.
public struct FixtureError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Starts and reaps child processes with posix_spawn and waitpid.
///
/// Foundation's `Process` is not used: on Linux it reaps children from a
/// shared SIGCHLD handler and can miss an exit when several processes are
/// spawned from different threads at once, leaving `waitUntilExit` hanging.
public enum ChildProcess {
    /// Spawns `executable` with stdin from /dev/null, stdout and stderr to
    /// files. Descriptors the test process opens close-on-exec stay behind.
    public static func spawn(
        _ executable: String, _ arguments: [String], stdout: String, stderr: String
    ) throws -> pid_t {
        try LocalProcess.start([executable] + arguments, stdout: stdout, stderr: stderr, appending: true).pid
    }

    /// Waits for `pid` to end; its exit status, or 128 + signal.
    public static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    /// Whether `pid` still runs; reaps it if it ended.
    public static func isRunning(_ pid: pid_t) -> Bool {
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == 0
    }
}

/// A server process started by a fixture. Its pid is written next to its
/// files so that `scripts/stop-test-servers.sh` can stop it after a crash;
/// normally it is stopped when the test process exits.
public final class ServerProcess: Sendable {
    public let pid: pid_t
    public let logFile: URL

    public init(_ executable: String, _ arguments: [String], directory: URL, name: String) throws {
        let log = directory.appendingPathComponent("\(name).log")
        pid = try ChildProcess.spawn(executable, arguments, stdout: log.path, stderr: log.path)
        logFile = log
        try String(pid).write(to: directory.appendingPathComponent("\(name).pid"), atomically: true, encoding: .utf8)
        ServerRegistry.register(self)
    }

    /// What the server wrote so far, for failure messages.
    public var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    public var isRunning: Bool { ChildProcess.isRunning(pid) }

    /// Waits for the server to write the port it listens on to `file`; fails
    /// with the server's log when it exits or takes too long.
    public func waitForPort(in file: URL, what: String) throws -> Int {
        do {
            try TestEnvironment.wait(for: "\(what) to listen") {
                FileManager.default.fileExists(atPath: file.path) || !isRunning
            }
        } catch {
            throw FixtureError("\(error): \(log)")
        }
        guard let text = try? String(contentsOf: file, encoding: .utf8), let port = Int(text) else {
            throw FixtureError("\(what) did not start: \(log)")
        }
        return port
    }

    /// Stops the server with SIGTERM, then SIGKILL after a second. Plain
    /// POSIX calls: this also runs inside `exit()`.
    public func stop() {
        guard kill(pid, SIGTERM) == 0 else { return }
        for _ in 0..<100 {
            if !ChildProcess.isRunning(pid) { return }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        _ = ChildProcess.wait(pid)
    }
}

/// Stops every server when the test process exits.
public enum ServerRegistry {
    private nonisolated(unsafe) static var servers: [ServerProcess] = []
    private static let lock = NSLock()
    private static let installExitHook: Void = { atexit { ServerRegistry.stopAll() } }()

    public static func register(_ server: ServerProcess) {
        installExitHook
        lock.withLock { servers.append(server) }
    }

    public static func stopAll() {
        let all = lock.withLock { servers }
        for server in all { server.stop() }
    }
}

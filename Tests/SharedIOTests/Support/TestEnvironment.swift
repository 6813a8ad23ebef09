import Foundation

/// Where test fixtures keep their files, how they find tools, and how the
/// servers they start are stopped when the test process ends.
enum TestEnvironment {
    /// The folder for this test process's fixtures. `scripts/test.sh` sets
    /// `K8SUP_TEST_ROOT` and stops whatever is left there after the run.
    static let root: URL = {
        let base = ProcessInfo.processInfo.environment["K8SUP_TEST_ROOT"] ?? NSTemporaryDirectory() + "k8sup-tests"
        let url = URL(fileURLWithPath: base).appendingPathComponent("run-\(getpid())")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    /// `Tests/Fixtures`, next to this file's test target.
    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    /// A new, empty folder below ``root``.
    static func makeDirectory(_ name: String) throws -> URL {
        let url = root.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// The absolute path of a tool, or an error that says how to install it.
    static func tool(_ name: String, candidates: [String] = []) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let searched = candidates + path.split(separator: ":").map { "\($0)/\(name)" } + ["/usr/sbin/\(name)"]
        if let found = searched.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) { return found }
        throw FixtureError("\(name) is not installed; run ./scripts/setup.sh (it installs every test prerequisite)")
    }

    /// Runs a command to completion and returns its standard output.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], input: Data? = nil) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        if input != nil { process.standardInput = Pipe() }
        try process.run()
        if let input, let pipe = process.standardInput as? Pipe {
            pipe.fileHandleForWriting.write(input)
            try pipe.fileHandleForWriting.close()
        }
        let stdout = output.fileHandleForReading.readDataToEndOfFile()
        let stderr = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw FixtureError(
                "\(executable) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): "
                    + String(decoding: stderr, as: UTF8.self))
        }
        return String(decoding: stdout, as: UTF8.self)
    }

    /// A TCP port on 127.0.0.1 that nothing listens on right now.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FixtureError("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else { throw FixtureError("bind() failed") }
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw FixtureError("getsockname() failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Waits until `condition` holds, checking every 20 ms, or fails after `timeout`.
    static func wait(for what: String, timeout: TimeInterval = 10, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            guard Date() < deadline else { throw FixtureError("timed out after \(timeout) s waiting for \(what)") }
            usleep(20_000)
        }
    }
}

/// A test prerequisite failed; the message says what to do.
struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A server process started by a fixture. Its pid is written next to its
/// files so that `scripts/stop-test-servers.sh` can stop it after a crash;
/// normally it is stopped when the test process exits.
final class ServerProcess: Sendable {
    let process: Process
    let logFile: URL

    init(_ executable: String, _ arguments: [String], directory: URL, name: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let log = directory.appendingPathComponent("\(name).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try String(process.processIdentifier).write(
            to: directory.appendingPathComponent("\(name).pid"), atomically: true, encoding: .utf8)
        self.process = process
        self.logFile = log
        ServerRegistry.register(self)
    }

    /// What the server wrote so far, for failure messages.
    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    /// Stops the server with SIGTERM, then SIGKILL after a second. Plain
    /// POSIX calls: this also runs inside `exit()`, where Foundation's
    /// run-loop based waiting would hang.
    func stop() {
        let pid = process.processIdentifier
        guard pid > 0, kill(pid, SIGTERM) == 0 else { return }
        for _ in 0..<100 {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid || kill(pid, 0) != 0 { return }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
    }
}

/// Stops every server when the test process exits.
enum ServerRegistry {
    private nonisolated(unsafe) static var servers: [ServerProcess] = []
    private static let lock = NSLock()
    private static let installExitHook: Void = { atexit { ServerRegistry.stopAll() } }()

    static func register(_ server: ServerProcess) {
        installExitHook
        lock.withLock { servers.append(server) }
    }

    static func stopAll() {
        let all = lock.withLock { servers }
        for server in all { server.stop() }
    }
}

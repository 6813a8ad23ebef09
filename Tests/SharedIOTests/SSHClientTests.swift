import Foundation
import SharedIO
import Synchronization
import TestSupport
import Testing

@discardableResult
private func expectSSHFailure(
    _ kind: SSHError.Kind, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> SSHCommandResult
) async -> SSHError? {
    do {
        let result = try await body()
        Issue.record(
            "expected \(kind), got exit \(String(describing: result.exitStatus))", sourceLocation: sourceLocation)
        return nil
    } catch let error as SSHError {
        #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected SSHError.\(kind), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Collects lines delivered while a command runs, with when they came.
private final class LineLog: Sendable {
    private let lines = Mutex<[(SSHOutputLine, ContinuousClock.Instant)]>([])
    func record(_ line: SSHOutputLine) { lines.withLock { $0.append((line, .now)) } }
    var all: [(SSHOutputLine, ContinuousClock.Instant)] { lines.withLock { $0 } }
}

@Suite("SSH client over libssh2, against a real sshd")
struct SSHClientTests {
    let sshd: SSHDFixture

    init() async throws { sshd = try await SSHDFixture.shared() }

    @Test func logsInWithEd25519Key() async throws {
        let result = try await SSHClient(configuration: sshd.configuration()).run("echo hello from $(whoami)")
        #expect(result.exitStatus == 0)
        #expect(result.stdoutText == "hello from \(sshd.user)\n")
        #expect(result.stderr.isEmpty)
    }

    @Test func logsInWithRSAKeyWhereTheServerAcceptsItsSignature() async throws {
        let legacy = try await SSHDFixture.acceptingSHA1RSA()
        let result = try await SSHClient(configuration: legacy.configuration(key: legacy.rsaKey)).run("echo rsa ok")
        #expect(result.stdoutText == "rsa ok\n")
    }

    @Test func rsaKeyAgainstADefaultServerSaysWhyAndWhatToDo() async throws {
        let outcome = await Result {
            try await SSHClient(configuration: sshd.configuration(key: sshd.rsaKey)).run("true")
        }
        switch outcome {
        case .success(let result):
            // A libssh2 with rsa-sha2 signatures (1.11+) simply logs in.
            #expect(result.succeeded)
        case .failure(let error as SSHError):
            #expect(error.kind == .authenticationFailed)
            #expect(error.detail.contains("signs RSA keys with SHA-1"))
            #expect(error.detail.contains("use an ed25519 key"))
        case .failure(let error):
            Issue.record("unexpected \(error)")
        }
    }

    /// The server offers RSA, ECDSA and ed25519 host keys; whichever of
    /// them known_hosts holds, the handshake asks for that one.
    @Test(arguments: ["known_hosts", "known_hosts_ecdsa", "known_hosts_all", "known_hosts_hashed"])
    func aStockServerIsVerifiedByWhicheverKeyTypeKnownHostsHolds(file: String) async throws {
        let config = sshd.configuration(knownHosts: sshd.path(file))
        #expect(try await SSHClient(configuration: config).run("true").succeeded)
    }

    /// libssh2 1.10 (Debian 12) verifies RSA host keys by `ssh-rsa` (SHA-1)
    /// signatures only, which OpenSSH 8.8+ no longer offers: an RSA-only
    /// known_hosts cannot be used, and the error says what to add.
    @Test func anRSAOnlyKnownHostsIsRefusedSayingWhichKeyToAdd() async throws {
        let error = await expectSSHFailure(.unknownHostKey) {
            try await SSHClient(configuration: sshd.configuration(knownHosts: sshd.rsaKnownHosts)).run("true")
        }
        let text = error?.description ?? ""
        #expect(text.contains("lists only ssh-rsa for [127.0.0.1]:\(sshd.port)"), "\(text)")
        #expect(text.contains("ssh-keyscan -t ed25519"), "\(text)")
    }

    /// known_hosts lists `node-a` with the host's key, `node-b` with another
    /// key, and the address with the host's key.
    @Test(arguments: [("node-a", true), ("node-c", true), ("node-b", false)])
    func aNodesNameInKnownHostsIsTheOnlyNameItsKeyIsCheckedUnder(alias: String, accepted: Bool) async throws {
        var configuration = sshd.configuration(knownHosts: sshd.aliasKnownHosts)
        configuration.hostKeyAlias = alias
        if accepted {
            // node-a by its name; node-c is not listed, so by its address.
            let result = try await SSHClient(configuration: configuration).run("echo in")
            #expect(result.stdoutText == "in\n")
        } else {
            // node-b's listed key is not this server's: that the address
            // lists this server's key does not matter.
            let error = await expectSSHFailure(.hostKeyChanged) {
                try await SSHClient(configuration: configuration).run("true")
            }
            #expect(
                error?.description.contains("for node-b (looked up by its name)") == true,
                "\(String(describing: error))")
        }
    }

    @Test func aSilentlyDroppedConnectionIsNoticedWithinThreeKeepaliveIntervals() async throws {
        let proxy = try sshd.freezingProxy(after: 2)
        defer { proxy.server.stop() }
        var configuration = sshd.configuration(knownHosts: sshd.aliasKnownHosts)
        configuration.port = proxy.port
        configuration.hostKeyAlias = "node-a"
        configuration.keepaliveInterval = .seconds(2)
        let started = ContinuousClock.now
        let error = await expectSSHFailure(.connectionLost) {
            try await SSHClient(configuration: configuration).run("sleep 120", timeout: .seconds(120))
        }
        // Frozen at 2 s, lost once nothing came for 6 s: well before the command's two minutes.
        let took = ContinuousClock.now - started
        #expect(took >= .seconds(7) && took < .seconds(30), "\(took)")
        #expect(error?.description.contains("keepalives asked for an answer") == true)
    }

    @Test func aSilentCommandOnALiveConnectionOutlastsThreeKeepaliveIntervals() async throws {
        var configuration = sshd.configuration()
        configuration.keepaliveInterval = .seconds(2)
        // Nothing is printed for 9 s, more than the 6 s that declare a
        // connection lost: the keepalives' answers keep it alive.
        let result = try await SSHClient(configuration: configuration).run("sleep 9; echo done")
        #expect(result.stdoutText == "done\n")
    }

    @Test func hashedKnownHostsEntriesMatch() async throws {
        let config = sshd.configuration(knownHosts: sshd.hashedKnownHosts)
        #expect(try await SSHClient(configuration: config).run("true").succeeded)
    }

    @Test func stdinOfOneMebibyteComesBackIntact() async throws {
        var generator = SystemRandomNumberGenerator()
        let input = Data((0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        let result = try await SSHClient(configuration: sshd.configuration()).run("cat", stdin: input)
        #expect(result.exitStatus == 0)
        #expect(result.stdout.count == input.count)
        #expect(result.stdout == input)
    }

    /// SCP: a file of 3 MiB and 1 byte (not a multiple of any buffer)
    /// arrives whole, hashed as the host's sha256sum hashes it; an empty
    /// file arrives empty; a missing one is an error and leaves nothing.
    @Test func aFileIsCopiedOverSCPWithItsHashAndAMissingOneLeavesNothing() async throws {
        let client = SSHClient(configuration: sshd.configuration())
        let folder = try TestEnvironment.makeDirectory("scp")
        let remote = folder.appendingPathComponent("remote.db").path
        let made = try await client.run(
            "head -c 3145729 /dev/urandom >\(remote) && : >\(remote).empty && sha256sum \(remote)")
        #expect(made.exitStatus == 0, "\(made.stderrText)")
        let local = folder.appendingPathComponent("copy.db").path
        let copied = try await client.download(remote, to: local)
        #expect(copied.bytes == 3_145_729)
        #expect(made.stdoutText.hasPrefix(copied.sha256 + " "), "\(made.stdoutText) vs \(copied.sha256)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: local)) == Data(contentsOf: URL(fileURLWithPath: remote)))
        #expect(!FileManager.default.fileExists(atPath: local + ".partial"))
        let empty = try await client.download(remote + ".empty", to: local + ".empty")
        #expect(
            empty == SSHDownload(bytes: 0, sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"))
        // The connection is kept and used again after a copy.
        #expect(try await client.run("echo after").stdoutText == "after\n")
        do {
            _ = try await client.download(remote + ".missing", to: local + ".missing")
            Issue.record("a missing file was copied")
        } catch let error as SSHError {
            #expect(error.kind == .channelFailed, "\(error)")
            #expect("\(error)".contains("copying \(remote).missing"), "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: local + ".missing"))
        #expect(!FileManager.default.fileExists(atPath: local + ".missing.partial"))
    }

    @Test func scriptPipedToBashWithArguments() async throws {
        let script = Data(
            """
            set -euo pipefail
            echo "role=$2 release=$4"
            echo "progress on stderr" >&2
            exit 42

            """.utf8)
        let result = try await SSHClient(configuration: sshd.configuration())
            .run("bash -s -- --role worker --release 1.34.5", stdin: script)
        #expect(result.exitStatus == 42)
        #expect(result.stdoutText == "role=worker release=1.34.5\n")
        // After whatever the node's login shell prints first: this machine's
        // root .bashrc (pyenv) once wrote a rehash warning there under load.
        #expect(result.stderrText.hasSuffix("progress on stderr\n"), "\(result.stderrText)")
    }

    @Test(arguments: [0, 1, 42, 255])
    func exitCodesArePreserved(code: Int32) async throws {
        let result = try await SSHClient(configuration: sshd.configuration()).run("exit \(code)")
        #expect(result.exitStatus == code)
        #expect(result.exitSignal == nil)
        #expect(result.succeeded == (code == 0))
    }

    @Test func exitSignalIsReported() async throws {
        let result = try await SSHClient(configuration: sshd.configuration()).run("kill -TERM $$")
        #expect(result.exitSignal == "TERM")
        #expect(result.exitStatus == nil)
    }

    @Test func stdoutAndStderrStayApart() async throws {
        let result = try await SSHClient(configuration: sshd.configuration())
            .run("for i in 1 2 3; do echo out$i; echo err$i >&2; done")
        #expect(result.stdoutText == "out1\nout2\nout3\n")
        #expect(result.stderrText.hasSuffix("err1\nerr2\nerr3\n"), "\(result.stderrText)")
    }

    @Test func linesArriveWhileTheCommandRuns() async throws {
        let log = LineLog()
        let started = ContinuousClock.now
        let result = try await SSHClient(configuration: sshd.configuration())
            .run("echo first; echo warn >&2; sleep 1.5; printf 'last-without-newline'") { log.record($0) }
        let finished = ContinuousClock.now
        #expect(result.succeeded)
        let lines = log.all
        #expect(
            lines.map(\.0) == [
                SSHOutputLine(stream: .stdout, text: "first"), SSHOutputLine(stream: .stderr, text: "warn"),
                SSHOutputLine(stream: .stdout, text: "last-without-newline"),
            ])
        // "first" arrived well before the command ended, not at the end.
        if let first = lines.first { #expect(finished - first.1 > .seconds(1)) }
        #expect(finished - started >= .milliseconds(1500))
    }

    @Test func commandTimeoutClosesTheChannel() async throws {
        let started = ContinuousClock.now
        let error = await expectSSHFailure(.commandTimedOut) {
            try await SSHClient(configuration: sshd.configuration()).run("sleep 30", timeout: .seconds(1))
        }
        // Far sooner than the command's 30 s, with room for connecting on a loaded machine.
        #expect(ContinuousClock.now - started < .seconds(15))
        #expect(error?.description.contains("channel closed") == true)
    }

    @Test func cancellationClosesTheChannel() async throws {
        let config = sshd.configuration()
        let started = ContinuousClock.now
        let task = Task { try await SSHClient(configuration: config).run("sleep 30") }
        try await Task.sleep(for: .milliseconds(500))
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(ContinuousClock.now - started < .seconds(15))
    }

    @Test func unknownHostIsRefusedNamingTheFingerprint() async throws {
        let error = await expectSSHFailure(.unknownHostKey) {
            try await SSHClient(configuration: sshd.configuration(knownHosts: sshd.emptyKnownHosts)).run("true")
        }
        let text = error?.description ?? ""
        #expect(text.contains("[127.0.0.1]:\(sshd.port)"))
        #expect(text.contains("ssh-ed25519 key \(sshd.hostKeyFingerprint)"))
    }

    @Test func changedHostKeyIsRefusedNamingTheFingerprint() async throws {
        let error = await expectSSHFailure(.hostKeyChanged) {
            try await SSHClient(configuration: sshd.configuration(knownHosts: sshd.changedKnownHosts)).run("true")
        }
        let text = error?.description ?? ""
        #expect(text.contains("[127.0.0.1]:\(sshd.port)"))
        #expect(text.contains(sshd.hostKeyFingerprint))
    }

    @Test func missingKnownHostsFileIsRefused() async throws {
        await expectSSHFailure(.knownHostsUnreadable) {
            try await SSHClient(configuration: sshd.configuration(knownHosts: sshd.path("no-such-file"))).run("true")
        }
    }

    @Test func encryptedKeyGetsAClearError() async throws {
        let error = await expectSSHFailure(.keyEncrypted) {
            try await SSHClient(configuration: sshd.configuration(key: sshd.encryptedKey)).run("true")
        }
        #expect(error?.description.contains("passphrase") == true)
    }

    @Test func unauthorisedKeyIsRejected() async throws {
        await expectSSHFailure(.authenticationFailed) {
            try await SSHClient(configuration: sshd.configuration(key: sshd.unauthorisedKey)).run("true")
        }
    }

    @Test func missingKeyFile() async throws {
        await expectSSHFailure(.keyFileUnreadable) {
            try await SSHClient(configuration: sshd.configuration(key: sshd.path("nope"))).run("true")
        }
    }

    @Test func connectionRefused() async throws {
        var config = sshd.configuration()
        config.port = try TestEnvironment.freePort()
        await expectSSHFailure(.connectionRefused) { try await SSHClient(configuration: config).run("true") }
    }

    @Test func nameNotResolved() async throws {
        var config = sshd.configuration()
        config.host = "no-such-node.invalid"
        await expectSSHFailure(.nameNotResolved) { try await SSHClient(configuration: config).run("true") }
    }

    @Test func manyCommandsInParallel() async throws {
        let config = sshd.configuration()
        let outputs = try await withThrowingTaskGroup(of: String.self) { group in
            for index in 0..<8 {
                group.addTask { try await SSHClient(configuration: config).run("echo \(index)").stdoutText }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(outputs) == Set((0..<8).map { "\($0)\n" }))
    }

    // MARK: - Kept connections

    /// A configuration no other test uses: its own copy of known_hosts.
    func ownConfiguration() throws -> SSHConfiguration {
        let copy = try TestEnvironment.makeDirectory("ssh-kept").appendingPathComponent("known_hosts")
        try FileManager.default.copyItem(atPath: sshd.knownHosts, toPath: copy.path)
        return sshd.configuration(knownHosts: copy.path)
    }

    /// The client's end of the connection a command ran on (`SSH_CONNECTION`).
    static func clientPort(_ result: SSHCommandResult) -> String {
        String(result.stdoutText.split(separator: " ").dropFirst().first ?? "")
    }

    @Test func commandsInTurnShareOneConnectionAndAnotherConfigurationGetsItsOwn() async throws {
        let config = try ownConfiguration()
        let first = try await SSHClient(configuration: config).run("echo $SSH_CONNECTION")
        let second = try await SSHClient(configuration: config).run("echo $SSH_CONNECTION; exit 3")
        let third = try await SSHClient(configuration: config).run("echo $SSH_CONNECTION")
        #expect(second.exitStatus == 3)
        #expect(!Self.clientPort(first).isEmpty)
        #expect(Self.clientPort(second) == Self.clientPort(first))
        #expect(Self.clientPort(third) == Self.clientPort(first))
        let other = try await SSHClient(configuration: try ownConfiguration()).run("echo $SSH_CONNECTION")
        #expect(Self.clientPort(other) != Self.clientPort(first))
        // A host key no longer listed is refused even though a connection to the host is kept.
        var changed = config
        changed.knownHostsFile = sshd.changedKnownHosts
        await expectSSHFailure(.hostKeyChanged) { try await SSHClient(configuration: changed).run("true") }
    }

    @Test func aKeptConnectionTheServerEndedIsReplacedAndTheCommandRunsOnce() async throws {
        let config = try ownConfiguration()
        let marks = try TestEnvironment.makeDirectory("ssh-kept-marks").appendingPathComponent("marks").path
        // The command's parent is the server's process for this connection.
        let first = try await SSHClient(configuration: config).run("echo $PPID")
        let serverSide = try #require(Int32(first.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)))
        kill(serverSide, SIGKILL)
        try await Task.sleep(for: .milliseconds(100))
        let second = try await SSHClient(configuration: config).run("echo run >> \(marks); echo $PPID")
        #expect(second.exitStatus == 0)
        #expect(second.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) != "\(serverSide)")
        #expect(try String(contentsOfFile: marks, encoding: .utf8) == "run\n")
    }

    @Test func aCommandThatTimedOutLeavesNoConnectionBehind() async throws {
        let config = try ownConfiguration()
        let first = try await SSHClient(configuration: config).run("echo $SSH_CONNECTION")
        await expectSSHFailure(.commandTimedOut) {
            try await SSHClient(configuration: config).run("sleep 5", timeout: .milliseconds(300))
        }
        let after = try await SSHClient(configuration: config).run("echo $SSH_CONNECTION")
        #expect(Self.clientPort(after) != Self.clientPort(first))
    }
}

extension Result where Failure == any Error {
    fileprivate init(_ body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}

import FoundationEssentials
import Shared
import SharedIO
import Synchronization

// Helpers: gates, writes, the node script over SSH, remote commands.
extension UpgradePipeline {
    // MARK: - Helpers

    func markTouched(_ job: JobContext) { job.state.withLock { $0.touched = true } }

    /// The node script with `arguments`, its output streamed into the job; a
    /// non-zero exit fails the job. The run is detached from the SSH
    /// session (``NodeRun``): when the session drops, the job re-attaches
    /// to the same run (up to ``maxReattaches`` times within the script
    /// timeout) instead of starting a second one, and a run that was killed
    /// is started again, its steps being convergent.
    func runDetached(
        _ job: JobContext, _ arguments: [String], purpose: String, on node: NodeFacts, stage: UpgradeStage
    ) async throws {
        let id = NodeRun.id(job: job.id, purpose: purpose, node: node.name)
        // On the job's clock, as every wait is.
        let deadline = job.now() + settings.scriptTimeout.seconds
        var position: NodeRun.Position?
        var tries = 0
        while true {
            let command = RemoteCommand(
                ["bash", "-c", NodeRun.launcher, "update_k8s.sh"]
                    + NodeRun.arguments(id: id, reattachingFrom: position) + arguments,
                stdin: settings.nodeScript, timeout: .seconds(max(deadline - job.now(), 1)))
            // What this session saw: the attempt it follows and how many of
            // its lines (a session follows one attempt; stdout and stderr
            // may arrive in either order).
            let seen = Mutex<(announced: Int?, lines: Int)>((nil, 0))
            let result: SSHCommandResult
            do {
                defer {
                    let (announced, lines) = seen.withLock { $0 }
                    position = NodeRun.position(after: position, announced: announced, lines: lines)
                }
                result = try await runRemote(job, command, on: node, stage: stage) { line in
                    if line.stream == .stderr, let attempt = NodeRun.attempt(announcedIn: line.text) {
                        seen.withLock { $0.announced = attempt }
                    } else if line.stream == .stdout {
                        seen.withLock { $0.lines += 1 }
                    }
                }
            } catch let error as SSHError where Self.sessionLost(error.kind) {
                tries += 1
                let pause = Duration.seconds(min(1 << min(tries, 5), 30))
                guard tries <= Self.maxReattaches, job.now() + (pause + Self.minimumFollow).seconds < deadline else {
                    throw JobFailure(
                        "\(node.name): \(error); gave up re-attaching to run \(id) after \(tries) tries "
                            + "(--script-timeout leaves too little time); the run may still be going on the node")
                }
                try await job.record(
                    .warning,
                    "the SSH session to \(node.name) ended (\(error)); re-attaching to run \(id) in "
                        + "\(JobContext.format(pause.seconds)) (try \(tries))", stage: stage, node: node.name)
                try await job.sleep(pause, finishingOnShutdown: true)
                continue
            } catch { throw JobFailure("\(node.name): \(error)") }
            if result.exitStatus == NodeRun.stoppedWithoutStatus {
                tries += 1
                guard tries <= Self.maxReattaches, job.now() + Self.minimumFollow.seconds < deadline else {
                    throw JobFailure(
                        "run \(id) on \(node.name) stopped without an exit status (killed, or the node restarted), "
                            + "and --script-timeout leaves too little time to start it again")
                }
                try await job.record(
                    .warning,
                    "run \(id) on \(node.name) stopped without an exit status (killed, or the node restarted); "
                        + "starting it again, its steps being convergent (try \(tries))",
                    stage: stage, node: node.name)
                continue
            }
            guard result.succeeded else {
                throw JobFailure(
                    "update_k8s.sh \(Shell.command(arguments)) on \(node.name) \(Self.ended(result)): "
                        + NodeRun.failureSummary(log: result.stdoutText, notes: result.stderrText))
            }
            return
        }
    }

    /// Re-attaches to a node run at most this many times (dropped sessions
    /// and killed attempts), backing off from 2 s to 30 s, and only while
    /// the script timeout leaves ``minimumFollow``: a node that reboots
    /// is waited for.
    static let maxReattaches = 50
    static let minimumFollow = Duration.seconds(30)

    /// Whether an SSH failure means the session was lost on the way (worth
    /// re-attaching), not that the node refuses this tool.
    static func sessionLost(_ kind: SSHError.Kind) -> Bool {
        switch kind {
        case .transport, .connectionLost, .connectionRefused, .connectFailed, .connectTimedOut, .nameNotResolved,
            .channelFailed, .handshakeFailed:
            true
        case .unknownHostKey, .hostKeyChanged, .knownHostsUnreadable, .keyFileUnreadable, .keyEncrypted,
            .authenticationFailed, .commandTimedOut:
            false
        }
    }

    static func ended(_ result: SSHCommandResult) -> String {
        result.exitStatus.map { "exited \($0)" } ?? "was killed by SIG\(result.exitSignal ?? "?")"
    }

    /// Runs a command on a node, recording each output line as an event
    /// while it runs (and showing it to `observe` first).
    func runRemote(
        _ job: JobContext, _ command: RemoteCommand, on node: NodeFacts, stage: UpgradeStage,
        observe: (@Sendable (SSHOutputLine) -> Void)? = nil
    ) async throws -> SSHCommandResult {
        let (lines, sink) = AsyncStream.makeStream(of: SSHOutputLine.self)
        async let recorded: Void = {
            for await line in lines {
                try? await job.record(.output, line.text, stage: stage, node: node.name)
            }
        }()
        do {
            let result = try await shell.run(command, on: node) { line in
                observe?(line)
                sink.yield(line)
            }
            sink.finish()
            await recorded
            return result
        } catch {
            sink.finish()
            await recorded
            throw error
        }
    }

    func masterNode(_ nodes: [NodeFacts], job: JobContext) throws -> NodeFacts {
        let name =
            job.state.withLock { $0.plan.controlPlanes.first?.node }
            ?? settings.masterNode ?? nodes.filter(\.isControlPlane).map(\.name).min()
        guard let name, let node = nodes.first(where: { $0.name == name }) else {
            throw JobFailure("no control-plane node found")
        }
        return node
    }

    func apiServers(of nodes: [NodeFacts]) async throws -> [String: KubeVersion] {
        try await cluster.apiServerVersions(of: nodes)
    }

    static func tail(_ text: String) -> String { ProbeOutput.tail(text) }
}

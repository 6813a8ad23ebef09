import FoundationEssentials
import Shared
import SharedIO

// The one place that decides what a dry run records instead of doing.
// Every write, wait and node script of the stages goes through these; a
// dry run makes every read for real, records each write as "would …",
// runs the node script with --dry-run, and waits for nothing.
extension UpgradePipeline {
    // MARK: - Writes

    /// A write: made, or in a dry run recorded as "would …".
    func write(
        _ job: JobContext, _ what: String, stage: UpgradeStage? = nil, node: String? = nil,
        _ body: () async throws -> Void
    ) async throws {
        if job.request.dryRun {
            try await job.record(.wouldChange, "would \(what)", stage: stage, node: node)
        } else {
            try await body()
            try await job.record(.info, what, stage: stage, node: node)
        }
    }

    /// The upgrade gauges move only for a real run.
    func setGauges(_ job: JobContext, _ change: (inout UpgradeGauges) -> Void) {
        guard !job.request.dryRun else { return }
        gauges.update(change)
    }

    /// "is" or "would be", for what a node reached.
    func wouldBe(_ job: JobContext) -> String { job.request.dryRun ? "would be" : "is" }

    /// The stage's outcome: what it did, or in a dry run what it would do.
    func outcome(_ job: JobContext, done: String, rehearsed: String) -> StageOutcome {
        .done(job.request.dryRun ? "dry run: \(rehearsed)" : done)
    }

    // MARK: - Waits

    /// The gate before a stage or a node: waits (bounded), and says on Slack
    /// what blocks; a dry run notes it and goes on.
    @discardableResult
    func waitForGate(_ job: JobContext, stage: UpgradeStage, node: String?) async throws -> Bool {
        let verdict = await gate.verdict()
        guard verdict != .open else { return false }
        if job.request.dryRun {
            try await job.record(
                .warning, "the halt-on-alert gate is closed (\(verdict.summary)); a real run would wait", stage: stage,
                node: node)
            return false
        }
        notify(
            job, .warning, "Blocked before \(node ?? stage.rawValue)",
            [verdict.summary, "waiting up to \(JobContext.format(gate.gateWait.seconds))"])
        try await gate.waitUntilOpen(job, stage: stage, node: node)
        notify(job, .info, "Gate open again; continuing with \(node ?? stage.rawValue)")
        return true
    }

    /// A worker's soak, or in a dry run a note of it.
    func soak(_ nodes: [String], job: JobContext) async throws {
        if job.request.dryRun {
            try await job.record(
                .wouldChange,
                "would soak \(nodes.joined(separator: ", ")) for \(JobContext.format(settings.soak.seconds))",
                stage: .workers, node: nodes.count == 1 ? nodes[0] : nil)
            return
        }
        try await watchSoak(nodes, job: job)
    }

    /// After its script, the node at the target: waited for; a dry run
    /// counts a control plane as at the target on paper (for the workers'
    /// skew check). The report's outcome.
    func verify(
        _ node: String, role: NodeRole, finishing: Bool, job: JobContext, stage: UpgradeStage
    ) async throws -> String {
        if job.request.dryRun {
            if role != .worker { job.state.withLock { _ = $0.dryRunControlPlanes.insert(node) } }
            return "dry run: nothing changed"
        }
        try await waitUntilUpgraded(node, role: role, job: job, stage: stage)
        if role != .worker { try await writeProbe(after: node, job: job, stage: stage) }
        return finishing ? "finished" : job.request.rollback == nil ? "upgraded" : "rolled back"
    }

    /// After a control plane came back: a write through the API succeeds
    /// (dqlite and kine can wedge writes after a peer's restart while reads
    /// still answer, DISTRIBUTIONS.md §1.6), retried within the node-ready
    /// timeout.
    func writeProbe(after node: String, job: JobContext, stage: UpgradeStage) async throws {
        let stamp = "\(node) \(Int(job.now()))"
        try await job.wait(
            for: "a write through the API after \(node) came back", stage: stage, node: node,
            timeout: settings.nodeReadyTimeout, finishingOnShutdown: true
        ) {
            do {
                // Written and removed again: the probe leaves nothing behind.
                try await self.cluster.annotateNamespace(["write-probe": stamp])
                try await self.cluster.annotateNamespace(["write-probe": nil])
                return nil
            } catch { return "\(error)" }
        }
        try await job.record(
            .info, "a write through the API succeeded after \(node) came back", stage: stage, node: node)
    }

    /// The node as the cordon left it: read again, or in a dry run as the
    /// cordon would have left it.
    func afterCordon(_ node: NodeFacts, job: JobContext) async throws -> NodeFacts {
        guard job.request.dryRun else { return try await cluster.node(node.name) }
        var predicted = node
        if !node.unschedulable {
            predicted.unschedulable = true
            predicted.cordonedBy = "job-\(job.id)"
        }
        return predicted
    }

    // MARK: - Node changes

    /// The drain, or in a dry run what it would evict and leave.
    func drain(_ node: String, job: JobContext, stage: UpgradeStage) async throws -> Drainer.Outcome {
        guard !job.request.dryRun else { return try await rehearseDrain(node, job: job, stage: stage) }
        try await job.record(.info, "draining \(node)", stage: stage, node: node)
        do {
            var drainer = drainer
            drainer.clock = job.clock
            let outcome = try await drainer.drain(node, checkpoint: { try job.checkpoint() }) { message in
                try? await job.record(.info, message, stage: stage, node: node)
            }
            try await job.record(.info, "\(node) drained: \(outcome.evicted) pods evicted", stage: stage, node: node)
            return outcome
        } catch let timeout as DrainTimeout {
            setGauges(job) { gauges in
                gauges.drainBlocked = timeout.held.map { .init(node: node, pod: $0.pod, budget: $0.budget) }
            }
            throw JobFailure(timeout.description)
        }
    }

    private func rehearseDrain(_ node: String, job: JobContext, stage: UpgradeStage) async throws -> Drainer.Outcome {
        let selection = try await drainer.select(node)
        let budgets = try await cluster.budgets()
        for refusal in selection.refusals {
            try await job.record(.warning, "drain would stop: \(refusal)", stage: stage, node: node)
        }
        for (pod, reason) in selection.leftOnPurpose {
            try await job.record(.info, "would leave \(pod) on \(node): \(reason)", stage: stage, node: node)
        }
        for pod in selection.evict {
            let budget = budgets.first { $0.covers(pod) }.map { " (\($0.summary))" } ?? ""
            try await job.record(.wouldChange, "would evict \(pod.reference)\(budget)", stage: stage, node: node)
        }
        return Drainer.Outcome(evicted: 0, blockers: [], excluded: selection.excluded)
    }

    /// The node script with `arguments`, detached from the session
    /// (``runDetached``); a dry run pipes it with `--dry-run`, which
    /// changes nothing on the node.
    func runScript(
        _ job: JobContext, _ arguments: [String], purpose: String, on node: NodeFacts, stage: UpgradeStage
    ) async throws {
        guard job.request.dryRun else {
            markTouched(job)
            return try await runDetached(job, arguments, purpose: purpose, on: node, stage: stage)
        }
        try await job.record(
            .wouldChange, "would run on \(node.name): update_k8s.sh \(Shell.command(arguments))", stage: stage,
            node: node.name)
        let words = arguments + ["--dry-run"]
        let command = RemoteCommand(
            ["bash", "-s", "--"] + words, stdin: settings.nodeScript, timeout: settings.scriptTimeout)
        let result: SSHCommandResult
        do {
            result = try await runRemote(job, command, on: node, stage: stage)
        } catch { throw JobFailure("\(node.name): \(error)") }
        guard result.succeeded else {
            throw JobFailure(
                "update_k8s.sh \(Shell.command(words)) on \(node.name) \(Self.ended(result)): \(Self.tail(result.stderrText))"
            )
        }
    }

    /// After the containerd step: the master reports the new runtime
    /// (waited for; a dry run has nothing to wait for).
    func waitForRuntime(_ wanted: KubeVersion, on master: String, job: JobContext) async throws {
        guard !job.request.dryRun else { return }
        try await job.wait(
            for: "\(master) to report containerd \(wanted)", stage: .containerd, node: master,
            timeout: settings.nodeReadyTimeout
        ) {
            guard let node = try? await self.cluster.node(master) else { return "node unreadable" }
            return node.containerd == wanted && node.isReady
                ? nil : "runtime \(node.containerd?.description ?? "?"), \(node.readiness)"
        }
    }

    // MARK: - The snapshot

    /// Saves and verifies the snapshot at `path`, or in a dry run shows the
    /// commands it would run; the verified status, `nil` in a dry run.
    func saveSnapshot(
        _ save: RemoteCommand, verifying status: RemoteCommand, at path: String, on master: NodeFacts,
        job: JobContext
    ) async throws -> String? {
        if job.request.dryRun {
            if case let .failure(error) = await datastoreHealth(on: master) {
                let datastore = settings.distribution.datastore
                throw JobFailure("\(datastore) is not healthy, the snapshot would fail: \(error)")
            }
            try await job.record(.wouldChange, "would run on \(master.name): \(shell.render(save))", stage: .snapshot)
            try await job.record(.wouldChange, "would verify with: \(shell.render(status))", stage: .snapshot)
            return nil
        }
        return try await takeSnapshot(save, verifying: status, at: path, on: master, job: job)
    }

    // MARK: - The end

    /// Post-flight's problems fail a real run; a dry run reports them as
    /// the state before any change.
    func requireNoProblems(_ problems: [String], job: JobContext) async throws {
        if job.request.dryRun {
            for problem in problems {
                try await job.record(.info, "now (before any change): \(problem)", stage: .postflight)
            }
            return
        }
        guard problems.isEmpty else { throw JobFailure("postflight failed: " + problems.joined(separator: "; ")) }
    }

    /// Whether the job's end clears the in-flight mark: a dry run never
    /// set it; a run that changed nothing on a cluster that was already
    /// mid-upgrade leaves it as mid-upgrade as it found it.
    func clearsMark(_ job: JobContext, final: JobState) -> (clear: Bool, write: Bool) {
        // A rollback wrote no mark: an upgrade's mark stays as it is.
        if job.request.rollback != nil { return (false, false) }
        let (touched, mixed) = job.state.withLock { ($0.touched, $0.mixedAtStart) }
        let clear = final == .succeeded || (!touched && !mixed)
        return (clear, clear && !job.request.dryRun)
    }
}

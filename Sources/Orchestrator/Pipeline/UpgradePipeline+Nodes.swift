import FoundationEssentials
import Shared
import SharedIO

// Stages 5 and 6: the node steps of control planes and workers.
extension UpgradePipeline {
    // MARK: - Stages 5 and 6: nodes

    func controlPlanes(_ job: JobContext) async throws -> StageOutcome {
        let steps = state.withLock { $0.plan.controlPlanes }
        var upgraded = 0
        for step in steps {
            try job.checkpoint()
            guard let node = try await liveStep(step, job: job, stage: .master) else { continue }
            try await waitForGate(job, stage: .master, node: step.node)
            let master = try masterNode(try await cluster.nodes())
            switch await etcdHealth(on: master) {
            case let .success(health):
                switch health.quorum(without: step.node) {
                case let .success(verdict):
                    try await job.record(
                        .info, "etcd: \(health.summary); \(verdict)", stage: .master, node: step.node)
                case let .failure(reason):
                    throw JobFailure("\(step.node) was not touched: \(reason)")
                }
            case let .failure(error): throw JobFailure("etcd is not healthy before \(step.node): \(error)")
            }
            try await upgrade(node, step: step, job: job, stage: .master)
            upgraded += 1
        }
        return .done("\(upgraded) of \(steps.count) control planes upgraded; the others were already done")
    }

    func workers(_ job: JobContext) async throws -> StageOutcome {
        let steps = state.withLock { $0.plan.workers }
        var upgraded = 0
        for step in steps {
            try job.checkpoint()
            guard let node = try await liveStep(step, job: job, stage: .workers) else { continue }
            try await waitForGate(job, stage: .workers, node: step.node)
            try await upgrade(node, step: step, job: job, stage: .workers)
            try await soak(step.node, job: job)
            upgraded += 1
        }
        return .done("\(upgraded) of \(steps.count) workers upgraded; the others were already done")
    }

    /// Re-reads the node and decides again, so a resumed job skips what is done.
    func liveStep(
        _ step: NodeStep, job: JobContext, stage: UpgradeStage
    ) async throws -> (NodeFacts, NodeAction)? {
        let node = try await cluster.node(step.node)
        let apiServer = step.role == .worker ? nil : try await cluster.apiServerVersion(on: step.node)
        let action = UpgradePlan.action(
            for: node, apiServer: apiServer, target: job.request.targetVersion, isControlPlane: step.role != .worker)
        if case let .skip(reason) = action {
            try await job.record(.nodeSkipped, reason, stage: stage, node: step.node)
            var line = UpgradeReport.NodeReport(
                name: step.node, role: step.role, before: step.from?.description ?? "?",
                after: node.kubelet?.description ?? "?", outcome: "skipped: \(reason)")
            if let existing = state.withLock({ $0.report.nodes.first { $0.name == step.node } }) { line = existing }
            state.withLock { $0.report.record(line) }
            return nil
        }
        return (node, action)
    }

    /// cordon → drain → node script → uncordon → verify.
    func upgrade(
        _ live: (NodeFacts, NodeAction), step: NodeStep, job: JobContext, stage: UpgradeStage
    ) async throws {
        let (node, action) = live
        let target = job.request.targetVersion
        var line = UpgradeReport.NodeReport(
            name: node.name, role: step.role, before: node.kubelet?.description ?? "?")
        setGauges(job) { $0.node = node.name }
        let what = action == .finish ? "finishing" : "upgrading"
        try await job.record(
            .nodeStarted, "\(what) \(node.name) (\(step.role.rawValue)): \(line.before) → \(target)", stage: stage,
            node: node.name)
        notify(job, .info, "\(node.name): \(what) \(line.before) → \(target)")
        do {
            if action == .upgrade {
                if step.role == .worker { try await checkKubeletSkew(node, job: job) }
                try await reach(node, job: job, stage: stage)
                if !node.unschedulable {
                    try await write(job, "cordon \(node.name)", stage: stage, node: node.name) {
                        try await cluster.cordon(node.name, by: "job-\(job.id)")
                    }
                    markTouched()
                    setGauges(job) { $0.cordonedSince[node.name] = job.now() }
                } else if node.cordonedBy != nil {
                    // Cordoned by this job before a restart: since now, at the latest.
                    setGauges(job) { gauges in
                        if gauges.cordonedSince[node.name] == nil { gauges.cordonedSince[node.name] = job.now() }
                    }
                } else if node.cordonedBy == nil {
                    try await job.record(
                        .info, "\(node.name) was already cordoned by someone else; it stays cordoned afterwards",
                        stage: stage, node: node.name)
                }
                let drainStart = job.now()
                let drained = try await drain(node.name, job: job, stage: stage)
                line.drainSeconds = job.now() - drainStart
                line.podsEvicted = drained.evicted
                line.blockers = drained.blockers
                line.podsLeft = drained.excluded
                let scriptStart = job.now()
                markTouched()
                try await runScript(
                    job, settings.distribution.nodeStep(role: step.role, target: target),
                    purpose: "\(step.role.rawValue)-\(target)", on: node, stage: stage)
                line.scriptSeconds = job.now() - scriptStart
            }
            let current = job.request.dryRun ? node : try await cluster.node(node.name)
            if job.request.dryRun ? !node.unschedulable : current.cordonedBy != nil {
                try await write(job, "uncordon \(node.name)", stage: stage, node: node.name) {
                    try await cluster.uncordon(node.name)
                }
                setGauges(job) { $0.cordonedSince[node.name] = nil }
            } else if current.unschedulable {
                try await job.record(
                    .info, "\(node.name) left cordoned: this tool did not cordon it", stage: stage, node: node.name)
            }
            if job.request.dryRun {
                line.after = target.description
                line.outcome = "dry run: nothing changed"
                if step.role != .worker { state.withLock { _ = $0.dryRunControlPlanes.insert(node.name) } }
            } else {
                try await verify(node.name, role: step.role, job: job, stage: stage)
                line.after = target.description
                line.outcome = action == .finish ? "finished" : "upgraded"
            }
        } catch {
            line.outcome = "failed: \(error)"
            state.withLock { $0.report.record(line) }
            if !(error is JobStop) {
                try? await job.record(.nodeFailed, "\(error)", stage: stage, node: node.name)
                notify(job, .failure, "\(node.name) failed", ["\(error)"])
            }
            throw error
        }
        state.withLock { $0.report.record(line) }
        try await job.record(
            .nodeSucceeded,
            "\(node.name) \(job.request.dryRun ? "would be" : "is") at \(target)"
                + (line.drainSeconds + line.scriptSeconds > 0
                    ? " (drain \(UpgradeReport.seconds(line.drainSeconds)), \(line.podsEvicted) pods evicted, script \(UpgradeReport.seconds(line.scriptSeconds)))"
                    : ""),
            stage: stage, node: node.name)
        notify(job, .success, "\(node.name) done", [line.outcome])
    }

    /// A worker's kubelet never gets ahead of the oldest API server, whatever
    /// stages were selected (`preflight,workers` on a cluster whose control
    /// plane was not upgraded stops here, before the first cordon).
    func checkKubeletSkew(_ node: NodeFacts, job: JobContext) async throws {
        let target = job.request.targetVersion
        var apiServers = try await cluster.apiServerVersions(of: try await cluster.nodes())
        if job.request.dryRun {
            for name in state.withLock({ $0.dryRunControlPlanes }) { apiServers[name] = target }
        }
        let versions = apiServers.isEmpty ? [try await cluster.client.serverVersion()] : Array(apiServers.values)
        guard let current = node.kubelet else {
            throw JobFailure("\(node.name): its kubelet version is unreadable, so it was not touched")
        }
        if case let .refused(violations) = SkewPolicy.evaluateKubeletUpgrade(
            node: node.name, from: current, to: target, apiServers: versions)
        {
            let oldest = apiServers.min { $0.value < $1.value }.map { " (\($0.key) runs \($0.value))" } ?? ""
            throw JobFailure(
                "\(node.name) was not touched: " + violations.map(\.description).joined(separator: "; ")
                    + "; the control planes must reach \(target) first\(oldest): run the master stage")
        }
    }

    /// Connects to the node and runs `true` before anything changes it: a
    /// node that cannot be reached, or whose host key does not verify, is
    /// never cordoned or drained.
    func reach(_ node: NodeFacts, job: JobContext, stage: UpgradeStage) async throws {
        do {
            _ = try await shell.run(
                RemoteCommand(["true"], asRoot: false, timeout: .seconds(30)), on: node, onOutput: nil)
        } catch let error as SSHError {
            throw JobFailure("\(node.name) cannot be reached over SSH, so nothing was changed on it: \(error)")
        }
    }

    func drain(_ node: String, job: JobContext, stage: UpgradeStage) async throws -> Drainer.Outcome {
        if job.request.dryRun {
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

    func verify(_ node: String, role: NodeRole, job: JobContext, stage: UpgradeStage) async throws {
        let target = job.request.targetVersion
        try await job.wait(
            for:
                "\(node) to be Ready with kubelet\(role == .worker ? "" : " and API server") at \(target) after its kubelet restart",
            stage: stage, node: node, timeout: settings.nodeReadyTimeout, finishingOnShutdown: true
        ) {
            guard let facts = try? await self.cluster.node(node) else { return "node unreadable" }
            var missing: [String] = []
            if !facts.isReady { missing.append(facts.readiness) }
            if facts.kubelet?.release != target.release {
                missing.append("kubelet \(facts.kubelet?.description ?? "?")")
            }
            if role != .worker {
                let api = try? await self.cluster.apiServerVersion(on: node)
                if api?.release != target.release { missing.append("API server \(api?.description ?? "?")") }
            }
            return missing.isEmpty ? nil : missing.joined(separator: ", ")
        }
    }

    /// Watches the gate and the node's Ready state for the soak time; a
    /// regression fails the job before the next node.
    func soak(_ node: String, job: JobContext) async throws {
        guard settings.soak > .zero else { return }
        if job.request.dryRun {
            try await job.record(
                .wouldChange, "would soak \(node) for \(JobContext.format(settings.soak.seconds))", stage: .workers,
                node: node)
            return
        }
        let started = job.now()
        let end = started + settings.soak.seconds
        try await job.store.append(
            job.id,
            [
                JobEvent(
                    time: started, kind: .waitStarted, stage: .workers, node: node,
                    message: "soak of \(node): watching the gate and the node", deadline: end)
            ])
        while job.now() < end {
            try await job.sleep(min(job.pollInterval, .seconds(max(0.01, end - job.now()))))
            var problem: String?
            let verdict = await gate.verdict()
            if verdict != .open { problem = "halt-on-alert gate closed: \(verdict.summary)" }
            if problem == nil, let facts = try? await cluster.node(node), !facts.isReady {
                problem = "\(node) is no longer Ready: \(facts.readiness)"
            }
            if let problem {
                let text = "soak of \(node) stopped after \(JobContext.format(job.now() - started)): \(problem)"
                try await job.record(.waitEnded, text, stage: .workers, node: node)
                notify(job, .failure, "Blocked: soak of \(node) found a regression", [problem])
                throw JobFailure(text)
            }
        }
        let seconds = job.now() - started
        state.withLock { run in
            if let index = run.report.nodes.firstIndex(where: { $0.name == node }) {
                run.report.nodes[index].soakSeconds = seconds
            }
        }
        try await job.record(
            .waitEnded, "soak of \(node): clean for \(JobContext.format(seconds))", stage: .workers, node: node)
    }
}

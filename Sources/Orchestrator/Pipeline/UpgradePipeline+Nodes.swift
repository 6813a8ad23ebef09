import FoundationEssentials
import Shared
import SharedIO

// Stages 5 and 6: each node's procedure (``NodeProcedure``), carried out
// step by step.
extension UpgradePipeline {
    // MARK: - Stages 5 and 6: nodes

    func controlPlanes(_ job: JobContext) async throws -> StageOutcome {
        let steps = job.state.withLock { $0.plan.controlPlanes }
        let upgraded = try await nodes(steps, stage: .master, job: job)
        if let rollback = job.request.rollback {
            return upgraded == 0
                ? .skipped("\(rollback.node) was already at \(job.request.targetVersion)")
                : .done(
                    "\(rollback.node) \(wouldBe(job)) back at \(job.request.targetVersion), its datastore restored "
                        + "from job \(rollback.job)'s snapshot")
        }
        return .done("\(upgraded) of \(steps.count) control planes upgraded; the others were already done")
    }

    func workers(_ job: JobContext) async throws -> StageOutcome {
        let steps = job.state.withLock { $0.plan.workers }
        let upgraded =
            settings.maxUnavailableWorkers > 1 && job.request.rollback == nil
            ? try await workerBatches(steps, job: job) : try await nodes(steps, stage: .workers, job: job)
        if let rollback = job.request.rollback {
            return upgraded == 0
                ? .skipped("\(rollback.node) was already at \(job.request.targetVersion)")
                : .done("\(rollback.node) \(wouldBe(job)) back at \(job.request.targetVersion)")
        }
        return .done("\(upgraded) of \(steps.count) workers upgraded; the others were already done")
    }

    /// Each node in turn, decided again from its live state (a resumed
    /// job skips what is done); the number carried out.
    private func nodes(_ steps: [NodeStep], stage: UpgradeStage, job: JobContext) async throws -> Int {
        var carried = 0
        for step in steps {
            try job.checkpoint()
            try await checkHoldDrift(job: job, stage: stage)
            guard let (node, action) = try await readyToStart(step, job: job, stage: stage) else { continue }
            var (work, operations) = nodeWork(step, node: node, action: action, stage: stage, job: job)
            try await carryOut(operations, &work, job: job)
            carried += 1
        }
        if carried > 0 { try await checkHoldDrift(job: job, stage: stage) }
        return carried
    }

    /// A node's work and the operations the core decides for it; `soaks`
    /// false leaves a worker's soak to the caller (a batch soaks together).
    func nodeWork(
        _ step: NodeStep, node: NodeFacts, action: NodeAction, stage: UpgradeStage, job: JobContext,
        soaks: Bool = true
    ) -> (NodeWork, [NodeOperation]) {
        let drains = NodeProcedure.drains(kind: job.request.kind, patchDrain: settings.patchDrain)
        let target = job.request.targetVersion
        let operations: [NodeOperation]
        if job.request.rollback == nil {
            operations = NodeProcedure.operations(
                role: step.role, action: action,
                script: settings.distribution.nodeStep(role: step.role, target: target),
                soaks: soaks && settings.soak > .zero, drains: drains)
        } else if step.role == .worker {
            operations = NodeProcedure.rollbackOperations(
                action: action, script: settings.distribution.workerRollbackStep(to: target), drains: drains)
        } else {
            let script = job.state.withLock { $0.restoreStep } ?? []
            operations = NodeProcedure.restoreOperations(action: action, script: script)
        }
        let before = job.state.withLock { $0.beforeJob[node.name] } ?? node.kubelet?.description ?? "?"
        var line = UpgradeReport.NodeReport(name: node.name, role: step.role, before: before)
        line.predicted = job.state.withLock { $0.predicted[node.name] } ?? []
        let work = NodeWork(node: node, step: step, action: action, stage: stage, line: line)
        return (work, operations)
    }

    /// Re-reads the node and decides again, so a resumed job skips what is done.
    func liveStep(
        _ step: NodeStep, job: JobContext, stage: UpgradeStage
    ) async throws -> (NodeFacts, NodeAction)? {
        let node = try await cluster.node(step.node)
        // A control plane's restore runs whatever release the node is at
        // (``beginRestore``): its script knows what it already did.
        if job.request.rollback != nil, step.role != .worker { return (node, .upgrade) }
        let apiServer = step.role == .worker ? nil : try await cluster.apiServerVersion(on: step.node)
        let action = UpgradePlan.action(
            for: node, apiServer: apiServer, target: job.request.targetVersion, isControlPlane: step.role != .worker)
        if case let .skip(reason) = action {
            try await job.record(.nodeSkipped, reason, stage: stage, node: step.node)
            let before = job.state.withLock { $0.beforeJob[step.node] } ?? step.from?.description ?? "?"
            var line = UpgradeReport.NodeReport(
                name: step.node, role: step.role, before: before,
                after: node.kubelet?.description ?? "?", outcome: "skipped: \(reason)")
            if let existing = job.state.withLock({ $0.report.nodes.first { $0.name == step.node } }) { line = existing }
            job.state.withLock { $0.report.record(line) }
            return nil
        }
        return (node, action)
    }

    /// One node's procedure, as the core decided it. A failure between
    /// `start` and `done` fails the node (its report line, an event, a notice).
    func carryOut(_ operations: [NodeOperation], _ work: inout NodeWork, job: JobContext) async throws {
        let name = work.node.name
        defer { setGauges(job) { _ = $0.nodes.remove(name) } }
        for (index, operation) in operations.enumerated() {
            // Reached side by side with the kubelet skew check, just before.
            if operation == .reach, index > 0, operations[index - 1] == .kubeletSkew { continue }
            do {
                if operation == .kubeletSkew, operations.dropFirst(index + 1).first == .reach {
                    // Two reads that do not depend on each other (the API
                    // servers' versions, the node over SSH), at the same time;
                    // a skew refusal is the one reported when both fail.
                    async let reached: Void = reach(work.node, job: job, stage: work.stage)
                    do { try await checkKubeletSkew(work.node, job: job, stage: work.stage) } catch {
                        _ = try? await reached
                        throw error
                    }
                    try await reached
                } else {
                    try await perform(operation, &work, job: job)
                }
            } catch {
                var error = error
                if operation.revertsOnFailure, !(error is JobStop), !job.request.dryRun, job.request.rollback == nil,
                    let release = work.node.kubelet,
                    let arguments = settings.distribution.revertStep(role: work.step.role, to: release)
                {
                    let reverted = await revert(work, to: release, arguments: arguments, after: error, job: job)
                    error = JobFailure("\(error); \(reverted)")
                }
                if operation.isNodeStep {
                    work.line.outcome = "failed: \(error)"
                    let line = work.line
                    job.state.withLock { $0.report.record(line) }
                    if !(error is JobStop) {
                        try? await job.record(.nodeFailed, "\(error)", stage: work.stage, node: work.node.name)
                        notify(job, .failure, "\(work.node.name) failed", ["\(error)"])
                    }
                }
                throw error
            }
        }
    }

    private func perform(_ operation: NodeOperation, _ work: inout NodeWork, job: JobContext) async throws {
        let node = work.node
        let target = job.request.targetVersion
        switch operation {
        case .gate:
            try await waitForGate(job, stage: work.stage, node: node.name)
        case .quorum:
            try await checkQuorum(without: node.name, job: job)
        case .start:
            work.started = job.now()
            setGauges(job) { _ = $0.nodes.insert(node.name) }
            let what =
                work.action == .finish ? "finishing" : job.request.rollback == nil ? "upgrading" : "rolling back"
            try await job.record(
                .nodeStarted, "\(what) \(node.name) (\(work.step.role.rawValue)): \(work.line.before) → \(target)",
                stage: work.stage, node: node.name)
            notify(job, .info, "\(node.name): \(what) \(work.line.before) → \(target)")
        case .kubeletSkew:
            try await checkKubeletSkew(node, job: job, stage: work.stage)
        case .reach:
            try await reach(node, job: job, stage: work.stage)
        case .cordon:
            try await cordon(node, job: job, stage: work.stage)
        case .drain:
            let started = job.now()
            let drained = try await drain(node.name, job: job, stage: work.stage)
            work.line.drainSeconds = job.now() - started
            work.line.podsEvicted = drained.evicted
            work.line.blockers = drained.blockers
            work.line.podsLeft = drained.excluded
        case let .script(arguments):
            let started = job.now()
            try await runScript(
                job, arguments, purpose: Self.nodeStepPurpose(work.step.role, target), on: node, stage: work.stage)
            work.line.scriptSeconds = job.now() - started
        case .uncordon:
            let current = try await afterCordon(node, job: job)
            if current.cordonedBy != nil {
                try await write(job, "uncordon \(node.name)", stage: work.stage, node: node.name) {
                    try await cluster.uncordon(node.name)
                }
                setGauges(job) { $0.cordonedSince[node.name] = nil }
            } else if current.unschedulable {
                try await job.record(
                    .info, "\(node.name) left cordoned: this tool did not cordon it", stage: work.stage,
                    node: node.name)
            }
        case .verify:
            work.line.after = target.description
            work.line.outcome = try await verify(
                node.name, role: work.step.role, finishing: work.action == .finish, job: job, stage: work.stage)
        case .done:
            let (role, seconds) = (work.step.role, job.now() - (work.started ?? job.now()))
            work.line.workSeconds = seconds
            let line = work.line
            job.state.withLock {
                $0.report.record(line)
                if !job.request.dryRun { $0.timings.timed(role, seconds: seconds) }
            }
            let timings =
                line.drainSeconds + line.scriptSeconds > 0
                ? " (drain \(UpgradeReport.seconds(line.drainSeconds)), \(line.podsEvicted) pods evicted, "
                    + "script \(UpgradeReport.seconds(line.scriptSeconds)))" : ""
            try await job.record(
                .nodeSucceeded, "\(node.name) \(wouldBe(job)) at \(target)\(timings)", stage: work.stage,
                node: node.name)
            notify(job, .success, "\(node.name) done", [line.outcome])
        case .soak:
            do { try await soak([node.name], job: job) } catch let failure as JobFailure
                where settings.canaryRollback && !job.request.dryRun && job.request.rollback == nil
            {
                throw JobFailure("\(failure); \(await rollBackCanary(work, after: failure, job: job))")
            }
        }
    }

    /// What a node step's detached run is named after (with the job and the node).
    static func nodeStepPurpose(_ role: NodeRole, _ target: KubeVersion) -> String { "\(role.rawValue)-\(target)" }

    /// The datastore stays quorate while this control plane's member restarts.
    func checkQuorum(without node: String, job: JobContext) async throws {
        let nodes = try await cluster.nodes()
        let asked = datastoreMember(for: node, nodes: nodes, master: try masterNode(nodes, job: job))
        let datastore = settings.distribution.datastore
        switch await datastoreHealth(on: asked) {
        case let .success(health):
            switch health.quorum(without: node) {
            case let .success(verdict):
                try await job.record(
                    .info, "\(datastore): \(health.summary); \(verdict)", stage: .master, node: node)
            case let .failure(reason):
                throw JobFailure("\(node) was not touched: \(reason)")
            }
        case let .failure(error): throw JobFailure("\(datastore) is not healthy before \(node): \(error)")
        }
    }

    /// Where the quorum gate before `node` asks: the master, or for a
    /// distribution that reads through another member (dqlite) a Ready
    /// control plane other than `node`, the master first; `node` itself
    /// when it is the only one.
    func datastoreMember(for node: String, nodes: [NodeFacts], master: NodeFacts) -> NodeFacts {
        guard settings.distribution.quorumFromAnotherMember else { return master }
        let others = nodes.filter { $0.isControlPlane && $0.isReady && $0.name != node }
            .sorted { ($0.name == master.name ? 0 : 1, $0.name) < ($1.name == master.name ? 0 : 1, $1.name) }
        return others.first ?? nodes.first { $0.name == node } ?? master
    }

    /// Cordons the node for this job unless it is already unschedulable; a
    /// node someone else cordoned stays cordoned afterwards.
    func cordon(_ node: NodeFacts, job: JobContext, stage: UpgradeStage) async throws {
        if !node.unschedulable {
            try await write(job, "cordon \(node.name)", stage: stage, node: node.name) {
                try await cluster.cordon(node.name, by: "job-\(job.id)")
            }
            markTouched(job)
            setGauges(job) { $0.cordonedSince[node.name] = job.now() }
        } else if node.cordonedBy != nil {
            // Cordoned by this job before a restart: since now, at the latest.
            setGauges(job) { gauges in
                if gauges.cordonedSince[node.name] == nil { gauges.cordonedSince[node.name] = job.now() }
            }
        } else {
            try await job.record(
                .info, "\(node.name) was already cordoned by someone else; it stays cordoned afterwards",
                stage: stage, node: node.name)
        }
    }

    /// A worker's kubelet never gets ahead of the oldest API server, whatever
    /// stages were selected (`preflight,workers` on a cluster whose control
    /// plane was not upgraded stops here, before the first cordon). A dry
    /// run counts the control planes it took to the target on paper.
    func checkKubeletSkew(_ node: NodeFacts, job: JobContext, stage: UpgradeStage) async throws {
        let target = job.request.targetVersion
        let names: [String]
        if let known = job.state.withLock({ $0.controlPlaneNames }), known.stage == stage {
            names = known.names
        } else {
            names = try await cluster.nodes().filter(\.isControlPlane).map(\.name)
            job.state.withLock { $0.controlPlaneNames = (stage, names) }
        }
        var apiServers = try await cluster.apiServerVersions(ofControlPlanes: names)
        for name in job.state.withLock({ $0.dryRunControlPlanes }) { apiServers[name] = target }
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

    /// Waits until the node is Ready with its kubelet (and on a control
    /// plane its API server) at the target.
    func waitUntilUpgraded(_ node: String, role: NodeRole, job: JobContext, stage: UpgradeStage) async throws {
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

    /// Watches the gate and the nodes' Ready state for the soak time (one
    /// worker, or a batch together); a regression fails the job before the
    /// next node.
    func watchSoak(_ nodes: [String], job: JobContext) async throws {
        let started = job.now()
        let end = started + settings.soak.seconds
        let names = nodes.joined(separator: ", ")
        let node = nodes.count == 1 ? nodes[0] : nil
        try await job.store.append(
            job.id,
            [
                JobEvent(
                    time: started, kind: .waitStarted, stage: .workers, node: node,
                    message: "soak of \(names): watching the gate and the node\(nodes.count == 1 ? "" : "s")",
                    deadline: end)
            ])
        while job.now() < end {
            try await job.sleep(min(job.pollInterval, .seconds(max(0.01, end - job.now()))))
            var problem: String?
            let verdict = await gate.verdict()
            if verdict != .open { problem = "halt-on-alert gate closed: \(verdict.summary)" }
            for name in nodes where problem == nil {
                if let facts = try? await cluster.node(name), !facts.isReady {
                    problem = "\(name) is no longer Ready: \(facts.readiness)"
                }
            }
            if let problem {
                let text = "soak of \(names) stopped after \(JobContext.format(job.now() - started)): \(problem)"
                try await job.record(.waitEnded, text, stage: .workers, node: node)
                notify(job, .failure, "Blocked: soak of \(names) found a regression", [problem])
                throw JobFailure(text)
            }
        }
        let seconds = job.now() - started
        job.state.withLock { run in
            for index in run.report.nodes.indices where nodes.contains(run.report.nodes[index].name) {
                run.report.nodes[index].soakSeconds = seconds
            }
        }
        try await job.record(
            .waitEnded, "soak of \(names): clean for \(JobContext.format(seconds))", stage: .workers, node: node)
    }
}

/// One node's work in progress: what was read at its start, and its report line.
struct NodeWork {
    var node: NodeFacts
    let step: NodeStep
    let action: NodeAction
    let stage: UpgradeStage
    var line: UpgradeReport.NodeReport
    /// When its `start` ran: the node's time, for the window forecast.
    var started: Double?
}

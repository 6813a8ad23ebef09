import Shared
import SharedIO

// A rollback job (`POST /jobs/{id}/rollback`): one worker taken back to its
// release before an upgrade job, through the workers stage with the
// distribution's rollback step (``NodeProcedure/rollbackOperations(action:script:drains:)``);
// or the single control plane, through the master stage with the
// distribution's restore of the job's snapshot (``NodeProcedure/restoreOperations(action:script:)``).
extension UpgradePipeline {
    /// Each node's version before this job, from the report an earlier run
    /// of it kept; empty on a first run.
    func versionsBeforeJob(_ job: JobContext) async throws -> [String: String] {
        let nodes = try await job.store.job(job.id)?.result?[dotted: "nodes"]?.arrayValue ?? []
        var versions: [String: String] = [:]
        for line in nodes {
            guard let name = line[dotted: "name"]?.stringValue, let before = line[dotted: "before"]?.stringValue,
                before != "?"
            else { continue }
            versions[name] = before
        }
        return versions
    }

    /// Stage 0 of a rollback: the one worker, judged from its live state
    /// against the older release (a resumed rollback finishes or skips it).
    /// No in-flight mark is written: the upgrade's mark, if any, stays.
    func beginRollback(_ rollback: ExecuteRequest.Rollback, job: JobContext) async throws {
        let target = job.request.targetVersion
        let node: NodeFacts
        do { node = try await cluster.node(rollback.node) } catch {
            throw JobFailure("\(rollback.node) cannot be read, so nothing was changed: \(error)")
        }
        if node.isControlPlane, job.request.stages.includes(.master) {
            return try await beginRestore(rollback, node: node, job: job)
        }
        guard !node.isControlPlane else {
            throw JobFailure(
                "\(node.name) is a control plane now, so it was not touched: a control plane goes back through "
                    + "a datastore snapshot restore (see the runbook's rollback section)")
        }
        let action = UpgradePlan.action(for: node, apiServer: nil, target: target, isControlPlane: false)
        job.state.withLock {
            $0.plan = UpgradePlan(
                controlPlanes: [],
                workers: [NodeStep(node: node.name, role: .worker, action: action, from: node.kubelet)])
        }
        let what: String
        switch action {
        case .upgrade:
            let script = Shell.command(settings.distribution.workerRollbackStep(to: target))
            what = "\(node.kubelet?.description ?? "?") → \(target) (update_k8s.sh \(script))"
        case .finish: what = "at \(target); uncordon and verify"
        case let .skip(reason): what = "skip: \(reason)"
        }
        let lines = [
            "\(node.name), undoing job \(rollback.job): \(what)",
            "no halt-on-alert gate and no soak: an alert is what a rollback answers",
        ]
        try await job.record(.info, "rollback plan: " + lines.joined(separator: "; "))
        notify(
            job, .info,
            "\(job.request.dryRun ? "Dry run of the rollback" : "Rollback") of \(node.name) to \(target) started",
            lines)
    }

    /// Stage 0 of a control plane's rollback, checked again against the
    /// live cluster (the decision read only the job's record): one control
    /// plane, no kubelet newer than the older release, and the job's
    /// snapshot still on record. Nothing is changed when a check fails.
    private func beginRestore(_ rollback: ExecuteRequest.Rollback, node: NodeFacts, job: JobContext) async throws {
        let target = job.request.targetVersion
        let result = try await job.store.job(rollback.job)?.result
        guard let snapshot = result?[dotted: "snapshot_path"]?.stringValue, !snapshot.isEmpty else {
            throw JobFailure("job \(rollback.job)'s record holds no snapshot, so nothing was changed")
        }
        let nodes = try await cluster.nodes()
        let controlPlanes = nodes.filter(\.isControlPlane).map(\.name)
        let point = RestorePoint(
            job: rollback.job, snapshot: snapshot, sha256: result?[dotted: "snapshot_sha256"]?.stringValue,
            release: target, controlPlanes: [node.name] + controlPlanes.filter { $0 != node.name },
            workers: nodes.filter { !$0.isControlPlane }.map(\.name))
        guard let script = settings.distribution.controlPlaneRestoreStep(point) else {
            throw JobFailure(
                "the cluster has \(controlPlanes.count) control planes now (\(controlPlanes.joined(separator: ", "))), "
                    + "so nothing was changed: the tool restores a single control plane only; see the runbook's "
                    + "rollback section")
        }
        // Checked when the rollback was queued too (``RollbackAdmission``);
        // a kubelet may have moved since.
        if let reason = RollbackAdmission.newerKubelets(
            than: target, nodes: nodes, except: node.name, job: rollback.job)
        {
            throw JobFailure(reason)
        }
        let apiServer = try await cluster.apiServerVersion(on: node.name)
        let judged = UpgradePlan.action(for: node, apiServer: apiServer, target: target, isControlPlane: true)
        // The datastore goes back even where the node already runs the older
        // release (a failed step's revert took it there): the script runs
        // all the same, and being convergent says what was already done.
        job.state.withLock {
            $0.plan = UpgradePlan(
                controlPlanes: [NodeStep(node: node.name, role: .master, action: .upgrade, from: node.kubelet)],
                workers: [])
            $0.restoreStep = script
            $0.report.snapshotPath = snapshot
        }
        let restored =
            "the \(settings.distribution.datastore) snapshot \(snapshot) restored (update_k8s.sh \(Shell.command(script)))"
        let what: String
        switch judged {
        case .upgrade: what = "\(node.kubelet?.description ?? "?") → \(target), \(restored)"
        case .finish, .skip: what = "already at \(target); \(restored) unless that was done"
        }
        let lines = [
            "\(node.name), undoing job \(rollback.job): \(what)",
            "every change to the cluster since that snapshot is lost; the API is away while the control plane "
                + "restarts",
            "no halt-on-alert gate: an alert is what a rollback answers",
        ]
        try await job.record(.info, "rollback plan: " + lines.joined(separator: "; "))
        notify(
            job, .warning,
            "\(job.request.dryRun ? "Dry run of the restore" : "Restore") of \(node.name) to \(target) from job "
                + "\(rollback.job)'s snapshot started",
            lines)
    }

    /// A rollback ended: its notice. The in-flight mark and the upgrade
    /// gauges are the upgrade's, and stay as they are.
    func endRollback(
        _ rollback: ExecuteRequest.Rollback, job: JobContext, state final: JobState, reason: String?,
        report: UpgradeReport
    ) {
        setGauges(job) { gauges in
            gauges.stage = nil
            gauges.nodes = []
        }
        let title = "Rollback of \(rollback.node) to \(report.target)"
        switch final {
        case .succeeded: notify(job, .success, "\(title) succeeded", report.lines)
        case .aborted: notify(job, .warning, "\(title) aborted", [reason ?? ""])
        case .interrupted: notify(job, .warning, "\(title) interrupted: the service stopped")
        default: notify(job, .failure, "\(title) failed", [reason ?? ""])
        }
    }

    /// `--canary-rollback`: the worker whose soak found a regression goes
    /// back to its release before the job (cordoned, drained, the
    /// distribution's rollback step, Ready at that release, uncordoned)
    /// before the job stops, so the cluster is at one version again. What
    /// happened, for the job's failure; a worker that does not come back
    /// stays cordoned.
    func rollBackCanary(_ work: NodeWork, after failure: JobFailure, job: JobContext) async -> String {
        let name = work.node.name
        guard let release = work.node.kubelet else {
            return "\(name) was not rolled back: its release before the job is unknown"
        }
        do {
            try await cordon(try await cluster.node(name), job: job, stage: work.stage)
            _ = try await drain(name, job: job, stage: work.stage)
        } catch {
            return "\(name) was not rolled back: \(error)"
        }
        let arguments = settings.distribution.workerRollbackStep(to: release)
        let reverted = await revert(work, to: release, arguments: arguments, after: failure, job: job)
        guard let now = try? await cluster.node(name), now.isReady, now.kubelet?.release == release.release else {
            return "canary rollback: \(reverted); \(name) stays cordoned"
        }
        if now.cordonedBy != nil {
            do {
                try await write(job, "uncordon \(name)", stage: work.stage, node: name) {
                    try await cluster.uncordon(name)
                }
                setGauges(job) { $0.cordonedSince[name] = nil }
            } catch { return "canary rollback: \(reverted); \(name) could not be uncordoned: \(error)" }
        }
        job.state.withLock { run in
            if let index = run.report.nodes.firstIndex(where: { $0.name == name }) {
                run.report.nodes[index].after = release.description
                run.report.nodes[index].outcome = "upgraded, then rolled back: its soak found a regression"
            }
        }
        return "canary rollback: \(reverted)"
    }
}

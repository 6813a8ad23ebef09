import Shared
import SharedIO

// A rollback job (`POST /jobs/{id}/rollback`): one worker taken back to its
// release before an upgrade job, through the workers stage with the
// distribution's rollback step (``NodeProcedure/rollbackOperations(action:script:drains:)``).
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

    /// A rollback ended: its notice. The in-flight mark and the upgrade
    /// gauges are the upgrade's, and stay as they are.
    func endRollback(
        _ rollback: ExecuteRequest.Rollback, job: JobContext, state final: JobState, reason: String?,
        report: UpgradeReport
    ) {
        setGauges(job) { gauges in
            gauges.stage = nil
            gauges.node = nil
        }
        let title = "Rollback of \(rollback.node) to \(report.target)"
        switch final {
        case .succeeded: notify(job, .success, "\(title) succeeded", report.lines)
        case .aborted: notify(job, .warning, "\(title) aborted", [reason ?? ""])
        case .interrupted: notify(job, .warning, "\(title) interrupted: the service stopped")
        default: notify(job, .failure, "\(title) failed", [reason ?? ""])
        }
    }
}

/// Whether one node of a finished upgrade job can be taken back to its
/// release before that job, and the rollback job's request if so. Decided
/// from the job's stored record alone: its state, its request and the
/// report it kept (each node's role and its version before the job).
public enum RollbackDecision: Sendable, Equatable {
    case accepted(ExecuteRequest)
    case refused(String)

    /// - Parameters:
    ///   - job: the upgrade job's id; `state`, `request` and `result` are its record's.
    ///   - node: the node to take back.
    ///   - dryRun: the rollback reads everything and changes nothing.
    ///   - confirmRestore: the operator agreed to restore the datastore from
    ///     the job's snapshot, which a control plane's rollback is.
    ///   - distribution: whose restore step and guidance apply.
    public static func decide(
        job: Int64, state: JobState, request: ExecuteRequest, result: JSONValue?, node: String, dryRun: Bool,
        confirmRestore: Bool = false, distribution: any Distribution = KubeadmApt()
    ) -> RollbackDecision {
        if let earlier = request.rollback {
            return .refused(
                "job \(job) is itself the rollback of \(earlier.node) (job \(earlier.job)); to go forward again, "
                    + "start an upgrade")
        }
        if request.dryRun { return .refused("job \(job) was a dry run: it changed no node") }
        switch state {
        case .queued, .running, .aborting:
            return .refused("job \(job) is \(state.rawValue); abort it first, then roll back")
        case .interrupted:
            return .refused(
                "job \(job) is interrupted and would be resumed; abort it first (DELETE /jobs/\(job)), then roll back")
        case .succeeded, .failed, .aborted: break
        }
        let lines = result?[dotted: "nodes"]?.arrayValue ?? []
        guard let line = lines.first(where: { $0[dotted: "name"]?.stringValue == node }) else {
            let names = lines.compactMap { $0[dotted: "name"]?.stringValue }
            return .refused(
                "job \(job) recorded nothing of \(node)"
                    + (names.isEmpty
                        ? " (its report lists no node)" : " (its report lists \(names.joined(separator: ", ")))"))
        }
        guard let role = line[dotted: "role"]?.stringValue.flatMap(NodeRole.init(rawValue:)) else {
            return .refused("job \(job) did not record \(node)'s role")
        }
        let beforeText = line[dotted: "before"]?.stringValue ?? ""
        guard let before = try? KubeVersion(parsing: beforeText) else {
            return .refused("job \(job) did not record \(node)'s version before it (\"\(beforeText)\")")
        }
        guard before.release != request.targetVersion.release else {
            return .refused("job \(job) did not change \(node): it was at \(before.release) before the job")
        }
        guard before.release < request.targetVersion.release else {
            return .refused(
                "\(node) was at \(before.release) before job \(job), which is not older than that job's target "
                    + "\(request.targetVersion)")
        }
        if role != .worker {
            return controlPlane(
                node, before: before.release, job: job, request: request, result: result, lines: lines,
                dryRun: dryRun, confirmRestore: confirmRestore, distribution: distribution)
        }
        return .accepted(
            ExecuteRequest(
                targetVersion: before.release, kind: request.kind, dryRun: dryRun, stages: .only([.workers]),
                rollback: .init(job: job, node: node)))
    }

    /// A control plane goes back through its datastore: the job's snapshot
    /// restored, which the tool runs on a single control plane
    /// once confirmed; otherwise the refusal carries the exact steps.
    private static func controlPlane(
        _ node: String, before: KubeVersion, job: Int64, request: ExecuteRequest, result: JSONValue?,
        lines: [JSONValue], dryRun: Bool, confirmRestore: Bool, distribution: any Distribution
    ) -> RollbackDecision {
        func names(_ keep: (NodeRole) -> Bool) -> [String] {
            lines.compactMap { line in
                guard let role = line[dotted: "role"]?.stringValue.flatMap(NodeRole.init(rawValue:)), keep(role)
                else { return nil }
                return line[dotted: "name"]?.stringValue
            }
        }
        guard let snapshot = result?[dotted: "snapshot_path"]?.stringValue, !snapshot.isEmpty else {
            return .refused(
                "\(node) is a control plane, which goes back through a restore of its \(distribution.datastore) "
                    + "snapshot, and job \(job) kept no snapshot (it ran without its snapshot stage); see the runbook's "
                    + "rollback section")
        }
        let point = RestorePoint(
            job: job, snapshot: snapshot, sha256: result?[dotted: "snapshot_sha256"]?.stringValue, release: before,
            controlPlanes: names { $0 != .worker }, workers: names { $0 == .worker })
        guard distribution.controlPlaneRestoreStep(point) != nil else {
            let why =
                point.controlPlanes.count > 1
                ? "job \(job)'s cluster has \(point.controlPlanes.count) control planes "
                    + "(\(point.controlPlanes.joined(separator: ", "))): every \(distribution.datastore) member must "
                    + "be restored from the same snapshot before any of them starts, which the tool leaves to you"
                : "the tool does not restore a \(distribution.name) control plane itself"
            let steps = distribution.controlPlaneRestoreGuidance(point).enumerated().map {
                "\($0.offset + 1). \($0.element)"
            }
            return .refused("\(why). By hand, with job \(job)'s values:\n" + steps.joined(separator: "\n"))
        }
        guard dryRun || confirmRestore else {
            return .refused(
                "taking \(node) back to \(before) restores job \(job)'s \(distribution.datastore) snapshot "
                    + "\(snapshot): every change made to the cluster since that snapshot is lost, and the API is "
                    + "away while the control plane restarts. \(point.workersFirst). Then confirm: "
                    + "k8s-upgrade rollback \(job) --node \(node) --confirm-restore (API: \"confirm_restore\": true)")
        }
        return .accepted(
            ExecuteRequest(
                targetVersion: before, kind: request.kind, dryRun: dryRun, stages: .only([.master]),
                rollback: .init(job: job, node: node)))
    }
}

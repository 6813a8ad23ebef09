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
    public static func decide(
        job: Int64, state: JobState, request: ExecuteRequest, result: JSONValue?, node: String, dryRun: Bool
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
        let role = line[dotted: "role"]?.stringValue.flatMap(NodeRole.init(rawValue:))
        guard role == .worker else {
            return .refused(
                "\(node) is a control plane (\(role?.rawValue ?? "unknown role")) in job \(job): taking a control "
                    + "plane back is a datastore snapshot restore, not a node rollback; see the runbook's rollback section"
            )
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
        return .accepted(
            ExecuteRequest(
                targetVersion: before.release, kind: request.kind, dryRun: dryRun, stages: .only([.workers]),
                rollback: .init(job: job, node: node)))
    }
}

/// A rollback request judged against the live cluster before it is
/// queued (the decision before it read only the job's record): a control
/// plane goes back through its snapshot only once no other node's kubelet
/// is newer than the release it goes back to, so a confirmed restore asked
/// for too early is refused with the order to follow instead of queuing a
/// job that fails at its start. A worker's rollback needs nothing more.
public enum RollbackAdmission {
    public static func judge(_ request: ExecuteRequest, nodes: [NodeFacts]) -> Admission {
        guard let rollback = request.rollback else { return .accepted }
        guard let node = nodes.first(where: { $0.name == rollback.node }) else {
            return .refused("there is no node \(rollback.node) in the cluster now, so nothing was queued")
        }
        // A control plane's restore (its stages hold the master's); a
        // worker's rollback is judged by the job when it starts.
        guard node.isControlPlane, request.stages.includes(.master),
            let reason = newerKubelets(
                than: request.targetVersion, nodes: nodes, except: node.name, job: rollback.job)
        else { return .accepted }
        return .refused(reason)
    }

    /// Why the control plane `node` cannot go back to `target` yet: the
    /// nodes whose kubelet is newer (a kubelet may not be newer than its API
    /// server), and the rollbacks that take each back first; nil when none.
    public static func newerKubelets(
        than target: KubeVersion, nodes: [NodeFacts], except node: String, job: Int64
    ) -> String? {
        let newer = nodes.filter { other in
            other.name != node && (other.kubelet.map { $0.release > target.release } ?? false)
        }
        guard !newer.isEmpty else { return nil }
        return "nothing was changed: "
            + newer.map { "\($0.name) runs kubelet \($0.kubelet?.description ?? "?")" }.joined(separator: ", ")
            + ", newer than \(target), and a kubelet may not be newer than its API server; roll "
            + (newer.count == 1 ? "it" : "them") + " back first ("
            + newer.map { "k8s-upgrade rollback \(job) --node \($0.name)" }.joined(separator: "; ") + ")"
    }
}

import Shared
import SharedIO

/// Judges a `POST /execute` against the live cluster before anything is
/// queued (``ExecuteAdmission``): the server holds the same policy as the
/// detector, so a token holder cannot dispatch what it forbids. A rollback
/// is judged by ``RollbackAdmission``.
struct Admitter: Sendable {
    /// Reads that do not retry: the client waits for the answer.
    let cluster: Cluster
    let policy: DetectionPolicy

    /// The cluster could not be read, so the request could not be checked.
    struct Unchecked: Error, CustomStringConvertible {
        let description: String
    }

    func admit(_ request: ExecuteRequest) async throws(Unchecked) -> Admission {
        do {
            let nodes = try await cluster.nodes()
            if request.rollback != nil { return RollbackAdmission.judge(request, nodes: nodes) }
            let apiServers = try await cluster.runningAPIServers(of: nodes)
            return ExecuteAdmission.judge(request, apiServers: apiServers, nodes: nodes, policy: policy)
        } catch {
            throw Unchecked(
                description:
                    "the cluster's versions could not be read to check the request, so nothing was queued: \(error)"
            )
        }
    }
}

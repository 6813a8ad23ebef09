import FoundationEssentials
import Shared
import SharedIO

// Stage 3: the master's containerd brought to the workers'.
extension UpgradePipeline {
    // MARK: - Stage 3: containerd

    func containerd(_ job: JobContext) async throws -> StageOutcome {
        let nodes = try await cluster.nodes()
        let master = try masterNode(nodes, job: job)
        let workers = nodes.filter { !$0.isControlPlane }
        guard let masterRuntime = master.containerd else {
            return .skipped("\(master.name) does not report a containerd runtime")
        }
        let workerRuntimes = workers.compactMap(\.containerd)
        guard let wanted = workerRuntimes.min(), workerRuntimes.count == workers.count else {
            return .skipped("the workers do not all report a containerd runtime")
        }
        guard masterRuntime < wanted else {
            return .skipped("\(master.name) runs containerd \(masterRuntime), not older than the workers' \(wanted)")
        }
        let arguments = ["--containerd", wanted.description]
        try await runScript(job, arguments, purpose: "containerd-\(wanted)", on: master, stage: .containerd)
        try await waitForRuntime(wanted, on: master.name, job: job)
        return outcome(
            job, done: "containerd on \(master.name): \(masterRuntime) → \(wanted)",
            rehearsed: "would bring containerd on \(master.name) to \(wanted)")
    }
}

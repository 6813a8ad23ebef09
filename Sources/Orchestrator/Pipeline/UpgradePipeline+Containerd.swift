import FoundationEssentials
import Shared
import SharedIO

// Stage 3: the master's containerd brought to the workers'.
extension UpgradePipeline {
    // MARK: - Stage 3: containerd

    func containerd(_ job: JobContext) async throws -> StageOutcome {
        let nodes = try await cluster.nodes()
        let master = try masterNode(nodes, job: job)
        let masterRuntime: KubeVersion
        let wanted: KubeVersion
        switch ContainerdFix.decide(master: master, workers: nodes.filter { !$0.isControlPlane }) {
        case let .notNeeded(reason): return .skipped(reason)
        case let .needed(_, from, to): (masterRuntime, wanted) = (from, to)
        }
        let arguments = ["--containerd", wanted.description]
        try await runScript(job, arguments, purpose: "containerd-\(wanted)", on: master, stage: .containerd)
        try await waitForRuntime(wanted, on: master.name, job: job)
        return outcome(
            job, done: "containerd on \(master.name): \(masterRuntime) → \(wanted)",
            rehearsed: "would bring containerd on \(master.name) to \(wanted)")
    }
}

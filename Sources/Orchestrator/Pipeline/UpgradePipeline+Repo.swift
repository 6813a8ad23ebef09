import FoundationEssentials
import Shared
import SharedIO

// Stage 4: every node's package source pointed at the next minor.
extension UpgradePipeline {
    // MARK: - Stage 4: repo

    func repo(_ job: JobContext) async throws -> StageOutcome {
        let minor = job.request.targetVersion.minorLine
        guard job.request.kind == .minor else {
            return .skipped("patch upgrade: the apt sources stay as they are")
        }
        let nodes = try await cluster.nodes()
        for node in nodes.sorted(by: { $0.name < $1.name }) {
            try job.checkpoint()
            try await runScript(job, ["--repo-minor", minor], purpose: "repo-\(minor)", on: node, stage: .repo)
        }
        return outcome(
            job, done: "pointed \(nodes.count) nodes at the v\(minor) repository",
            rehearsed: "would point \(nodes.count) nodes at the v\(minor) repository")
    }
}

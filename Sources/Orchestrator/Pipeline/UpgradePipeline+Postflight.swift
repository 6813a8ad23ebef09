import FoundationEssentials
import Shared
import SharedIO

// Stage 7: post-flight.
extension UpgradePipeline {
    // MARK: - Stage 7: post-flight

    func postflight(_ job: JobContext) async throws -> StageOutcome {
        let target = job.request.targetVersion
        let nodes = try await cluster.nodes()
        let apiServers = try await apiServers(of: nodes)
        var problems: [String] = []
        let behind = nodes.filter { $0.kubelet?.release != target.release }.map {
            "\($0.name) kubelet \($0.kubelet?.description ?? "?")"
        }
        let apiBehind = apiServers.filter { $0.value.release != target.release }.map {
            "\($0.key) API server \($0.value)"
        }
        if !(behind + apiBehind).isEmpty {
            problems.append("not at \(target): " + (behind + apiBehind).joined(separator: ", "))
        }
        let notReady = nodes.filter { !$0.isReady }.map(\.name)
        if !notReady.isEmpty { problems.append("not Ready: " + notReady.joined(separator: ", ")) }
        let verdict = await gate.verdict()
        if verdict != .open { problems.append("halt-on-alert gate: \(verdict.summary)") }
        let pods = try await cluster.allPods().map { pod in
            (
                phase: pod[["status", "phase"]]?.stringValue ?? "",
                ready: (pod[["status", "conditions"]]?.arrayValue ?? []).contains {
                    $0[["type"]]?.stringValue == "Ready" && $0[["status"]]?.stringValue == "True"
                }
            )
        }.filter { $0.phase != "Succeeded" && $0.phase != "Failed" }
        let ready = pods.filter(\.ready).count
        let ratio = pods.isEmpty ? 1 : Double(ready) / Double(pods.count)
        let ratioText =
            "\(ready) of \(pods.count) pods Ready (\(Int((ratio * 100).rounded())) %, needed \(Int((settings.podReadyRatio * 100).rounded())) %)"
        if ratio < settings.podReadyRatio { problems.append(ratioText) }
        try await job.record(.info, ratioText, stage: .postflight)
        try await requireNoProblems(problems, job: job)
        try await write(
            job,
            "remove the in-flight annotations (\(InFlightMark.keys.joined(separator: ", "))) of namespace \(cluster.namespace)",
            stage: .postflight
        ) { try await cluster.clearInFlightMark() }
        setGauges(job) { $0.inFlight = false }
        return outcome(
            job, done: "all \(nodes.count) nodes at \(target) and Ready; \(ratioText); annotations cleared",
            rehearsed: "checks read; nothing was changed")
    }
}

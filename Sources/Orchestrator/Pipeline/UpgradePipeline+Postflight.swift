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
        // Counted page by page: a large cluster's pods are never all held at once.
        var (counted, ready) = (0, 0)
        try await cluster.client.forEachPage("/api/v1/pods") { page in
            for pod in page {
                let phase = pod[["status", "phase"]]?.stringValue ?? ""
                guard phase != "Succeeded" && phase != "Failed" else { continue }
                counted += 1
                if (pod[["status", "conditions"]]?.arrayValue ?? []).contains(where: {
                    $0[["type"]]?.stringValue == "Ready" && $0[["status"]]?.stringValue == "True"
                }) {
                    ready += 1
                }
            }
        }
        let ratio = counted == 0 ? 1 : Double(ready) / Double(counted)
        let ratioText =
            "\(ready) of \(counted) pods Ready (\(Int((ratio * 100).rounded())) %, needed \(Int((settings.podReadyRatio * 100).rounded())) %)"
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

import Shared

// The drain rehearsal, before the first node: pre-flight's "drain
// forecast" check and the plan's per-node lines.
extension UpgradePipeline {
    /// Rehearses the drains the job would make, in its node order, with the
    /// drainer's rules; `nil` when it drains no node (a patch without
    /// `--patch-drain`, no node to upgrade in the selected stages, no plan).
    /// `rooms`: the nodes as already read, else they are read here.
    func drainForecast(
        _ request: ExecuteRequest, plan: UpgradePlan?, rooms known: [NodeRoom]? = nil
    ) async -> Result<DrainForecast, PlanError>? {
        guard let plan, request.rollback == nil,
            NodeProcedure.drains(kind: request.kind, patchDrain: settings.patchDrain)
        else { return nil }
        var steps: [NodeStep] = []
        if request.stages.includes(.master) { steps += plan.controlPlanes }
        if request.stages.includes(.workers) { steps += plan.workers }
        let order = steps.filter { $0.action == .upgrade }.map(\.node)
        guard !order.isEmpty else { return nil }
        do {
            let inputs = try await drainInputs(rooms: known)
            let forecast = DrainForecast.rehearse(
                order: order, rooms: inputs.rooms, pods: inputs.pods, budgets: inputs.budgets,
                consent: drainer.consent, exclusion: drainer.exclusion, daemonSetExists: inputs.daemonSetExists)
            // The API's own answer for now, from dry-run evictions.
            return .success(forecast.confirmed(by: await cluster.dryRunEvictions(forecast.asked)))
        } catch { return .failure(PlanError("\(error)")) }
    }

    /// What a drain forecast reads, side by side: the nodes (unless
    /// `known`), every pod, every budget, and which DaemonSets exist.
    func drainInputs(rooms known: [NodeRoom]? = nil) async throws -> DrainInputs {
        async let read = known == nil ? cluster.rooms() : []
        async let pods = cluster.placements()
        async let budgets = cluster.budgets()
        async let daemonSets = cluster.daemonSetNames()
        let existing = try await daemonSets
        let fresh = try await read
        return DrainInputs(
            rooms: known ?? fresh, pods: try await pods, budgets: try await budgets,
            daemonSetExists: { existing.contains("\($0.namespace)/\($0.controllerName ?? "")") })
    }
}

/// The live state a drain forecast is made from.
struct DrainInputs {
    var rooms: [NodeRoom]
    var pods: [PodPlacement]
    var budgets: [BudgetFacts]
    var daemonSetExists: (PodFacts) -> Bool
}

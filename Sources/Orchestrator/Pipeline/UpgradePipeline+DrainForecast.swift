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
            async let read = known == nil ? cluster.rooms() : []
            async let pods = cluster.placements()
            async let budgets = cluster.budgets()
            async let daemonSets = cluster.daemonSetNames()
            let existing = try await daemonSets
            let fresh = try await read
            return .success(
                DrainForecast.rehearse(
                    order: order, rooms: known ?? fresh, pods: try await pods, budgets: try await budgets,
                    consent: drainer.consent, exclusion: drainer.exclusion
                ) { existing.contains("\($0.namespace)/\($0.controllerName ?? "")") })
        } catch { return .failure(PlanError("\(error)")) }
    }
}

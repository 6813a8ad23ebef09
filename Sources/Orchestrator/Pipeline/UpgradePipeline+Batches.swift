import Shared

// Workers in batches (`--max-unavailable-workers`): up to N at a time, never
// more than the budgets and the room outside the batch allow for the batch
// as a whole (``DrainForecast/batchConflicts``), soaked together.
extension UpgradePipeline {
    /// Each batch is decided from live state when it starts: the next
    /// workers with work left, added one by one while the batch stays
    /// within `maxUnavailableWorkers` and its drains do not conflict. The
    /// nodes of a batch are worked on at the same time; when one fails, the
    /// others finish their own step, then the job stops. The number carried out.
    func workerBatches(_ steps: [NodeStep], job: JobContext) async throws -> Int {
        var remaining = steps[...]
        var carried = 0
        let drains = NodeProcedure.drains(kind: job.request.kind, patchDrain: settings.patchDrain)
        while !remaining.isEmpty {
            try job.checkpoint()
            try await checkHoldDrift(job: job, stage: .workers)
            var batch: [(work: NodeWork, operations: [NodeOperation])] = []
            while batch.count < settings.maxUnavailableWorkers, let step = remaining.first {
                // The batch's first node waits for the window and the gate;
                // the others are read right after, and run beside it.
                let live =
                    batch.isEmpty
                    ? try await readyToStart(step, job: job, stage: .workers)
                    : try await liveStep(step, job: job, stage: .workers)
                guard let (node, action) = live else {
                    remaining.removeFirst()
                    continue
                }
                if !batch.isEmpty, drains, action == .upgrade {
                    let names = batch.map(\.work.node.name) + [node.name]
                    let conflicts = try await batchConflicts(names)
                    if !conflicts.isEmpty {
                        try await job.record(
                            .info,
                            "\(node.name) waits for the next batch: with \(names.dropLast().joined(separator: ", ")) "
                                + conflicts.joined(separator: "; "), stage: .workers, node: node.name)
                        break
                    }
                }
                batch.append(nodeWork(step, node: node, action: action, stage: .workers, job: job, soaks: false))
                remaining.removeFirst()
            }
            guard !batch.isEmpty else { continue }
            let names = batch.map(\.work.node.name)
            if batch.count > 1 {
                try await job.record(
                    .info, "batch of \(batch.count): \(names.joined(separator: ", ")), at the same time",
                    stage: .workers)
            }
            let errors = await withTaskGroup(of: (any Error)?.self) { group in
                for (work, operations) in batch {
                    group.addTask {
                        var work = work
                        do {
                            try await self.carryOut(operations, &work, job: job)
                            return nil
                        } catch { return error }
                    }
                }
                var errors: [any Error] = []
                for await error in group { if let error { errors.append(error) } }
                return errors
            }
            // An abort or a shutdown is how the job stops; else the first failure.
            if let stop = errors.first(where: { $0 is JobStop }) ?? errors.first { throw stop }
            carried += batch.count
            if settings.soak > .zero {
                // The batch's nodes are still being worked on while they soak.
                setGauges(job) { $0.nodes.formUnion(names) }
                defer { setGauges(job) { $0.nodes.subtract(names) } }
                try await soakBatch(batch.map(\.work), job: job)
            }
        }
        if carried > 0 { try await checkHoldDrift(job: job, stage: .workers) }
        return carried
    }

    /// The batch's soak; with `--canary-rollback`, a regression takes every
    /// node of the batch back before the job stops.
    private func soakBatch(_ works: [NodeWork], job: JobContext) async throws {
        do { try await soak(works.map(\.node.name), job: job) } catch let failure as JobFailure
            where settings.canaryRollback && !job.request.dryRun
        {
            var outcomes: [String] = []
            for work in works { outcomes.append(await rollBackCanary(work, after: failure, job: job)) }
            throw JobFailure("\(failure); \(outcomes.joined(separator: "; "))")
        }
    }

    /// Why `names` may not be drained together, read from live state.
    func batchConflicts(_ names: [String]) async throws -> [String] {
        let inputs = try await drainInputs()
        return DrainForecast.batchConflicts(
            names, rooms: inputs.rooms, pods: inputs.pods, budgets: inputs.budgets, consent: drainer.consent,
            exclusion: drainer.exclusion, daemonSetExists: inputs.daemonSetExists)
    }
}

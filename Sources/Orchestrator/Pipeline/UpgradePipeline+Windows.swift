import Shared

// Maintenance windows: a job starts inside one, and each node starts only
// if its forecast fits before the window closes; otherwise the job parks
// (a wait with its end, never a failure) until the next window opens.
extension UpgradePipeline {
    /// The forecast of the next node of each role: what this run timed,
    /// else what the last succeeded upgrade timed, else the estimate.
    func nodeForecast(_ job: JobContext) -> NodeTimeForecast {
        job.state.withLock { run in
            NodeTimeForecast(
                estimate: settings.nodeEstimate.seconds, soak: settings.soak.seconds,
                longest: job.request.dryRun ? [:] : run.timings.longest, history: run.history)
        }
    }

    /// Before the job's first stage: the last succeeded upgrade's timings,
    /// then a window with room for what comes before the first node (as
    /// that job took it) and the first node itself.
    func waitForFirstWindow(_ job: JobContext, stage: UpgradeStage) async throws {
        var overhead = 0.0
        if let last = try? await job.store.lastUpgradeResult() {
            let timings = NodeTimeForecast.timings(of: last.result)
            overhead = timings.overhead
            job.state.withLock { $0.history = (last.id, timings.longest) }
        }
        let first: NodeRole = job.request.stages.includes(.master) ? .master : .worker
        try await waitForWindow(
            job, stage: stage, node: nil, role: first, needs: overhead + nodeForecast(job).seconds(for: first))
    }

    /// Before a node: the window with room for it and the halt-on-alert
    /// gate open, both at once, decided on the node as it is then. A wait
    /// for either reads the node again (hours may have passed: someone may
    /// have cordoned it, or upgraded it) and asks both again. Nil when
    /// there is nothing left to do on the node.
    func readyToStart(
        _ step: NodeStep, job: JobContext, stage: UpgradeStage
    ) async throws -> (NodeFacts, NodeAction)? {
        while true {
            guard let (node, action) = try await liveStep(step, job: job, stage: stage) else { return nil }
            // A rollback answers an emergency; a node to finish only needs its uncordon.
            guard job.request.rollback == nil, action == .upgrade else { return (node, action) }
            var waited = try await waitForWindow(job, stage: stage, node: step.node, role: step.role)
            if !waited { waited = try await waitForGate(job, stage: stage, node: step.node) }
            guard waited else { return (node, action) }
            try await checkHoldDrift(job: job, stage: stage)
        }
    }

    /// Waits until the schedule lets the next step start: the job's first
    /// stage (`node` nil, `needs` given) or a node of `role`. True when it
    /// waited. A dry run waits for nothing; it moves its own forecast of
    /// the time on and records where a real run would wait.
    @discardableResult
    func waitForWindow(
        _ job: JobContext, stage: UpgradeStage, node: String?, role: NodeRole, needs given: Double? = nil
    ) async throws -> Bool {
        let schedule = settings.maintenance
        guard !schedule.isAlways else { return false }
        let forecast = nodeForecast(job)
        let needs = given ?? forecast.seconds(for: role)
        let now = job.request.dryRun ? job.state.withLock { $0.dryRunTime } ?? job.now() : job.now()
        switch schedule.decide(now: Int64(now), needs: Int64(needs.rounded(.up))) {
        case let .go(closes):
            if job.request.dryRun { job.state.withLock { $0.dryRunTime = node == nil ? now : now + needs } }
            if node == nil, let closes, let span = schedule.spans(from: Int64(now)).first {
                try await job.record(
                    .info, "maintenance window open until \(MaintenanceSchedule.local(closes, span.zone))",
                    stage: stage)
            }
            return false
        case let .never(reason):
            throw JobFailure(
                "\(node == nil ? "the job cannot start" : "\(node!) cannot start") in any maintenance window: "
                    + "\(reason); lengthen a window (--maintenance-window) or correct --node-estimate")
        case let .wait(span, reason):
            let opens = MaintenanceSchedule.local(span.start, span.zone)
            let closes = MaintenanceSchedule.local(span.end, span.zone)
            let done = job.state.withLock { $0.report.nodes.last { $0.outcome.hasPrefix("skipped") == false } }
            let parked =
                node == nil
                ? "waiting for a maintenance window (\(reason)); the job starts at \(opens)"
                : "parked\(done.map { " after \($0.name)" } ?? ""): \(node!) does not fit (its forecast is "
                    + "\(forecast.basis(for: role))): \(reason); it continues when the next window opens at \(opens)"
            if job.request.dryRun {
                job.state.withLock { $0.dryRunTime = Double(span.start) + (node == nil ? 0 : needs) }
                try await job.record(.info, "a real run would wait here: \(parked)", stage: stage, node: node)
                return false
            }
            try await job.record(
                .waitStarted, "maintenance window to open: \(parked)", stage: stage, node: node,
                deadline: Double(span.start))
            notify(
                job, .info,
                node == nil ? "Waiting for the maintenance window" : "Parked until the next maintenance window",
                [parked])
            let started = job.now()
            // Until the opening by the clock (slices of a long sleep add up
            // late); a minute at a time, each a sign of life for the
            // stalled-rollout gauge: a parked job is waiting, not stuck.
            while job.now() < Double(span.start) {
                try await job.sleep(.seconds(min(60, Double(span.start) - job.now())), slice: .seconds(1))
                job.heartbeat()
            }
            try await job.record(
                .waitEnded,
                "maintenance window open after \(JobContext.format(job.now() - started)) of waiting, until \(closes)",
                stage: stage, node: node)
            // The window it waited for, decided again as the clock now reads.
            try await waitForWindow(job, stage: stage, node: node, role: role, needs: given)
            notify(job, .info, "Maintenance window open: the job continues", ["open until \(closes)"])
            return true
        }
    }
}

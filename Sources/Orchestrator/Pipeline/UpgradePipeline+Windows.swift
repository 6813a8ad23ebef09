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

    /// Waits until the schedule lets the next step start: the job's first
    /// stage (`node` nil: room for one node at the estimate) or a node of
    /// `role`. A dry run waits for nothing; it moves its own forecast of
    /// the time on and records where a real run would wait.
    func waitForWindow(_ job: JobContext, stage: UpgradeStage, node: String?, role: NodeRole?) async throws {
        let schedule = settings.maintenance
        guard !schedule.isAlways else { return }
        let forecast = nodeForecast(job)
        let needs = role.map(forecast.seconds(for:)) ?? settings.nodeEstimate.seconds
        let now = job.request.dryRun ? job.state.withLock { $0.dryRunTime } ?? job.now() : job.now()
        switch schedule.decide(now: Int64(now), needs: Int64(needs.rounded(.up))) {
        case let .go(closes):
            if job.request.dryRun { job.state.withLock { $0.dryRunTime = node == nil ? now : now + needs } }
            if node == nil, let closes, let span = schedule.spans(from: Int64(now)).first {
                try await job.record(
                    .info, "maintenance window open until \(MaintenanceSchedule.local(closes, span.zone))",
                    stage: stage)
            }
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
                    + "\(forecast.basis(for: role ?? .worker))): \(reason); it continues when the next window opens at \(opens)"
            if job.request.dryRun {
                job.state.withLock { $0.dryRunTime = Double(span.start) + (node == nil ? 0 : needs) }
                try await job.record(.info, "a real run would wait here: \(parked)", stage: stage, node: node)
                return
            }
            try await job.store.append(
                job.id,
                [
                    JobEvent(
                        time: job.now(), kind: .waitStarted, stage: stage, node: node,
                        message: "maintenance window to open: \(parked)", deadline: Double(span.start))
                ])
            notify(
                job, .info,
                node == nil ? "Waiting for the maintenance window" : "Parked until the next maintenance window",
                [parked])
            let started = job.now()
            try await job.sleep(.seconds(max(0, Double(span.start) - job.now())), slice: .seconds(1))
            try await job.record(
                .waitEnded,
                "maintenance window open after \(JobContext.format(job.now() - started)) of waiting, until \(closes)",
                stage: stage, node: node)
            notify(job, .info, "Maintenance window open: the job continues", ["open until \(closes)"])
            // The window it waited for: decided again, as the clock now reads.
            try await waitForWindow(job, stage: stage, node: node, role: role)
        }
    }
}

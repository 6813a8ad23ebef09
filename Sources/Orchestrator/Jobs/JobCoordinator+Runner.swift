import ServiceLifecycle
import Shared
import SharedIO

extension JobCoordinator {
    // MARK: - The runner

    /// Waits for the lease (in a pod), takes over, then runs queued jobs
    /// while renewing the lease, until a graceful shutdown; then releases
    /// the lease, so that the replacement takes over at once. Losing the
    /// lease stops the running job at its next safe point and ends the
    /// service with that error (the container restarts and stands by).
    nonisolated func run() async throws {
        try await withGracefulShutdownHandler {
            if let lease = self.lease {
                guard await lease.acquire() else { return }
            }
            await self.lead()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await self.runUntilShutdown() }
                if let lease = self.lease {
                    group.addTask { try await lease.keepRenewing() }
                }
                do {
                    try await group.next()
                } catch {
                    self.log.error("lost the leader lease; stopping the running job", ["error": "\(error)"])
                    await self.stopForShutdown()
                    while let _ = try? await group.next() {}
                    throw error
                }
                group.cancelAll()
            }
            await self.lease?.release()
        } onGracefulShutdown: {
            Task { await self.stopForShutdown() }
        }
    }

    func lead() async {
        await takeOver()
        leading = true
    }

    func runUntilShutdown() async {
        await runQueuedJobs()
        for await _ in wakeups.cancelOnGracefulShutdown() {
            await runQueuedJobs()
        }
    }

    func stopForShutdown() {
        running?.control.stop(.shutdown)
        wake.finish()
    }

    func runQueuedJobs() async {
        while !Task.isShuttingDownGracefully, let job = try? await store.nextQueued() {
            await execute(job)
        }
    }

    func execute(_ job: JobRecord) async {
        let control = JobControl()
        let context = JobContext(
            id: job.id, request: job.request, store: store, control: control, pollInterval: pollInterval,
            progressed: progressed, clock: clock)
        running = (job.id, control, context.state)
        defer { running = nil }
        var stage: UpgradeStage?
        var begun = false
        do {
            let started = JobEvent(
                time: clock.now(), kind: .jobStarted,
                message: "started: \(job.request.title)"
                    + (job.request.dryRun ? ", dry run: every write is recorded, none is made" : ""))
            guard try await store.transition(job.id, from: [.queued], to: .running, event: started).moved else {
                return
            }
            log.info("job started", ["job": String(job.id)])
            for candidate in UpgradeStage.allCases {
                guard job.request.stages.includes(candidate) else {
                    try await context.record(
                        .stageNotSelected, "not selected (stages: \(job.request.stages))", stage: candidate)
                    continue
                }
                stage = candidate
                try context.checkpoint()
                try await context.reportingAPIRetries(stage: candidate) {
                    try await pipeline.beforeStage(candidate, job: context)
                }
                try context.checkpoint()
                if !begun {
                    begun = true
                    try await context.reportingAPIRetries(stage: candidate) { try await pipeline.begin(job: context) }
                }
                try await context.record(.stageStarted, "\(candidate.rawValue) started", stage: candidate)
                let outcome = try await context.reportingAPIRetries(stage: candidate) {
                    try await pipeline.run(candidate, job: context)
                }
                switch outcome {
                case let .done(text): try await context.record(.stageSucceeded, text, stage: candidate)
                case let .skipped(text): try await context.record(.stageSkipped, text, stage: candidate)
                }
                stage = nil
            }
            let result = await end(context, .succeeded, nil)
            try await store.append(
                job.id, [JobEvent(time: clock.now(), kind: .jobSucceeded, message: "succeeded")],
                state: .succeeded, result: result)
            log.info("job succeeded", ["job": String(job.id)])
        } catch let stop as JobStop {
            let (kind, state, text) =
                stop == .aborted
                ? (
                    JobEvent.Kind.jobAborted, JobState.aborted,
                    "aborted at a safe point\(stage.map { " in \($0.rawValue)" } ?? "")"
                )
                : (.jobInterrupted, .interrupted, "the service is stopping; resume the job to continue")
            let result = begun ? await end(context, state, text) : nil
            _ = try? await store.append(
                job.id, [JobEvent(time: clock.now(), kind: kind, message: text)], state: state, result: result)
            log.info("job stopped", ["job": String(job.id), "state": state.rawValue])
        } catch {
            let text = "\(error)"
            var events: [JobEvent] = []
            if let stage {
                events.append(JobEvent(time: clock.now(), kind: .stageFailed, stage: stage, message: text))
            }
            events.append(JobEvent(time: clock.now(), kind: .jobFailed, stage: stage, message: text))
            let result = begun ? await end(context, .failed, text) : nil
            _ = try? await store.append(job.id, events, state: .failed, result: result)
            log.error("job failed", ["job": String(job.id), "error": text])
        }
    }

    /// The pipeline's end, its API retries recorded but not stoppable: the
    /// job is over, and what it clears must still be cleared.
    func end(_ context: JobContext, _ state: JobState, _ reason: String?) async -> JSONValue? {
        let result = try? await context.reportingAPIRetries(stage: nil, stoppable: false) {
            await pipeline.end(job: context, state: state, reason: reason)
        }
        return result ?? nil
    }
}

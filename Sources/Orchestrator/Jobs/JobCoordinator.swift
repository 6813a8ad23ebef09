import Logging
import ServiceLifecycle
import Shared
import SharedIO

/// Owns the one-job-at-a-time slot: takes new jobs, aborts and resumes, and
/// runs queued jobs one after the other through the pipeline's stages. Runs
/// as a ServiceLifecycle service; a graceful shutdown stops the running job
/// at its next safe point as `interrupted`, to be resumed later.
///
/// In a pod it first waits for the leader lease (a Deployment starts the
/// replacement while the old pod still finishes its node step), then takes
/// over (``whenLeading(_:)``: interrupted jobs, adoption, self-resume), and
/// only then touches jobs; until then it stands by and refuses changes.
actor JobCoordinator: Service {
    /// Why this process does not take job changes yet.
    struct StandingBy: Error, CustomStringConvertible {
        let description: String
    }

    enum AbortOutcome {
        case notFound
        case accepted(JobRecord)
        case refused(JobRecord)
    }

    enum SubmitOutcome {
        case queued(JobRecord)
        /// Another job holds the slot.
        case conflict(JobRecord)
        /// The cluster already runs the target.
        case nothingToDo(String)
        /// The request breaks the policy or the version rules.
        case refused(String)
    }

    enum RollbackOutcome {
        case notFound
        case queued(JobRecord)
        /// Another job holds the slot.
        case conflict(JobRecord)
        /// The job or the node cannot be rolled back (``RollbackDecision``).
        case refused(String)
    }

    enum ResumeOutcome {
        case notFound
        case accepted(JobRecord)
        case refused(JobRecord)
        case conflict(JobRecord)
    }

    let store: JobStore
    let pipeline: any Pipeline
    /// Judges a new request against the live cluster; throws when it cannot.
    let admit: @Sendable (ExecuteRequest) async throws -> Admission
    let log: Logger
    let pollInterval: Duration
    /// Wall time of events, and the jobs' sleeps.
    let clock: any JobClock
    /// Told the time of every event a running job writes.
    let progressed: @Sendable (Double) -> Void
    /// Held before any job is touched; `nil` outside a pod, where no
    /// replacement can overlap.
    let lease: LeaderLease?
    var takeOver: @Sendable () async -> Void = {}
    /// Set once this process holds the lease and has taken over.
    var leading = false
    var running: (id: Int64, control: JobControl, state: PipelineRunState)?
    let wakeups: AsyncStream<Void>
    let wake: AsyncStream<Void>.Continuation
    /// Whose control-plane restore a rollback decides on.
    let distribution: any Distribution

    init(
        store: JobStore, pipeline: any Pipeline, admit: @escaping @Sendable (ExecuteRequest) async throws -> Admission,
        log: Logger, pollInterval: Duration, lease: LeaderLease? = nil, clock: any JobClock = SystemJobClock(),
        progressed: @escaping @Sendable (Double) -> Void = { _ in }, distribution: any Distribution = KubeadmApt()
    ) {
        self.distribution = distribution
        self.clock = clock
        self.store = store
        self.admit = admit
        self.lease = lease
        self.progressed = progressed
        self.pipeline = pipeline
        self.log = log
        self.pollInterval = pollInterval
        (wakeups, wake) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// What the leader does before its first job: set once, before ``run()``.
    func whenLeading(_ body: @escaping @Sendable () async -> Void) {
        takeOver = body
    }

    /// Throws ``StandingBy`` unless this process leads.
    func requireLeading() async throws {
        guard !leading else { return }
        if let holder = await lease?.waitingFor {
            throw StandingBy(
                description:
                    "standing by: the leader lease is held by \(holder), which is still finishing; ask again shortly")
        }
        throw StandingBy(description: "starting: taking over the job store; ask again shortly")
    }

    /// Queues a job unless another one holds the slot or the live cluster
    /// says the request is wrong (``ExecuteAdmission``).
    func submit(_ request: ExecuteRequest) async throws -> SubmitOutcome {
        try await requireLeading()
        if let active = try await store.activeJob() { return .conflict(active) }
        let fields = ["target": request.targetVersion.description, "kind": request.kind.rawValue]
        switch try await admit(request) {
        case let .nothingToDo(reason):
            log.info("not queued: nothing to do", fields.merging(["reason": reason]) { $1 })
            return .nothingToDo(reason)
        case let .refused(reason):
            log.warning("request refused", fields.merging(["reason": reason]) { $1 })
            return .refused(reason)
        case .accepted: break
        }
        switch try await store.create(request, at: clock.now()) {
        case let .success(job):
            log.info("job queued", ["job": String(job.id), "target": request.targetVersion.description])
            wake.yield()
            return .queued(job)
        case let .failure(conflict): return .conflict(conflict.active)
        }
    }

    /// Queues a rollback job that takes one node of job `id` back to its
    /// release before that job, as the job's record says (a control plane
    /// through the job's snapshot, once confirmed).
    func rollback(_ id: Int64, _ rollback: RollbackRequest) async throws -> RollbackOutcome {
        try await requireLeading()
        guard let source = try await store.job(id) else { return .notFound }
        let decision = RollbackDecision.decide(
            job: id, state: source.state, request: source.request, result: source.result, node: rollback.node,
            dryRun: rollback.dryRun, confirmRestore: rollback.confirmRestore, distribution: distribution)
        switch decision {
        case let .refused(reason):
            log.warning("rollback refused", ["job": String(id), "node": rollback.node, "reason": reason])
            return .refused(reason)
        case let .accepted(request):
            if let active = try await store.activeJob() { return .conflict(active) }
            switch try await admit(request) {
            case let .refused(reason), let .nothingToDo(reason):
                log.warning("rollback refused", ["job": String(id), "node": rollback.node, "reason": reason])
                return .refused(reason)
            case .accepted: break
            }
            switch try await store.create(request, at: clock.now()) {
            case let .success(job):
                log.info(
                    "rollback queued",
                    [
                        "job": String(job.id), "of": String(id), "node": rollback.node,
                        "target": request.targetVersion.description,
                    ])
                wake.yield()
                return .queued(job)
            case let .failure(conflict): return .conflict(conflict.active)
            }
        }
    }

    /// A queued job is aborted at once; a running one stops at its next safe point.
    func abort(_ id: Int64) async throws -> AbortOutcome {
        try await requireLeading()
        guard let job = try await store.job(id) else { return .notFound }
        let now = clock.now()
        switch AbortDecision(state: job.state) {
        case .refuse: return .refused(job)
        case .alreadyAborting: return .accepted(job)
        case .abortNow:
            let message =
                job.state == .interrupted
                ? "aborted while interrupted: it will not be resumed by itself; the nodes stay as they are "
                    + "(resume it by hand, or see the runbook)"
                : "aborted before it started"
            let event = JobEvent(time: now, kind: .jobAborted, message: message)
            let moved = try await store.transition(id, from: [job.state], to: .aborted, event: event)
            if moved.moved, let record = moved.record { return .accepted(record) }
            return try await abort(id)  // it started meanwhile: abort it running
        case .stopAtSafePoint:
            let event = JobEvent(
                time: now, kind: .abortRequested, message: "abort requested; stopping at the next safe point")
            let moved = try await store.transition(id, from: [.running], to: .aborting, event: event)
            guard moved.moved, let record = moved.record else { return try await abort(id) }
            if let running, running.id == id { running.control.stop(.aborted) }
            log.info("abort requested", ["job": String(id)])
            return .accepted(record)
        }
    }

    /// Queues a failed, aborted or interrupted job again; the stages run
    /// from live state, recognising what is already done.
    func resume(_ id: Int64) async throws -> ResumeOutcome {
        try await requireLeading()
        return try await queueAgain(id, reason: nil)
    }

    func queueAgain(_ id: Int64, reason: String?) async throws -> ResumeOutcome {
        guard let job = try await store.job(id) else { return .notFound }
        guard job.state.isResumable else { return .refused(job) }
        let event = JobEvent(
            time: clock.now(), kind: .jobResumed, message: reason ?? "resumed after \(job.state.rawValue)")
        let moved = try await store.transition(
            id, from: [.failed, .aborted, .interrupted], to: .queued, event: event, requireFreeSlot: true)
        if let conflict = moved.conflict { return .conflict(conflict) }
        guard moved.moved, let record = moved.record else { return .refused(moved.record ?? job) }
        log.info("job resumed", ["job": String(id)])
        wake.yield()
        return .accepted(record)
    }

    enum RestartOutcome: Equatable {
        /// The job was queued again; `restart` counts this job's restarts.
        case resumed(id: Int64, restart: Int)
        /// The job kept getting interrupted and is now failed.
        case stopped(id: Int64, reason: String)
    }

    /// At start, before ``continueAfterRestart(policy:)``: the upgrade the
    /// cluster says is in flight, re-created in this store when the store
    /// does not know it (a lost or new volume), so that it is resumed.
    func adopt(_ mark: InFlightMark, namespace: String) async throws -> JobRecord? {
        let note =
            "adopted from the in-flight annotations of namespace \(namespace): this job store did not know job "
            + "\(mark.jobID) (a new or lost volume), so its earlier history is lost; the cluster's live state says "
            + "what is done"
        guard let job = try await store.adopt(mark.jobID, request: mark.request, at: clock.now(), note: note)
        else { return nil }
        log.warning(
            "job adopted from the cluster", ["job": String(job.id), "target": mark.request.targetVersion.description])
        return job
    }

    /// At start, before the runner: the newest job, when the previous
    /// process left it interrupted (SIGKILL, eviction, SIGTERM mid-job), is
    /// resumed without an operator, or failed when it looks crash-looping.
    /// An older interrupted job is left alone: something newer ran since.
    func continueAfterRestart(policy: RestartPolicy) async throws -> RestartOutcome? {
        guard let job = try await store.jobs(limit: 1).first, job.state == .interrupted else { return nil }
        let events = try await store.events(of: job.id, after: 0, limit: Int.max)
        switch policy.decide(events: events, now: clock.now()) {
        case let .resume(restart):
            let outcome = try await queueAgain(
                job.id, reason: "resumed after the service restarted (restart \(restart) of this job)")
            guard case .accepted = outcome else { return nil }
            log.warning("job resumed after the service restarted", ["job": String(job.id), "restart": String(restart)])
            return .resumed(id: job.id, restart: restart)
        case let .stop(reason):
            let event = JobEvent(time: clock.now(), kind: .jobFailed, message: reason)
            guard try await store.transition(job.id, from: [.interrupted], to: .failed, event: event).moved else {
                return nil
            }
            log.error("job no longer resumed by itself", ["job": String(job.id), "error": reason])
            return .stopped(id: job.id, reason: reason)
        }
    }
}

extension JobCoordinator {
    /// The nodes the running job `id` plans to take, in its order, with the
    /// version each goes from and to: what its page shows of the nodes it
    /// has not reached yet. Empty for any other job, or before the plan.
    func plannedNodes(_ id: Int64, target: KubeVersion) -> [StatusPage.PlannedNode] {
        guard let running, running.id == id else { return [] }
        return running.state.withLock { $0.plan }.steps.map { step in
            let skipped: String?
            if case let .skip(reason) = step.action { skipped = reason } else { skipped = nil }
            return StatusPage.PlannedNode(
                name: step.node, role: step.role.rawValue, before: step.from?.description ?? "?",
                after: target.description, skipped: skipped)
        }
    }
}

import FoundationEssentials
import Shared
import SharedIO
import Synchronization

/// Why a job stops before its end, at a safe point.
enum JobStop: Error, Equatable {
    /// An operator aborted it.
    case aborted
    /// The service is shutting down; the job becomes `interrupted`.
    case shutdown
}

/// A failure the job reports in words, naming what failed.
struct JobFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The stop request of the running job, set by an abort or a shutdown and
/// read at every safe point.
final class JobControl: Sendable {
    private let request = Mutex<JobStop?>(nil)

    func stop(_ reason: JobStop) {
        request.withLock { current in
            // A shutdown does not turn an abort into an interruption.
            if current == nil || reason == .aborted { current = reason }
        }
    }

    var stopRequested: JobStop? { request.withLock { $0 } }
}

/// What a stage sees of its job: the request, the event log, safe points and
/// bounded waits. Every event is committed before the stage goes on.
struct JobContext: Sendable {
    let id: Int64
    let request: ExecuteRequest
    let store: JobStore
    let control: JobControl
    /// How often a wait asks again.
    let pollInterval: Duration
    /// Told the time of every event a real (not dry) run writes: the
    /// stalled-rollout gauge.
    var progressed: @Sendable (Double) -> Void = { _ in }
    /// Wall time of events and deadlines, and every sleep of a wait.
    var clock: any JobClock = SystemJobClock()
    /// What the pipeline learns as this run of the job goes (its plan, its
    /// report): made fresh for every run, gone with it; nothing of one job
    /// is left on the long-lived service for the next.
    let state = PipelineRunState()

    /// The job clock's wall time.
    func now() -> Double { clock.now() }

    /// A real run's events move the stalled-rollout gauge; a dry run's do not.
    private func progress(at time: Double) {
        if !request.dryRun { progressed(time) }
    }

    /// A sign of life without an event (a long, intended wait such as a
    /// parked job's), for the stalled-rollout gauge.
    func heartbeat() { progress(at: now()) }

    /// Appends one event.
    func record(
        _ kind: JobEvent.Kind, _ message: String, stage: UpgradeStage? = nil, node: String? = nil,
        deadline: Double? = nil
    ) async throws {
        let time = now()
        try await store.append(
            id, [JobEvent(time: time, kind: kind, stage: stage, node: node, message: message, deadline: deadline)])
        progress(at: time)
    }

    /// A safe point: stops the job here if an abort or a shutdown was asked
    /// for; with `finishingOnShutdown`, only an abort stops it (the step
    /// around it must end before the job may stop for a shutdown).
    func checkpoint(finishingOnShutdown: Bool = false) throws {
        guard let stop = control.stopRequested else { return }
        if stop == .shutdown && finishingOnShutdown { return }
        throw stop
    }

    /// Waits until `check` answers nil (done), asking every poll interval;
    /// its other answers say why it is not done yet and are recorded when
    /// they change. Stops at once on abort; fails after `timeout`, naming
    /// what it waited for and the last reason. With `finishingOnShutdown`,
    /// a shutdown does not stop it: a node step that changed the node ends
    /// with its verification, so that a resumed job does not take the node
    /// for done without it.
    func wait(
        for what: String, stage: UpgradeStage?, node: String? = nil, timeout: Duration,
        finishingOnShutdown: Bool = false, check: @Sendable () async -> String?
    ) async throws {
        try checkpoint(finishingOnShutdown: finishingOnShutdown)
        guard var reason = await check() else { return }
        let started = now()
        let deadline = started + timeout.seconds
        try await store.append(
            id,
            [
                JobEvent(
                    time: started, kind: .waitStarted, stage: stage, node: node, message: what, deadline: deadline),
                JobEvent(time: started, kind: .waitUpdated, stage: stage, node: node, message: reason),
            ])
        progress(at: started)
        while true {
            try await sleep(pollInterval, finishingOnShutdown: finishingOnShutdown)
            let next = await check()
            guard let next else {
                try await record(
                    .waitEnded, "\(what): done after \(Self.format(now() - started))", stage: stage, node: node)
                return
            }
            if next != reason {
                reason = next
                try await record(.waitUpdated, reason, stage: stage, node: node)
            }
            if now() >= deadline {
                try await record(
                    .waitEnded, "\(what): gave up after \(Self.format(timeout.seconds))", stage: stage, node: node)
                throw JobFailure("waited \(Self.format(timeout.seconds)) for \(what); still \(reason)")
            }
        }
    }

    /// Runs `body` with every retry of its Kubernetes calls (and those of
    /// its child tasks) recorded as a wait of this job: "the Kubernetes API
    /// to answer GET …" with the budget's deadline, one update per retry,
    /// and how it ended. With `stoppable`, an abort ends the retries at
    /// once; a shutdown lets the call go on within its budget (well inside
    /// the pod's grace period) and stops the job at its next safe point.
    func reportingAPIRetries<T>(
        stage: UpgradeStage?, stoppable: Bool = true, isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> T
    ) async throws -> T {
        let reporter = APIRetryReporter { event in
            guard stoppable else {
                try? await record(apiRetry: event, stage: stage)
                return
            }
            try await record(apiRetry: event, stage: stage)
            try checkpoint(finishingOnShutdown: true)
        }
        return try await KubernetesClient.$retryReporter.withValue(reporter) { try await body() }
    }

    private func record(apiRetry event: APIRetryReporter.Event, stage: UpgradeStage?) async throws {
        let time = now()
        switch event {
        case let .retrying(call, tries, reason, remaining):
            var events: [JobEvent] = []
            if tries == 1 {
                events.append(
                    JobEvent(
                        time: time, kind: .waitStarted, stage: stage, message: "the Kubernetes API to answer \(call)",
                        deadline: time + remaining.seconds))
            }
            events.append(
                JobEvent(time: time, kind: .waitUpdated, stage: stage, message: "try \(tries) of \(call): \(reason)"))
            try await store.append(id, events)
            progress(at: time)
        case let .recovered(call, tries, elapsed):
            try await record(
                .waitEnded,
                "the Kubernetes API to answer \(call): done after \(Self.format(elapsed.seconds)) (\(tries) tries)",
                stage: stage)
        case let .gaveUp(call, tries, elapsed, _):
            try await record(
                .waitEnded,
                "the Kubernetes API to answer \(call): gave up after \(Self.format(elapsed.seconds)) (\(tries) tries)",
                stage: stage)
        }
    }

    /// Sleeps, waking every `slice` (100 ms) to honour an abort (and a
    /// shutdown, unless `finishingOnShutdown`).
    func sleep(
        _ duration: Duration, finishingOnShutdown: Bool = false, slice longest: Duration = .milliseconds(100)
    ) async throws {
        var left = duration
        while left > .zero {
            try checkpoint(finishingOnShutdown: finishingOnShutdown)
            let slice = min(left, longest)
            try await clock.sleep(for: slice)
            left -= slice
        }
        try checkpoint(finishingOnShutdown: finishingOnShutdown)
    }

    static func format(_ seconds: Double) -> String {
        seconds < 120 ? "\(Int(seconds.rounded())) s" : "\(Int((seconds / 60).rounded())) min"
    }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

import FoundationEssentials
import Shared
import SharedIO
import Synchronization

/// What the pipeline needs to know beyond the request.
struct PipelineSettings: Sendable {
    var nodeScript: Data
    var backupDir: String
    /// Where each new snapshot is copied off the master (the orchestrator's
    /// backup volume); `nil` leaves it on the master alone.
    var backupCopyDir: String? = nil
    /// How each copy's restore is rehearsed; `nil` turns the rehearsal off.
    var restoreRehearsal: RestoreRehearsal? = nil
    /// Snapshots kept in `backupDir` after a new one (the rollback point in flight always).
    var snapshotKeep: Int = 5
    var expectedNodes: Int?
    var masterNode: String?
    var workerOrder: WorkerOrder
    var soak: Duration
    /// Drain each node for a patch too (a minor always drains).
    var patchDrain: Bool = true
    /// A worker whose soak finds a regression is rolled back before the job stops.
    var canaryRollback: Bool = false
    /// system-upgrade-controller Plans selecting the nodes are a warning, not a failure.
    var allowSUCPlans: Bool = false
    var nodeReadyTimeout: Duration
    var scriptTimeout: Duration
    var podReadyRatio: Double
    /// Hours without a gate alert before a job may start; 0 turns the check off.
    var quietPeriodHours: Int
    var repoBase: String
    /// What is specific to the way this cluster installs Kubernetes.
    var distribution: any Distribution = KubeadmApt()
    /// When nodes may be changed; empty: any time.
    var maintenance = MaintenanceSchedule()
    /// A node's time before the run has timed one of its kind (`--node-estimate`).
    var nodeEstimate: Duration = .seconds(1200)
    /// Workers worked on at the same time, at most (`--max-unavailable-workers`).
    var maxUnavailableWorkers = 1
}

/// The upgrade itself: stages 0–7 over live cluster state. Every decision
/// comes from the pure core (plan, drain rules, pre-flight checks); this
/// type gathers facts, applies the results and reports each step as job
/// events, Slack notices and gauges. In a dry run every read is real and
/// every write is recorded as "would …" instead.
final class UpgradePipeline: Pipeline {
    let settings: PipelineSettings
    let cluster: Cluster
    let shell: any RemoteShell
    let drainer: Drainer
    let gate: GateCheck
    let notifier: any Notifier
    let gauges: GaugePublisher
    let http: HTTPClient

    /// What one run of a job learns as it goes, kept in its ``JobContext``.
    struct RunState {
        var plan = UpgradePlan(controlPlanes: [], workers: [])
        var report = UpgradeReport(target: KubeVersion(major: 0, minor: 0, patch: 0), dryRun: false)
        var started = 0.0
        /// A node or its packages were changed (more than annotations and the snapshot).
        var touched = false
        /// Control planes a dry run took to the target (on paper).
        var dryRunControlPlanes: Set<String> = []
        /// The control planes' names as read for the skew check of the
        /// stage's first node, so that each further node asks only them
        /// for their API server versions instead of listing every node.
        var controlPlaneNames: (stage: UpgradeStage, names: [String])?
        /// The pre-upgrade snapshot an earlier run of this job took: the
        /// rollback point, which a resume keeps instead of replacing it.
        var firstSnapshot: (path: String, job: Int64)?
        /// Node versions were mixed when the job began: a failure that
        /// changes nothing still leaves the cluster mid-upgrade.
        var mixedAtStart = false
        /// Nodes whose updater hold this run found or set: one of them
        /// found without it later is drift.
        var held: Set<String> = []
        /// Each node's version before this job, as an earlier run of it
        /// reported: a resume's report (and a rollback of the job) keeps
        /// the release a node had before the first run changed it.
        var beforeJob: [String: String] = [:]
        /// A control plane's rollback: the node script's restore arguments.
        var restoreStep: [String]?
        /// The nodes timed so far (its `longest`), for the maintenance window's forecast.
        var timings = NodeTimeForecast(estimate: 0, soak: 0)
        /// The last succeeded upgrade's longest nodes, before this run has timed its own.
        var history: (job: Int64, longest: [NodeTimeForecast.Kind: Double])?
        /// A dry run's forecast of the job's time: where a real run would
        /// be, given the windows and each node's forecast (nil until set).
        var dryRunTime: Double?
        /// The job waited for its first window (or found it open).
        var windowChecked = false
        /// Pre-flight's drain forecast, node by node: the report sets what
        /// it predicted beside what each drain met.
        var predicted: [String: [String]] = [:]
    }

    init(
        settings: PipelineSettings, cluster: Cluster, shell: any RemoteShell, drainer: Drainer, gate: GateCheck,
        notifier: any Notifier, gauges: GaugePublisher
    ) {
        self.settings = settings
        self.cluster = cluster
        self.shell = shell
        self.drainer = drainer
        self.gate = gate
        self.notifier = notifier
        self.gauges = gauges
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .seconds(30)
        http = HTTPClient(configuration: configuration)
    }

    func notify(_ job: JobContext, _ level: Notice.Level, _ title: String, _ lines: [String] = []) {
        notifier.notify(Notice(level, title, lines: lines, jobID: job.id))
    }

    // MARK: - The stage hooks

    func beforeStage(_ stage: UpgradeStage, job: JobContext) async throws {
        setGauges(job) { $0.stage = stage }
        // An alert is what a rollback answers: its gate is not waited for,
        // nor a maintenance window.
        if job.request.rollback != nil { return }
        if !job.state.withLock({ $0.windowChecked }) {
            try await waitForFirstWindow(job, stage: stage)
            job.state.withLock { $0.windowChecked = true }
        }
        try await waitForGate(job, stage: stage, node: nil)
    }

    /// Stage 0: plan from live state, mark the upgrade in flight, announce it.
    func begin(job: JobContext) async throws {
        let request = job.request
        let beforeJob = try await versionsBeforeJob(job)
        job.state.withLock {
            $0.report = UpgradeReport(target: request.targetVersion, dryRun: request.dryRun)
            $0.started = job.now()
            $0.beforeJob = beforeJob
        }
        if let rollback = request.rollback { return try await beginRollback(rollback, job: job) }
        let nodes = try await cluster.nodes()
        let apiServers = try await apiServers(of: nodes)
        let releases = Set(nodes.compactMap { $0.kubelet?.release } + apiServers.values.map(\.release))
        // Read before this run writes its own mark: an earlier run of this
        // job left its rollback point there, or another job that left the
        // cluster mid-upgrade did (its snapshot is the state before the
        // first change, still the rollback point while versions are mixed).
        let earlier = InFlightMark.read(try await cluster.namespaceAnnotations())
        var first: (path: String, job: Int64)?
        if case let .success(mark)? = earlier, let path = mark.snapshotPath,
            mark.jobID == job.id || releases.count > 1
        {
            first = (path, mark.jobID)
        }
        let plan: UpgradePlan
        do {
            plan = try UpgradePlan.make(
                nodes: nodes, apiServers: apiServers, target: request.targetVersion,
                master: settings.masterNode, order: settings.workerOrder)
        } catch { throw JobFailure("no plan: \(error)") }
        job.state.withLock {
            $0.plan = plan
            $0.firstSnapshot = first
            $0.mixedAtStart = releases.count > 1
            if let first { $0.report.snapshotPath = first.path }
        }
        let lines = plan.lines(target: request.targetVersion) {
            Shell.command(settings.distribution.nodeStep(role: $0, target: request.targetVersion))
        }
        try await job.record(.info, "plan: " + lines.joined(separator: "; "))
        try await write(
            job,
            "annotate namespace \(cluster.namespace): in-flight=true, job=\(job.id), target=\(request.targetVersion)"
        ) {
            // Enough for a service that lost its job store to adopt this job
            // (InFlightMark); another job's snapshot path is not this one's.
            try await cluster.annotateNamespace(
                InFlightMark(jobID: job.id, request: request, snapshotPath: first?.path).annotations.mapValues { $0 }
                    .merging(["snapshot-path": first?.path]) { $1 })
        }
        setGauges(job) {
            $0.inFlight = true
            $0.snapshotTaken = first != nil
            $0.drainBlocked = []
            $0.crashLoop = false
            $0.holdLifted = []
        }
        notify(
            job, .info,
            "\(request.dryRun ? "Dry run" : "Upgrade") to \(request.targetVersion) started (\(request.kind.rawValue), stages \(request.stages))",
            lines)
    }

    func run(_ stage: UpgradeStage, job: JobContext) async throws -> StageOutcome {
        if let reason = settings.distribution.notApplicable(stage) {
            notify(job, .info, "Stage \(stage.rawValue) skipped", [reason])
            return .skipped("not used by \(settings.distribution.name): \(reason)")
        }
        notify(job, .info, "Stage \(stage.rawValue) started")
        let outcome: StageOutcome
        switch stage {
        case .preflight: outcome = try await preflight(job)
        case .snapshot: outcome = try await snapshot(job)
        case .containerd: outcome = try await containerd(job)
        case .repo: outcome = try await repo(job)
        case .master: outcome = try await controlPlanes(job)
        case .workers: outcome = try await workers(job)
        case .postflight: outcome = try await postflight(job)
        }
        switch outcome {
        case let .done(text): notify(job, .success, "Stage \(stage.rawValue) done", [text])
        case let .skipped(text): notify(job, .info, "Stage \(stage.rawValue) skipped", [text])
        }
        return outcome
    }

    /// The job ended: clear or keep the in-flight mark, announce the end,
    /// and hand back the report as the job's result.
    func end(job: JobContext, state final: JobState, reason: String?) async -> JSONValue? {
        let report = job.state.withLock { run in
            run.report.totalSeconds = job.now() - run.started
            return run.report
        }
        if let rollback = job.request.rollback {
            endRollback(rollback, job: job, state: final, reason: reason, report: report)
            return report.json
        }
        let (clear, write) = clearsMark(job, final: final)
        if write {
            do { try await cluster.clearInFlightMark() } catch {
                try? await job.record(.warning, "could not clear the namespace annotations: \(error)")
            }
        }
        setGauges(job) { gauges in
            gauges.stage = nil
            gauges.nodes = []
            if clear { gauges.inFlight = false }
            if final == .succeeded {
                gauges.lastSuccess = job.now()
                gauges.drainBlocked = []
                gauges.restarts = 0
            }
        }
        let left = !clear ? ["The cluster is mid-upgrade: resume the job, or see the runbook."] : []
        switch final {
        case .succeeded: notify(job, .success, "Upgrade to \(report.target) succeeded", report.lines)
        case .aborted: notify(job, .warning, "Job aborted", [reason ?? ""] + left)
        case .interrupted: notify(job, .warning, "Job interrupted: the service stopped", left)
        default: notify(job, .failure, "Job failed", [reason ?? ""] + left)
        }
        return report.json
    }
}

/// One run's ``UpgradePipeline/RunState``, shared by its stages and their
/// concurrent reads.
final class PipelineRunState: Sendable {
    private let value = Mutex(UpgradePipeline.RunState())

    func withLock<T: Sendable>(_ body: (inout UpgradePipeline.RunState) -> T) -> T {
        value.withLock { body(&$0) }
    }
}

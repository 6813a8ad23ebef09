import FoundationEssentials
import Shared
import SharedIO
import Synchronization

/// What the pipeline needs to know beyond the request.
struct PipelineSettings: Sendable {
    var nodeScript: Data
    var backupDir: String
    /// Snapshots kept in `backupDir` after a new one (the rollback point in flight always).
    var snapshotKeep: Int = 5
    var expectedNodes: Int?
    var masterNode: String?
    var workerOrder: WorkerOrder
    var soak: Duration
    var nodeReadyTimeout: Duration
    var scriptTimeout: Duration
    var podReadyRatio: Double
    /// Hours without a gate alert before a job may start; 0 turns the check off.
    var quietPeriodHours: Int
    var repoBase: String
    /// What is specific to the way this cluster installs Kubernetes.
    var distribution: any Distribution = KubeadmApt()
}

/// The upgrade itself: stages 0–7 over live cluster state. Every decision
/// comes from the pure core (plan, drain rules, pre-flight checks); this
/// type gathers facts, applies the results and reports each step as job
/// events, Slack notices and gauges. In a dry run every read is real and
/// every write is recorded as "would …" instead.
final class UpgradePipeline: Pipeline {
    let settings: PipelineSettings
    let cluster: Cluster
    let shell: SSHRemoteShell
    let drainer: Drainer
    let gate: GateCheck
    let notifier: any Notifier
    let gauges: GaugePublisher
    let http: HTTPClient
    private let state = Mutex(RunState())

    /// What one job learns as it goes; reset when a job begins.
    struct RunState {
        var plan = UpgradePlan(controlPlanes: [], workers: [])
        var report = UpgradeReport(target: KubeVersion(major: 0, minor: 0, patch: 0), dryRun: false)
        var started = 0.0
        /// A node or its packages were changed (more than annotations and the snapshot).
        var touched = false
        /// Control planes a dry run took to the target (on paper).
        var dryRunControlPlanes: Set<String> = []
        /// The pre-upgrade snapshot an earlier run of this job took: the
        /// rollback point, which a resume keeps instead of replacing it.
        var firstSnapshot: String?
        /// Node versions were mixed when the job began: a failure that
        /// changes nothing still leaves the cluster mid-upgrade.
        var mixedAtStart = false
    }

    init(
        settings: PipelineSettings, cluster: Cluster, shell: SSHRemoteShell, drainer: Drainer, gate: GateCheck,
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

    private func notify(_ job: JobContext, _ level: Notice.Level, _ title: String, _ lines: [String] = []) {
        notifier.notify(Notice(level, title, lines: lines, jobID: job.id))
    }

    private func setGauges(_ job: JobContext, _ change: (inout UpgradeGauges) -> Void) {
        guard !job.request.dryRun else { return }
        gauges.update(change)
    }

    private var target: KubeVersion { state.withLock { $0.report.target } }

    // MARK: - The stage hooks

    func beforeStage(_ stage: UpgradeStage, job: JobContext) async throws {
        setGauges(job) { $0.stage = stage }
        try await waitForGate(job, stage: stage, node: nil)
    }

    /// Stage 0: plan from live state, mark the upgrade in flight, announce it.
    func begin(job: JobContext) async throws {
        let request = job.request
        state.withLock {
            $0 = RunState()
            $0.report = UpgradeReport(target: request.targetVersion, dryRun: request.dryRun)
            $0.started = job.now()
        }
        let nodes = try await cluster.nodes()
        let apiServers = try await apiServers(of: nodes)
        let releases = Set(nodes.compactMap { $0.kubelet?.release } + apiServers.values.map(\.release))
        // Read before this run writes its own mark: an earlier run of this
        // job may have left its rollback point there.
        let earlier = InFlightMark.read(try await cluster.namespaceAnnotations())
        var first: String?
        if case let .success(mark)? = earlier, mark.jobID == job.id { first = mark.snapshotPath }
        let plan: UpgradePlan
        do {
            plan = try UpgradePlan.make(
                nodes: nodes, apiServers: apiServers, target: request.targetVersion,
                master: settings.masterNode, order: settings.workerOrder)
        } catch { throw JobFailure("no plan: \(error)") }
        state.withLock {
            $0.plan = plan
            $0.firstSnapshot = first
            $0.mixedAtStart = releases.count > 1
            if let first { $0.report.snapshotPath = first }
        }
        let lines = plan.lines(target: request.targetVersion)
        try await job.record(.info, "plan: " + lines.joined(separator: "; "))
        try await write(
            job,
            "annotate namespace \(cluster.namespace): in-flight=true, job=\(job.id), target=\(request.targetVersion)"
        ) {
            // Enough for a service that lost its job store to adopt this job
            // (InFlightMark); another job's snapshot path is not this one's.
            try await cluster.annotateNamespace(
                InFlightMark(jobID: job.id, request: request, snapshotPath: first).annotations.mapValues { $0 }
                    .merging(["snapshot-path": first]) { $1 })
        }
        setGauges(job) {
            $0.inFlight = true
            $0.snapshotTaken = first != nil
            $0.drainBlocked = []
            $0.crashLoop = false
        }
        notify(
            job, .info,
            "\(request.dryRun ? "Dry run" : "Upgrade") to \(request.targetVersion) started (\(request.kind.rawValue), stages \(request.stages))",
            lines)
    }

    func run(_ stage: UpgradeStage, job: JobContext) async throws -> StageOutcome {
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
        let (report, touched, mixed) = state.withLock { run in
            run.report.totalSeconds = job.now() - run.started
            return (run.report, run.touched, run.mixedAtStart)
        }
        // A run that changed nothing on a cluster that was already mid-upgrade
        // (a resume that fails at once) leaves it as mid-upgrade as it found it.
        let clear = final == .succeeded || (!touched && !mixed)
        if clear && !job.request.dryRun {
            do { try await cluster.clearInFlightMark() } catch {
                try? await job.record(.warning, "could not clear the namespace annotations: \(error)")
            }
        }
        setGauges(job) { gauges in
            gauges.stage = nil
            gauges.node = nil
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

    // MARK: - Stage 1: pre-flight

    private func preflight(_ job: JobContext) async throws -> StageOutcome {
        let request = job.request
        let nodes = try await cluster.nodes()
        let master = try masterNode(nodes)
        let apiServers = try await cluster.runningAPIServers(of: nodes)
        let verdict = await gate.prometheus.gate(gate.selector)
        var quiet: (hours: Int, fired: Result<[String], PlanError>)?
        if settings.quietPeriodHours > 0 {
            quiet = (settings.quietPeriodHours, await firedInQuietWindow(before: job))
        }
        async let offered = targetOffered(request, master: master, job: job)
        async let etcd = etcdHealth(on: master)
        async let certificates = certificateExpiry(on: master)
        async let disk = diskSpace(on: master, kind: request.kind)
        var facts = PreflightFacts(
            target: request.targetVersion, expectedNodes: settings.expectedNodes, nodes: nodes,
            apiServers: apiServers, gate: verdict, quietWindow: quiet, offered: await offered, etcd: await etcd,
            certificates: await certificates)
        facts.certificateWarning = 30 * 86400
        facts.disk = await disk
        let results = Preflight.evaluate(facts)
        for result in results {
            try await job.record(result.outcome == .passed ? .info : .warning, result.description, stage: .preflight)
        }
        let failed = results.filter { $0.outcome == .failed }
        guard failed.isEmpty else {
            throw JobFailure("preflight failed: " + failed.map(\.description).joined(separator: "; "))
        }
        let warnings = results.filter { $0.outcome == .warning }
        return .done(
            "\(results.count) checks passed"
                + (warnings.isEmpty ? "" : "; warnings: " + warnings.map(\.description).joined(separator: "; ")))
    }

    private func firedInQuietWindow(before job: JobContext) async -> Result<[String], PlanError> {
        let created = (try? await job.store.job(job.id))?.createdAt ?? job.now()
        let query = gate.selector.quietPeriodQuery(hours: settings.quietPeriodHours)
        do {
            // The window ends when the job was created, so alerts the job's own
            // rollout caused do not block its resume.
            let series = try await gate.prometheus.query(query, at: created)
            return .success(Array(Set(series.map { $0["alertname"] ?? "?" })).sorted())
        } catch { return .failure(PlanError("\(error)")) }
    }

    /// Madison on the master lists the target; for a minor upgrade the next
    /// minor's repository index may list it instead.
    private func targetOffered(
        _ request: ExecuteRequest, master: NodeFacts, job: JobContext
    ) async -> Result<
        String, PlanError
    > {
        let target = request.targetVersion
        do {
            let distribution = settings.distribution
            let package = distribution.package
            let result = try await shell.run(
                Shell.command(distribution.offeredListing), on: master, stdin: nil, timeout: .seconds(60),
                onOutput: nil)
            let listing = MadisonListing(parsing: result.stdoutText)
            if listing.entry(of: package, release: target) != nil {
                return .success("\(package) \(target) is offered by the master's package source")
            }
            guard request.kind == .minor else {
                return .failure(
                    PlanError(
                        "\(package) \(target) is not in \(Shell.command(distribution.offeredListing)) on \(master.name)"
                    ))
            }
            let url = "\(settings.repoBase)/v\(target.minorLine)/deb/Packages"
            let response = try await http.send(HTTPRequest(url: url))
            guard response.isSuccess else { return .failure(PlanError("\(url): HTTP \(response.status)")) }
            guard PackagesIndex(parsing: response.text).releases(of: package).contains(target) else {
                return .failure(PlanError("\(package) \(target) is not in \(url)"))
            }
            return .success("\(package) \(target) is in \(url)")
        } catch { return .failure(PlanError("\(error)")) }
    }

    // MARK: - etcd

    /// The members (`member list`, which names them) and the health of each
    /// (`endpoint health --cluster`), asked through the master's etcd.
    private func etcdHealth(on master: NodeFacts) async -> Result<EtcdHealth, PlanError> {
        let list = Shell.command(shell.sudo + settings.distribution.datastoreMembers)
        let command = Shell.command(shell.sudo + settings.distribution.datastoreHealth)
        do {
            let listed = try await shell.run(list, on: master, stdin: nil, timeout: .seconds(60), onOutput: nil)
            guard listed.succeeded else {
                return .failure(
                    PlanError(
                        "etcdctl member list on \(master.name) exited \(listed.exitStatus.map(String.init) ?? "by a signal"): "
                            + Self.tail(listed.stderrText)))
            }
            let members = try EtcdMember.list(json: listed.stdoutText)
            let result = try await shell.run(command, on: master, stdin: nil, timeout: .seconds(60), onOutput: nil)
            guard result.stdoutText.contains("[") else {
                return .failure(
                    PlanError(
                        "etcdctl endpoint health on \(master.name) exited \(result.exitStatus.map(String.init) ?? "by a signal"): "
                            + Self.tail(result.stderrText)))
            }
            return .success(try EtcdHealth(json: result.stdoutText, members: members))
        } catch let error as PlanError { return .failure(error) } catch { return .failure(PlanError("\(error)")) }
    }

    /// etcd's database size against the free space where the snapshot goes,
    /// under /var/lib/etcd, and (a minor, whose `kubeadm upgrade apply` copies
    /// etcd's data there) under /etc/kubernetes/tmp; a folder not made yet is
    /// judged by its nearest parent.
    private func diskSpace(on master: NodeFacts, kind: UpgradeKind) async -> Result<DiskSpace, PlanError> {
        let status = Shell.command(shell.sudo + settings.distribution.datastoreStatus)
        let folders = [settings.backupDir] + settings.distribution.dataFolders(for: kind)
        let script =
            #"for p; do d=$p; while [ ! -e "$d" ]; do d=$(dirname "$d"); done; printf '%s ' "$p"; df -P -B1 "$d" | tail -n 1; done"#
        let df = Shell.command(["sh", "-c", script, "sh"] + folders)
        do {
            let sized = try await shell.run(status, on: master, stdin: nil, timeout: .seconds(60), onOutput: nil)
            guard sized.succeeded else { return .failure(PlanError(Self.tail(sized.stderrText))) }
            let free = try await shell.run(df, on: master, stdin: nil, timeout: .seconds(60), onOutput: nil)
            guard free.succeeded else { return .failure(PlanError(Self.tail(free.stderrText))) }
            return .success(
                DiskSpace(
                    databaseBytes: try DiskSpace.databaseSize(json: sized.stdoutText),
                    folders: try DiskSpace.folders(df: free.stdoutText)))
        } catch let error as PlanError { return .failure(error) } catch { return .failure(PlanError("\(error)")) }
    }

    private func certificateExpiry(on master: NodeFacts) async -> Result<[CertificateExpiry], PlanError> {
        guard let check = settings.distribution.certificateCheck else { return .success([]) }
        let command = Shell.command(shell.sudo + check)
        do {
            let result = try await shell.run(command, on: master, stdin: nil, timeout: .seconds(60), onOutput: nil)
            guard result.succeeded else { return .failure(PlanError(Self.tail(result.stderrText))) }
            return .success(try CertificateExpiry.parse(json: result.stdoutText))
        } catch let error as PlanError { return .failure(error) } catch { return .failure(PlanError("\(error)")) }
    }

    // MARK: - Stage 2: snapshot

    private func snapshot(_ job: JobContext) async throws -> StageOutcome {
        let master = try masterNode(try await cluster.nodes())
        let target = job.request.targetVersion
        let path = "\(settings.backupDir)/k8s-upgrade-pre-\(target)-\(Int(job.now())).db"
        let save =
            Shell.command(shell.sudo + ["mkdir", "-p", settings.backupDir]) + " && "
            + Shell.command(shell.sudo + settings.distribution.snapshotSave(to: path))
        let status = Shell.command(shell.sudo + settings.distribution.snapshotStatus(of: path))
        if let first = state.withLock({ $0.firstSnapshot }) {
            let kept = Shell.command(shell.sudo + settings.distribution.snapshotStatus(of: first))
            let checked = try await shell.run(kept, on: master, stdin: nil, timeout: .seconds(120), onOutput: nil)
            if checked.succeeded, let verified = try? SnapshotStatus(json: checked.stdoutText) {
                let text =
                    "keeping the pre-upgrade snapshot \(first) that this job took when it first ran (\(verified.summary)): "
                    + "a resume does not replace the rollback point; to take a new one, remove the namespace "
                    + "annotation \(cluster.annotationPrefix)/snapshot-path and resume"
                try await job.record(.info, text, stage: .snapshot)
                state.withLock { $0.report.snapshot = verified.summary }
                setGauges(job) { $0.snapshotTaken = true }
                return .done(text)
            }
            try await job.record(
                .warning,
                "the pre-upgrade snapshot \(first) of this job's first run is gone or does not verify "
                    + "(\(Self.tail(checked.stderrText + checked.stdoutText))); taking a new one",
                stage: .snapshot)
        }
        if job.request.dryRun {
            if case let .failure(error) = await etcdHealth(on: master) {
                throw JobFailure("etcd is not healthy, the snapshot would fail: \(error)")
            }
            try await job.record(.wouldChange, "would run on \(master.name): \(save)", stage: .snapshot)
            try await job.record(.wouldChange, "would verify with: \(status)", stage: .snapshot)
            return .done("dry run: would save and verify \(path)")
        }
        // A save against an etcd that does not answer waits out its whole
        // command timeout; a health check first fails in seconds.
        switch await etcdHealth(on: master) {
        case let .success(health) where health.hasQuorum: break
        case let .success(health):
            throw JobFailure("etcd snapshot on \(master.name) failed: no quorum: \(health.summary)")
        case let .failure(error):
            throw JobFailure("etcd snapshot on \(master.name) failed: etcd is not healthy: \(error)")
        }
        let saved = try await runRemote(job, save, on: master, stage: .snapshot, timeout: .seconds(600))
        guard saved.succeeded else {
            throw JobFailure(
                "etcd snapshot on \(master.name) failed: \(Self.tail(saved.stderrText + saved.stdoutText))")
        }
        let checked = try await shell.run(status, on: master, stdin: nil, timeout: .seconds(120), onOutput: nil)
        let verified: SnapshotStatus
        do {
            guard checked.succeeded else { throw PlanError(Self.tail(checked.stderrText)) }
            verified = try SnapshotStatus(json: checked.stdoutText)
        } catch { throw JobFailure("the etcd snapshot \(path) could not be verified: \(error)") }
        try await job.record(.info, "snapshot \(path): \(verified.summary)", stage: .snapshot)
        try await cluster.annotateNamespace(["snapshot-path": path])
        state.withLock {
            $0.report.snapshotPath = path
            $0.report.snapshot = verified.summary
        }
        try await pruneSnapshots(job, on: master, keeping: [path])
        setGauges(job) { $0.snapshotTaken = true }
        return .done("saved \(path): \(verified.summary)")
    }

    /// Retention: the newest `snapshotKeep` snapshots stay, and the rollback
    /// point in flight whatever its age; `.part` files of killed saves go.
    private func pruneSnapshots(_ job: JobContext, on master: NodeFacts, keeping protected: Set<String>) async throws {
        let list = Shell.command(
            shell.sudo + [
                "find", settings.backupDir, "-maxdepth", "1", "-type", "f", "-name", "k8s-upgrade-pre-*", "-printf",
                "%f\\n",
            ])
        let listed = try await shell.run(list, on: master, stdin: nil, timeout: .seconds(60), onOutput: nil)
        guard listed.succeeded else {
            try await job.record(
                .warning, "snapshot retention skipped: \(Self.tail(listed.stderrText))", stage: .snapshot)
            return
        }
        let names = listed.stdoutText.split(separator: "\n").map(String.init)
        let kept = Set(protected.map { $0.split(separator: "/").last.map(String.init) ?? $0 })
        let doomed = SnapshotRetention.prune(names, keep: settings.snapshotKeep, protected: kept)
        guard !doomed.isEmpty else { return }
        let paths = doomed.map { "\(settings.backupDir)/\($0)" }
        let removed = try await runRemote(
            job, Shell.command(shell.sudo + ["rm", "-f", "--"] + paths), on: master, stage: .snapshot,
            timeout: .seconds(60))
        try await job.record(
            removed.succeeded ? .info : .warning,
            "snapshot retention (newest \(settings.snapshotKeep) kept, and the rollback point in flight): "
                + (removed.succeeded ? "removed " : "could not remove ") + doomed.joined(separator: ", "),
            stage: .snapshot)
    }

    // MARK: - Stage 3: containerd

    private func containerd(_ job: JobContext) async throws -> StageOutcome {
        let nodes = try await cluster.nodes()
        let master = try masterNode(nodes)
        let workers = nodes.filter { !$0.isControlPlane }
        guard let masterRuntime = master.containerd else {
            return .skipped("\(master.name) does not report a containerd runtime")
        }
        let workerRuntimes = workers.compactMap(\.containerd)
        guard let wanted = workerRuntimes.min(), workerRuntimes.count == workers.count else {
            return .skipped("the workers do not all report a containerd runtime")
        }
        guard masterRuntime < wanted else {
            return .skipped("\(master.name) runs containerd \(masterRuntime), not older than the workers' \(wanted)")
        }
        let arguments = ["--containerd", wanted.description]
        try await runScript(job, arguments, purpose: "containerd-\(wanted)", on: master, stage: .containerd)
        guard !job.request.dryRun else {
            return .done("dry run: would bring containerd on \(master.name) to \(wanted)")
        }
        try await job.wait(
            for: "\(master.name) to report containerd \(wanted)", stage: .containerd, node: master.name,
            timeout: settings.nodeReadyTimeout
        ) {
            guard let node = try? await self.cluster.node(master.name) else { return "node unreadable" }
            return node.containerd == wanted && node.isReady
                ? nil : "runtime \(node.containerd?.description ?? "?"), \(node.readiness)"
        }
        return .done("containerd on \(master.name): \(masterRuntime) → \(wanted)")
    }

    // MARK: - Stage 4: repo

    private func repo(_ job: JobContext) async throws -> StageOutcome {
        let minor = job.request.targetVersion.minorLine
        guard job.request.kind == .minor else {
            return .skipped("patch upgrade: the apt sources stay as they are")
        }
        let nodes = try await cluster.nodes()
        for node in nodes.sorted(by: { $0.name < $1.name }) {
            try job.checkpoint()
            try await runScript(job, ["--repo-minor", minor], purpose: "repo-\(minor)", on: node, stage: .repo)
        }
        return .done(
            "\(job.request.dryRun ? "dry run: would point" : "pointed") \(nodes.count) nodes at the v\(minor) repository"
        )
    }

    // MARK: - Stages 5 and 6: nodes

    private func controlPlanes(_ job: JobContext) async throws -> StageOutcome {
        let steps = state.withLock { $0.plan.controlPlanes }
        var upgraded = 0
        for step in steps {
            try job.checkpoint()
            guard let node = try await liveStep(step, job: job, stage: .master) else { continue }
            try await waitForGate(job, stage: .master, node: step.node)
            let master = try masterNode(try await cluster.nodes())
            switch await etcdHealth(on: master) {
            case let .success(health):
                switch health.quorum(without: step.node) {
                case let .success(verdict):
                    try await job.record(
                        .info, "etcd: \(health.summary); \(verdict)", stage: .master, node: step.node)
                case let .failure(reason):
                    throw JobFailure("\(step.node) was not touched: \(reason)")
                }
            case let .failure(error): throw JobFailure("etcd is not healthy before \(step.node): \(error)")
            }
            try await upgrade(node, step: step, job: job, stage: .master)
            upgraded += 1
        }
        return .done("\(upgraded) of \(steps.count) control planes upgraded; the others were already done")
    }

    private func workers(_ job: JobContext) async throws -> StageOutcome {
        let steps = state.withLock { $0.plan.workers }
        var upgraded = 0
        for step in steps {
            try job.checkpoint()
            guard let node = try await liveStep(step, job: job, stage: .workers) else { continue }
            try await waitForGate(job, stage: .workers, node: step.node)
            try await upgrade(node, step: step, job: job, stage: .workers)
            try await soak(step.node, job: job)
            upgraded += 1
        }
        return .done("\(upgraded) of \(steps.count) workers upgraded; the others were already done")
    }

    /// Re-reads the node and decides again, so a resumed job skips what is done.
    private func liveStep(
        _ step: NodeStep, job: JobContext, stage: UpgradeStage
    ) async throws -> (NodeFacts, NodeAction)? {
        let node = try await cluster.node(step.node)
        let apiServer = step.role == .worker ? nil : try await cluster.apiServerVersion(on: step.node)
        let action = UpgradePlan.action(
            for: node, apiServer: apiServer, target: job.request.targetVersion, isControlPlane: step.role != .worker)
        if case let .skip(reason) = action {
            try await job.record(.nodeSkipped, reason, stage: stage, node: step.node)
            var line = UpgradeReport.NodeReport(
                name: step.node, role: step.role, before: step.from?.description ?? "?",
                after: node.kubelet?.description ?? "?", outcome: "skipped: \(reason)")
            if let existing = state.withLock({ $0.report.nodes.first { $0.name == step.node } }) { line = existing }
            state.withLock { $0.report.record(line) }
            return nil
        }
        return (node, action)
    }

    /// cordon → drain → node script → uncordon → verify.
    private func upgrade(
        _ live: (NodeFacts, NodeAction), step: NodeStep, job: JobContext, stage: UpgradeStage
    ) async throws {
        let (node, action) = live
        let target = job.request.targetVersion
        var line = UpgradeReport.NodeReport(
            name: node.name, role: step.role, before: node.kubelet?.description ?? "?")
        setGauges(job) { $0.node = node.name }
        let what = action == .finish ? "finishing" : "upgrading"
        try await job.record(
            .nodeStarted, "\(what) \(node.name) (\(step.role.rawValue)): \(line.before) → \(target)", stage: stage,
            node: node.name)
        notify(job, .info, "\(node.name): \(what) \(line.before) → \(target)")
        do {
            if action == .upgrade {
                if step.role == .worker { try await checkKubeletSkew(node, job: job) }
                try await reach(node, job: job, stage: stage)
                if !node.unschedulable {
                    try await write(job, "cordon \(node.name)", stage: stage, node: node.name) {
                        try await cluster.cordon(node.name, by: "job-\(job.id)")
                    }
                    markTouched()
                    setGauges(job) { $0.cordonedSince[node.name] = job.now() }
                } else if node.cordonedBy != nil {
                    // Cordoned by this job before a restart: since now, at the latest.
                    setGauges(job) { gauges in
                        if gauges.cordonedSince[node.name] == nil { gauges.cordonedSince[node.name] = job.now() }
                    }
                } else if node.cordonedBy == nil {
                    try await job.record(
                        .info, "\(node.name) was already cordoned by someone else; it stays cordoned afterwards",
                        stage: stage, node: node.name)
                }
                let drainStart = job.now()
                let drained = try await drain(node.name, job: job, stage: stage)
                line.drainSeconds = job.now() - drainStart
                line.podsEvicted = drained.evicted
                line.blockers = drained.blockers
                line.podsLeft = drained.excluded
                let scriptStart = job.now()
                markTouched()
                try await runScript(
                    job, settings.distribution.nodeStep(role: step.role, target: target),
                    purpose: "\(step.role.rawValue)-\(target)", on: node, stage: stage)
                line.scriptSeconds = job.now() - scriptStart
            }
            let current = job.request.dryRun ? node : try await cluster.node(node.name)
            if job.request.dryRun ? !node.unschedulable : current.cordonedBy != nil {
                try await write(job, "uncordon \(node.name)", stage: stage, node: node.name) {
                    try await cluster.uncordon(node.name)
                }
                setGauges(job) { $0.cordonedSince[node.name] = nil }
            } else if current.unschedulable {
                try await job.record(
                    .info, "\(node.name) left cordoned: this tool did not cordon it", stage: stage, node: node.name)
            }
            if job.request.dryRun {
                line.after = target.description
                line.outcome = "dry run: nothing changed"
                if step.role != .worker { state.withLock { _ = $0.dryRunControlPlanes.insert(node.name) } }
            } else {
                try await verify(node.name, role: step.role, job: job, stage: stage)
                line.after = target.description
                line.outcome = action == .finish ? "finished" : "upgraded"
            }
        } catch {
            line.outcome = "failed: \(error)"
            state.withLock { $0.report.record(line) }
            if !(error is JobStop) {
                try? await job.record(.nodeFailed, "\(error)", stage: stage, node: node.name)
                notify(job, .failure, "\(node.name) failed", ["\(error)"])
            }
            throw error
        }
        state.withLock { $0.report.record(line) }
        try await job.record(
            .nodeSucceeded,
            "\(node.name) \(job.request.dryRun ? "would be" : "is") at \(target)"
                + (line.drainSeconds + line.scriptSeconds > 0
                    ? " (drain \(UpgradeReport.seconds(line.drainSeconds)), \(line.podsEvicted) pods evicted, script \(UpgradeReport.seconds(line.scriptSeconds)))"
                    : ""),
            stage: stage, node: node.name)
        notify(job, .success, "\(node.name) done", [line.outcome])
    }

    /// A worker's kubelet never gets ahead of the oldest API server, whatever
    /// stages were selected (`preflight,workers` on a cluster whose control
    /// plane was not upgraded stops here, before the first cordon).
    private func checkKubeletSkew(_ node: NodeFacts, job: JobContext) async throws {
        let target = job.request.targetVersion
        var apiServers = try await cluster.apiServerVersions(of: try await cluster.nodes())
        if job.request.dryRun {
            for name in state.withLock({ $0.dryRunControlPlanes }) { apiServers[name] = target }
        }
        let versions = apiServers.isEmpty ? [try await cluster.client.serverVersion()] : Array(apiServers.values)
        guard let current = node.kubelet else {
            throw JobFailure("\(node.name): its kubelet version is unreadable, so it was not touched")
        }
        if case let .refused(violations) = SkewPolicy.evaluateKubeletUpgrade(
            node: node.name, from: current, to: target, apiServers: versions)
        {
            let oldest = apiServers.min { $0.value < $1.value }.map { " (\($0.key) runs \($0.value))" } ?? ""
            throw JobFailure(
                "\(node.name) was not touched: " + violations.map(\.description).joined(separator: "; ")
                    + "; the control planes must reach \(target) first\(oldest): run the master stage")
        }
    }

    /// Connects to the node and runs `true` before anything changes it: a
    /// node that cannot be reached, or whose host key does not verify, is
    /// never cordoned or drained.
    private func reach(_ node: NodeFacts, job: JobContext, stage: UpgradeStage) async throws {
        do {
            _ = try await shell.run("true", on: node, stdin: nil, timeout: .seconds(30), onOutput: nil)
        } catch let error as SSHError {
            throw JobFailure("\(node.name) cannot be reached over SSH, so nothing was changed on it: \(error)")
        }
    }

    private func drain(_ node: String, job: JobContext, stage: UpgradeStage) async throws -> Drainer.Outcome {
        if job.request.dryRun {
            let selection = try await drainer.select(node)
            let budgets = try await cluster.budgets()
            for refusal in selection.refusals {
                try await job.record(.warning, "drain would stop: \(refusal)", stage: stage, node: node)
            }
            for (pod, reason) in selection.leftOnPurpose {
                try await job.record(.info, "would leave \(pod) on \(node): \(reason)", stage: stage, node: node)
            }
            for pod in selection.evict {
                let budget = budgets.first { $0.covers(pod) }.map { " (\($0.summary))" } ?? ""
                try await job.record(.wouldChange, "would evict \(pod.reference)\(budget)", stage: stage, node: node)
            }
            return Drainer.Outcome(evicted: 0, blockers: [], excluded: selection.excluded)
        }
        try await job.record(.info, "draining \(node)", stage: stage, node: node)
        do {
            var drainer = drainer
            drainer.clock = job.clock
            let outcome = try await drainer.drain(node, checkpoint: { try job.checkpoint() }) { message in
                try? await job.record(.info, message, stage: stage, node: node)
            }
            try await job.record(.info, "\(node) drained: \(outcome.evicted) pods evicted", stage: stage, node: node)
            return outcome
        } catch let timeout as DrainTimeout {
            setGauges(job) { gauges in
                gauges.drainBlocked = timeout.held.map { .init(node: node, pod: $0.pod, budget: $0.budget) }
            }
            throw JobFailure(timeout.description)
        }
    }

    private func verify(_ node: String, role: NodeRole, job: JobContext, stage: UpgradeStage) async throws {
        let target = job.request.targetVersion
        try await job.wait(
            for:
                "\(node) to be Ready with kubelet\(role == .worker ? "" : " and API server") at \(target) after its kubelet restart",
            stage: stage, node: node, timeout: settings.nodeReadyTimeout, finishingOnShutdown: true
        ) {
            guard let facts = try? await self.cluster.node(node) else { return "node unreadable" }
            var missing: [String] = []
            if !facts.isReady { missing.append(facts.readiness) }
            if facts.kubelet?.release != target.release {
                missing.append("kubelet \(facts.kubelet?.description ?? "?")")
            }
            if role != .worker {
                let api = try? await self.cluster.apiServerVersion(on: node)
                if api?.release != target.release { missing.append("API server \(api?.description ?? "?")") }
            }
            return missing.isEmpty ? nil : missing.joined(separator: ", ")
        }
    }

    /// Watches the gate and the node's Ready state for the soak time; a
    /// regression fails the job before the next node.
    private func soak(_ node: String, job: JobContext) async throws {
        guard settings.soak > .zero else { return }
        if job.request.dryRun {
            try await job.record(
                .wouldChange, "would soak \(node) for \(JobContext.format(settings.soak.seconds))", stage: .workers,
                node: node)
            return
        }
        let started = job.now()
        let end = started + settings.soak.seconds
        try await job.store.append(
            job.id,
            [
                JobEvent(
                    time: started, kind: .waitStarted, stage: .workers, node: node,
                    message: "soak of \(node): watching the gate and the node", deadline: end)
            ])
        while job.now() < end {
            try await job.sleep(min(job.pollInterval, .seconds(max(0.01, end - job.now()))))
            var problem: String?
            let verdict = await gate.prometheus.gate(gate.selector)
            if verdict != .open { problem = "halt-on-alert gate closed: \(verdict.summary)" }
            if problem == nil, let facts = try? await cluster.node(node), !facts.isReady {
                problem = "\(node) is no longer Ready: \(facts.readiness)"
            }
            if let problem {
                let text = "soak of \(node) stopped after \(JobContext.format(job.now() - started)): \(problem)"
                try await job.record(.waitEnded, text, stage: .workers, node: node)
                notify(job, .failure, "Blocked: soak of \(node) found a regression", [problem])
                throw JobFailure(text)
            }
        }
        let seconds = job.now() - started
        state.withLock { run in
            if let index = run.report.nodes.firstIndex(where: { $0.name == node }) {
                run.report.nodes[index].soakSeconds = seconds
            }
        }
        try await job.record(
            .waitEnded, "soak of \(node): clean for \(JobContext.format(seconds))", stage: .workers, node: node)
    }

    // MARK: - Stage 7: post-flight

    private func postflight(_ job: JobContext) async throws -> StageOutcome {
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
        let verdict = await gate.prometheus.gate(gate.selector)
        if verdict != .open { problems.append("halt-on-alert gate: \(verdict.summary)") }
        let pods = try await cluster.allPods().map { pod in
            (
                phase: pod[["status", "phase"]]?.stringValue ?? "",
                ready: (pod[["status", "conditions"]]?.arrayValue ?? []).contains {
                    $0[["type"]]?.stringValue == "Ready" && $0[["status"]]?.stringValue == "True"
                }
            )
        }.filter { $0.phase != "Succeeded" && $0.phase != "Failed" }
        let ready = pods.filter(\.ready).count
        let ratio = pods.isEmpty ? 1 : Double(ready) / Double(pods.count)
        let ratioText =
            "\(ready) of \(pods.count) pods Ready (\(Int((ratio * 100).rounded())) %, needed \(Int((settings.podReadyRatio * 100).rounded())) %)"
        if ratio < settings.podReadyRatio { problems.append(ratioText) }
        try await job.record(.info, ratioText, stage: .postflight)
        if job.request.dryRun {
            for problem in problems {
                try await job.record(.info, "now (before any change): \(problem)", stage: .postflight)
            }
            try await job.record(
                .wouldChange,
                "would remove the in-flight annotations (\(InFlightMark.keys.joined(separator: ", "))) of namespace \(cluster.namespace)",
                stage: .postflight)
            return .done("dry run: checks read; nothing was changed")
        }
        guard problems.isEmpty else { throw JobFailure("postflight failed: " + problems.joined(separator: "; ")) }
        try await cluster.clearInFlightMark()
        setGauges(job) { $0.inFlight = false }
        return .done("all \(nodes.count) nodes at \(target) and Ready; \(ratioText); annotations cleared")
    }

    // MARK: - Helpers

    /// The gate before a stage or a node: waits (bounded), and says on Slack what blocks.
    private func waitForGate(_ job: JobContext, stage: UpgradeStage, node: String?) async throws {
        let verdict = await gate.prometheus.gate(gate.selector)
        guard verdict != .open else { return }
        if job.request.dryRun {
            try await job.record(
                .warning, "the halt-on-alert gate is closed (\(verdict.summary)); a real run would wait", stage: stage,
                node: node)
            return
        }
        notify(
            job, .warning, "Blocked before \(node ?? stage.rawValue)",
            [verdict.summary, "waiting up to \(JobContext.format(gate.gateWait.seconds))"])
        try await gate.waitUntilOpen(job, stage: stage, node: node)
        notify(job, .info, "Gate open again; continuing with \(node ?? stage.rawValue)")
    }

    /// A write: made, or in a dry run recorded as "would …".
    private func write(
        _ job: JobContext, _ what: String, stage: UpgradeStage? = nil, node: String? = nil,
        _ body: () async throws -> Void
    ) async throws {
        if job.request.dryRun {
            try await job.record(.wouldChange, "would \(what)", stage: stage, node: node)
        } else {
            try await body()
            try await job.record(.info, what, stage: stage, node: node)
        }
    }

    private func markTouched() { state.withLock { $0.touched = true } }

    /// The node script with `arguments`, its output streamed into the job; a
    /// non-zero exit fails the job. A real run is detached from the SSH
    /// session (``NodeRun``): when the session drops, the job re-attaches
    /// to the same run (up to ``maxReattaches`` times within the script
    /// timeout) instead of starting a second one, and a run that was killed
    /// is started again, its steps being convergent. A dry run is piped
    /// with `--dry-run` and changes nothing on the node.
    private func runScript(
        _ job: JobContext, _ arguments: [String], purpose: String, on node: NodeFacts, stage: UpgradeStage
    )
        async throws
    {
        guard !job.request.dryRun else {
            try await job.record(
                .wouldChange, "would run on \(node.name): update_k8s.sh \(Shell.command(arguments))", stage: stage,
                node: node.name)
            let words = arguments + ["--dry-run"]
            let command = Shell.command(shell.sudo + ["bash", "-s", "--"] + words)
            let result: SSHCommandResult
            do {
                result = try await runRemote(
                    job, command, on: node, stdin: settings.nodeScript, stage: stage, timeout: settings.scriptTimeout)
            } catch { throw JobFailure("\(node.name): \(error)") }
            guard result.succeeded else {
                throw JobFailure(
                    "update_k8s.sh \(Shell.command(words)) on \(node.name) \(Self.ended(result)): \(Self.tail(result.stderrText))"
                )
            }
            return
        }
        markTouched()
        let id = NodeRun.id(job: job.id, purpose: purpose, node: node.name)
        let deadline = ContinuousClock.now + settings.scriptTimeout
        var position: NodeRun.Position?
        var tries = 0
        while true {
            let command = Shell.command(
                shell.sudo + ["bash", "-c", NodeRun.launcher, "update_k8s.sh"]
                    + NodeRun.arguments(id: id, reattachingFrom: position) + arguments)
            // What this session saw: the attempt it follows and how many of
            // its lines (a session follows one attempt; stdout and stderr
            // may arrive in either order).
            let seen = Mutex<(announced: Int?, lines: Int)>((nil, 0))
            let result: SSHCommandResult
            do {
                defer {
                    let (announced, lines) = seen.withLock { $0 }
                    position = NodeRun.position(after: position, announced: announced, lines: lines)
                }
                result = try await runRemote(
                    job, command, on: node, stdin: settings.nodeScript, stage: stage,
                    timeout: max(deadline - ContinuousClock.now, .seconds(1))
                ) { line in
                    if line.stream == .stderr, let attempt = NodeRun.attempt(announcedIn: line.text) {
                        seen.withLock { $0.announced = attempt }
                    } else if line.stream == .stdout {
                        seen.withLock { $0.lines += 1 }
                    }
                }
            } catch let error as SSHError where Self.sessionLost(error.kind) {
                tries += 1
                let pause = Duration.seconds(min(1 << min(tries, 5), 30))
                guard tries <= Self.maxReattaches, ContinuousClock.now + pause + Self.minimumFollow < deadline else {
                    throw JobFailure(
                        "\(node.name): \(error); gave up re-attaching to run \(id) after \(tries) tries "
                            + "(--script-timeout leaves too little time); the run may still be going on the node")
                }
                try await job.record(
                    .warning,
                    "the SSH session to \(node.name) ended (\(error)); re-attaching to run \(id) in "
                        + "\(JobContext.format(pause.seconds)) (try \(tries))", stage: stage, node: node.name)
                try await job.sleep(pause, finishingOnShutdown: true)
                continue
            } catch { throw JobFailure("\(node.name): \(error)") }
            if result.exitStatus == NodeRun.stoppedWithoutStatus {
                tries += 1
                guard tries <= Self.maxReattaches, ContinuousClock.now + Self.minimumFollow < deadline else {
                    throw JobFailure(
                        "run \(id) on \(node.name) stopped without an exit status (killed, or the node restarted), "
                            + "and --script-timeout leaves too little time to start it again")
                }
                try await job.record(
                    .warning,
                    "run \(id) on \(node.name) stopped without an exit status (killed, or the node restarted); "
                        + "starting it again, its steps being convergent (try \(tries))",
                    stage: stage, node: node.name)
                continue
            }
            guard result.succeeded else {
                throw JobFailure(
                    "update_k8s.sh \(Shell.command(arguments)) on \(node.name) \(Self.ended(result)): "
                        + NodeRun.failureSummary(log: result.stdoutText, notes: result.stderrText))
            }
            return
        }
    }

    /// Re-attaches to a node run at most this many times (dropped sessions
    /// and killed attempts), backing off from 2 s to 30 s, and only while
    /// the script timeout leaves ``minimumFollow``: a node that reboots
    /// is waited for.
    static let maxReattaches = 50
    static let minimumFollow = Duration.seconds(30)

    /// Whether an SSH failure means the session was lost on the way (worth
    /// re-attaching), not that the node refuses this tool.
    static func sessionLost(_ kind: SSHError.Kind) -> Bool {
        switch kind {
        case .transport, .connectionLost, .connectionRefused, .connectFailed, .connectTimedOut, .nameNotResolved,
            .channelFailed, .handshakeFailed:
            true
        case .unknownHostKey, .hostKeyChanged, .knownHostsUnreadable, .keyFileUnreadable, .keyEncrypted,
            .authenticationFailed, .commandTimedOut:
            false
        }
    }

    static func ended(_ result: SSHCommandResult) -> String {
        result.exitStatus.map { "exited \($0)" } ?? "was killed by SIG\(result.exitSignal ?? "?")"
    }

    /// Runs a command on a node, recording each output line as an event
    /// while it runs (and showing it to `observe` first).
    private func runRemote(
        _ job: JobContext, _ command: String, on node: NodeFacts, stdin: Data? = nil, stage: UpgradeStage,
        timeout: Duration, observe: (@Sendable (SSHOutputLine) -> Void)? = nil
    ) async throws -> SSHCommandResult {
        let (lines, sink) = AsyncStream.makeStream(of: SSHOutputLine.self)
        async let recorded: Void = {
            for await line in lines {
                try? await job.record(.output, line.text, stage: stage, node: node.name)
            }
        }()
        do {
            let result = try await shell.run(command, on: node, stdin: stdin, timeout: timeout) { line in
                observe?(line)
                sink.yield(line)
            }
            sink.finish()
            await recorded
            return result
        } catch {
            sink.finish()
            await recorded
            throw error
        }
    }

    private func masterNode(_ nodes: [NodeFacts]) throws -> NodeFacts {
        let name =
            state.withLock { $0.plan.controlPlanes.first?.node }
            ?? settings.masterNode ?? nodes.filter(\.isControlPlane).map(\.name).min()
        guard let name, let node = nodes.first(where: { $0.name == name }) else {
            throw JobFailure("no control-plane node found")
        }
        return node
    }

    private func apiServers(of nodes: [NodeFacts]) async throws -> [String: KubeVersion] {
        try await cluster.apiServerVersions(of: nodes)
    }

    static func tail(_ text: String) -> String {
        let lines = text.split(separator: "\n").suffix(3)
        return lines.isEmpty ? "(no output)" : lines.joined(separator: " | ")
    }
}

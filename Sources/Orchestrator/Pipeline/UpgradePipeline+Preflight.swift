import FoundationEssentials
import Shared
import SharedIO

// Stage 1, pre-flight, and the master's datastore and certificate facts.
extension UpgradePipeline {
    // MARK: - Stage 1: pre-flight

    func preflight(_ job: JobContext) async throws -> StageOutcome {
        let request = job.request
        let (nodes, rooms) = try await cluster.nodesWithRooms()
        let master = try masterNode(nodes, job: job)
        let created = (try? await job.store.job(job.id))?.createdAt ?? job.now()
        async let holds = holdsAtStart(nodes, job: job)
        let plan = job.state.withLock { $0.plan }
        var facts = try await preflightFacts(
            request, nodes: nodes, master: master, createdAt: created, plan: plan, rooms: rooms)
        facts.holds = try await holds
        if case let .success(forecast)? = facts.drain {
            job.state.withLock { run in
                for node in forecast.nodes { run.predicted[node.name] = node.blockers.map(\.description) }
            }
        }
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

    /// Every pre-flight fact but the holds (which a job sets and a plan
    /// only reads), read from live state; nothing is changed.
    func preflightFacts(
        _ request: ExecuteRequest, nodes: [NodeFacts], master: NodeFacts, createdAt: Double, plan: UpgradePlan?,
        rooms: [NodeRoom]? = nil
    ) async throws -> PreflightFacts {
        let apiServers = try await cluster.runningAPIServers(of: nodes)
        let verdict = await gate.verdict()
        var quiet: (hours: Int, fired: Result<[String], PlanError>)?
        if settings.quietPeriodHours > 0 {
            quiet = (settings.quietPeriodHours, await firedInQuietWindow(before: createdAt))
        }
        async let offered = targetOffered(request, master: master)
        async let etcd = datastoreHealth(on: master)
        async let certificates = certificateExpiry(on: master)
        async let disk = diskSpace(on: master, kind: request.kind)
        async let plans = sucPlans(selecting: nodes)
        async let drain = drainForecast(request, plan: plan, rooms: rooms)
        var facts = PreflightFacts(
            target: request.targetVersion, expectedNodes: settings.expectedNodes, nodes: nodes,
            apiServers: apiServers, gate: verdict, quietWindow: quiet, offered: await offered, etcd: await etcd,
            certificates: await certificates)
        facts.certificateWarning = 30 * 86400
        facts.datastore = settings.distribution.datastore
        facts.disk = await disk
        facts.sucPlans = await plans
        facts.allowSUCPlans = settings.allowSUCPlans
        facts.dryRun = request.dryRun
        facts.drain = await drain
        facts.acceptBlockers = request.acceptBlockers
        return facts
    }

    /// system-upgrade-controller's Plans (every namespace) that select any
    /// of `nodes`; `nil` where its CRD is not installed.
    func sucPlans(selecting nodes: [NodeFacts]) async -> Result<[PlanSelection]?, PlanError> {
        do {
            guard let list = try await cluster.client.getIfExists(OtherUpgraders.plansPath) else {
                return .success(nil)
            }
            return .success(OtherUpgraders.selections(plans: list[["items"]]?.arrayValue ?? [], nodes: nodes))
        } catch { return .failure(PlanError("\(error)")) }
    }

    func firedInQuietWindow(before created: Double) async -> Result<[String], PlanError> {
        let query = gate.selector.quietPeriodQuery(hours: settings.quietPeriodHours)
        do {
            // The window ends when the job was created, so alerts the job's own
            // rollout caused do not block its resume.
            let series = try await gate.alerts.query(query, at: created)
            return .success(Array(Set(series.map { $0["alertname"] ?? "?" })).sorted())
        } catch { return .failure(PlanError("\(error)")) }
    }

    /// The master's package source lists the target; for a minor upgrade of
    /// a distribution with a package repository, the next minor's index may
    /// list it instead.
    func targetOffered(_ request: ExecuteRequest, master: NodeFacts) async -> Result<String, PlanError> {
        let target = request.targetVersion
        do {
            let distribution = settings.distribution
            let package = distribution.package
            let result = try await shell.run(
                RemoteCommand(distribution.offeredListing, asRoot: false), on: master, onOutput: nil)
            if distribution.offers(target, in: result.stdoutText) {
                return .success("\(package) \(target) is offered by the master's package source")
            }
            let listed =
                "\(package) \(target) is not in \(Shell.command(distribution.offeredListing)) on \(master.name)"
            guard request.kind == .minor, distribution.notApplicable(.repo) == nil else {
                return .failure(PlanError(result.succeeded ? listed : listed + ": " + Self.tail(result.stderrText)))
            }
            let repository = PackageRepository(base: settings.repoBase, http: http)
            let url = repository.folder(of: target) + "/Packages"
            switch try await repository.minor(target, package: package) {
            case .notPublished:
                return .failure(PlanError("\(repository.folder(of: target)) is not published"))
            case let .published(releases, _) where releases.contains(target):
                return .success("\(package) \(target) is in \(url)")
            case .published: return .failure(PlanError("\(package) \(target) is not in \(url)"))
            }
        } catch { return .failure(PlanError("\(error)")) }
    }

    // MARK: - The datastore

    /// The datastore's members and the health of each, asked through
    /// `member` with the distribution's probes (etcd: `member list` and
    /// `endpoint health --cluster`; dqlite: `.cluster` and `.leader`).
    func datastoreHealth(on member: NodeFacts) async -> Result<DatastoreHealth, PlanError> {
        let distribution = settings.distribution
        do {
            var outputs: [ProbeOutput] = []
            for probe in distribution.datastoreProbes {
                // A failed membership read ends the reading (see Distribution.datastoreProbes).
                if let first = outputs.first, !first.succeeded {
                    outputs.append(first)
                    continue
                }
                let result = try await shell.run(RemoteCommand(probe), on: member, onOutput: nil)
                outputs.append(
                    ProbeOutput(exitStatus: result.exitStatus, stdout: result.stdoutText, stderr: result.stderrText))
            }
            let nodes = try await cluster.nodes()
            return .success(try distribution.datastoreHealth(outputs, nodes: nodes))
        } catch let error as PlanError {
            return .failure(PlanError("\(error) (asked on \(member.name))"))
        } catch { return .failure(PlanError("\(error)")) }
    }

    /// The datastore's size against the free space where the snapshot goes
    /// and where the upgrade copies the data (kubeadm: /var/lib/etcd, and for
    /// a minor /etc/kubernetes/tmp; MicroK8s: the snap's data folder); a
    /// folder not made yet is judged by its nearest parent.
    func diskSpace(on master: NodeFacts, kind: UpgradeKind) async -> Result<DiskSpace, PlanError> {
        let distribution = settings.distribution
        let status = RemoteCommand(distribution.datastoreSize)
        let folders = [settings.backupDir] + distribution.dataFolders(for: kind)
        let script =
            #"for p; do d=$p; while [ ! -e "$d" ]; do d=$(dirname "$d"); done; printf '%s ' "$p"; df -P -B1 "$d" | tail -n 1; done"#
        let df = RemoteCommand(["sh", "-c", script, "sh"] + folders, asRoot: false)
        do {
            let sized = try await shell.run(status, on: master, onOutput: nil)
            guard sized.succeeded else { return .failure(PlanError(Self.tail(sized.stderrText))) }
            let free = try await shell.run(df, on: master, onOutput: nil)
            guard free.succeeded else { return .failure(PlanError(Self.tail(free.stderrText))) }
            var space = DiskSpace(
                databaseBytes: try distribution.datastoreBytes(sized.stdoutText),
                folders: try DiskSpace.folders(df: free.stdoutText))
            space.datastore = distribution.datastore
            return .success(space)
        } catch let error as PlanError { return .failure(error) } catch { return .failure(PlanError("\(error)")) }
    }

    func certificateExpiry(on master: NodeFacts) async -> Result<[CertificateExpiry], PlanError> {
        guard let check = settings.distribution.certificateCheck else { return .success([]) }
        let command = RemoteCommand(check)
        do {
            let result = try await shell.run(command, on: master, onOutput: nil)
            guard result.succeeded else { return .failure(PlanError(Self.tail(result.stderrText))) }
            return .success(try CertificateExpiry.parse(json: result.stdoutText))
        } catch let error as PlanError { return .failure(error) } catch { return .failure(PlanError("\(error)")) }
    }
}

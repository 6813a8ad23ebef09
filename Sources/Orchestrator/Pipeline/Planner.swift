import FoundationEssentials
import Shared
import SharedIO

/// `GET /plan` and `k8s-upgrade plan`: what a job would do, read from live
/// state with the pipeline's own reads (the master's package source, the
/// datastore, the gate, disk, the holds without setting them), changing
/// nothing, decided by the same pure functions a job uses.
struct Planner: Sendable {
    let pipeline: UpgradePipeline
    let policy: DetectionPolicy
    /// Where the last upgrade's timings are read for the duration forecast.
    var store: JobStore?

    enum Failure: Error, CustomStringConvertible {
        /// The target asked for is not one this service would take.
        case refused(String)
        var description: String {
            switch self {
            case let .refused(text): text
            }
        }
    }

    func forecast(target asked: KubeVersion?, now: Double, acceptBlockers: Bool = false) async throws -> UpgradeForecast
    {
        let settings = pipeline.settings
        let distribution = settings.distribution
        let cluster = pipeline.cluster
        let (nodes, rooms) = try await cluster.nodesWithRooms()
        let apiServers = try await cluster.apiServerVersions(of: nodes)
        let serverVersion = try await cluster.client.serverVersion()
        let masterName = settings.masterNode ?? nodes.filter(\.isControlPlane).map(\.name).min()
        let master = nodes.first { $0.name == masterName }
        let running = RunningVersions(
            apiServer: serverVersion,
            kubelets: Dictionary(
                uniqueKeysWithValues: nodes.compactMap { node in node.kubelet.map { (node.name, $0) } }))
        var forecast = UpgradeForecast(
            distribution: distribution.name,
            nodes: nodes.sorted { ($0.isControlPlane ? 0 : 1, $0.name) < ($1.isControlPlane ? 0 : 1, $1.name) }.map {
                UpgradeForecast.Node(
                    name: $0.name, role: $0.isControlPlane ? "control-plane" : "worker",
                    kubelet: $0.kubelet?.description ?? "?", apiServer: apiServers[$0.name]?.description,
                    readiness: $0.readiness, unschedulable: $0.unschedulable)
            }, offered: "", decision: "", why: "")
        guard let master else {
            forecast.offered = "not read: no control-plane node found"
            forecast.decision = "none"
            forecast.why = "no control-plane node found"
            return forecast
        }
        let decision = await decide(running: running, master: master)
        forecast.offered = decision.offered
        forecast.decision = decision.text
        let chosen: (KubeVersion, UpgradeKind)
        if let asked {
            // Judged as POST /execute judges it: the plan shows only what the
            // service would take.
            let releases = Array(apiServers.values) + nodes.compactMap(\.kubelet)
            let oldest = releases.map(\.release).min() ?? serverVersion
            let kind: UpgradeKind = asked.minor > oldest.minor ? .minor : .patch
            switch ExecuteAdmission.judge(
                ExecuteRequest(targetVersion: asked, kind: kind),
                apiServers: try await cluster.runningAPIServers(of: nodes), nodes: nodes, policy: policy)
            {
            case let .refused(reason): throw Failure.refused(reason)
            case let .nothingToDo(reason):
                forecast.why = reason
                return forecast
            case .accepted: break
            }
            chosen = (asked.release, kind)
            forecast.why = "asked for"
        } else if let dispatch = decision.dispatch {
            chosen = (dispatch.target, dispatch.kind)
            forecast.why = "the detector's decision"
        } else {
            forecast.why = decision.text
            return forecast
        }
        forecast.target = (chosen.0, chosen.1)
        let request = ExecuteRequest(
            targetVersion: chosen.0, kind: chosen.1, dryRun: true, acceptBlockers: acceptBlockers)
        var controlPlanes: [NodeStep] = []
        var made: UpgradePlan?
        do {
            let plan = try UpgradePlan.make(
                nodes: nodes, apiServers: apiServers, target: chosen.0, master: settings.masterNode,
                order: settings.workerOrder)
            forecast.order = plan.lines(target: chosen.0) {
                Shell.command(distribution.nodeStep(role: $0, target: chosen.0))
            }
            controlPlanes = plan.controlPlanes.filter { $0.action == .upgrade }
            made = plan
        } catch {
            forecast.order = ["no plan: \(error)"]
        }
        async let gates = quorum(before: controlPlanes, nodes: nodes, master: master)
        forecast.stages = UpgradeForecast.stages(
            kind: chosen.1, notApplicable: distribution.notApplicable,
            containerd: ContainerdFix.decide(master: master, workers: nodes.filter { !$0.isControlPlane }),
            batch: settings.maxUnavailableWorkers)
        var facts = try await pipeline.preflightFacts(
            request, nodes: nodes, master: master, createdAt: now, plan: made, rooms: rooms)
        if let hold = distribution.hold {
            facts.holds = (hold.what, await pipeline.holds(hold, on: nodes, set: false).mapValues(\.now))
        }
        // The last upgrade that succeeded times the nodes and the stages around them.
        let last = try? await store?.lastUpgradeResult()
        let timings = last.map { NodeTimeForecast.timings(of: $0.result) }
        let times = NodeTimeForecast(
            estimate: settings.nodeEstimate.seconds, soak: settings.soak.seconds,
            history: last.flatMap { last in timings.map { (last.id, $0.longest) } })
        if let made {
            forecast.duration = Self.duration(
                of: made, stages: request.stages, times: times, history: last.map(\.id), timings: timings,
                batch: settings.maxUnavailableWorkers)
        }
        forecast.preflight = Preflight.evaluate(facts)
        if case let .success(drain)? = facts.drain { forecast.drain = drain }
        forecast.quorum = await gates
        if !settings.maintenance.isAlways {
            // As the job's first stage decides it (``UpgradePipeline/waitForFirstWindow``).
            let first: NodeRole = request.stages.includes(.master) ? .master : .worker
            forecast.maintenance = UpgradeForecast.Maintenance(
                schedule: settings.maintenance, now: Int64(now),
                needs: Int64((timings?.overhead ?? 0) + times.seconds(for: first)),
                basis: "the first node at \(times.basis(for: first))"
                    + (timings.map { ", after \(JobContext.format($0.overhead)) of earlier stages" } ?? ""))
            if let duration = forecast.duration {
                forecast.maintenance?.walk(
                    settings.maintenance, now: Int64(now),
                    steps: Self.steps(
                        duration, overhead: timings?.overhead ?? 0, batch: settings.maxUnavailableWorkers))
            }
        }
        return forecast
    }

    /// The job's steps as the windows see them, in seconds: the stages
    /// before the first node with it, each control plane, each batch of
    /// workers (its longest node).
    static func steps(_ duration: UpgradeForecast.Duration, overhead: Double, batch: Int) -> [Int64] {
        let controlPlanes = duration.nodes.filter { $0.role != .worker }.map(\.seconds)
        let workers = duration.nodes.filter { $0.role == .worker }.map(\.seconds)
        let size = max(1, batch)
        let batches = stride(from: 0, to: workers.count, by: size).map {
            workers[$0..<min($0 + size, workers.count)].max() ?? 0
        }
        var steps = (controlPlanes + batches).map { Int64($0.rounded(.up)) }
        if !steps.isEmpty { steps[0] += Int64(overhead.rounded(.up)) }
        return steps
    }

    /// The job's time: its nodes with work left, each at the last succeeded
    /// upgrade's longest node of its kind (job `history`, else
    /// `--node-estimate`), the workers' soaks and batches, and that job's
    /// time outside its nodes.
    static func duration(
        of plan: UpgradePlan, stages: StageSelection, times: NodeTimeForecast, history: Int64?,
        timings: (longest: [NodeTimeForecast.Kind: Double], overhead: Double)?, batch: Int
    ) -> UpgradeForecast.Duration {
        var steps: [NodeStep] = []
        if stages.includes(.master) { steps += plan.controlPlanes }
        if stages.includes(.workers) { steps += plan.workers }
        let working = steps.filter { step in
            if case .skip = step.action { return false }
            return true
        }
        let roles = working.map(\.role)
        let total = times.total(roles: roles, batch: batch, overhead: timings?.overhead ?? 0)
        let parts = [
            roles.contains { $0 != .worker }
                ? "a control plane \(JobContext.format(times.seconds(for: .master))) from \(times.basis(for: .master))"
                : nil,
            roles.contains(.worker)
                ? "a worker \(JobContext.format(times.seconds(for: .worker))) from \(times.basis(for: .worker))"
                : nil,
            timings.map { "\(JobContext.format($0.overhead)) outside the nodes, as job \(history ?? 0) took" },
        ].compactMap { $0 }
        return UpgradeForecast.Duration(
            seconds: total, basis: "\(roles.count) nodes: " + parts.joined(separator: "; "),
            nodes: working.map { ($0.node, $0.role, times.seconds(for: $0.role)) })
    }

    /// The detector's decision over what the master's package source offers
    /// (and, for a distribution with one, the next minor's repository).
    private func decide(
        running: RunningVersions, master: NodeFacts
    ) async -> (offered: String, text: String, dispatch: (kind: UpgradeKind, target: KubeVersion)?) {
        let distribution = pipeline.settings.distribution
        let current = running.distinctReleases.first ?? running.apiServer
        do {
            let result = try await pipeline.shell.run(
                RemoteCommand(distribution.offeredListing, asRoot: false), on: master, onOutput: nil)
            guard result.succeeded else {
                let text =
                    "\(Shell.command(distribution.offeredListing)) on \(master.name) failed: "
                    + ProbeOutput.tail(result.stderrText)
                return (text, "none: \(text)", nil)
            }
            let offer = try distribution.offer(in: result.stdoutText, running: current, node: master.name)
            var next = offer.nextMinor
            if next == nil, distribution.notApplicable(.repo) == nil {
                next = try await repositoryMinor(after: running.distinctReleases.last ?? current)
            }
            let nextMinor = next ?? .notPublished(current.nextMinor)
            let offered =
                "newest patch of \(current.minorLine): \(offer.newestPatch); "
                + {
                    switch nextMinor {
                    case let .published(newest): "next minor: \(newest)"
                    case let .notPublished(minor): "next minor: \(minor.minorLine) not published"
                    }
                }()
            let decision = Detector.decide(
                running: running, newestPatch: offer.newestPatch, nextMinor: nextMinor, policy: policy)
            let text: String
            switch decision {
            case let .patch(target): text = "patch to \(target), the newest of \(target.minorLine)"
            case let .minor(target): text = "minor to \(target): \(current) is the newest patch and minors are allowed"
            case let .nothing(reason): text = "nothing to do: \(reason)"
            case let .midUpgrade(releases):
                text =
                    "mid-upgrade: the cluster runs " + releases.map(\.description).joined(separator: " and ")
                    + "; resume its job, or ask for a target"
            }
            return (offered, text, decision.dispatch)
        } catch {
            return ("not read: \(error)", "none: \(error)", nil)
        }
    }

    private func repositoryMinor(after current: KubeVersion) async throws -> NextMinor {
        let next = current.nextMinor
        let repository = PackageRepository(base: pipeline.settings.repoBase, http: pipeline.http)
        guard
            case let .published(releases, _) = try await repository.minor(
                next, package: pipeline.settings.distribution.package),
            let newest = releases.first(where: { $0.isSameMinor(as: next) })
        else { return .notPublished(next) }
        return .published(newest: newest)
    }

    /// The quorum gate before each control plane to upgrade, asked as a
    /// job asks it (all at once: each reads, none changes anything).
    private func quorum(
        before steps: [NodeStep], nodes: [NodeFacts], master: NodeFacts
    ) async -> [UpgradeForecast.Quorum] {
        let datastore = pipeline.settings.distribution.datastore
        let verdicts = await withTaskGroup(of: UpgradeForecast.Quorum.self) { group in
            for step in steps {
                let asked = pipeline.datastoreMember(for: step.node, nodes: nodes, master: master)
                group.addTask {
                    switch await pipeline.datastoreHealth(on: asked) {
                    case let .success(health):
                        switch health.quorum(without: step.node) {
                        case let .success(verdict):
                            return .init(node: step.node, passes: true, verdict: "\(health.summary); \(verdict)")
                        case let .failure(reason): return .init(node: step.node, passes: false, verdict: "\(reason)")
                        }
                    case let .failure(error):
                        return .init(node: step.node, passes: false, verdict: "\(datastore) is not healthy: \(error)")
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let order = steps.map(\.node)
        return verdicts.sorted { order.firstIndex(of: $0.node) ?? 0 < order.firstIndex(of: $1.node) ?? 0 }
    }
}

import FoundationEssentials
import Logging
import Shared
import SharedIO

/// One detection run: gather → decide → push → dispatch. Failures before
/// the decision dispatch nothing and push metrics that claim no upgrade.
struct Run: Sendable {
    let settings: Settings
    let log: Logger
    /// What the package source is and how it is asked.
    var distribution: any Distribution = KubeadmApt()
    /// Runs a command on the master: over SSH, or a stand-in in tests.
    var master: any MasterShell = SSHMasterShell()
    /// Where the summary line goes: standard output.
    var report: @Sendable (String) -> Void = { print($0) }

    private struct Facts {
        var running: RunningVersions
        var newestPatch: KubeVersion
        var nextMinor: NextMinor
    }

    private struct DetectionFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    func execute() async -> DetectorExit {
        let facts: Facts
        do {
            facts = try await gather()
        } catch {
            log.error("detection failed; nothing dispatched", ["error": "\(error)"])
            report("detection failed: \(error); nothing dispatched")
            if let pushgateway = settings.pushgatewayURL {
                try? await Pushgateway(baseURL: pushgateway).replace(
                    job: "k8s-version-check", exposition: DetectionMetrics.renderFailure(timestamp: Self.now()))
            }
            return .detectionFailed
        }

        let decision = Detector.decide(
            running: facts.running, newestPatch: facts.newestPatch, nextMinor: facts.nextMinor, policy: settings.policy)
        log.info(
            "decided",
            [
                "running": facts.running.uniformRelease?.description ?? "mixed", "newest_patch": "\(facts.newestPatch)",
                "decision": "\(decision)",
            ])

        var exit = DetectorExit.ok
        if let pushgateway = settings.pushgatewayURL {
            let metrics = DetectionMetrics.render(
                decision: decision, running: facts.running.uniformRelease, newestPatch: facts.newestPatch,
                nextMinor: facts.nextMinor, timestamp: Self.now())
            do {
                try await Pushgateway(baseURL: pushgateway, http: http()).replace(
                    job: "k8s-version-check", exposition: metrics)
            } catch {
                log.error("metrics push failed", ["error": "\(error)"])
                exit = .metricsFailed
            }
        }

        let outcome: String
        switch decision {
        case .midUpgrade(let releases):
            outcome =
                "cluster mid-upgrade (" + releases.map(\.description).joined(separator: ", ") + "), nothing dispatched"
        case .nothing(let reason):
            outcome = "nothing to do (\(reason))"
        case .patch, .minor:
            let (kind, target) = decision.dispatch!
            if let closed = Self.outsideWindows(settings.maintenance, now: Int64(Self.now())) {
                log.info("not dispatched: outside the maintenance windows", ["next": closed])
                outcome = "\(kind.rawValue) → \(target) not dispatched: outside the maintenance windows (\(closed))"
                break
            }
            let request = ExecuteRequest(
                targetVersion: target, kind: kind, dryRun: settings.jobDryRun, stages: settings.stages)
            let result = await dispatch(request)
            outcome = result.text
            if result.failed { exit = .dispatchFailed }
        }
        report(
            DetectionSummary.line(
                running: facts.running, newestPatch: facts.newestPatch, nextMinor: facts.nextMinor,
                policy: settings.policy, outcome: outcome))
        return exit
    }

    // MARK: - Gather

    private func gather() async throws -> Facts {
        let access = try KubernetesAccess.resolve(kubeconfig: settings.kubeconfig)
        let kubernetes = KubernetesClient(access: access, timeout: settings.timeout)
        if settings.masterAddress != nil {
            // The master's address is configured: its packages need nothing
            // from the cluster, so ask for them while the cluster is read.
            let endpoint = try settings.sshEndpoint(internalIP: nil)
            let label = settings.masterNode ?? endpoint.host
            async let listing = offeredListing(at: endpoint, node: label)
            let (running, nodes) = try await readCluster(kubernetes)
            if let name = settings.masterNode, !nodes.contains(where: { $0.name == name }) {
                throw DetectionFailure("no node named \(name)")
            }
            return try await facts(running: running, listing: listing, node: label)
        }
        let (running, nodes) = try await readCluster(kubernetes)
        let master = try chooseMaster(from: nodes)
        async let listing = offeredListing(
            at: try settings.sshEndpoint(internalIP: master.internalIP), node: master.name)
        return try await facts(running: running, listing: listing, node: master.name)
    }

    /// The master's package source and, where it does not say, the package
    /// repository are independent: both are asked at once.
    private func facts(running: RunningVersions, listing: String, node: String) async throws -> Facts {
        let askRepository = distribution.notApplicable(.repo) == nil
        async let repositoryMinor: NextMinor? =
            askRepository ? try await nextMinor(after: running.distinctReleases.last ?? running.apiServer) : nil
        let offered = try offer(in: listing, node: node, running: running)
        let asked = try await repositoryMinor
        guard let minor = offered.nextMinor ?? asked else {
            throw DetectionFailure("\(distribution.name): the next minor is unknown")
        }
        return Facts(running: running, newestPatch: offered.newestPatch, nextMinor: minor)
    }

    private func readCluster(_ kubernetes: KubernetesClient) async throws -> (RunningVersions, [NodeFacts]) {
        async let apiVersion = kubernetes.serverVersion()
        // Pages of 100: each is reduced to its nodes' facts before the next,
        // so the detector holds at most 100 nodes' objects at once.
        async let nodeList = kubernetes.nodes(pageSize: 100)
        let (apiServer, nodes) = try await (apiVersion, nodeList)
        guard !nodes.isEmpty else { throw DetectionFailure("the cluster has no nodes") }
        var kubelets: [String: KubeVersion] = [:]
        for node in nodes {
            guard let kubelet = node.kubelet else {
                throw DetectionFailure("node \(node.name): its kubelet version is unreadable")
            }
            kubelets[node.name] = kubelet
        }
        let running = RunningVersions(apiServer: apiServer, kubelets: kubelets)
        log.info("cluster read", ["api_server": "\(apiServer)", "nodes": "\(nodes.count)"])
        return (running, nodes)
    }

    private func chooseMaster(from nodes: [NodeFacts]) throws -> NodeFacts {
        if let name = settings.masterNode {
            guard let node = nodes.first(where: { $0.name == name }) else {
                throw DetectionFailure("no node named \(name)")
            }
            return node
        }
        guard let node = nodes.filter(\.isControlPlane).min(by: { $0.name < $1.name }) else {
            throw DetectionFailure(
                "no node is labelled as a control plane (" + NodeFacts.controlPlaneLabels.joined(separator: " or ")
                    + "); set --master-node")
        }
        return node
    }

    /// What the master's package source prints (`apt-cache madison kubeadm`
    /// for kubeadm, `snap info microk8s` for MicroK8s).
    private func offeredListing(at endpoint: (host: String, port: Int), node: String) async throws -> String {
        let command = Shell.command(distribution.offeredListing)
        let result = try await master.run(command, at: endpoint, node: node, settings: settings)
        guard result.exitStatus == 0 else {
            let ended = result.exitStatus.map(String.init) ?? result.exitSignal ?? "?"
            throw DetectionFailure(
                "\(command) on \(node) exited \(ended): \(result.stderrText.prefix(300))")
        }
        return result.stdoutText
    }

    /// The distribution's reading of the listing; any line that is not a
    /// version fails the run.
    private func offer(in listing: String, node: String, running: RunningVersions) throws -> Offer {
        let current = running.distinctReleases.first ?? running.apiServer
        let offer: Offer
        do { offer = try distribution.offer(in: listing, running: current, node: node) } catch {
            throw DetectionFailure(error.description)
        }
        log.info("package source read", ["node": node, "newest_patch": "\(offer.newestPatch)"])
        return offer
    }

    private func nextMinor(after current: KubeVersion) async throws -> NextMinor {
        let next = current.nextMinor
        let repository = PackageRepository(base: settings.repoBase, http: http())
        let base = repository.folder(of: next)
        let answer: PackageRepository.Minor
        do { answer = try await repository.minor(next, package: distribution.package) } catch let error
            as PackageRepositoryError
        {
            throw DetectionFailure(error.description)
        }
        guard case let .published(releases, unusable) = answer else {
            log.info("next minor not published", ["minor": next.minorLine])
            return .notPublished(next)
        }
        if unusable > 0 {
            log.warning("unusable lines in the Packages index", ["minor": next.minorLine, "count": "\(unusable)"])
        }
        guard let newest = releases.first(where: { $0.isSameMinor(as: next) }) else {
            throw DetectionFailure("\(base)/Packages lists no \(distribution.package) release of \(next.minorLine)")
        }
        log.info("next minor published", ["minor": next.minorLine, "newest": "\(newest)"])
        return .published(newest: newest)
    }

    // MARK: - Dispatch

    private func dispatch(_ request: ExecuteRequest) async -> (text: String, failed: Bool) {
        let body = String(decoding: request.jsonBody(), as: UTF8.self)
        guard let orchestrator = settings.orchestratorURL else {
            return ("\(request.kind.rawValue) → \(request.targetVersion) due, no orchestrator configured", false)
        }
        if settings.detectOnly {
            log.info("detect-only: not dispatching", ["body": body])
            return ("would POST \(orchestrator)/execute \(body)", false)
        }
        let token: String
        do { token = try TokenFile.read(settings.orchestratorTokenFile) } catch {
            log.error("cannot read the orchestrator token", ["file": settings.orchestratorTokenFile])
            return ("dispatch failed: \(error)", true)
        }
        do {
            let response = try await http().send(
                HTTPRequest(
                    method: "POST", url: orchestrator + "/execute", headers: [("Content-Type", "application/json")],
                    body: request.jsonBody(), bearerToken: token))
            let object = try? JSONValue(parsing: response.body)
            switch response.status {
            case 200 where object?[["outcome"]]?.stringValue == "nothing_to_do":
                let reason = object?[["reason"]]?.stringValue ?? "nothing to do"
                log.info("not dispatched: the orchestrator has nothing to do", ["reason": reason])
                return ("not dispatched: the orchestrator says \(reason)", false)
            case 200..<300:
                let id = object?[["id"]].map { $0.intValue.map(String.init) ?? $0.stringValue ?? "?" } ?? "?"
                log.info(
                    "dispatched", ["kind": request.kind.rawValue, "target": "\(request.targetVersion)", "job": id])
                return ("dispatched \(request.kind.rawValue) → \(request.targetVersion), job \(id)", false)
            case 409:
                let detail = object?[["error"]]?.stringValue ?? "a job is already in flight"
                log.info("not dispatched: a job is already in flight", ["detail": detail])
                return ("not dispatched: \(detail) (409)", false)
            default:
                let detail = object?[["error"]]?.stringValue ?? String(response.text.prefix(200))
                log.error("orchestrator refused the dispatch", ["status": "\(response.status)", "detail": detail])
                return ("dispatch refused: HTTP \(response.status): \(detail)", true)
            }
        } catch {
            log.error("orchestrator unreachable", ["error": "\(error)"])
            return ("dispatch failed: \(error)", true)
        }
    }

    private func http() -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = settings.timeout
        configuration.connectTimeout = min(settings.timeout, .seconds(10))
        return HTTPClient(configuration: configuration)
    }

    private static func now() -> Int { Int(Date().timeIntervalSince1970) }

    /// Why nothing is dispatched at `now`: no window is open (the next
    /// opening named); nil inside a window or without windows.
    static func outsideWindows(_ schedule: MaintenanceSchedule, now: Int64) -> String? {
        guard !schedule.isAlways else { return nil }
        let spans = schedule.spans(from: now)
        if spans.contains(where: { $0.start <= now && now < $0.end }) { return nil }
        return spans.first.map { "the next opens at \(MaintenanceSchedule.local($0.start, $0.zone))" }
            ?? "no window opens in the coming year"
    }
}

/// The one command the detector runs on the master.
protocol MasterShell: Sendable {
    func run(
        _ command: String, at endpoint: (host: String, port: Int), node: String, settings: Settings
    ) async throws -> SSHCommandResult
}

/// Over SSH, the host key checked under the node's name when known_hosts lists it.
struct SSHMasterShell: MasterShell {
    func run(
        _ command: String, at endpoint: (host: String, port: Int), node: String, settings: Settings
    ) async throws -> SSHCommandResult {
        let ssh = SSHClient(
            configuration: SSHConfiguration(
                host: endpoint.host, port: endpoint.port, user: settings.sshUser, privateKeyFile: settings.sshKeyFile,
                knownHostsFile: settings.knownHostsFile, hostKeyAlias: node == endpoint.host ? nil : node,
                connectTimeout: settings.timeout))
        return try await ssh.run(command, timeout: settings.timeout)
    }
}

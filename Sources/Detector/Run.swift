import Foundation
import Shared
import SharedIO

/// One detection run: gather → decide → push → dispatch. Failures before
/// the decision dispatch nothing and push metrics that claim no upgrade.
struct Run: Sendable {
    let settings: Settings
    let log: JSONLog

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
            print("detection failed: \(error); nothing dispatched")
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
            let request = ExecuteRequest(
                targetVersion: target, kind: kind, dryRun: settings.jobDryRun, stages: settings.stages)
            let result = await dispatch(request)
            outcome = result.text
            if result.failed { exit = .dispatchFailed }
        }
        print(
            DetectionSummary.line(
                running: facts.running, newestPatch: facts.newestPatch, nextMinor: facts.nextMinor,
                policy: settings.policy, outcome: outcome))
        return exit
    }

    // MARK: - Gather

    private func gather() async throws -> Facts {
        let access = try KubernetesAccess.resolve(kubeconfig: settings.kubeconfig)
        let kubernetes = KubernetesClient(access: access, timeout: settings.timeout)
        async let apiVersion = kubernetes.serverVersion()
        async let nodeList = kubernetes.nodes()
        let (apiServer, nodes) = try await (apiVersion, nodeList)
        guard !nodes.isEmpty else { throw DetectionFailure("the cluster has no nodes") }
        let running = RunningVersions(
            apiServer: apiServer, kubelets: Dictionary(uniqueKeysWithValues: nodes.map { ($0.name, $0.kubeletVersion) })
        )
        log.info("cluster read", ["api_server": "\(apiServer)", "nodes": "\(nodes.count)"])

        let master: KubernetesClient.Node
        if let name = settings.masterNode {
            guard let node = nodes.first(where: { $0.name == name }) else {
                throw DetectionFailure("no node named \(name)")
            }
            master = node
        } else {
            guard let node = nodes.filter(\.isControlPlane).min(by: { $0.name < $1.name }) else {
                throw DetectionFailure("no node is labelled node-role.kubernetes.io/control-plane; set --master-node")
            }
            master = node
        }
        // The master's packages and the repository are independent: ask both at once.
        async let patch = newestPatch(on: master, running: running)
        async let minor = nextMinor(after: running.distinctReleases.last ?? apiServer)
        let (newestPatch, nextMinor) = try await (patch, minor)
        return Facts(running: running, newestPatch: newestPatch, nextMinor: nextMinor)
    }

    private func newestPatch(on master: KubernetesClient.Node, running: RunningVersions) async throws -> KubeVersion {
        let (host, port) = try settings.sshEndpoint(internalIP: master.internalIP)
        let ssh = SSHClient(
            configuration: SSHConfiguration(
                host: host, port: port, user: settings.sshUser, privateKeyFile: settings.sshKeyFile,
                knownHostsFile: settings.knownHostsFile, knownHostsName: host, connectTimeout: settings.timeout))
        let result = try await ssh.run("apt-cache madison kubeadm", timeout: settings.timeout)
        guard result.exitStatus == 0 else {
            throw DetectionFailure(
                "apt-cache madison kubeadm on \(master.name) exited \(result.exitStatus.map(String.init) ?? result.exitSignal ?? "?"): \(result.stderrText.prefix(300))"
            )
        }
        let listing = MadisonListing(parsing: result.stdoutText)
        if !listing.problems.isEmpty {
            throw DetectionFailure(
                "apt-cache madison kubeadm on \(master.name) printed lines that are not package versions: "
                    + listing.problems.prefix(3).map(\.description).joined(separator: "; "))
        }
        let current = running.distinctReleases.first ?? running.apiServer
        guard let newest = listing.newest(of: "kubeadm", inMinorOf: current) else {
            throw DetectionFailure(
                "apt-cache madison kubeadm on \(master.name) lists no kubeadm for \(current.minorLine)"
                    + (listing.entries.isEmpty ? " (empty output: is the repository configured?)" : ""))
        }
        log.info(
            "madison read",
            ["node": master.name, "newest_patch": newest.version.text, "entries": "\(listing.entries.count)"])
        return newest.kubeVersion
    }

    private func nextMinor(after current: KubeVersion) async throws -> NextMinor {
        let next = current.nextMinor
        let base = "\(settings.repoBase)/v\(next.minorLine)/deb"
        let head = try await http().send(HTTPRequest(method: "HEAD", url: base + "/Release"))
        switch head.status {
        case 200:
            break
        case 403, 404:
            log.info("next minor not published", ["minor": next.minorLine, "status": "\(head.status)"])
            return .notPublished(next)
        default:
            throw DetectionFailure("HEAD \(base)/Release answered HTTP \(head.status)")
        }
        let packages = try await http().send(HTTPRequest(url: base + "/Packages"))
        guard packages.status == 200 else {
            throw DetectionFailure("GET \(base)/Packages answered HTTP \(packages.status)")
        }
        let index = PackagesIndex(parsing: packages.text)
        if !index.problems.isEmpty {
            log.warning(
                "unusable lines in the Packages index", ["minor": next.minorLine, "count": "\(index.problems.count)"])
        }
        guard let newest = index.releases(of: "kubeadm").first(where: { $0.isSameMinor(as: next) }) else {
            throw DetectionFailure("\(base)/Packages lists no kubeadm release of \(next.minorLine)")
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
        do {
            token = try String(contentsOfFile: settings.orchestratorTokenFile, encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            log.error("cannot read the orchestrator token", ["file": settings.orchestratorTokenFile])
            return ("dispatch failed: cannot read \(settings.orchestratorTokenFile)", true)
        }
        do {
            let response = try await http().send(
                HTTPRequest(
                    method: "POST", url: orchestrator + "/execute", headers: [("Content-Type", "application/json")],
                    body: request.jsonBody(), bearerToken: token))
            let object = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any]
            switch response.status {
            case 200..<300:
                let id = object?["id"].map { "\($0)" } ?? "?"
                log.info(
                    "dispatched", ["kind": request.kind.rawValue, "target": "\(request.targetVersion)", "job": id])
                return ("dispatched \(request.kind.rawValue) → \(request.targetVersion), job \(id)", false)
            case 409:
                let detail = object?["error"] as? String ?? "a job is already in flight"
                log.info("not dispatched: a job is already in flight", ["detail": detail])
                return ("not dispatched: \(detail) (409)", false)
            default:
                let detail = object?["error"] as? String ?? String(response.text.prefix(200))
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
}

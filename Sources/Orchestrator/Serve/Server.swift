import ArgumentParser
import FoundationEssentials
import Glibc
import Hummingbird
import Logging
import Shared
import SharedIO

/// Wires the store, the coordinator and the HTTP server together and runs
/// them until SIGTERM or SIGINT.
struct Server {
    let settings: ServeSettings

    func run() async throws {
        let log = Logger.json("k8s-upgrade", level: settings.logLevel)
        let token = BearerToken(try TokenFile.read(settings.apiTokenFile))
        let store = try await JobStore(path: settings.store)
        let access = try KubernetesAccess.resolve(kubeconfig: settings.kubeconfig)
        let nodeScript: Data
        do { nodeScript = try Data(contentsOf: URL(fileURLWithPath: settings.nodeScriptPath)) } catch {
            throw SettingsError("node-script \(settings.nodeScriptPath) cannot be read: \(error)")
        }
        for (option, path) in [("ssh-key-file", settings.sshKeyFile), ("known-hosts-file", settings.knownHostsFile)]
        where !FileManager.default.isReadableFile(atPath: path) {
            throw SettingsError("\(option) \(path) cannot be read")
        }
        // deploy/ mounts the Slack Secret as optional: without it the file is
        // missing and the service runs without notices. A file that is there
        // but unreadable or empty is a mistake, and stops the start.
        var webhook: String?
        if let file = settings.slackWebhookFile {
            if FileManager.default.fileExists(atPath: file) {
                webhook = try TokenFile.read(file, what: "Slack webhook")
            } else {
                log.warning("no Slack notices: the webhook file is missing (its Secret is optional)", ["file": file])
            }
        }
        let notifier = SlackNotifier(webhookURL: webhook, log: log)
        let gauges = GaugePublisher(pushgatewayURL: settings.pushgatewayURL, log: log)
        if let last = try await store.lastSuccess() { gauges.seed { $0.lastSuccess = last } }
        let client = KubernetesClient(access: access, retryBudget: settings.apiRetryBudget)
        let cluster = Cluster(
            client: client, annotationPrefix: settings.annotationPrefix, namespace: settings.namespace,
            distribution: settings.distribution)
        var drainer = Drainer(cluster: cluster)
        drainer.timeout = settings.drainTimeout
        drainer.exclusion = settings.drainExclusion
        if let pod = settings.drainExclusion.ownPod {
            log.info("drains leave this pod running", ["pod": pod, "selector": "\(settings.drainExclusion.selector)"])
        }
        let pipeline = UpgradePipeline(
            settings: PipelineSettings(
                nodeScript: nodeScript, backupDir: settings.backupDir, backupCopyDir: settings.backupCopyDir,
                restoreRehearsal: settings.restoreRehearsal
                    ? RestoreRehearsal(restorer: LocalProcess.find("etcdutl") != nil ? "etcdutl" : "etcdctl") : nil,
                snapshotKeep: settings.snapshotKeep,
                expectedNodes: settings.expectedNodes,
                masterNode: settings.masterNode, workerOrder: settings.workerOrder, soak: settings.soak,
                patchDrain: settings.patchDrain, canaryRollback: settings.canaryRollback,
                allowSUCPlans: settings.allowSUCPlans,
                nodeReadyTimeout: settings.nodeReadyTimeout, scriptTimeout: settings.scriptTimeout,
                podReadyRatio: settings.podReadyRatio, quietPeriodHours: settings.quietPeriodHours,
                repoBase: settings.repoBase, distribution: settings.distribution, maintenance: settings.maintenance,
                nodeEstimate: settings.nodeEstimate, maxUnavailableWorkers: settings.maxUnavailableWorkers),
            cluster: cluster,
            shell: SSHRemoteShell(
                user: settings.sshUser, port: settings.sshPort, keyFile: settings.sshKeyFile,
                knownHostsFile: settings.knownHostsFile, addresses: settings.nodeAddresses),
            drainer: drainer,
            gate: GateCheck(
                alerts: Prometheus(baseURL: settings.prometheusURL), selector: settings.gate,
                gateWait: settings.gateWait),
            notifier: notifier, gauges: gauges)
        // In a pod, a replacement can start while this one still finishes
        // its node step: only the holder of the leader lease touches jobs.
        let lease = settings.ownPod.map { pod in
            LeaderLease(
                client: client, namespace: pod.namespace, election: LeaderElection(identity: pod.name), log: log)
        }
        // The request waits for these reads: no retries, a short timeout.
        let admitter = Admitter(
            cluster: Cluster(
                client: KubernetesClient(
                    access: access, timeout: .seconds(10), retryBudget: RetryBudget(total: .seconds(5))),
                annotationPrefix: settings.annotationPrefix, namespace: settings.namespace,
                distribution: settings.distribution),
            policy: settings.policy)
        let clock = SystemJobClock()
        let coordinator = JobCoordinator(
            store: store, pipeline: pipeline, admit: { try await admitter.admit($0) }, log: log,
            pollInterval: settings.pollInterval, lease: lease, clock: clock,
            progressed: { time in gauges.update { $0.lastProgress = time } }, distribution: settings.distribution)
        await coordinator.whenLeading {
            await takeOver(
                store: store, cluster: cluster, coordinator: coordinator, notifier: notifier, gauges: gauges, log: log)
        }
        let metrics = ServiceMetrics(startTime: clock.now(), gauges: gauges)
        let dependencies = APIDependencies(
            coordinator: coordinator, store: store, token: token, metrics: metrics,
            planner: Planner(pipeline: pipeline, policy: settings.policy, store: store), logger: log)
        let portFile = settings.portFile
        let app = buildApplication(
            dependencies,
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "k8s-upgrade"),
            services: [notifier, gauges, coordinator],
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                log.info("listening", ["address": "\(settings.host):\(port)", "store": settings.store])
                guard let portFile else { return }
                try? String(port).write(toFile: portFile + ".tmp", atomically: true, encoding: .utf8)
                _ = rename(portFile + ".tmp", portFile)
            })
        try await app.runService()
        log.info("stopped")
    }

    /// The leader's first moves, before its first job: a job the previous
    /// process left running is interrupted, the upgrade in flight adopted
    /// when the store lost it, and an interrupted job resumed (or failed
    /// when the service keeps restarting).
    private func takeOver(
        store: JobStore, cluster: Cluster, coordinator: JobCoordinator, notifier: SlackNotifier,
        gauges: GaugePublisher, log: Logger
    ) async {
        do {
            for id in try await store.markInterrupted(at: coordinator.clock.now()) {
                log.warning("job found running at start is now interrupted", ["job": String(id)])
            }
        } catch { log.error("could not mark the jobs left running as interrupted", ["error": "\(error)"]) }
        guard settings.autoResume else { return }
        await adoptInFlightJob(cluster: cluster, coordinator: coordinator, log: log)
        do {
            switch try await coordinator.continueAfterRestart(policy: settings.restartPolicy) {
            case let .resumed(id, restart)?:
                gauges.seed { $0.restarts = restart }
                notifier.notify(
                    Notice(
                        .warning, "Job \(id) resumed after the service restarted",
                        lines: ["restart \(restart) of this job; it continues from the cluster's live state"], jobID: id
                    ))
            case let .stopped(id, reason)?:
                // The job had begun (or it would not have been interrupted), so the cluster may be mid-upgrade.
                gauges.update {
                    $0.crashLoop = true
                    $0.inFlight = true
                }
                notifier.notify(
                    Notice(.failure, "Job \(id) failed: the service keeps restarting", lines: [reason], jobID: id))
            case nil: break
            }
        } catch { log.error("could not resume the interrupted job", ["error": "\(error)"]) }
    }

    /// Reads the cluster's in-flight mark and adopts its job when the store
    /// lost it. The API being away or the mark being unreadable is logged,
    /// not fatal: the service still starts, with what its store holds.
    private func adoptInFlightJob(cluster: Cluster, coordinator: JobCoordinator, log: Logger) async {
        let annotations: [String: String]
        do { annotations = try await cluster.namespaceAnnotations() } catch {
            log.error(
                "could not read the in-flight mark; an upgrade whose job this store lost is not adopted",
                [
                    "error": "\(error)"
                ])
            return
        }
        switch InFlightMark.read(annotations) {
        case nil: return
        case let .failure(error)?:
            log.error("the in-flight mark cannot be trusted; nothing adopted", ["error": error.description])
        case let .success(mark)?:
            do { _ = try await coordinator.adopt(mark, namespace: settings.namespace) } catch {
                log.error("could not adopt the in-flight job", ["job": String(mark.jobID), "error": "\(error)"])
            }
        }
    }
}

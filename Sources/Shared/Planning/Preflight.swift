/// The outcome of one pre-flight check.
public struct CheckResult: Sendable, Equatable, CustomStringConvertible {
    public enum Outcome: String, Sendable, Equatable {
        case passed
        /// Reported, does not stop the job.
        case warning
        case failed
    }

    public var name: String
    public var outcome: Outcome
    public var detail: String

    public init(_ name: String, _ outcome: Outcome, _ detail: String) {
        self.name = name
        self.outcome = outcome
        self.detail = detail
    }

    public var description: String { "\(name): \(outcome.rawValue): \(detail)" }
}

/// What pre-flight gathered; `nil` means the fact could not be read, and
/// the reason is in the matching `…Error`.
public struct PreflightFacts: Sendable {
    public var target: KubeVersion
    public var expectedNodes: Int?
    public var nodes: [NodeFacts]
    public var apiServers: [KubeVersion]
    public var gate: GateVerdict
    /// Gate alerts that fired in the quiet window; `nil` when the check is off.
    public var quietWindow: (hours: Int, fired: Result<[String], PlanError>)?
    /// Where the target was found, or why not.
    public var offered: Result<String, PlanError>
    public var etcd: Result<DatastoreHealth, PlanError>
    /// The datastore's name for the check: `etcd`, `dqlite`.
    public var datastore = "etcd"
    public var certificates: Result<[CertificateExpiry], PlanError>
    /// Warn when a certificate expires sooner than this. Default 30 days.
    public var certificateWarning: Int = 30 * 86400
    /// Free space for etcd's data; `nil` when not checked.
    public var disk: Result<DiskSpace, PlanError>?
    /// The node updater's hold on every node (``UpdaterHold/what`` and each
    /// node's verdict); `nil` when the distribution has no updater to hold.
    public var holds: (what: String, verdicts: [String: HoldVerdict])?
    /// A dry run only reads the holds: one not set is what a real run would set.
    public var dryRun = false
    /// system-upgrade-controller's Plans that select these nodes (`nil`
    /// inside: not served); `nil` when not checked.
    public var sucPlans: Result<[PlanSelection]?, PlanError>?
    /// `--allow-suc-plans`: such Plans are a warning, not a failure.
    public var allowSUCPlans = false
    /// The drain rehearsal of the nodes the job drains; `nil` when it drains none.
    public var drain: Result<DrainForecast, PlanError>?
    /// `accept_blockers`: blockers the rehearsal found are a warning, not a failure.
    public var acceptBlockers = false

    public init(
        target: KubeVersion, expectedNodes: Int?, nodes: [NodeFacts], apiServers: [KubeVersion], gate: GateVerdict,
        quietWindow: (hours: Int, fired: Result<[String], PlanError>)?, offered: Result<String, PlanError>,
        etcd: Result<DatastoreHealth, PlanError>, certificates: Result<[CertificateExpiry], PlanError>
    ) {
        self.target = target
        self.expectedNodes = expectedNodes
        self.nodes = nodes
        self.apiServers = apiServers
        self.gate = gate
        self.quietWindow = quietWindow
        self.offered = offered
        self.etcd = etcd
        self.certificates = certificates
    }
}

/// Pre-flight as a pure function: every check named, with its outcome.
public enum Preflight {
    public static func evaluate(_ facts: PreflightFacts) -> [CheckResult] {
        var results: [CheckResult] = []
        let count = facts.nodes.count
        if let expected = facts.expectedNodes, expected != count {
            results.append(CheckResult("node count", .failed, "expected \(expected) nodes, the cluster has \(count)"))
        } else {
            results.append(CheckResult("node count", .passed, "\(count) nodes"))
        }
        let notReady = facts.nodes.filter { !$0.isReady }
        results.append(
            notReady.isEmpty
                ? CheckResult("nodes ready", .passed, "all \(count) Ready")
                : CheckResult(
                    "nodes ready", .failed,
                    "not Ready: " + notReady.map { "\($0.name) (\($0.readiness))" }.joined(separator: ", ")))
        results.append(
            facts.gate == .open
                ? CheckResult("halt-on-alert gate", .passed, "no gate alert firing")
                : CheckResult("halt-on-alert gate", .failed, facts.gate.summary))
        if let window = facts.quietWindow {
            switch window.fired {
            case let .success(names) where names.isEmpty:
                results.append(
                    CheckResult("quiet period", .passed, "no gate alert fired in the last \(window.hours) h"))
            case let .success(names):
                results.append(
                    CheckResult(
                        "quiet period", .failed,
                        "gate alerts fired in the last \(window.hours) h: \(names.joined(separator: ", "))"))
            case let .failure(error):
                results.append(CheckResult("quiet period", .failed, "could not be checked: \(error)"))
            }
        }
        switch facts.offered {
        case let .success(source): results.append(CheckResult("target offered", .passed, source))
        case let .failure(error): results.append(CheckResult("target offered", .failed, error.description))
        }
        let kubelets = facts.nodes.compactMap { node in node.kubelet.map { (node: node.name, version: $0) } }
        let unknown = facts.nodes.filter { $0.kubelet == nil }.map(\.name)
        let verdict = SkewPolicy.evaluateClusterUpgrade(
            apiServers: facts.apiServers, kubelets: kubelets, to: facts.target)
        if !unknown.isEmpty {
            results.append(
                CheckResult("version skew", .failed, "unreadable kubelet version on \(unknown.joined(separator: ", "))")
            )
        } else {
            switch verdict {
            case let .allowed(kind):
                results.append(CheckResult("version skew", .passed, "\(kind.rawValue) upgrade allowed"))
            case .alreadyAtTarget:
                results.append(CheckResult("version skew", .passed, "every node already at \(facts.target)"))
            case let .refused(violations):
                results.append(
                    CheckResult("version skew", .failed, violations.map(\.description).joined(separator: "; ")))
            }
        }
        switch facts.etcd {
        case let .success(health):
            results.append(
                CheckResult(
                    "\(facts.datastore) health", health.unhealthy.isEmpty ? .passed : .failed, health.summary))
        case let .failure(error): results.append(CheckResult("\(facts.datastore) health", .failed, error.description))
        }
        switch facts.disk {
        case let .success(space)?: results.append(space.check)
        case let .failure(error)?: results.append(CheckResult("disk space", .warning, "could not be checked: \(error)"))
        case nil: break
        }
        if let holds = facts.holds { results.append(holdCheck(holds.what, holds.verdicts, dryRun: facts.dryRun)) }
        if let plans = facts.sucPlans { results.append(OtherUpgraders.check(plans, allowed: facts.allowSUCPlans)) }
        if let drain = facts.drain { results.append(drainCheck(drain, accepted: facts.acceptBlockers)) }
        switch facts.certificates {
        case .success([]): break  // not the distribution's to check (MicroK8s: microk8s refresh-certs)
        case let .success(certificates):
            let soon = certificates.filter { $0.missing || $0.residualSeconds < facts.certificateWarning }
            let days = facts.certificateWarning / 86400
            results.append(
                soon.isEmpty
                    ? CheckResult(
                        "certificates", .passed, "\(certificates.count) checked, none expires within \(days) days")
                    : CheckResult(
                        "certificates", .warning,
                        "expiring within \(days) days: "
                            + soon.map {
                                $0.missing ? "\($0.name) (missing)" : "\($0.name) (\(humanDays($0.residualSeconds)))"
                            }
                            .joined(separator: ", ")))
        case let .failure(error):
            results.append(CheckResult("certificates", .warning, "could not be checked: \(error)"))
        }
        return results
    }

    /// Every node held; a node whose hold failed (or, in a real run, is
    /// still not there after it was set) named with why.
    static func holdCheck(_ what: String, _ verdicts: [String: HoldVerdict], dryRun: Bool) -> CheckResult {
        let sorted = verdicts.sorted { $0.key < $1.key }
        let failed = sorted.compactMap { node, verdict -> String? in
            switch verdict {
            case let .failed(reason): "\(node) (\(reason))"
            case .notHeld where !dryRun: "\(node) (not held)"
            default: nil
            }
        }
        if !failed.isEmpty {
            return CheckResult(
                "updater hold", .failed,
                "\(what) cannot be set on \(failed.count) of \(sorted.count) nodes: "
                    + failed.joined(separator: "; "))
        }
        let unset = sorted.filter { $0.value == .notHeld }.map(\.key)
        guard unset.isEmpty else {
            return CheckResult(
                "updater hold", .passed,
                "\(what) is on \(sorted.count - unset.count) of \(sorted.count) nodes; a real run sets it on "
                    + unset.joined(separator: ", "))
        }
        return CheckResult("updater hold", .passed, "\(what) is on all \(sorted.count) nodes")
    }

    /// The drain rehearsal: nothing blocks, or what would and where.
    static func drainCheck(_ drain: Result<DrainForecast, PlanError>, accepted: Bool) -> CheckResult {
        switch drain {
        case let .failure(error): return CheckResult("drain forecast", .warning, "could not be rehearsed: \(error)")
        case let .success(forecast) where forecast.blockers.isEmpty:
            return CheckResult("drain forecast", .passed, forecast.summary)
        case let .success(forecast) where accepted:
            return CheckResult(
                "drain forecast", .warning, forecast.summary + " (accepted: the job runs and meets them there)")
        case let .success(forecast):
            return CheckResult(
                "drain forecast", .failed,
                forecast.summary + "; clear them, or accept them with accept_blockers (--accept-blockers)")
        }
    }

    static func humanDays(_ seconds: Int) -> String {
        seconds >= 86400 ? "\(seconds / 86400)d" : "\(max(0, seconds) / 3600)h"
    }
}

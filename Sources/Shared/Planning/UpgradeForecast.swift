/// What a job would do, read from live state before anything changes:
/// `GET /plan` and `k8s-upgrade plan`. Built from the same facts and pure
/// functions a job uses (the detector's decision, the plan, pre-flight,
/// the quorum gate), so what it says is what the job would find.
public struct UpgradeForecast: Sendable, Equatable {
    public struct Node: Sendable, Equatable {
        public var name: String
        public var role: String
        public var kubelet: String
        public var apiServer: String?
        public var readiness: String
        public var unschedulable: Bool

        public init(
            name: String, role: String, kubelet: String, apiServer: String?, readiness: String, unschedulable: Bool
        ) {
            self.name = name
            self.role = role
            self.kubelet = kubelet
            self.apiServer = apiServer
            self.readiness = readiness
            self.unschedulable = unschedulable
        }
    }

    public struct Stage: Sendable, Equatable {
        public var stage: UpgradeStage
        public var runs: Bool
        public var reason: String

        public init(_ stage: UpgradeStage, runs: Bool, _ reason: String) {
            self.stage = stage
            self.runs = runs
            self.reason = reason
        }
    }

    /// The quorum gate before one control plane, as it reads now.
    public struct Quorum: Sendable, Equatable {
        public var node: String
        public var passes: Bool
        public var verdict: String

        public init(node: String, passes: Bool, verdict: String) {
            self.node = node
            self.passes = passes
            self.verdict = verdict
        }
    }

    public var distribution: String
    public var nodes: [Node]
    /// What the package source offers, or why it could not be read.
    public var offered: String
    /// The detector's verdict on what the source offers, under the policy.
    public var decision: String
    /// The job's target and kind: the one asked for, else the decision's.
    public var target: (version: KubeVersion, kind: UpgradeKind)?
    /// Why this target (or why none).
    public var why: String
    /// One line per node in upgrade order, with the node step it would run.
    public var order: [String] = []
    public var stages: [Stage] = []
    public var preflight: [CheckResult] = []
    public var quorum: [Quorum] = []
    /// When a job dispatched now would start, under the maintenance windows (nil without windows).
    public var maintenance: Maintenance?
    /// The drain rehearsal of every node the job would drain (nil: it drains none, or it could not be read).
    public var drain: DrainForecast?
    /// How long the job would take, and from what (nil without a target).
    public var duration: Duration?

    /// The job's time in total and node by node.
    public struct Duration: Sendable, Equatable {
        public var seconds: Double
        /// Where the figures come from, for people.
        public var basis: String
        /// Each node with work left, in order: its role and its seconds (a worker's soak included).
        public var nodes: [(name: String, role: NodeRole, seconds: Double)]

        public init(seconds: Double, basis: String, nodes: [(name: String, role: NodeRole, seconds: Double)]) {
            (self.seconds, self.basis, self.nodes) = (seconds, basis, nodes)
        }

        public static func == (lhs: Duration, rhs: Duration) -> Bool {
            lhs.seconds == rhs.seconds && lhs.basis == rhs.basis
                && lhs.nodes.map { "\($0.name) \($0.role) \($0.seconds)" }
                    == rhs.nodes.map { "\($0.name) \($0.role) \($0.seconds)" }
        }
    }

    /// The maintenance windows as they read at the plan's time.
    public struct Maintenance: Sendable, Equatable {
        public var windows: String
        /// When a job would start: now, at `opens`, or never.
        public var verdict: String
        public var startsNow: Bool
        public var opens: Int64?
        public var closes: Int64?
        public var possible: Bool
        /// When the whole job would end, walked node by node through the windows, and in how many.
        public var ends: Int64?
        public var windowsNeeded: Int?

        /// Walks the job's `steps` (seconds each: the stages before the
        /// first node with it, then each control plane, then each batch of
        /// workers) through `schedule` from when it would start.
        public mutating func walk(_ schedule: MaintenanceSchedule, now: Int64, steps: [Int64]) {
            guard possible, let (end, count) = schedule.walk(start: opens ?? now, steps: steps) else { return }
            (ends, windowsNeeded) = (end, count)
            let zone = schedule.spans(from: end - 1).first?.zone ?? .utc
            let total = MaintenanceSchedule.minutes(steps.reduce(0, +))
            verdict +=
                count == 1
                ? "; the whole job (about \(total)) fits in that window, ending about \(MaintenanceSchedule.local(end, zone))"
                : "; the whole job (about \(total)) takes \(count) windows, parking between them, "
                    + "ending about \(MaintenanceSchedule.local(end, zone))"
        }

        /// A job dispatched at `now` needs room for one node of `needs` seconds (`basis` says whence).
        public init(schedule: MaintenanceSchedule, now: Int64, needs: Int64, basis: String) {
            windows = schedule.summary
            let need = "room for \(MaintenanceSchedule.minutes(needs)) (\(basis))"
            switch schedule.decide(now: now, needs: needs) {
            case let .go(closes):
                (startsNow, opens, self.closes, possible) = (true, nil, closes, true)
                let zone = schedule.spans(from: now).first?.zone ?? .utc
                verdict =
                    "a job dispatched now starts at once: the window is open until "
                    + "\(closes.map { MaintenanceSchedule.local($0, zone) } ?? "?") with \(need)"
            case let .wait(span, reason):
                (startsNow, opens, closes, possible) = (false, span.start, span.end, true)
                verdict =
                    "a job dispatched now waits until \(MaintenanceSchedule.local(span.start, span.zone)) "
                    + "(\(reason)), the first window with \(need)"
            case let .never(reason):
                (startsNow, opens, closes, possible) = (false, nil, nil, false)
                verdict = "a job dispatched now would fail: \(reason)"
            }
        }
    }

    public init(distribution: String, nodes: [Node], offered: String, decision: String, why: String) {
        self.distribution = distribution
        self.nodes = nodes
        self.offered = offered
        self.decision = decision
        self.why = why
    }

    public static func == (lhs: UpgradeForecast, rhs: UpgradeForecast) -> Bool {
        lhs.json == rhs.json
    }

    /// Would a job start and get through its gates as things are now?
    public var ready: Bool {
        target != nil && !preflight.contains { $0.outcome == .failed } && quorum.allSatisfy(\.passes)
            && maintenance?.possible != false
    }

    /// The stages a job of `kind` runs, each with why it runs or is skipped;
    /// `notApplicable` is the distribution's, `containerd` what the
    /// containerd stage would decide.
    public static func stages(
        kind: UpgradeKind, notApplicable: (UpgradeStage) -> String?, containerd: ContainerdFix, batch: Int = 1
    ) -> [Stage] {
        UpgradeStage.allCases.map { stage in
            if let reason = notApplicable(stage) { return Stage(stage, runs: false, reason) }
            switch stage {
            case .preflight: return Stage(stage, runs: true, "every check below, again, when the job starts")
            case .snapshot: return Stage(stage, runs: true, "a backup of the datastore before the first node")
            case .containerd:
                switch containerd {
                case let .needed(master, from, to):
                    return Stage(stage, runs: true, "\(master) runs containerd \(from), older than the workers' \(to)")
                case let .notNeeded(reason): return Stage(stage, runs: false, reason)
                }
            case .repo:
                return kind == .minor
                    ? Stage(stage, runs: true, "every node's package source moves to the next minor")
                    : Stage(stage, runs: false, "patch upgrade: the package sources stay as they are")
            case .master: return Stage(stage, runs: true, "control planes one at a time, each behind the quorum gate")
            case .workers:
                return Stage(
                    stage, runs: true,
                    batch > 1
                        ? "workers in batches of up to \(batch) that the budgets and the room allow, each batch soaked"
                        : "workers one at a time, each soaked")
            case .postflight: return Stage(stage, runs: true, "every node at the target and Ready, pods Ready")
            }
        }
    }

    public var json: JSONValue {
        .object([
            "distribution": .string(distribution),
            "nodes": .array(
                nodes.map { node in
                    .object([
                        "name": .string(node.name), "role": .string(node.role), "kubelet": .string(node.kubelet),
                        "api_server": node.apiServer.map(JSONValue.string) ?? .null,
                        "readiness": .string(node.readiness), "unschedulable": .bool(node.unschedulable),
                    ])
                }),
            "offered": .string(offered), "decision": .string(decision),
            "target_version": target.map { .string($0.version.description) } ?? .null,
            "kind": target.map { .string($0.kind.rawValue) } ?? .null, "why": .string(why),
            "order": .array(order.map(JSONValue.string)),
            "stages": .array(
                stages.map {
                    .object([
                        "stage": .string($0.stage.rawValue), "runs": .bool($0.runs), "reason": .string($0.reason),
                    ])
                }),
            "preflight": .array(
                preflight.map {
                    .object([
                        "check": .string($0.name), "outcome": .string($0.outcome.rawValue),
                        "detail": .string($0.detail),
                    ])
                }),
            "quorum": .array(
                quorum.map {
                    .object(["node": .string($0.node), "passes": .bool($0.passes), "verdict": .string($0.verdict)])
                }),
            "maintenance": maintenance.map { window in
                .object([
                    "windows": .string(window.windows), "verdict": .string(window.verdict),
                    "starts_now": .bool(window.startsNow),
                    "opens": window.opens.map { .number(Double($0)) } ?? .null,
                    "closes": window.closes.map { .number(Double($0)) } ?? .null,
                    "ends": window.ends.map { .number(Double($0)) } ?? .null,
                    "windows_needed": window.windowsNeeded.map { .number(Double($0)) } ?? .null,
                ])
            } ?? .null,
            "drain": drain.map { forecast in
                .object([
                    "summary": .string(forecast.summary),
                    "nodes": .array(
                        forecast.nodes.map { node in
                            .object([
                                "name": .string(node.name), "evicted": .number(Double(node.evicted)),
                                "kept": .number(Double(node.kept)), "notes": .array(node.notes.map(JSONValue.string)),
                                "api_confirmation": node.confirmation.map(JSONValue.string) ?? .null,
                                "blockers": .array(
                                    node.blockers.map { blocker in
                                        .object([
                                            "pod": blocker.pod.map(JSONValue.string) ?? .null,
                                            "budget": blocker.budget.map(JSONValue.string) ?? .null,
                                            "text": .string(blocker.description),
                                        ])
                                    }),
                            ])
                        }),
                ])
            } ?? .null,
            "duration": duration.map { duration in
                .object([
                    "seconds": .number(duration.seconds.rounded()), "basis": .string(duration.basis),
                    "nodes": .array(
                        duration.nodes.map { node in
                            .object([
                                "name": .string(node.name), "role": .string(node.role.rawValue),
                                "seconds": .number(node.seconds.rounded()),
                            ])
                        }),
                ])
            } ?? .null,
            "ready": .bool(ready), "lines": .array(lines.map(JSONValue.string)),
        ])
    }

    /// For people: the versions, the offer, the target and why, the order,
    /// the stages, pre-flight and the quorum gates.
    public var lines: [String] {
        var out = ["distribution: \(distribution)", "nodes:"]
        for node in nodes {
            let api = node.apiServer.map { ", API server \($0)" } ?? ""
            out.append(
                "  \(node.name) (\(node.role)): kubelet \(node.kubelet)\(api), \(node.readiness)"
                    + (node.unschedulable ? ", cordoned" : ""))
        }
        out.append("offered: \(offered)")
        out.append("decision: \(decision)")
        guard let target else {
            out.append("target: none: \(why)")
            return out
        }
        out.append("target: \(target.version) (\(target.kind.rawValue)): \(why)")
        out.append("order:")
        out += order.map { "  \($0)" }
        out.append("stages:")
        out += stages.map { "  \($0.stage.rawValue): \($0.runs ? "runs" : "skipped"): \($0.reason)" }
        out.append("pre-flight:")
        out += preflight.map { "  \($0.description)" }
        if !quorum.isEmpty {
            out.append("quorum gate before each control plane:")
            out += quorum.map { "  \($0.node): \($0.passes ? "passes" : "stops the job"): \($0.verdict)" }
        }
        if let duration {
            out.append("duration: about \(MaintenanceSchedule.minutes(Int64(duration.seconds))) (\(duration.basis))")
            // Node by node, runs of the same figure on one line.
            var runs: [(names: [String], seconds: Double)] = []
            for node in duration.nodes {
                if let last = runs.last, last.seconds == node.seconds {
                    runs[runs.count - 1].names.append(node.name)
                } else {
                    runs.append(([node.name], node.seconds))
                }
            }
            out += runs.map { run in
                let names =
                    run.names.count > 3
                    ? "\(run.names[0]) … \(run.names[run.names.count - 1]) (\(run.names.count) nodes)"
                    : run.names.joined(separator: ", ")
                return "  \(names): about \(MaintenanceSchedule.minutes(Int64(run.seconds)))"
                    + (run.names.count > 1 ? " each" : "")
            }
        }
        if let drain {
            out.append("drain forecast (each node in turn):")
            out += drain.nodes.map { "  \($0.line)" }
        }
        if let maintenance {
            out.append("maintenance windows: \(maintenance.windows)")
            out.append("  \(maintenance.verdict)")
        }
        out.append(
            ready
                ? "ready: a job would start and pass its gates as things are now"
                : "not ready: a job would stop at the failed check above")
        return out
    }
}

/// What the containerd stage decides: the first control plane's containerd
/// is brought up to the workers' when it is older.
public enum ContainerdFix: Sendable, Equatable {
    case needed(master: String, from: KubeVersion, to: KubeVersion)
    case notNeeded(String)

    public static func decide(master: NodeFacts, workers: [NodeFacts]) -> ContainerdFix {
        guard let masterRuntime = master.containerd else {
            return .notNeeded("\(master.name) does not report a containerd runtime")
        }
        let workerRuntimes = workers.compactMap(\.containerd)
        guard let wanted = workerRuntimes.min(), workerRuntimes.count == workers.count else {
            return .notNeeded("the workers do not all report a containerd runtime")
        }
        guard masterRuntime < wanted else {
            return .notNeeded("\(master.name) runs containerd \(masterRuntime), not older than the workers' \(wanted)")
        }
        return .needed(master: master.name, from: masterRuntime, to: wanted)
    }
}

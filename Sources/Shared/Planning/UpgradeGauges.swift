/// The pipeline's gauges, pushed to the Pushgateway (job
/// `k8s-version-upgrade`) at every transition and shown on `/metrics`.
public struct UpgradeGauges: Sendable, Equatable {
    public struct Blocked: Sendable, Equatable {
        public var node: String
        public var pod: String
        public var budget: String

        public init(node: String, pod: String, budget: String) {
            self.node = node
            self.pod = pod
            self.budget = budget
        }
    }

    public var inFlight = false
    public var snapshotTaken = false
    public var stage: UpgradeStage?
    /// The nodes the running job is working on: one at a time, or a batch.
    public var nodes: Set<String> = []
    public var drainBlocked: [Blocked] = []
    /// Seconds since 1970 of the last job that succeeded.
    public var lastSuccess: Double?
    /// How often the service restarted under the running job and resumed it.
    public var restarts = 0
    /// 1 once a job kept getting interrupted and the service stopped resuming it.
    public var crashLoop = false
    /// When the running job last wrote an event, seconds since 1970.
    public var lastProgress: Double?
    /// Nodes this tool cordoned and has not uncordoned yet, and since when.
    public var cordonedSince: [String: Double] = [:]
    /// Nodes whose updater hold (snapd's) was found lifted during the
    /// running or last job; cleared when the next job begins.
    public var holdLifted: Set<String> = []

    public init() {}

    /// Prometheus text format 0.0.4, every line ending in a newline.
    public var exposition: String {
        var out = ""
        func gauge(_ name: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n"
            for sample in samples { out += "\(name)\(sample.labels) \(sample.value)\n" }
        }
        gauge("k8s_upgrade_in_flight", "1 while an upgrade job changes the cluster.", [("", inFlight ? "1" : "0")])
        gauge(
            "k8s_upgrade_snapshot_taken", "1 once the running job took and verified its etcd snapshot.",
            [("", snapshotTaken ? "1" : "0")])
        gauge(
            "k8s_upgrade_current_stage", "1 for the stage the running job is in.",
            stage.map { [(Self.labels(["stage": $0.rawValue]), "1")] } ?? [])
        gauge(
            "k8s_upgrade_current_node", "1 for each node the running job is working on (several in a batch).",
            nodes.sorted().map { (Self.labels(["node": $0]), "1") })
        gauge(
            "k8s_upgrade_drain_blocked",
            "1 for each pod a drain could not evict before its timeout, with the budget holding it.",
            drainBlocked.map { (Self.labels(["node": $0.node, "pod": $0.pod, "pdb": $0.budget]), "1") })
        gauge(
            "k8s_upgrade_job_restarts", "Service restarts the running job was resumed after.",
            [("", String(restarts))])
        gauge(
            "k8s_upgrade_crash_loop", "1 when a job kept getting interrupted and is no longer resumed by itself.",
            [("", crashLoop ? "1" : "0")])
        gauge(
            "k8s_upgrade_last_progress_timestamp_seconds", "When the running job last wrote an event.",
            lastProgress.map { [("", String(Int($0)))] } ?? [])
        gauge(
            "k8s_upgrade_node_cordoned_since_timestamp_seconds",
            "When this tool cordoned each node it has not uncordoned yet.",
            cordonedSince.sorted { $0.key < $1.key }.map { (Self.labels(["node": $0.key]), String(Int($0.value))) })
        gauge(
            "k8s_upgrade_hold_lifted",
            "1 for each node whose updater hold (snapd's refresh hold) was found lifted during the running or last job.",
            holdLifted.sorted().map { (Self.labels(["node": $0]), "1") })
        gauge(
            "k8s_upgrade_last_success_timestamp_seconds", "When the last upgrade job succeeded.",
            lastSuccess.map { [("", String(Int($0)))] } ?? [])
        return out
    }

    static func labels(_ pairs: [String: String]) -> String {
        let body = pairs.sorted { $0.key < $1.key }.map { key, value in
            let escaped = value.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"").replacing("\n", with: "\\n")
            return "\(key)=\"\(escaped)\""
        }
        return "{" + body.joined(separator: ",") + "}"
    }
}

import FoundationEssentials
import Logging
import Shared

/// Every option of `serve` (and of `drain`, which shares three), defined
/// once: name, help with its default, `K8SUP_` variable and validation.
/// ``ServeCommand`` takes the help from here and ``ServeSettings`` reads
/// through the same definitions. Options the detector shares are in
/// ``SharedOptions``.
enum ServeOptions {
    static let listen = Define.text("listen", "Address and port to listen on.", default: "127.0.0.1:8080")
    static let portFile = Define.optionalText(
        "port-file", "Write the bound port to this file once listening (for supervisors and tests).")
    static let store = Define.text(
        "store", "SQLite file of the job store, created if missing.", default: "/var/lib/k8s-upgrade/jobs.sqlite")
    static let apiTokenFile = Define.text(
        "api-token-file", "File holding the bearer token clients must send.", default: "/etc/k8s-upgrade/api/token")
    static let prometheusURL = OptionDefinition<String, String>(
        "prometheus-url", help: "Prometheus base URL for the halt-on-alert gate; unreachable means closed. (required)"
    ) { flag, reader, variable in
        guard let url = try reader.url(flag, variable) else {
            throw SettingsError("prometheus-url is required: the gates need Prometheus")
        }
        return url
    }
    static let gateSelector = Define.text(
        "gate-selector", "Alerts that close the gate: label=value or label!=value, comma-separated.",
        default: GateSelector.defaultSelector)
    static let gateIgnore = OptionDefinition<String, [String]>(
        "gate-ignore",
        help: Define.helpText(
            "Alert names the gate ignores, comma-separated; empty ignores none.",
            GateSelector.defaultIgnored.joined(separator: ","))
    ) { flag, reader, variable in
        (reader.value(flag, variable) ?? GateSelector.defaultIgnored.joined(separator: ","))
            .split(separator: ",").map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
    }
    static let gateWait = Define.seconds(
        "gate-wait", "Seconds a stage waits for the gate to open before the job fails.", default: 1800,
        range: 1...86400)
    static let pollInterval = Define.seconds(
        "poll-interval", "Seconds between checks while waiting (gate, node, soak).", default: 5, range: 0.1...600)
    static let nodeAddress = OptionDefinition<[String], [String]>(
        "node-address",
        help: Define.helpText(
            "SSH address of a node as NODE=HOST[:PORT], repeatable (in K8SUP_NODE_ADDRESS: comma-separated).",
            "the node's InternalIP")
    ) { flag, reader, variable in Define.repeated(flag, reader, variable, separator: ",") }
    static let nodeScript = Define.text(
        "node-script", "The node script piped to each node.", default: "/usr/share/k8s-upgrade/update_k8s.sh")
    static let slackWebhookFile = Define.optionalText(
        "slack-webhook-file", "File holding the Slack incoming-webhook URL; empty sends no notices.")
    static let backupDir = Define.text(
        "backup-dir", "Folder on the master for etcd snapshots.", default: "/var/lib/etcd-backups"
    ) { folder in folder.hasPrefix("/") && !folder.contains("\n") ? nil : "must be an absolute path, got \(folder)" }
    static let backupCopyDir = Define.optionalText(
        "backup-copy-dir",
        "Folder here (the orchestrator's backup volume) that each new snapshot is copied to over SCP, its sha256 compared with the master's; none leaves it on the master alone.",
        absent: "none"
    ) { folder in folder.hasPrefix("/") && !folder.contains("\n") ? nil : "must be an absolute path, got \(folder)" }
    static let restoreRehearsal = Define.boolean(
        "restore-rehearsal",
        "Restore each copied etcd snapshot into a throw-away etcd here before the first node (true or false): etcd, and etcdutl or etcdctl, on PATH; a snapshot that does not restore fails the job.",
        default: true)
    static let snapshotKeep = Define.integer(
        "snapshot-keep",
        "Pre-upgrade snapshots kept in --backup-dir after a new one; the one of an upgrade in flight is never removed, nor are files that are not snapshots.",
        default: 5, range: 1...1000)
    static let expectedNodes = OptionDefinition<Int, Int?>(
        "expected-nodes",
        help: Define.helpText("Number of nodes the cluster must have; pre-flight fails otherwise.", "any")
    ) { flag, reader, variable in
        guard flag != nil || reader.value(nil, variable) != nil else { return nil }
        return try reader.integer(flag, variable, default: 0, range: 1...100_000)
    }
    static let masterNode = Define.optionalText(
        "master-node", "The control plane upgraded first.", absent: "the first control plane by name"
    ) { name in ObjectName.isDNS1123Subdomain(name) ? nil : "\(name) is not a valid node name (DNS-1123)" }
    private static let defaultWorkerOrder = "ascending"
    static let workerOrder = OptionDefinition<String, WorkerOrder>(
        "worker-order",
        help: Define.helpText("Worker order: ascending, descending or a comma list of node names.", defaultWorkerOrder)
    ) { flag, reader, variable in
        do { return try WorkerOrder(parsing: reader.value(flag, variable) ?? defaultWorkerOrder) } catch {
            throw SettingsError("worker-order: \(error)")
        }
    }
    static let soak = Define.seconds(
        "soak", "Seconds each upgraded worker is watched (gate and Ready) before the next.", default: 600,
        range: 0...86400)
    static let patchDrain = Define.boolean(
        "patch-drain",
        "Drain each node for a patch upgrade (true or false); false only cordons it and keeps its pods running through the restart, which K3s, MicroK8s and kubeadm's kubelet make without stopping containers. A minor upgrade always drains.",
        default: true)
    static let canaryRollback = Define.boolean(
        "canary-rollback",
        "When a worker's soak finds a regression, roll that worker back to its release before the job (true or false) before the job stops, so the cluster is again at one version.",
        default: false)
    static let allowSucPlans = Define.boolean(
        "allow-suc-plans",
        "Start a job although system-upgrade-controller Plans select some of the nodes (true or false): two upgraders may then race on a node; pre-flight warns instead of failing.",
        default: false)
    static let drainTimeout = Define.seconds(
        "drain-timeout", "Seconds a node's drain may take before it stops, naming the pods left.", default: 600,
        range: 1...86400)
    static let drainExclude = Define.text(
        "drain-exclude",
        "Pods drain leaves running, as a label selector (key=value, key!=value, key, !key; comma-separated; empty: none). The pod named by POD_NAMESPACE and POD_NAME (downward API) stays too.",
        default: DrainExclusion.defaultSelector)
    static let nodeReadyTimeout = Define.seconds(
        "node-ready-timeout", "Seconds a node has to turn Ready at the target after its kubelet restart.",
        default: 300, range: 1...86400)
    static let scriptTimeout = Define.seconds(
        "script-timeout", "Seconds the node script may run on a node.", default: 1800, range: 1...86400)
    static let annotationPrefix = Define.text(
        "annotation-prefix", "Prefix of the annotations the tool writes on nodes and its namespace.",
        default: "k8s-upgrade.io"
    ) { prefix in
        ObjectName.isDNS1123Subdomain(prefix) ? nil : "must be a DNS subdomain such as k8s-upgrade.io, got \(prefix)"
    }
    static let namespace = Define.text(
        "namespace", "Namespace whose annotations mark an upgrade in flight.", default: "k8s-upgrade"
    ) { namespace in ObjectName.isDNS1123Subdomain(namespace) ? nil : "\(namespace) is not valid" }
    private static let defaultPodReadyRatio = "0.9"
    static let podReadyRatio = OptionDefinition<Double, Double>(
        "pod-ready-ratio",
        help: Define.helpText("Share of pods that must be Ready after the upgrade, 0 to 1.", defaultPodReadyRatio)
    ) { flag, reader, variable in
        let text = reader.value(flag.map { String($0) }, variable) ?? defaultPodReadyRatio
        guard let ratio = Double(text), (0...1).contains(ratio) else {
            throw SettingsError("pod-ready-ratio must be between 0 and 1, got \(text)")
        }
        return ratio
    }
    static let quietPeriod = Define.integer(
        "quiet-period", "Hours with no gate alert fired before a job may start; 0 turns the check off.", default: 24,
        range: 0...720)
    static let maxUnavailableWorkers = Define.integer(
        "max-unavailable-workers",
        "Workers upgraded at the same time, at most: each batch only as large as the budgets and the room outside it allow for the batch as a whole, soaked together; control planes always one at a time.",
        default: 1, range: 1...100)
    static let nodeEstimate = Define.seconds(
        "node-estimate",
        "Seconds a node is expected to take (drain, node script, verification; a worker's soak is added) until the job, or the last upgrade that succeeded, has timed one of its kind: with maintenance windows, a node starts only if its forecast fits before the window closes; the plan's duration uses it too.",
        default: 1200, range: 1...86400)
    static let autoResume = Define.boolean(
        "auto-resume", "Resume, at start, the job the previous process left interrupted (true or false).",
        default: true)
    private static let defaultLogLevel = "info"
    static let logLevel = OptionDefinition<String, Logger.Level>(
        "log-level",
        help: Define.helpText(
            "Least level logged: debug (every request, with its id), info, warning or error.", defaultLogLevel)
    ) { flag, reader, variable in
        let level = reader.value(flag, variable) ?? defaultLogLevel
        guard let value = ["debug": Logger.Level.debug, "info": .info, "warning": .warning, "error": .error][level]
        else { throw SettingsError("log-level must be debug, info, warning or error, got \(level)") }
        return value
    }
    static let restartLimit = Define.integer(
        "restart-limit", "Interruptions in a row within --restart-window that stop the self-resume.", default: 3,
        range: 1...1000)
    static let restartWindow = Define.seconds(
        "restart-window", "Seconds over which interruptions count as in a row.", default: 900, range: 1...604_800)
    static let apiRetryBudget = Define.seconds(
        "api-retry-budget",
        "Seconds a Kubernetes call that meets connection refused or reset, a timeout, a 5xx or a 429 is tried again, with backoff, before the step fails naming it.",
        default: 120, range: 0...3600)
}

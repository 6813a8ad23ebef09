import Shared

/// The detector's own options, each defined once (name, help with its
/// default, `K8SUP_` variable, validation); those it shares with the
/// service are in ``SharedOptions``.
enum DetectorOptions {
    static let masterNode = Define.optionalText(
        "master-node", "Control-plane node to ask for packages.",
        absent: "the first node labelled node-role.kubernetes.io/control-plane"
    ) { name in ObjectName.isDNS1123Subdomain(name) ? nil : "\(name) is not a valid node name (DNS-1123)" }
    static let masterAddress = Define.optionalText(
        "master-address", "SSH address of the master, host or host:port.",
        absent: "the node's InternalIP, port --ssh-port")
    static let orchestratorURL = Define.url(
        "orchestrator-url", "Orchestrator base URL; empty skips the dispatch.")
    static let orchestratorTokenFile = Define.text(
        "orchestrator-token-file", "File holding the orchestrator's bearer token.",
        default: "/etc/k8s-upgrade/api/token")
    static let jobDryRun = Define.boolean(
        "job-dry-run", "dry_run of the dispatched job: true or false.", default: false)
    static let stages = Define.text("stages", "stages of the dispatched job: all or a comma list.", default: "all")
    static let timeout = Define.integer(
        "timeout", "Seconds allowed for each outside call (API, SSH connect and command, repository).", default: 30,
        range: 1...3600)
}

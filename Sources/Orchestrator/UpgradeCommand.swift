import ArgumentParser

/// `k8s-upgrade`: the upgrade service and the operator's CLI for it.
@main
struct UpgradeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "k8s-upgrade",
        abstract: "Upgrade a kubeadm cluster one node at a time, stopping the moment it looks unhealthy.",
        discussion: """
            `k8s-upgrade serve` runs the HTTP service that executes one upgrade job at a time: \
            pre-flight, etcd snapshot, optional containerd fix, optional apt repository rewrite, \
            control plane, workers with soaks, post-flight. The other subcommands are its client.

            Every option of serve and drain, and --server and --api-token-file of the client commands, \
            can also be set by an environment variable: K8SUP_ and the option name in upper case with \
            underscores (--api-token-file → K8SUP_API_TOKEN_FILE). Flags take precedence; an empty \
            variable counts as unset. Operator's guide: docs/runbooks/k8s-version-upgrade.md.
            """,
        version: "0.1.0",
        subcommands: [
            ServeCommand.self, ExecuteCommand.self, JobsCommand.self, StatusCommand.self, AbortCommand.self,
            ResumeCommand.self, RollbackCommand.self, PlanCommand.self, UpgradeJobCommand.self, DrainCommand.self,
        ]
    )
}

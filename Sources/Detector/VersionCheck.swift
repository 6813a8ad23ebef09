import ArgumentParser

/// `k8s-version-check`: the weekly detector.
///
/// The detection run itself (cluster reads, madison over SSH, the next
/// minor's repository, metrics, dispatch) is built on the test bed; until
/// then the command describes itself and exits.
@main
struct VersionCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "k8s-version-check",
        abstract: "Find Kubernetes patch and minor releases for a kubeadm cluster and dispatch the upgrade.",
        discussion: """
            Reads the running version (every kubelet and the API server), asks the master over SSH \
            for `apt-cache madison kubeadm` to find the newest patch of the running minor, asks the \
            package repository whether the next minor is published, decides patch / minor / nothing, \
            pushes the result to the Prometheus Pushgateway and POSTs /execute to the orchestrator.
            """,
        version: "0.1.0"
    )
}

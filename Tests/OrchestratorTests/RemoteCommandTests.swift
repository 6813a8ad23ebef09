import Shared
import Testing

@testable import Orchestrator

/// The one place a command line for a node is made.
@Suite struct RemoteCommandTests {
    static func shell(_ user: String) -> SSHRemoteShell {
        SSHRemoteShell(user: user, port: 22, keyFile: "/k", knownHostsFile: "/h", addresses: [:])
    }

    @Test func stepsAreQuotedAndRunAsRootThroughSudoUnlessTheUserIsRoot() {
        let save = RemoteCommand(steps: [
            ["mkdir", "-p", "/var/lib/etcd backups"], ["etcdctl", "snapshot", "save", "/x;y"],
        ])
        #expect(
            Self.shell("deploy").render(save)
                == "sudo -n mkdir -p '/var/lib/etcd backups' && sudo -n etcdctl snapshot save '/x;y'")
        #expect(Self.shell("root").render(save) == "mkdir -p '/var/lib/etcd backups' && etcdctl snapshot save '/x;y'")
        let listing = RemoteCommand(["apt-cache", "madison", "kubeadm"], asRoot: false)
        #expect(Self.shell("deploy").render(listing) == "apt-cache madison kubeadm")
        #expect(Self.shell("deploy").render(RemoteCommand(["echo", "$(reboot)"])) == "sudo -n echo '$(reboot)'")
    }
}

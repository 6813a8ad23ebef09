import Testing

@testable import Shared

/// The kubeadm+apt distribution's commands, pinned: these are the words a
/// real master runs, so a change here is a change on every cluster.
@Suite struct KubeadmAptTests {
    let distribution = KubeadmApt()
    let etcdctl = [
        "etcdctl", "--endpoints=https://127.0.0.1:2379", "--cacert=/etc/kubernetes/pki/etcd/ca.crt",
        "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt",
        "--key=/etc/kubernetes/pki/etcd/healthcheck-client.key",
    ]

    @Test func theDatastoreIsKubeadmsStackedEtcd() {
        #expect(
            Shell.command(distribution.datastoreProbes[1])
                == Shell.command(
                    etcdctl + [
                        "--dial-timeout=5s", "--command-timeout=15s", "endpoint", "health", "--cluster", "-w", "json",
                    ]))
        #expect(distribution.datastoreProbes[0].suffix(4) == ["member", "list", "-w", "json"])
        #expect(distribution.datastoreSize.suffix(4) == ["endpoint", "status", "-w", "json"])
        #expect(
            distribution.snapshotSave(to: "/var/lib/etcd-backups/a b.db")
                == etcdctl + [
                    "--dial-timeout=10s", "--command-timeout=300s", "snapshot", "save", "/var/lib/etcd-backups/a b.db",
                ])
        #expect(
            distribution.snapshotStatus(of: "/b/it's.db")
                == [
                    "sh", "-c",
                    #"if command -v etcdutl >/dev/null 2>&1; then etcdutl snapshot status -w json '/b/it'\''s.db'; else etcdctl snapshot status -w json '/b/it'\''s.db'; fi"#,
                ])
        #expect(distribution.dataFolders(for: .patch) == ["/var/lib/etcd"])
        #expect(distribution.dataFolders(for: .minor) == ["/var/lib/etcd", "/etc/kubernetes/tmp"])
    }

    @Test func nodesAndVersionsAreKubeadms() throws {
        let target = try KubeVersion(strictRelease: "1.34.5")
        #expect(distribution.nodeStep(role: .master, target: target) == ["--role", "master", "--release", "1.34.5"])
        #expect(
            distribution.nodeStep(role: .controlPlane, target: target)
                == ["--role", "control-plane", "--release", "1.34.5"])
        #expect(distribution.apiServerPod(on: "cp-2") == "/api/v1/namespaces/kube-system/pods/kube-apiserver-cp-2")
        #expect(distribution.offeredListing == ["apt-cache", "madison", "kubeadm"])
        #expect(distribution.certificateCheck == ["kubeadm", "certs", "check-expiration", "-o", "json"])
    }

    @Test func everyStageAppliesAndNothingRevertsByItself() throws {
        #expect(UpgradeStage.allCases.allSatisfy { distribution.notApplicable($0) == nil })
        let release = try KubeVersion(strictRelease: "1.34.3")
        #expect(distribution.nodeStep(role: .worker, target: release) == ["--role", "worker", "--release", "1.34.3"])
        #expect(distribution.revertStep(role: .worker, to: release) == nil)
    }
}

/// MicroK8s' commands and readings, over outputs in the real tools' formats
/// (DISTRIBUTIONS.md §1; REFERENCE.md §7).
@Suite struct MicroK8sSnapTests {
    let distribution = MicroK8sSnap()
    let info = """
        name:      microk8s
        tracking:     1.33/stable
        refresh-date: today at 10:12 UTC
        channels:
          1.34/stable:      v1.34.2  2025-11-20 (8612) 185MB classic
          1.34/candidate:   v1.34.3  2025-12-01 (8650) 185MB classic
          1.33/stable:      v1.33.7  2025-11-18 (8601) 180MB classic
          1.32/stable:      v1.32.11 2025-11-18 (8599) 178MB classic
        installed:          v1.33.5             (8555) 180MB classic
        """

    @Test func detectionReadsTheTrackedTrackAndTheNextOne() throws {
        let offer = try distribution.offer(
            in: info, running: try KubeVersion(strictRelease: "1.33.5"), node: "cp-1")
        #expect(offer.newestPatch == (try KubeVersion(strictRelease: "1.33.7")))
        #expect(offer.nextMinor == .published(newest: try KubeVersion(strictRelease: "1.34.2")))
        let last = try distribution.offer(in: info, running: try KubeVersion(strictRelease: "1.34.1"), node: "cp-1")
        #expect(last.nextMinor == .notPublished(try KubeVersion(strictRelease: "1.35.0")))
        #expect(distribution.offers(try KubeVersion(strictRelease: "1.34.2"), in: info))
        #expect(!distribution.offers(try KubeVersion(strictRelease: "1.34.3"), in: info))
        #expect(distribution.notApplicable(.repo) != nil)
    }

    @Test func aNodeOnLatestOrAClosedTrackIsRefused() throws {
        let latest = info.replacingOccurrences(of: "tracking:     1.33/stable", with: "tracking:     latest/stable")
        #expect(throws: PlanError.self) {
            try distribution.offer(in: latest, running: try KubeVersion(strictRelease: "1.33.5"), node: "cp-1")
        }
        #expect(throws: PlanError.self) {
            try distribution.offer(in: info, running: try KubeVersion(strictRelease: "1.31.2"), node: "cp-1")
        }
        #expect(throws: PlanError.self) {
            try distribution.offer(
                in: "error: no snap found", running: try KubeVersion(strictRelease: "1.33.5"), node: "cp-1")
        }
    }

    let nodes = [
        NodeFacts(name: "cp-1", isControlPlane: true, kubelet: nil, internalIP: "10.0.0.11"),
        NodeFacts(name: "cp-2", isControlPlane: true, kubelet: nil, internalIP: "10.0.0.12"),
        NodeFacts(
            name: "cp-3", isControlPlane: true, kubelet: nil, isReady: false, readiness: "NodeStatusUnknown",
            internalIP: "10.0.0.13"),
        NodeFacts(name: "w-1", kubelet: nil, internalIP: "10.0.0.21"),
    ]

    func health(_ cluster: String, leader: String = "10.0.0.11:19001") throws -> DatastoreHealth {
        try distribution.datastoreHealth(
            [ProbeOutput(exitStatus: 0, stdout: cluster), ProbeOutput(exitStatus: 0, stdout: leader + "\n")],
            nodes: nodes)
    }

    @Test func quorumCountsVotersThroughTheAPIsReadiness() throws {
        let three = """
            [
            \t{"ID": 3297041220608546238, "Address": "10.0.0.11:19001", "Role": 0},
            \t{"ID": 12, "Address": "10.0.0.12:19001", "Role": 0},
            \t{"ID": 13, "Address": "10.0.0.13:19001", "Role": 0},
            \t{"ID": 21, "Address": "10.0.0.21:19001", "Role": 2}
            ]
            """
        let down = try health(three)
        #expect(
            down.summary
                == "2 of 3 members healthy; unhealthy: cp-3 (10.0.0.13:19001: cp-3 is not Ready (NodeStatusUnknown)); not voting: w-1 (spare)"
        )
        guard case let .failure(error) = down.quorum(without: "cp-1") else {
            Issue.record("a voter already down must stop the next voter's refresh")
            return
        }
        #expect(error.description.hasPrefix("dqlite would lose its quorum while cp-1's member restarts"))
        guard case .success = down.quorum(without: "cp-3") else {
            Issue.record("the down voter itself may be refreshed: the other two stay")
            return
        }
        let noLeader = try health(three, leader: "")
        #expect(noLeader.healthy.isEmpty)
        #expect(noLeader.summary.hasSuffix("; no leader"))
    }

    @Test func twoVotersAreNotHighlyAvailableAndOneIsAlone() throws {
        let two = #"[{"Address":"10.0.0.11:19001","Role":0},{"Address":"10.0.0.12:19001","Role":0}]"#
        guard case let .failure(error) = try health(two).quorum(without: "cp-2") else {
            Issue.record("two voters must not pass the gate")
            return
        }
        #expect(error.description.hasPrefix("two dqlite members are not highly available"))
        let one = #"[{"Address":"10.0.0.11:19001","Role":0},{"Address":"10.0.0.12:19001","Role":1}]"#
        guard case let .success(alone) = try health(one).quorum(without: "cp-1") else {
            Issue.record("a single voter is upgraded as a single etcd member is")
            return
        }
        #expect(alone == "a single dqlite member: dqlite is down while it restarts, as always with one")
        #expect(throws: PlanError.self) {
            try distribution.datastoreHealth(
                [
                    ProbeOutput(exitStatus: 1, stdout: "", stderr: "Error: no available dqlite leader server found"),
                    ProbeOutput(exitStatus: 1, stdout: ""),
                ], nodes: nodes)
        }
        #expect(throws: PlanError.self) { try DqliteMember.list(json: #"[{"Address":"10.0.0.11:19001","Role":7}]"#) }
    }

    @Test func theBackupIsDbctlsBoundedAndListed() throws {
        #expect(
            distribution.snapshotSave(to: "/var/lib/etcd-backups/k8s-upgrade-pre-1.34.2-17.tar.gz")
                == [
                    "sh", "-c",
                    "cd /var/lib/etcd-backups && exec timeout 300 microk8s dbctl backup -o k8s-upgrade-pre-1.34.2-17",
                ])
        #expect(try distribution.snapshotSummary("40960 12\n") == "dqlite backup of 12 files, 40960 bytes")
        #expect(throws: PlanError.self) { try distribution.snapshotSummary("0 0\n") }
        #expect(throws: PlanError.self) { try distribution.snapshotSummary("tar: unexpected EOF") }
        #expect(try distribution.datastoreBytes("123456\t/var/snap/microk8s/current\n") == 123456)
        #expect(distribution.dataFolders(for: .minor) == ["/var/snap/microk8s"])
    }

    @Test func nodesRefreshToTheTargetsChannelAndRevertToTheirOwn() throws {
        let target = try KubeVersion(strictRelease: "1.34.2")
        for role in [NodeRole.master, .controlPlane, .worker] {
            #expect(
                distribution.nodeStep(role: role, target: target)
                    == ["--snap", "microk8s", "--channel", "1.34/stable", "--release", "1.34.2"])
        }
        #expect(
            distribution.revertStep(role: .worker, to: try KubeVersion(strictRelease: "1.33.7"))
                == ["--snap-revert", "microk8s", "--channel", "1.33/stable", "--release", "1.33.7"])
        #expect(distribution.apiServerPod(on: "cp-1") == nil)
        #expect(distribution.notApplicable(.containerd) != nil)
        #expect(distribution.notApplicable(.master) == nil)
    }

    @Test func snapdHoldsTheSnapFrom258() throws {
        let hold = try #require(distribution.hold)
        #expect(hold.set == ["snap", "refresh", "--hold", "microk8s"])
        let list = """
            Name      Version  Rev   Tracking     Publisher   Notes
            microk8s  v1.33.5  8555  1.33/stable  canonical✓  classic,held
            """
        #expect(hold.isHeld(list))
        #expect(!hold.isHeld(list.replacingOccurrences(of: "classic,held", with: "classic")))
        #expect(hold.supported("snap    2.63+24.04\nsnapd   2.63+24.04\nseries  16\n"))
        #expect(hold.supported("snapd   2.58\n"))
        #expect(!hold.supported("snapd   2.57.6\n"))
        #expect(!hold.supported("snap: command not found\n"))
    }

    /// One node's hold from what snapd printed: held, not held (a dry run,
    /// or drift found between nodes), or why it cannot be.
    @Test func aHoldsVerdictNamesWhyItIsMissing() throws {
        let hold = try #require(distribution.hold)
        let version = ProbeOutput(exitStatus: 0, stdout: "snap    2.63\nsnapd   2.63\nseries  16\n")
        let held = ProbeOutput(
            exitStatus: 0,
            stdout: "Name      Version  Rev   Tracking     Publisher   Notes\n"
                + "microk8s  v1.34.3  8555  1.34/stable  canonical✓  classic,held\n")
        let free = ProbeOutput(
            exitStatus: 0, stdout: held.stdout.replacingOccurrences(of: "classic,held", with: "classic"))
        let done = ProbeOutput(exitStatus: 0, stdout: "General refreshes of \"microk8s\" held indefinitely\n")
        #expect(hold.verdict(version: version, set: nil, check: held) == .held)
        #expect(hold.verdict(version: version, set: nil, check: free) == .notHeld)
        #expect(hold.verdict(version: version, set: done, check: held) == .held)
        guard case let .failed(silent) = hold.verdict(version: version, set: done, check: free) else {
            Issue.record("a set that leaves no hold passed")
            return
        }
        #expect(silent.contains("succeeded but snap list microk8s shows no hold"))
        let old = ProbeOutput(exitStatus: 0, stdout: "snap    2.57.6\nsnapd   2.57.6\n")
        guard case let .failed(tooOld) = hold.verdict(version: old, set: nil, check: free) else {
            Issue.record("snapd 2.57 passed")
            return
        }
        #expect(tooOld.contains("older than 2.58") && tooOld.contains("2.57.6"))
        let refused = ProbeOutput(exitStatus: 1, stdout: "", stderr: "error: access denied (try with sudo)\n")
        #expect(
            hold.verdict(version: version, set: refused, check: nil)
                == .failed("snap refresh --hold microk8s exited 1: error: access denied (try with sudo)"))
        #expect(
            hold.verdict(
                version: ProbeOutput(exitStatus: 127, stdout: "", stderr: "snap: not found"), set: nil, check: nil)
                == .failed("snap version exited 127: snap: not found"))
    }

    /// `--distribution` names one of these; the role label MicroK8s sets
    /// marks a control plane as kubeadm's does.
    @Test func theDistributionIsChosenByNameAndMicroK8sControlPlanesAreFound() throws {
        #expect(Distributions.named("microk8s")?.name == "microk8s")
        #expect(Distributions.named("kubeadm")?.name == "kubeadm")
        #expect((Distributions.named("k3s") as? K3s)?.channelServer == K3s.defaultChannelServer)
        #expect(Distributions.named("rke2") == nil)
        let reader = OptionReader(environment: ["K8SUP_DISTRIBUTION": "microk8s"])
        #expect(try SharedOptions.chosenDistribution(nil, reader).name == "microk8s")
        #expect(try SharedOptions.chosenDistribution("kubeadm", reader).name == "kubeadm")
        #expect(throws: SettingsError.self) { try SharedOptions.chosenDistribution("snap", reader) }

        // K3s with a mirror's channel server (the variable) and artifacts (the flag).
        let mirror = OptionReader(environment: [
            "K8SUP_DISTRIBUTION": "k3s", "K8SUP_K3S_CHANNEL_URL": "http://mirror.lan/k3s/v1-release/channels",
        ])
        let k3s = try SharedOptions.chosenDistribution(nil, k3sArtifactURL: "http://mirror.lan/k3s/", mirror) as? K3s
        #expect(k3s?.channelServer == "http://mirror.lan/k3s/v1-release/channels")
        #expect(k3s?.artifacts == "http://mirror.lan/k3s")
        #expect(
            throws: SettingsError(
                "k3s-channel-url: the K3s channel server URL must be http:// or https:// followed by a host and path "
                    + "(letters, digits, - . _ ~ / : % +), got \"http://mirror.lan/a b\"")
        ) { try SharedOptions.chosenDistribution("k3s", k3sChannelURL: "http://mirror.lan/a b", reader) }
        #expect {
            try SharedOptions.chosenDistribution("k3s", k3sArtifactURL: "https://mirror.lan/k3s?x=1", reader)
        } throws: { "\($0)".hasPrefix("k3s-artifact-url: the K3s artifact URL must be") }
        func node(_ labels: [String: String]) -> NodeFacts {
            NodeFacts(
                node: .object([
                    "metadata": .object(["name": .string("n"), "labels": .object(labels.mapValues(JSONValue.string))])
                ]), cordonAnnotation: "k8s-upgrade.io/cordoned-by")
        }
        #expect(node(["node.kubernetes.io/microk8s-controlplane": "microk8s-controlplane"]).isControlPlane)
        #expect(node(["node-role.kubernetes.io/control-plane": ""]).isControlPlane)
        #expect(!node(["node.kubernetes.io/microk8s-worker": "microk8s-worker"]).isControlPlane)
    }
}

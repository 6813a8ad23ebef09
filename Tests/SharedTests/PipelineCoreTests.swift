import Foundation
import Shared
import Testing

@Suite("pipeline core: shell words, drain rules, plans, pre-flight, outputs")
struct PipelineCoreTests {
    @Test(arguments: [
        ("1.34.5", "1.34.5"), ("/var/lib/etcd-backups", "/var/lib/etcd-backups"), ("", "''"),
        ("a b", "'a b'"), ("it's", #"'it'\''s'"#), ("$(reboot)", "'$(reboot)'"), ("x;rm -rf /", "'x;rm -rf /'"),
        ("--role=worker", "--role=worker"), ("a\nb", "'a\nb'"),
    ])
    func shellWordsAreQuotedOnce(input: String, quoted: String) {
        #expect(Shell.quote(input) == quoted)
    }

    @Test func aCommandQuotesEveryWord() {
        #expect(
            Shell.command(["sudo", "-n", "bash", "-s", "--", "--release", "1.34.5; id"])
                == "sudo -n bash -s -- --release '1.34.5; id'")
    }

    static let pods: [PodFacts] = [
        PodFacts(
            namespace: "kube-system", name: "kube-proxy-a", controllerKind: "DaemonSet", controllerName: "kube-proxy"),
        PodFacts(namespace: "kube-system", name: "etcd-master", isMirror: true),
        PodFacts(namespace: "default", name: "web-1", labels: ["app": "web"], controllerKind: "ReplicaSet"),
        PodFacts(namespace: "default", name: "cache-1", controllerKind: "ReplicaSet", hasEmptyDir: true),
        PodFacts(namespace: "default", name: "bare", controllerKind: nil),
        PodFacts(namespace: "default", name: "done", phase: "Succeeded", controllerKind: nil, hasEmptyDir: true),
    ]

    @Test func drainFollowsKubectlsFiltersAndConsentFlags() {
        let strict = DrainRules.select(
            Self.pods, consent: DrainConsent(ignoreDaemonSets: false, deleteEmptyDirData: false))
        #expect(
            strict.refusals == [
                "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): kube-system/kube-proxy-a",
                "cannot delete Pods with local storage (use --delete-emptydir-data to override): default/cache-1",
                "cannot delete Pods that declare no controller (use --force to override): default/bare",
            ])
        let usual = DrainRules.select(Self.pods, consent: DrainConsent())
        #expect(
            usual.refusals == ["cannot delete Pods that declare no controller (use --force to override): default/bare"])
        #expect(usual.evict.map(\.name) == ["web-1", "cache-1", "done"])
        #expect(usual.kept.map(\.pod) == ["kube-system/kube-proxy-a", "kube-system/etcd-master"])
        #expect(usual.warnings == ["deleting Pods with local storage: default/cache-1"])
        let forced = DrainRules.select(Self.pods, consent: DrainConsent(force: true))
        #expect(forced.refusals.isEmpty)
        #expect(forced.evict.map(\.name) == ["web-1", "cache-1", "bare", "done"])
        let orphan = DrainRules.select([Self.pods[0]], consent: DrainConsent()) { _ in false }
        #expect(orphan.refusals.first?.hasPrefix("cannot delete Pods of a DaemonSet that no longer exists") == true)
    }

    /// The orchestrator's own pod has no controller in this table on
    /// purpose: were it not excluded first, it would be refused (as an
    /// unreplicated pod) or, with --force, evicted.
    static let orchestratorPods: [PodFacts] = [
        PodFacts(namespace: "k8s-upgrade", name: "k8s-upgrade-7d9f-abcde", labels: ["app": "other"]),
        PodFacts(
            namespace: "k8s-upgrade", name: "k8s-version-check-29001-xyz",
            labels: ["app.kubernetes.io/name": "k8s-upgrade", "app.kubernetes.io/component": "detector"],
            controllerKind: "Job"),
        PodFacts(namespace: "default", name: "web-1", labels: ["app": "web"], controllerKind: "ReplicaSet"),
    ]

    @Test func drainLeavesTheOrchestratorsOwnPodAndTheExcludedOnesWhateverTheConsent() {
        let exclusion = DrainExclusion(ownPod: "k8s-upgrade/k8s-upgrade-7d9f-abcde")
        for consent in [DrainConsent(), DrainConsent(force: true), DrainConsent(deleteEmptyDirData: false)] {
            let selection = DrainRules.select(Self.orchestratorPods, consent: consent, exclusion: exclusion)
            #expect(selection.evict.map(\.name) == ["web-1"])
            #expect(selection.refusals.isEmpty)
            #expect(
                selection.excluded == ["k8s-upgrade/k8s-upgrade-7d9f-abcde", "k8s-upgrade/k8s-version-check-29001-xyz"])
            #expect(
                selection.kept.map(\.reason) == [
                    "the orchestrator itself, left running on purpose",
                    "excluded by selector app.kubernetes.io/name=k8s-upgrade, left running on purpose",
                ])
        }
        // Without the exclusion, kubectl's rules apply: the bare pod is refused, the Job's pod evicted.
        let plain = DrainRules.select(Self.orchestratorPods, consent: DrainConsent())
        #expect(plain.refusals.count == 1)
        #expect(plain.evict.map(\.name) == ["k8s-version-check-29001-xyz", "web-1"])
        #expect(plain.excluded.isEmpty)
    }

    @Test(arguments: [
        ("app=web", ["app": "web"], true), ("app=web", ["app": "db"], false), ("app==web", ["app": "web"], true),
        ("app!=web", ["app": "db"], true), ("app!=web", [:], true), ("app!=web", ["app": "web"], false),
        ("tier", ["tier": "x"], true), ("tier", [:], false), ("!tier", [:], true),
        ("a.io/name=x, tier", ["a.io/name": "x", "tier": ""], true), ("a.io/name=x,tier", ["a.io/name": "x"], false),
        ("", ["app": "web"], false),
    ])
    func podSelectorsMatchAsKubectlReadsThem(selector: String, labels: [String: String], matches: Bool) throws {
        #expect(try PodSelector(parsing: selector).matches(labels) == matches)
    }

    @Test(arguments: [
        "app=we b", "-app=web", "a/b/c=x", "Bad_Prefix/x=y", "app=" + String(repeating: "v", count: 64), "!",
    ])
    func badSelectorsAreRefusedNamingTheTerm(selector: String) {
        #expect(throws: DrainExclusionError.self) { try PodSelector(parsing: selector) }
    }

    @Test func blockersNameTheBudgetHoldingEachPod() {
        let budget = BudgetFacts(
            namespace: "default", name: "web-pdb", selector: LabelSelector(matchLabels: ["app": "web"]),
            disruptionsAllowed: 0, currentHealthy: 3, desiredHealthy: 3)
        let elsewhere = BudgetFacts(
            namespace: "other", name: "web-pdb", selector: LabelSelector(matchLabels: ["app": "web"]))
        let null = BudgetFacts(namespace: "default", name: "none", selector: nil)
        #expect(
            DrainRules.blockers(remaining: [Self.pods[2], Self.pods[3]], budgets: [budget, elsewhere, null]) == [
                "default/web-1 (held by PodDisruptionBudget default/web-pdb (0 disruptions allowed; 3 healthy, 3 needed))",
                "default/cache-1 (no PodDisruptionBudget; still terminating)",
            ])
        // policy/v1: an empty selector covers every pod of its namespace.
        let everything = BudgetFacts(namespace: "default", name: "all", selector: LabelSelector())
        #expect(
            DrainRules.blockers(remaining: [Self.pods[3]], budgets: [everything]) == [
                "default/cache-1 (held by PodDisruptionBudget default/all (0 disruptions allowed; 0 healthy, 0 needed))"
            ])
    }

    struct SelectorCase: Sendable, CustomTestStringConvertible {
        let name: String
        let selector: String
        let labels: [String: String]
        let covers: Bool
        var testDescription: String { name }
    }

    static let selectorCases: [SelectorCase] = [
        SelectorCase(
            name: "matchLabels", selector: #"{"matchLabels":{"app":"web"}}"#, labels: ["app": "web"], covers: true),
        SelectorCase(
            name: "matchLabels, other value", selector: #"{"matchLabels":{"app":"web"}}"#, labels: ["app": "db"],
            covers: false),
        SelectorCase(name: "empty selector: every pod", selector: "{}", labels: [:], covers: true),
        SelectorCase(name: "null selector: no pod", selector: "null", labels: ["app": "web"], covers: false),
        SelectorCase(
            name: "In", selector: #"{"matchExpressions":[{"key":"app","operator":"In","values":["web","api"]}]}"#,
            labels: ["app": "api"], covers: true),
        SelectorCase(
            name: "In, label missing",
            selector: #"{"matchExpressions":[{"key":"app","operator":"In","values":["web"]}]}"#, labels: [:],
            covers: false),
        SelectorCase(
            name: "NotIn, label missing",
            selector: #"{"matchExpressions":[{"key":"tier","operator":"NotIn","values":["batch"]}]}"#,
            labels: ["app": "web"], covers: true),
        SelectorCase(
            name: "NotIn, listed value",
            selector: #"{"matchExpressions":[{"key":"tier","operator":"NotIn","values":["batch"]}]}"#,
            labels: ["tier": "batch"], covers: false),
        SelectorCase(
            name: "Exists", selector: #"{"matchExpressions":[{"key":"app","operator":"Exists"}]}"#,
            labels: ["app": "x"], covers: true),
        SelectorCase(
            name: "DoesNotExist", selector: #"{"matchExpressions":[{"key":"app","operator":"DoesNotExist"}]}"#,
            labels: ["app": "x"], covers: false),
        SelectorCase(
            name: "labels and expressions are ANDed",
            selector:
                #"{"matchLabels":{"app":"web"},"matchExpressions":[{"key":"tier","operator":"In","values":["front"]}]}"#,
            labels: ["app": "web", "tier": "back"], covers: false),
        SelectorCase(
            name: "an unknown operator: no pod",
            selector: #"{"matchExpressions":[{"key":"app","operator":"Gt","values":["1"]}]}"#, labels: ["app": "2"],
            covers: false),
        SelectorCase(
            name: "In without values: no pod", selector: #"{"matchExpressions":[{"key":"app","operator":"In"}]}"#,
            labels: ["app": "web"], covers: false),
    ]

    /// Budget attribution follows the eviction API's own matching.
    @Test(arguments: selectorCases)
    func budgetSelectors(_ test: SelectorCase) throws {
        let selector = try JSONDecoder().decode(JSONValue.self, from: Data(test.selector.utf8))
        let budget = BudgetFacts(
            budget: .object([
                "metadata": .object(["namespace": .string("default"), "name": .string("pdb")]),
                "spec": .object(["selector": selector]),
            ]))
        let pod = PodFacts(namespace: "default", name: "p", labels: test.labels, controllerKind: "ReplicaSet")
        #expect(budget.covers(pod) == test.covers)
        var elsewhere = pod
        elsewhere.namespace = "other"
        #expect(!budget.covers(elsewhere))
    }

    static func node(
        _ name: String, _ version: String, controlPlane: Bool = false, unschedulable: Bool = false,
        cordonedBy: String? = nil
    ) -> NodeFacts {
        NodeFacts(
            name: name, isControlPlane: controlPlane, kubelet: try? KubeVersion(parsing: version),
            unschedulable: unschedulable, cordonedBy: cordonedBy)
    }

    @Test func thePlanPutsControlPlanesFirstAndSkipsWhatIsDone() throws {
        let target = try KubeVersion(strictRelease: "1.34.5")
        let nodes = [
            Self.node("w-b", "1.34.3"), Self.node("cp-2", "1.34.3", controlPlane: true),
            Self.node("cp-1", "1.34.5", controlPlane: true), Self.node("w-a", "1.34.5"),
            Self.node("w-c", "1.34.5", unschedulable: true, cordonedBy: "job-3"),
            Self.node("w-d", "1.34.5", unschedulable: true),
        ]
        let apiServers = ["cp-1": target, "cp-2": try KubeVersion(strictRelease: "1.34.3")]
        let plan = try UpgradePlan.make(nodes: nodes, apiServers: apiServers, target: target)
        #expect(plan.controlPlanes.map(\.node) == ["cp-1", "cp-2"])
        #expect(plan.controlPlanes.map(\.role) == [.master, .controlPlane])
        #expect(plan.controlPlanes.map(\.action) == [.skip("already at 1.34.5"), .upgrade])
        #expect(plan.workers.map(\.node) == ["w-a", "w-b", "w-c", "w-d"])
        #expect(
            plan.workers.map(\.action) == [
                .skip("already at 1.34.5"), .upgrade, .finish,
                .skip("already at 1.34.5; cordoned by someone else, left so"),
            ])
        let chosen = try UpgradePlan.make(
            nodes: nodes, apiServers: apiServers, target: target, master: "cp-2", order: .explicit(["w-c", "w-a"]))
        #expect(chosen.controlPlanes.map(\.node) == ["cp-2", "cp-1"])
        #expect(chosen.workers.map(\.node) == ["w-c", "w-a", "w-b", "w-d"])
        #expect(
            try UpgradePlan.make(nodes: nodes, apiServers: apiServers, target: target, order: .descending).workers.map(
                \.node) == ["w-d", "w-c", "w-b", "w-a"])
        #expect(throws: PlanError.self) {
            try UpgradePlan.make(nodes: nodes, apiServers: [:], target: target, master: "w-a")
        }
        #expect(throws: PlanError.self) {
            try UpgradePlan.make(nodes: nodes, apiServers: [:], target: target, order: .explicit(["nope"]))
        }
        #expect(throws: PlanError.self) {
            try UpgradePlan.make(nodes: [Self.node("w", "1.34.3")], apiServers: [:], target: target)
        }
    }

    @Test(arguments: [
        ("ascending", WorkerOrder.ascending), ("descending", .descending), ("b,a", .explicit(["b", "a"])),
    ])
    func workerOrdersParse(text: String, order: WorkerOrder) throws {
        #expect(try WorkerOrder(parsing: text) == order)
    }

    @Test(arguments: ["", "a,a", "Bad_Name", "a,,b;"])
    func badWorkerOrdersAreRefused(text: String) {
        #expect(throws: PlanError.self) { try WorkerOrder(parsing: text) }
    }

    static func facts(_ change: (inout PreflightFacts) -> Void = { _ in }) throws -> PreflightFacts {
        var facts = PreflightFacts(
            target: try KubeVersion(strictRelease: "1.34.5"), expectedNodes: 2,
            nodes: [Self.node("cp", "1.34.3", controlPlane: true), Self.node("w", "1.34.3")],
            apiServers: [try KubeVersion(strictRelease: "1.34.3")], gate: .open, quietWindow: (24, .success([])),
            offered: .success("in madison"), etcd: .success(DatastoreHealth(healthy: ["a"], unhealthy: [])),
            certificates: .success([CertificateExpiry(name: "apiserver", residualSeconds: 300 * 86400)]))
        change(&facts)
        return facts
    }

    @Test func preflightPassesAHealthyCluster() throws {
        let results = Preflight.evaluate(try Self.facts())
        #expect(
            results.map(\.name) == [
                "node count", "nodes ready", "halt-on-alert gate", "quiet period", "target offered", "version skew",
                "etcd health", "certificates",
            ])
        #expect(results.allSatisfy { $0.outcome == .passed }, "\(results)")
    }

    @Test func preflightNamesTheDistributionsDatastore() throws {
        let results = Preflight.evaluate(
            try Self.facts {
                $0.datastore = "dqlite"
                $0.etcd = .failure(
                    PlanError("dqlite .cluster exited 1: Error: no available dqlite leader server found"))
            })
        #expect(
            results.filter { $0.outcome == .failed }.map(\.description) == [
                "dqlite health: failed: dqlite .cluster exited 1: Error: no available dqlite leader server found"
            ])
    }

    /// Pre-flight names each node whose hold cannot be set, and why; a dry
    /// run only reads, so a hold not there yet is what a real run would set.
    @Test func preflightNamesTheNodesWithoutAHold() throws {
        let what = "snapd's refresh hold of microk8s"
        let verdicts: [String: HoldVerdict] = [
            "cp-1": .held, "worker-1": .notHeld, "worker-2": .failed("snapd older than 2.58 cannot hold one snap"),
        ]
        func check(_ verdicts: [String: HoldVerdict], dryRun: Bool) throws -> String {
            let results = Preflight.evaluate(
                try Self.facts {
                    $0.holds = (what, verdicts)
                    $0.dryRun = dryRun
                })
            return try #require(results.first { $0.name == "updater hold" }).description
        }
        #expect(
            try check(verdicts, dryRun: false)
                == "updater hold: failed: \(what) cannot be set on 2 of 3 nodes: worker-1 (not held); "
                + "worker-2 (snapd older than 2.58 cannot hold one snap)")
        #expect(
            try check(verdicts.filter { $0.key != "worker-2" }, dryRun: true)
                == "updater hold: passed: \(what) is on 1 of 2 nodes; a real run sets it on worker-1")
        #expect(
            try check(["cp-1": .held, "worker-1": .held], dryRun: false)
                == "updater hold: passed: \(what) is on all 2 nodes")
        #expect(Preflight.evaluate(try Self.facts()).allSatisfy { $0.name != "updater hold" })
    }

    /// Only a failed node step or a node that never came back is reverted.
    @Test func aNodeIsRevertedOnlyAfterItsStepOrItsReturnFailed() {
        let reverting = NodeProcedure.operations(
            role: .worker, action: .upgrade, script: ["--role", "worker"], soaks: true
        ).filter(\.revertsOnFailure)
        #expect(reverting == [.script(["--role", "worker"]), .verify])
    }

    @Test func preflightNamesEveryFailedCheck() throws {
        let results = Preflight.evaluate(
            try Self.facts {
                $0.expectedNodes = 3
                $0.nodes[1].isReady = false
                $0.nodes[1].readiness = "Ready=False KubeletNotReady: PLEG"
                $0.gate = .closed(["NodeDown"])
                $0.quietWindow = (24, .success(["EtcdDown"]))
                $0.offered = .failure(PlanError("kubeadm 1.34.5 is not in apt-cache madison on cp"))
                $0.target = try! KubeVersion(strictRelease: "1.36.0")
                $0.etcd = .success(DatastoreHealth(healthy: ["a"], unhealthy: ["b: timeout"]))
                $0.certificates = .success([CertificateExpiry(name: "apiserver", residualSeconds: 5 * 86400)])
            })
        let failed = results.filter { $0.outcome == .failed }.map(\.description)
        #expect(
            failed == [
                "node count: failed: expected 3 nodes, the cluster has 2",
                "nodes ready: failed: not Ready: w (Ready=False KubeletNotReady: PLEG)",
                "halt-on-alert gate: failed: firing: NodeDown",
                "quiet period: failed: gate alerts fired in the last 24 h: EtcdDown",
                "target offered: failed: kubeadm 1.34.5 is not in apt-cache madison on cp",
                "version skew: failed: 1.34.3 → 1.36.0 skips a minor; kubeadm can upgrade only one minor at a time",
                "etcd health: failed: 1 of 2 members healthy; unhealthy: b: timeout",
            ])
        #expect(results.last?.description == "certificates: warning: expiring within 30 days: apiserver (5d)")
    }

    static let threeMembers = [
        DatastoreMember(name: "cp-1", clientURLs: ["https://10.0.0.1:2379"]),
        DatastoreMember(name: "cp-2", clientURLs: ["https://10.0.0.2:2379"]),
        DatastoreMember(name: "cp-3", clientURLs: ["https://10.0.0.3:2379"]),
    ]

    /// Before each control plane: does etcd stay quorate while that node's
    /// member restarts? Healthy others must be more than half of all members.
    @Test(arguments: [
        // (healthy members, node, keeps)
        (["cp-1", "cp-2", "cp-3"], "cp-1", true),
        (["cp-1", "cp-2"], "cp-1", false),  // cp-3 down: restarting cp-1 leaves one of three
        (["cp-1", "cp-2"], "cp-3", true),  // the down member's own node: the other two stay
        (["cp-1"], "cp-2", false),
        (["cp-1", "cp-2", "cp-3"], "worker-1", true),  // no member on the node
        (["cp-1"], "worker-1", false),  // no member, and no quorum anyway
    ])
    func quorumWithoutTheNodesMember(healthy: [String], node: String, keeps: Bool) throws {
        let members = Self.threeMembers
        let json =
            "["
            + members.map { member in
                let url = member.clientURLs[0]
                return healthy.contains(member.name)
                    ? #"{"endpoint":"\#(url)","health":true}"#
                    : #"{"endpoint":"\#(url)","health":false,"error":"context deadline exceeded"}"#
            }.joined(separator: ",") + "]"
        let health = try DatastoreHealth(json: json, members: members)
        switch health.quorum(without: node) {
        case .success: #expect(keeps, "\(healthy) without \(node)")
        case .failure: #expect(!keeps, "\(healthy) without \(node)")
        }
    }

    @Test func aLostQuorumNamesTheMembersThatAreDown() throws {
        let health = try DatastoreHealth(
            json:
                #"[{"endpoint":"https://10.0.0.1:2379","health":true},{"endpoint":"https://10.0.0.2:2379","health":true},{"endpoint":"https://10.0.0.3:2379","health":false,"error":"context deadline exceeded"}]"#,
            members: Self.threeMembers)
        #expect(health.hasQuorum, "a bare majority is healthy now")
        #expect(
            health.summary
                == "2 of 3 members healthy; unhealthy: cp-3 (https://10.0.0.3:2379: context deadline exceeded)")
        #expect(
            health.quorum(without: "cp-1")
                == .failure(
                    PlanError(
                        "etcd would lose its quorum while cp-1's member restarts: 1 of the 2 other members healthy, "
                            + "and 3 members need 2; unhealthy: cp-3 (https://10.0.0.3:2379: context deadline exceeded)"
                    )))
        #expect(
            health.quorum(without: "cp-3")
                == .success(
                    "etcd keeps its quorum without cp-3's member: 2 of the 2 other members healthy (2 of 3 needed)"))
        let single = DatastoreHealth(healthy: ["https://10.0.0.1:2379"], unhealthy: [])
        #expect(
            single.quorum(without: "master")
                == .success("a single etcd member: etcd is down while it restarts, as always with one"))
        // One member that is already down is no restart to ride out: nothing goes on top of it.
        let singleDown = DatastoreHealth(healthy: [], unhealthy: ["https://10.0.0.1:2379"])
        #expect(
            singleDown.quorum(without: "master")
                == .failure(
                    PlanError(
                        "the single etcd member is not healthy, so nothing is upgraded on top of it: "
                            + "0 of 1 members healthy; unhealthy: https://10.0.0.1:2379")))
        // A member that the health check left out counts as down, by its name.
        let silent = try DatastoreHealth(
            json:
                #"[{"endpoint":"https://10.0.0.1:2379","health":true},{"endpoint":"https://10.0.0.2:2379","health":true}]"#,
            members: Self.threeMembers)
        #expect(silent.summary == "2 of 3 members healthy; unhealthy: cp-3 (https://10.0.0.3:2379: no health answer)")
        #expect(
            silent.quorum(without: "cp-1")
                == .failure(
                    PlanError(
                        "etcd would lose its quorum while cp-1's member restarts: 1 of the 2 other members healthy, "
                            + "and 3 members need 2; unhealthy: cp-3 (https://10.0.0.3:2379: no health answer)")))
        let listed = try DatastoreMember.list(
            json:
                #"{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"raft_term":2},"members":[{"ID":10276657743932975437,"name":"cp-1","peerURLs":["https://10.0.0.1:2380"],"clientURLs":["https://10.0.0.1:2379"]}]}"#
        )
        #expect(listed == [DatastoreMember(name: "cp-1", clientURLs: ["https://10.0.0.1:2379"])])
        #expect(throws: PlanError.self) { try DatastoreMember.list(json: "Error: context deadline exceeded") }
    }

    @Test func remoteOutputsAreParsedOrRefused() throws {
        let status = try SnapshotStatus(json: #"{"hash":3474280699,"revision":3,"totalKey":7,"totalSize":24576}"#)
        #expect(status.summary == "hash cf1550fb, revision 3, 7 keys, 24576 bytes")
        #expect(throws: PlanError.self) {
            try SnapshotStatus(json: #"{"hash":1,"revision":1,"totalKey":0,"totalSize":0}"#)
        }
        #expect(throws: PlanError.self) { try SnapshotStatus(json: "Error: context deadline exceeded") }
        let health = try DatastoreHealth(
            json:
                #"[{"endpoint":"https://a:2379","health":true,"took":"2ms"},{"endpoint":"https://b:2379","health":false,"error":"timeout"},{"endpoint":"https://c:2379","health":true}]"#
        )
        #expect(health.hasQuorum)
        #expect(health.summary == "2 of 3 members healthy; unhealthy: https://b:2379: timeout")
        #expect(!DatastoreHealth(healthy: ["a"], unhealthy: ["b"]).hasQuorum)
        let certificates = try CertificateExpiry.parse(
            json:
                #"{"kind":"CertificateExpirationInfo","certificates":[{"name":"apiserver","residualTime":86400,"missing":false}],"certificateAuthorities":[{"name":"ca","residualTime":9,"missing":true}]}"#
        )
        #expect(
            certificates == [
                CertificateExpiry(name: "apiserver", residualSeconds: 86400),
                CertificateExpiry(name: "ca", residualSeconds: 9, missing: true),
            ])
    }

    @Test func noticesCarryBlockKitAndATextFallback() {
        let notice = Notice(.failure, "Job failed", lines: ["drain of <w-1> & more"], jobID: 7)
        #expect(notice.text == ":x: k8s-upgrade job 7: Job failed\ndrain of <w-1> & more")
        let blocks = notice.slackPayload[["blocks"]]?.arrayValue ?? []
        #expect(blocks.map { $0[["type"]]?.stringValue ?? "" } == ["header", "section", "context"])
        #expect(blocks[1][["text", "text"]]?.stringValue == "drain of &lt;w-1&gt; &amp; more")
    }

    @Test func gaugesRenderTheTextFormat() {
        var gauges = UpgradeGauges()
        gauges.inFlight = true
        gauges.stage = .workers
        gauges.nodes = ["worker-2", "worker-1"]
        gauges.drainBlocked = [.init(node: "worker-2", pod: "default/db-0", budget: "default/\"db\"")]
        let text = gauges.exposition
        #expect(text.hasSuffix("\n"))
        #expect(text.contains("k8s_upgrade_in_flight 1\n"))
        #expect(text.contains("k8s_upgrade_snapshot_taken 0\n"))
        #expect(text.contains(#"k8s_upgrade_current_stage{stage="workers"} 1"#))
        #expect(
            text.contains(
                #"k8s_upgrade_current_node{node="worker-1"} 1"# + "\n" + #"k8s_upgrade_current_node{node="worker-2"} 1"#
                    + "\n"))
        #expect(text.contains(#"k8s_upgrade_drain_blocked{node="worker-2",pdb="default/\"db\"",pod="default/db-0"} 1"#))
        #expect(!text.contains("\nk8s_upgrade_last_success_timestamp_seconds "))
        #expect(text.contains("k8s_upgrade_job_restarts 0\n"))
        #expect(text.contains("k8s_upgrade_crash_loop 0\n"))
        #expect(!text.contains("\nk8s_upgrade_last_progress_timestamp_seconds "))
    }

    @Test func gaugesForTheStalledRolloutAlerts() {
        var gauges = UpgradeGauges()
        gauges.restarts = 2
        gauges.crashLoop = true
        gauges.lastProgress = 1_796_000_000.7
        gauges.cordonedSince = ["worker-3": 1_796_000_100, "worker-1": 1_796_000_050]
        gauges.holdLifted = ["worker-2"]
        let text = gauges.exposition
        #expect(text.contains(#"k8s_upgrade_hold_lifted{node="worker-2"} 1"# + "\n"))
        #expect(text.contains("k8s_upgrade_job_restarts 2\n"))
        #expect(text.contains("k8s_upgrade_crash_loop 1\n"))
        #expect(text.contains("k8s_upgrade_last_progress_timestamp_seconds 1796000000\n"))
        #expect(
            text.contains(
                #"k8s_upgrade_node_cordoned_since_timestamp_seconds{node="worker-1"} 1796000050"# + "\n"
                    + #"k8s_upgrade_node_cordoned_since_timestamp_seconds{node="worker-3"} 1796000100"#))
    }
}

@Suite struct SnapshotRetentionTests {
    static let folder = [
        "k8s-upgrade-pre-1.34.4-1700000000.db", "k8s-upgrade-pre-1.34.5-1700000100.db",
        "k8s-upgrade-pre-1.35.2-1700000300.db", "k8s-upgrade-pre-1.35.2-1700000200.db",
        "k8s-upgrade-pre-1.35.2-1700000400.db.part", "notes.txt", "k8s-upgrade-pre-odd.db",
    ]

    @Test func theNewestAreKeptAndKilledSavesRemoved() {
        #expect(
            SnapshotRetention.prune(Self.folder, keep: 2, protected: []) == [
                "k8s-upgrade-pre-1.35.2-1700000400.db.part", "k8s-upgrade-pre-1.34.4-1700000000.db",
                "k8s-upgrade-pre-1.34.5-1700000100.db",
            ])
        #expect(
            SnapshotRetention.prune(Self.folder, keep: 10, protected: []) == [
                "k8s-upgrade-pre-1.35.2-1700000400.db.part"
            ])
    }

    @Test func theRollbackPointInFlightIsNeverPruned() {
        // A resumed job keeps its first snapshot, older than newer ones of other jobs.
        #expect(
            SnapshotRetention.prune(Self.folder, keep: 1, protected: ["k8s-upgrade-pre-1.34.4-1700000000.db"]) == [
                "k8s-upgrade-pre-1.35.2-1700000400.db.part", "k8s-upgrade-pre-1.34.5-1700000100.db",
                "k8s-upgrade-pre-1.35.2-1700000200.db",
            ])
    }
}

@Suite struct DiskSpaceTests {
    @Test func eachFolderMustHoldAnotherCopyOfTheDatabase() throws {
        let size = try DiskSpace.databaseSize(
            json:
                #"[{"Endpoint":"https://127.0.0.1:2379","Status":{"header":{"cluster_id":1},"version":"3.5.21","dbSize":2147483648,"leader":1}}]"#
        )
        #expect(size == 2_147_483_648)
        let folders = try DiskSpace.folders(
            df: """
                /var/lib/etcd-backups /dev/sda1 53687091200 50000000000 3221225472 94% /
                /var/lib/etcd /dev/sdb1 21474836480 20000000000 1073741824 95% /var/lib/etcd

                """)
        #expect(folders.map(\.path) == ["/var/lib/etcd-backups", "/var/lib/etcd"])
        let space = DiskSpace(databaseBytes: size, folders: folders)
        #expect(
            space.check
                == CheckResult(
                    "disk space", .failed,
                    "etcd's database is 2.0 GiB, more than is free under /var/lib/etcd (1.0 GiB): "
                        + "the backup, or the upgrade's copy of the data, would not fit"))
        #expect(
            DiskSpace(databaseBytes: 20480, folders: folders).check
                == CheckResult(
                    "disk space", .passed,
                    "/var/lib/etcd-backups 3.0 GiB free, /var/lib/etcd 1.0 GiB free, for an etcd database of 20.0 KiB"))
        #expect(throws: PlanError.self) { try DiskSpace.databaseSize(json: "Error: context deadline exceeded") }
        #expect(throws: PlanError.self) { try DiskSpace.folders(df: "df: /x: No such file or directory") }
    }
}

/// `plan`'s forecast: which stages run and why, when it is ready, its text.
@Suite struct UpgradeForecastTests {
    @Test func stagesRunOrAreSkippedWithTheirReason() {
        let microk8s = UpgradeForecast.stages(
            kind: .patch, notApplicable: MicroK8sSnap().notApplicable(_:), containerd: .notNeeded("n/a"))
        #expect(microk8s.filter { !$0.runs }.map(\.stage) == [.containerd, .repo])
        #expect(microk8s.first { $0.stage == .repo }?.reason.hasPrefix("MicroK8s' releases are snap channels") == true)
        let old = try! KubeVersion(strictRelease: "1.7.22")
        let new = try! KubeVersion(strictRelease: "1.7.24")
        let kubeadm = UpgradeForecast.stages(
            kind: .minor, notApplicable: KubeadmApt().notApplicable(_:),
            containerd: .needed(master: "master", from: old, to: new))
        #expect(kubeadm.allSatisfy { $0.runs })
        #expect(
            kubeadm.first { $0.stage == .containerd }?.reason
                == "master runs containerd 1.7.22, older than the workers' 1.7.24")
        let patch = UpgradeForecast.stages(
            kind: .patch, notApplicable: KubeadmApt().notApplicable(_:), containerd: .notNeeded("same"))
        #expect(
            patch.filter { !$0.runs }.map(\.reason) == ["same", "patch upgrade: the package sources stay as they are"])
    }

    @Test func containerdIsFixedOnlyWhenTheMasterIsOlderThanEveryWorker() throws {
        func node(_ name: String, _ runtime: String?) throws -> NodeFacts {
            var facts = NodeFacts(name: name, isControlPlane: name == "master", kubelet: nil)
            facts.containerd = try runtime.map { try KubeVersion(strictRelease: $0) }
            return facts
        }
        #expect(
            ContainerdFix.decide(
                master: try node("master", "1.7.22"), workers: [try node("w1", "1.7.24"), try node("w2", "1.7.27")])
                == .needed(
                    master: "master", from: try KubeVersion(strictRelease: "1.7.22"),
                    to: try KubeVersion(strictRelease: "1.7.24")))
        #expect(
            ContainerdFix.decide(master: try node("master", "1.7.24"), workers: [try node("w1", "1.7.24")])
                == .notNeeded("master runs containerd 1.7.24, not older than the workers' 1.7.24"))
        #expect(
            ContainerdFix.decide(master: try node("master", nil), workers: [])
                == .notNeeded("master does not report a containerd runtime"))
        #expect(
            ContainerdFix.decide(master: try node("master", "1.7.22"), workers: [try node("w1", nil)])
                == .notNeeded("the workers do not all report a containerd runtime"))
    }

    /// Ready only with a target, no failed check and every quorum gate passing.
    @Test func aForecastIsReadyOnlyWhenAJobWouldGetThrough() throws {
        var forecast = UpgradeForecast(
            distribution: "microk8s",
            nodes: [
                .init(
                    name: "cp-1", role: "control-plane", kubelet: "1.34.3", apiServer: "1.34.3", readiness: "Ready",
                    unschedulable: false)
            ],
            offered: "newest patch of 1.34: 1.34.5", decision: "nothing to do", why: "1.34.5 is current")
        #expect(!forecast.ready)
        #expect(forecast.lines.last == "target: none: 1.34.5 is current")
        forecast.target = (try KubeVersion(strictRelease: "1.34.5"), .patch)
        forecast.why = "asked for"
        forecast.preflight = [
            CheckResult("nodes ready", .passed, "all 1 Ready"), CheckResult("disk space", .warning, "low"),
        ]
        forecast.quorum = [.init(node: "cp-1", passes: true, verdict: "alone")]
        #expect(forecast.ready)
        #expect(forecast.lines.contains("target: 1.34.5 (patch): asked for"))
        #expect(forecast.lines.contains("  cp-1: passes: alone"))
        #expect(forecast.json[dotted: "lines"]?.arrayValue?.count == forecast.lines.count)
        forecast.quorum[0].passes = false
        #expect(!forecast.ready)
        #expect(forecast.lines.last == "not ready: a job would stop at the failed check above")
        forecast.quorum = []
        forecast.preflight.append(CheckResult("dqlite health", .failed, "no leader"))
        #expect(!forecast.ready)
    }
}

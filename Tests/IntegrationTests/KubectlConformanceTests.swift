import Foundation
import TestSupport
import Testing

/// The real kubectl is the judge: whatever it needs for get, cordon,
/// uncordon and drain, the simulator must serve, and the outcome is then
/// checked through the API.
@Suite("kubectl against the simulator")
struct KubectlConformanceTests {
    /// worker-1 carries every kind of pod drain must handle: a DaemonSet pod,
    /// a mirror (static) pod, an emptyDir pod, and two pods under a budget
    /// that allows one disruption at a time.
    static let drainScenario = """
        {
          "nodes": [
            {"name": "master", "roles": ["control-plane"], "kubeletVersion": "1.34.3"},
            {"name": "worker-1", "kubeletVersion": "1.34.3"},
            {"name": "worker-2", "kubeletVersion": "1.34.3"},
            {"name": "worker-3", "kubeletVersion": "1.34.3"}
          ],
          "workloads": [
            {"kind": "DaemonSet", "namespace": "kube-system", "name": "kube-proxy", "labels": {"k8s-app": "kube-proxy"}},
            {"kind": "ReplicaSet", "name": "web", "replicas": 4, "labels": {"app": "web"},
             "nodes": ["worker-1", "worker-1", "worker-2", "worker-3"]},
            {"kind": "ReplicaSet", "name": "cache", "replicas": 1, "labels": {"app": "cache"}, "emptyDir": true,
             "nodes": ["worker-1"]},
            {"kind": "Mirror", "namespace": "kube-system", "name": "static-agent", "labels": {"app": "agent"},
             "nodes": ["worker-1"]},
            {"kind": "Pod", "name": "lonely", "labels": {"app": "lonely"}, "nodes": ["worker-3"]}
          ],
          "budgets": [{"name": "web-pdb", "minAvailable": 3, "selector": {"app": "web"}}],
          "readyAfterSeconds": 1,
          "defaultGracePeriodSeconds": 1
        }
        """

    @Test func getNodesShowsStatusRolesAndVersions() async throws {
        let sim = try await SimulatorFixture.start()
        let result = try await sim.kubectl("get", "nodes")
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map {
            $0.split(separator: " ", omittingEmptySubsequences: true)
        }
        #expect(lines.first.map { $0.map(String.init) } == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"])
        #expect(lines.count == 6)
        #expect(lines.dropFirst().allSatisfy { $0[1] == "Ready" && $0[4] == "v1.34.3" })
        #expect(lines.dropFirst().first.map { [String($0[0]), String($0[2])] } == ["master", "control-plane"])

        let json = try await sim.kubectl("get", "nodes", "-o", "json")
        let list = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect((list?["items"] as? [Any])?.count == 5)
    }

    @Test func cordonAndUncordonAreSeenThroughTheAPI() async throws {
        let sim = try await SimulatorFixture.start()
        #expect(try await sim.kubectl("cordon", "worker-2").stdout == "node/worker-2 cordoned\n")
        var node = try await sim.json("/api/v1/nodes/worker-2")
        #expect((node["spec"] as? [String: Any])?["unschedulable"] as? Bool == true)
        #expect(try await sim.kubectl("cordon", "worker-2").stdout == "node/worker-2 already cordoned\n")
        #expect(try await sim.kubectl("get", "node", "worker-2").stdout.contains("Ready,SchedulingDisabled"))

        #expect(try await sim.kubectl("uncordon", "worker-2").stdout == "node/worker-2 uncordoned\n")
        node = try await sim.json("/api/v1/nodes/worker-2")
        #expect((node["spec"] as? [String: Any])?["unschedulable"] as? Bool != true)
        #expect(try await sim.kubectl("uncordon", "worker-2").stdout == "node/worker-2 already uncordoned\n")
    }

    @Test func drainHonoursFiltersAndDisruptionBudgets() async throws {
        let sim = try await SimulatorFixture.start(scenarioJSON: Self.drainScenario)
        let result = try await sim.kubectl(
            "drain", "worker-1", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout", "60s")
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("node/worker-1 drained"))
        // The second web pod hit the budget (429) and was retried by kubectl.
        #expect(result.stderr.contains("Cannot evict pod as it would violate the pod's disruption budget"))
        #expect(result.stderr.contains("will retry after 5s"))
        #expect(result.stderr.contains("ignoring DaemonSet-managed Pods: kube-system/kube-proxy-"))

        let left = try await sim.json("/api/v1/pods?fieldSelector=spec.nodeName%3Dworker-1")
        let names = ((left["items"] as? [[String: Any]]) ?? []).compactMap {
            ($0["metadata"] as? [String: Any])?["name"] as? String
        }
        #expect(names.count == 2)
        #expect(names.contains("static-agent"))
        #expect(names.contains { $0.hasPrefix("kube-proxy-") })

        let node = try await sim.json("/api/v1/nodes/worker-1")
        #expect((node["spec"] as? [String: Any])?["unschedulable"] as? Bool == true)

        // The ReplicaSet is back at strength elsewhere, and the budget is whole again.
        try await waitUntil("web has four Ready replicas") {
            let pods = try await sim.json("/api/v1/namespaces/default/pods?labelSelector=app%3Dweb")
            let items = (pods["items"] as? [[String: Any]]) ?? []
            let ready = items.filter { pod in
                let conditions = ((pod["status"] as? [String: Any])?["conditions"] as? [[String: Any]]) ?? []
                return conditions.contains { $0["type"] as? String == "Ready" && $0["status"] as? String == "True" }
                    && (pod["spec"] as? [String: Any])?["nodeName"] as? String != "worker-1"
                    && (pod["metadata"] as? [String: Any])?["deletionTimestamp"] == nil
            }
            return ready.count == 4
        }
    }

    @Test func drainWithoutConsentFlagsRefusesAndEvictsNothing() async throws {
        let sim = try await SimulatorFixture.start(scenarioJSON: Self.drainScenario)
        let before = try await sim.json("/api/v1/pods?fieldSelector=spec.nodeName%3Dworker-1")
        let result = try await sim.kubectl("drain", "worker-1", "--timeout", "20s")
        #expect(result.status != 0)
        #expect(result.stderr.contains("DaemonSet-managed Pods (use --ignore-daemonsets to ignore)"))
        #expect(result.stderr.contains("Pods with local storage (use --delete-emptydir-data to override)"))
        let after = try await sim.json("/api/v1/pods?fieldSelector=spec.nodeName%3Dworker-1")
        #expect((after["items"] as? [Any])?.count == (before["items"] as? [Any])?.count)

        let unreplicated = try await sim.kubectl("drain", "worker-3", "--ignore-daemonsets", "--timeout", "20s")
        #expect(unreplicated.status != 0)
        #expect(unreplicated.stderr.contains("Pods that declare no controller (use --force to override)"))
    }

    /// `kubectl drain --dry-run=server` asks every question a drain asks
    /// (cordon, each eviction under its budget) with `dryRun=All`: the API
    /// answers each as it would, and nothing changes. A dry-run eviction
    /// does not spend the budget, so both web pods are allowed; once the
    /// budget allows none, the API refuses them and kubectl gives up at its
    /// timeout, still changing nothing.
    @Test func aServerDryRunDrainIsAnsweredAsARealOneAndChangesNothing() async throws {
        let sim = try await SimulatorFixture.start(scenarioJSON: Self.drainScenario)
        func state() async throws -> [String] {
            let pods = try await sim.json("/api/v1/pods")
            let node = try await sim.json("/api/v1/nodes/worker-1")
            let budget = try await sim.json("/apis/policy/v1/namespaces/default/poddisruptionbudgets/web-pdb")
            let names = ((pods["items"] as? [[String: Any]]) ?? []).compactMap {
                ($0["metadata"] as? [String: Any])?["name"] as? String
            }
            let status = budget["status"] as? [String: Any]
            return names.sorted() + [
                "unschedulable=\((node["spec"] as? [String: Any])?["unschedulable"] as? Bool ?? false)",
                "allowed=\(status?["disruptionsAllowed"] as? Int ?? -1)",
                "disrupted=\((status?["disruptedPods"] as? [String: Any])?.count ?? 0)",
            ]
        }
        let before = try await state()
        #expect(before.contains("allowed=1"), "\(before)")
        let result = try await sim.kubectl(
            "drain", "worker-1", "--ignore-daemonsets", "--delete-emptydir-data", "--dry-run=server", "--timeout",
            "20s")
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("node/worker-1 cordoned (server dry run)"), "\(result.stdout)")
        #expect(
            result.stdout.split(separator: "\n").filter {
                $0.hasPrefix("evicting pod default/web-") && $0.hasSuffix("(server dry run)")
            }.count == 2, "\(result.stdout)")
        #expect(result.stdout.contains("node/worker-1 drained (server dry run)"), "\(result.stdout)")
        #expect(!result.stderr.contains("disruption budget"), "\(result.stderr)")
        #expect(try await state() == before)

        let patch = #"{"spec":{"minAvailable":4}}"#
        let patched = try await sim.request(
            "PATCH", "/apis/policy/v1/namespaces/default/poddisruptionbudgets/web-pdb", body: patch,
            contentType: "application/merge-patch+json")
        #expect(patched.status == 200)
        try await waitUntil("web-pdb allows no disruption") {
            try await state().contains("allowed=0")
        }
        let blocked = try await state()
        let refused = try await sim.kubectl(
            "drain", "worker-1", "--ignore-daemonsets", "--delete-emptydir-data", "--dry-run=server", "--timeout",
            "2s")
        #expect(refused.status != 0)
        #expect(
            refused.stderr.contains("Cannot evict pod as it would violate the pod's disruption budget"),
            "\(refused.stderr)")
        #expect(try await state() == blocked)

        // A value the API does not know is refused, and changes nothing.
        let bogus = try await sim.request(
            "PATCH", "/api/v1/nodes/worker-1?dryRun=Everything", body: #"{"spec":{"unschedulable":true}}"#,
            contentType: "application/merge-patch+json")
        #expect(bogus.status == 422)
        #expect(try await state() == blocked)
    }

    @Test func kubeletReportingANewVersionShowsInGetNodes() async throws {
        let sim = try await SimulatorFixture.start()
        let patch = #"{"status":{"nodeInfo":{"kubeletVersion":"v1.34.5"}}}"#
        let response = try await sim.request(
            "PATCH", "/api/v1/nodes/worker-3/status", body: patch, contentType: "application/strategic-merge-patch+json"
        )
        #expect(response.status == 200)
        let line = try await sim.kubectl("get", "node", "worker-3", "--no-headers").stdout
        #expect(line.contains("v1.34.5"))
        #expect(line.contains("Ready"))
    }
}

/// Polls `condition` every 200 ms for up to `seconds`; past them, records
/// an issue and lets the test go on.
func waitUntil(_ what: String, seconds: Double = 15, _ condition: () async throws -> Bool) async throws {
    do {
        try await poll(
            until: what, within: .milliseconds(Int(seconds * 1000)), every: .milliseconds(200), condition)
    } catch let timedOut as PollTimedOut {
        Issue.record("\(timedOut)")
    }
}

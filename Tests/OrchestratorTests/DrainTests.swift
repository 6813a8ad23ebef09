import Foundation
import Shared
import SharedIO
import TestSupport
import Testing

@testable import Orchestrator

/// The drain against the API simulator, its deadline and pauses on a clock
/// that moves only when the drain sleeps: a 10-minute drain timeout runs in
/// about a second. (No real-time bound is asserted: a loaded machine would
/// make it flaky; the time the clock was moved proves where it waited.)
@Suite struct DrainTests {
    static let scenario = """
        {"nodes":[{"name":"master","roles":["control-plane"],"kubeletVersion":"1.34.3"},
                  {"name":"worker-1","kubeletVersion":"1.34.3"}],
         "workloads":[{"kind":"ReplicaSet","name":"db","replicas":1,"labels":{"app":"db"},"nodes":["worker-1"]}],
         "budgets":[{"name":"db-pdb","minAvailable":1,"selector":{"app":"db"}}]}
        """

    @Test func aBudgetThatNeverAllowsTheEvictionTimesTheDrainOutNamingItsPod() async throws {
        let simulator = try await SimulatorFixture.start(scenarioJSON: Self.scenario)
        defer { withExtendedLifetime(simulator) {} }
        let access = try KubernetesAccess.resolve(kubeconfig: simulator.kubeconfig)
        let cluster = Cluster(
            client: KubernetesClient(access: access), annotationPrefix: "k8s-upgrade.io", namespace: "k8s-upgrade")
        let clock = SteppingJobClock()
        var drainer = Drainer(cluster: cluster)
        drainer.clock = clock
        let refusals = RefusalLog()
        await #expect {
            _ = try await drainer.drain("worker-1", checkpoint: {}) { await refusals.add($0) }
        } throws: { error in
            guard let timeout = error as? DrainTimeout else { return false }
            return timeout.held.count == 1 && timeout.held[0].pod.hasPrefix("default/db-")
                && timeout.held[0].budget == "default/db-pdb"
                && timeout.description.hasPrefix(
                    "drain of worker-1 timed out after 10 min; still on the node: default/db-")
        }
        #expect(clock.slept >= .seconds(600) && clock.slept < .seconds(606), "\(clock.slept)")
        // The 429 is told once, however many times the eviction was retried.
        let told = await refusals.messages
        #expect(told.count == 1, "\(told)")
        #expect(told.first?.contains("The disruption budget db-pdb needs 1 healthy pods and has 1 currently") == true)
    }
}

actor RefusalLog {
    private(set) var messages: [String] = []
    func add(_ message: String) { messages.append(message) }
}

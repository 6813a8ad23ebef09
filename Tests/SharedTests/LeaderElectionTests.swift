import Shared
import Testing

@Suite("leader election: who may touch the jobs")
struct LeaderElectionTests {
    static let election = LeaderElection(identity: "k8s-upgrade-7c6d9f8b4-new", leaseDuration: 30)

    static func held(by holder: String, transitions: Int = 2) -> LeaderElection.Record {
        LeaderElection.Record(holder: holder, transitions: transitions, resourceVersion: "41")
    }

    @Test(
        "decisions from the lease, how long it went unchanged and whether its holder's pod exists",
        arguments: [
            (nil, 0.0, nil, LeaderElection.Decision.create),
            (held(by: "k8s-upgrade-7c6d9f8b4-new"), 0, true, .renew),
            (held(by: ""), 0, nil, .take(transitions: 3, why: "released")),
            (held(by: "k8s-upgrade-7c6d9f8b4-old"), 0, true, .wait(holder: "k8s-upgrade-7c6d9f8b4-old")),
            (held(by: "k8s-upgrade-7c6d9f8b4-old"), 29.9, true, .wait(holder: "k8s-upgrade-7c6d9f8b4-old")),
            (held(by: "k8s-upgrade-7c6d9f8b4-old"), 29.9, nil, .wait(holder: "k8s-upgrade-7c6d9f8b4-old")),
            (
                held(by: "k8s-upgrade-7c6d9f8b4-old"), 30, true,
                .take(transitions: 3, why: "its holder k8s-upgrade-7c6d9f8b4-old did not renew it for 30 s")
            ),
            (
                held(by: "k8s-upgrade-7c6d9f8b4-old"), 0, false,
                .take(transitions: 3, why: "its holder k8s-upgrade-7c6d9f8b4-old is gone")
            ),
        ] as [(LeaderElection.Record?, Double, Bool?, LeaderElection.Decision)])
    func decide(
        record: LeaderElection.Record?, unchangedFor: Double, podExists: Bool?, expected: LeaderElection.Decision
    ) {
        #expect(
            Self.election.decide(record, firstSeenAt: 1000, now: 1000 + unchangedFor, holderPodExists: podExists)
                == expected)
    }
}

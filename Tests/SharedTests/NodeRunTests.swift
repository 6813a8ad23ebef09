import Shared
import Testing

@Suite("node runs: IDs, re-attach arguments, the follower's announcements")
struct NodeRunTests {
    @Test(arguments: [
        (Int64(7), "worker-1.34.5", "worker-1", "job-7-worker-1.34.5-worker-1"),
        (
            Int64(12), "repo-1.35", "ip-10-0-0-5.eu-west-1.compute.internal",
            "job-12-repo-1.35-ip-10-0-0-5.eu-west-1.compute.internal"
        ),
        (Int64(3), "containerd-1.7.27", "node_a b", "job-3-containerd-1.7.27-node_a_b"),
    ])
    func anIDIsTheJobThePurposeAndTheNodeInTheScriptsCharacters(
        job: Int64, purpose: String, node: String, expected: String
    ) {
        #expect(NodeRun.id(job: job, purpose: purpose, node: node) == expected)
    }

    @Test func aLongIDKeepsItsStartAndAChecksumOfTheWhole() {
        let long = String(repeating: "a", count: 200)
        let first = NodeRun.id(job: 1, purpose: "worker-1.34.5", node: long)
        let second = NodeRun.id(job: 1, purpose: "worker-1.34.5", node: long + "b")
        #expect(first.count == 128 && second.count == 128)
        #expect(first.hasPrefix("job-1-worker-1.34.5-aaaa"))
        #expect(first != second)
        #expect(first == NodeRun.id(job: 1, purpose: "worker-1.34.5", node: long))
    }

    @Test func startingAndReattachingArguments() {
        #expect(NodeRun.arguments(id: "job-1-x", reattachingFrom: nil) == ["--run-id", "job-1-x"])
        #expect(
            NodeRun.arguments(id: "job-1-x", reattachingFrom: NodeRun.Position(attempt: 2, lines: 41))
                == ["--run-id", "job-1-x", "--from", "2:41"])
    }

    @Test(
        arguments: [
            ("update_k8s.sh: following run job-1-worker-1.34.5-worker-1, attempt 3", 3),
            ("update_k8s.sh: following run job-1-x, attempt 12", 12),
            ("update_k8s.sh: re-attaching to run job-1-x: attempt 1 is still running", nil),
            ("==> following run job-1-x, attempt 3", nil),
            ("update_k8s.sh: following run job-1-x, attempt three", nil),
        ] as [(String, Int?)])
    func theFollowerAnnouncesItsAttempt(line: String, attempt: Int?) {
        #expect(NodeRun.attempt(announcedIn: line) == attempt)
    }

    @Test func aFailureIsSummedUpByTheScriptsOwnErrorElseItsLastLines() {
        let own =
            "==> resolving 1.34.9\nupdate_k8s.sh: release 1.34.9 is not in the configured repository:\nkubeadm | 1.34.5-1.1 | x\n"
        #expect(
            NodeRun.failureSummary(log: own) == "update_k8s.sh: release 1.34.9 is not in the configured repository:")
        let apt = "==> installing kubeadm\n+ apt-get install\nE: Could not get lock\nE: Unable to acquire\n\n"
        #expect(NodeRun.failureSummary(log: apt) == "+ apt-get install | E: Could not get lock | E: Unable to acquire")
        #expect(NodeRun.failureSummary(log: "") == "(no output)")
        // Nothing logged (the run never started): the session's notes say why.
        #expect(
            NodeRun.failureSummary(
                log: "", notes: "update_k8s.sh: another session holds /var/lib/k8s-upgrade/runs/.lock\n")
                == "update_k8s.sh: another session holds /var/lib/k8s-upgrade/runs/.lock")
    }

    @Test(
        arguments: [
            // nothing announced (the session broke at once): where it was
            (NodeRun.Position(attempt: 1, lines: 4), nil, 0, NodeRun.Position(attempt: 1, lines: 4)),
            (nil, nil, 0, nil),
            // the first session: its attempt, however its lines and the announcement interleaved
            (nil, 1, 7, NodeRun.Position(attempt: 1, lines: 7)),
            // re-attached to the same attempt: further on
            (NodeRun.Position(attempt: 1, lines: 7), 1, 5, NodeRun.Position(attempt: 1, lines: 12)),
            // a new attempt was started: its own lines from 0
            (NodeRun.Position(attempt: 1, lines: 7), 2, 3, NodeRun.Position(attempt: 2, lines: 3)),
        ] as [(NodeRun.Position?, Int?, Int, NodeRun.Position?)])
    func aSessionMovesTheFollowersPosition(
        previous: NodeRun.Position?, announced: Int?, lines: Int, expected: NodeRun.Position?
    ) {
        #expect(NodeRun.position(after: previous, announced: announced, lines: lines) == expected)
    }
}

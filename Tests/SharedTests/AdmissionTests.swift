import Testing

@testable import Shared

/// `POST /execute` judged against the live cluster (``ExecuteAdmission``).
@Suite struct AdmissionTests {
    private static func v(_ text: String) -> KubeVersion { try! KubeVersion(parsing: text) }

    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        var apiServers = ["1.34.3"]
        var kubelets = ["1.34.3", "1.34.3"]
        let target: String
        let kind: UpgradeKind
        var policy = DetectionPolicy(allowMinor: true)
        var cordonedByUs = false
        /// `nil`: accepted; "=…": nothing to do containing the text; else refused containing it.
        let expected: String?
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "a K3s rebuild of the running release", apiServers: ["v1.34.5+k3s1"],
            kubelets: ["v1.34.5+k3s1", "v1.34.5+k3s1"], target: "1.34.5+k3s2", kind: .patch, expected: nil),
        Case(
            name: "a K3s cluster at its K3s target", apiServers: ["v1.34.5+k3s2"], kubelets: ["v1.34.5+k3s2"],
            target: "1.34.5+k3s2", kind: .patch, expected: "=already runs 1.34.5+k3s2"),
        Case(
            name: "an older K3s build", apiServers: ["v1.34.5+k3s2"], kubelets: ["v1.34.5+k3s2"],
            target: "1.34.5+k3s1", kind: .patch, expected: "downgrades are not supported"),
        Case(
            name: "a K3s cluster sent a plain release", apiServers: ["v1.34.5+k3s1"], kubelets: ["v1.34.5+k3s1"],
            target: "1.34.6", kind: .patch,
            expected: "runs the K3s release 1.34.5+k3s1: name a K3s release as the target, like 1.34.6+k3s1"),
        Case(
            name: "a K3s release sent to kubeadm", target: "1.34.5+k3s1", kind: .patch,
            expected: "1.34.5+k3s1 is a K3s release, but kubelet on node-0 runs 1.34.3, which is not K3s"),
        Case(
            name: "a K3s minor", apiServers: ["v1.34.5+k3s1"], kubelets: ["v1.34.5+k3s1"], target: "1.35.2+k3s1",
            kind: .minor, expected: nil),
        Case(name: "the newest patch as a patch", target: "1.34.5", kind: .patch, expected: nil),
        Case(
            name: "the newest patch sent as a minor", target: "1.34.5", kind: .minor,
            expected: "1.34.5 is a patch of 1.34, the minor the cluster runs: send kind patch"),
        Case(
            name: "the next minor sent as a patch", target: "1.35.2", kind: .patch,
            expected: "1.35.2 is a minor upgrade from 1.34.3 (the oldest version running): send kind minor"),
        Case(name: "the next minor as a minor", target: "1.35.2", kind: .minor, expected: nil),
        Case(
            name: "a minor the policy forbids", target: "1.35.2", kind: .minor, policy: DetectionPolicy(),
            expected: "minor upgrades are not allowed by this server's policy (--allow-minor false)"),
        Case(
            name: "a minor below the minimum patch", target: "1.35.1", kind: .minor,
            policy: DetectionPolicy(allowMinor: true, minimumMinorPatch: 2),
            expected: "1.35.1 is below this server's --minor-min-patch 2: the minor waits for 1.35.2"),
        Case(
            name: "the minimum patch itself", target: "1.35.2", kind: .minor,
            policy: DetectionPolicy(allowMinor: true, minimumMinorPatch: 2), expected: nil),
        Case(
            name: "the policy does not bind patches", target: "1.34.5", kind: .patch, policy: DetectionPolicy(),
            expected: nil),
        Case(name: "two minors ahead", target: "1.36.0", kind: .minor, expected: "skips a minor"),
        Case(name: "a downgrade", target: "1.34.2", kind: .patch, expected: "downgrades are not supported"),
        Case(
            name: "everything at target", apiServers: ["1.34.5"], kubelets: ["1.34.5"], target: "1.34.5",
            kind: .patch, expected: "=every API server and kubelet already runs 1.34.5; nothing to do"),
        Case(
            name: "at target, whatever the kind", apiServers: ["1.34.5"], kubelets: ["1.34.5"], target: "1.34.5",
            kind: .minor, expected: "=already runs 1.34.5"),
        Case(
            name: "at target but a node left cordoned by this tool", apiServers: ["1.34.5"],
            kubelets: ["1.34.5", "1.34.5"],
            target: "1.34.5", kind: .patch, cordonedByUs: true, expected: nil),
        Case(
            name: "a minor left half-done: workers still on the old minor", apiServers: ["1.35.2"],
            kubelets: ["1.35.2", "1.34.5"], target: "1.35.2", kind: .minor, expected: nil),
        Case(
            name: "the same, sent as a patch", apiServers: ["1.35.2"], kubelets: ["1.35.2", "1.34.5"],
            target: "1.35.2", kind: .patch, expected: "send kind minor"),
        Case(
            name: "HA mid-minor", apiServers: ["1.35.2", "1.34.5", "1.34.5"], kubelets: ["1.34.5"], target: "1.35.2",
            kind: .minor, expected: nil),
        Case(
            name: "a kubelet that would skip a minor", apiServers: ["1.34.5"], kubelets: ["1.34.5", "1.33.2"],
            target: "1.35.2", kind: .minor,
            expected: "kubelet on node-1 runs 1.33.2, more than one minor behind 1.35.2; "
                + "kubelets are upgraded one minor at a time: move it to 1.34 first"),
        Case(
            name: "a trailing kubelet makes the patch a minor for it", apiServers: ["1.34.5"],
            kubelets: ["1.34.5", "1.33.2"], target: "1.34.6", kind: .patch, expected: "send kind minor"),
        Case(
            name: "no API server version", apiServers: [], target: "1.34.5", kind: .patch,
            expected: "the API server version is unknown"),
        Case(name: "a pre-release", target: "1.35.0-rc.1", kind: .minor, expected: "is a pre-release"),
    ]

    @Test(arguments: cases)
    func judge(_ test: Case) {
        let nodes = test.kubelets.enumerated().map { index, version in
            NodeFacts(
                name: "node-\(index)", isControlPlane: index == 0, kubelet: Self.v(version),
                unschedulable: test.cordonedByUs && index == 1,
                cordonedBy: test.cordonedByUs && index == 1 ? "job-1" : nil)
        }
        let request = ExecuteRequest(targetVersion: Self.v(test.target), kind: test.kind)
        let verdict = ExecuteAdmission.judge(
            request, apiServers: test.apiServers.map(Self.v), nodes: nodes, policy: test.policy)
        switch (test.expected, verdict) {
        case (nil, .accepted): break
        case let (expected?, .nothingToDo(reason)) where expected.hasPrefix("="):
            #expect(reason.contains(expected.dropFirst()), "\(reason)")
        case let (expected?, .refused(reason)) where !expected.hasPrefix("="):
            #expect(reason.contains(expected), "\(reason)")
        default: Issue.record("expected \(test.expected ?? "accepted"), got \(verdict)")
        }
    }

    @Test func anUnreadableKubeletIsRefusedByName() {
        let nodes = [NodeFacts(name: "master", isControlPlane: true, kubelet: nil)]
        let verdict = ExecuteAdmission.judge(
            ExecuteRequest(targetVersion: Self.v("1.34.5"), kind: .patch), apiServers: [Self.v("1.34.3")],
            nodes: nodes, policy: DetectionPolicy())
        #expect(verdict == .refused("unreadable kubelet version on master"))
    }
}

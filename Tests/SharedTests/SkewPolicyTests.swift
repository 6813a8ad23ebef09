import Testing

@testable import Shared

@Suite struct SkewPolicyTests {
    private static func v(_ text: String) -> KubeVersion { try! KubeVersion(parsing: text) }

    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let apiServers: [String]
        let kubelets: [String]
        let target: String
        let expected: SkewVerdict
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "patch in the same minor", apiServers: ["1.34.3"], kubelets: ["1.34.3", "1.34.3"], target: "1.34.5",
            expected: .allowed(.patch)),
        Case(
            name: "next minor", apiServers: ["1.34.5"], kubelets: ["1.34.5", "1.33.2"], target: "1.35.2",
            expected: .allowed(.minor)),
        Case(
            name: "resume after the control plane moved", apiServers: ["1.35.2"], kubelets: ["1.35.2", "1.34.5"],
            target: "1.35.2", expected: .allowed(.patch)),
        Case(
            name: "HA mid-minor", apiServers: ["1.35.2", "1.34.5", "1.34.5"], kubelets: ["1.34.5"], target: "1.35.2",
            expected: .allowed(.minor)),
        Case(
            name: "everything at target", apiServers: ["v1.34.5"], kubelets: ["v1.34.5", "1.34.5-1.1"],
            target: "1.34.5",
            expected: .alreadyAtTarget),
        Case(
            name: "downgrade", apiServers: ["1.34.5"], kubelets: ["1.34.5"], target: "1.34.3",
            expected: .refused([
                .downgrade(from: v("1.34.5"), to: v("1.34.3")),
                .kubeletNewerThanAPIServer(node: "node-0", kubelet: v("1.34.5"), apiServer: v("1.34.3")),
            ])),
        Case(
            name: "minor skip", apiServers: ["1.33.9"], kubelets: ["1.33.9"], target: "1.35.0",
            expected: .refused([.skipsMinor(from: v("1.33.9"), to: v("1.35.0"))])),
        Case(
            name: "major change", apiServers: ["1.34.5"], kubelets: [], target: "2.0.0",
            expected: .refused([.majorChange(from: v("1.34.5"), to: v("2.0.0"))])),
        Case(
            name: "kubelet ahead of the target", apiServers: ["1.34.3"], kubelets: ["1.34.6"], target: "1.34.5",
            expected: .refused([
                .kubeletNewerThanAPIServer(node: "node-0", kubelet: v("1.34.6"), apiServer: v("1.34.5"))
            ])),
        Case(
            name: "kubelet would trail by four minors", apiServers: ["1.34.5"], kubelets: ["1.31.9"], target: "1.35.0",
            expected: .refused([.kubeletTooOld(node: "node-0", kubelet: v("1.31.9"), apiServer: v("1.35.0"))])),
        Case(
            name: "kubelet trailing by three is fine", apiServers: ["1.34.5"], kubelets: ["1.32.1"], target: "1.35.0",
            expected: .allowed(.minor)),
        Case(
            name: "API servers two minors apart", apiServers: ["1.33.1", "1.35.0"], kubelets: [], target: "1.35.0",
            expected: .refused([
                .apiServersTooFarApart(oldest: v("1.33.1"), newest: v("1.35.0")),
                .skipsMinor(from: v("1.33.1"), to: v("1.35.0")),
            ])),
        Case(
            name: "pre-release", apiServers: ["1.34.5"], kubelets: [], target: "1.35.0-rc.1",
            expected: .refused([.preRelease(v("1.35.0-rc.1"))])),
        Case(
            name: "no API server", apiServers: [], kubelets: ["1.34.5"], target: "1.34.6",
            expected: .refused([.unknownAPIServerVersion])),
    ]

    @Test(arguments: cases)
    func clusterUpgrade(_ c: Case) {
        let kubelets = c.kubelets.enumerated().map { (node: "node-\($0.offset)", version: Self.v($0.element)) }
        let verdict = SkewPolicy.evaluateClusterUpgrade(
            apiServers: c.apiServers.map(Self.v), kubelets: kubelets, to: Self.v(c.target))
        #expect(verdict == c.expected)
        if case .refused(let reasons) = verdict {
            #expect(!reasons.isEmpty)
            #expect(!verdict.isAllowed)
            #expect(verdict.description.hasPrefix("refused: "))
        }
    }

    @Test(arguments: [
        ("1.34.3", "1.34.5", ["1.34.5"], SkewVerdict.allowed(.patch)),
        ("1.34.5", "1.35.2", ["1.35.2"], .allowed(.minor)),
        ("1.34.5", "1.34.5", ["1.34.5"], .alreadyAtTarget),
        (
            "1.34.3", "1.34.5", ["1.34.3"],
            .refused([.kubeletNewerThanAPIServer(node: "w1", kubelet: v("1.34.5"), apiServer: v("1.34.3"))])
        ),
        (
            "1.34.5", "1.35.2", ["1.35.2", "1.34.5"],
            .refused([.kubeletNewerThanAPIServer(node: "w1", kubelet: v("1.35.2"), apiServer: v("1.34.5"))])
        ),
        ("1.34.5", "1.34.3", ["1.34.5"], .refused([.downgrade(from: v("1.34.5"), to: v("1.34.3"))])),
        (
            "1.30.1", "1.31.0", ["1.35.0"],
            .refused([.kubeletTooOld(node: "w1", kubelet: v("1.31.0"), apiServer: v("1.35.0"))])
        ),
        ("1.34.5", "1.34.6", [], .refused([.unknownAPIServerVersion])),
    ])
    func kubeletUpgrade(current: String, target: String, apiServers: [String], expected: SkewVerdict) {
        let verdict = SkewPolicy.evaluateKubeletUpgrade(
            node: "w1", from: Self.v(current), to: Self.v(target), apiServers: apiServers.map(Self.v))
        #expect(verdict == expected)
    }

    @Test func violationsExplainThemselves() {
        let text = SkewViolation.skipsMinor(from: Self.v("1.33.9"), to: Self.v("1.35.0")).description
        #expect(text == "1.33.9 → 1.35.0 skips a minor; kubeadm can upgrade only one minor at a time")
        #expect(
            SkewViolation.kubeletNewerThanAPIServer(node: "w1", kubelet: Self.v("1.35.0"), apiServer: Self.v("1.34.5"))
                .description.contains("w1"))
    }
}

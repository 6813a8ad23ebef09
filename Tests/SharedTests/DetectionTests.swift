import Testing

@testable import Shared

@Suite struct DetectionTests {
    private static func v(_ text: String) -> KubeVersion { try! KubeVersion(parsing: text) }

    private static func uniform(_ version: String, nodes: Int = 3) -> RunningVersions {
        RunningVersions(
            apiServer: v(version),
            kubelets: Dictionary(uniqueKeysWithValues: (0..<nodes).map { ("n\($0)", v(version)) }))
    }

    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let running: RunningVersions
        let newestPatch: String?
        let nextMinor: NextMinor
        let policy: DetectionPolicy
        let expected: Decision
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "patch first, even with a minor allowed", running: uniform("1.34.3"), newestPatch: "1.34.5",
            nextMinor: .published(newest: v("1.35.2")), policy: DetectionPolicy(allowMinor: true),
            expected: .patch(to: v("1.34.5"))),
        Case(
            name: "minor when current and allowed", running: uniform("1.34.5"), newestPatch: "1.34.5",
            nextMinor: .published(newest: v("1.35.2")), policy: DetectionPolicy(allowMinor: true),
            expected: .minor(to: v("1.35.2"))),
        Case(
            name: "minor not allowed", running: uniform("1.34.5"), newestPatch: "1.34.5",
            nextMinor: .published(newest: v("1.35.2")), policy: DetectionPolicy(allowMinor: false),
            expected: .nothing(reason: "1.34.5 is the newest patch; minor 1.35.2 available but not allowed")),
        Case(
            name: "minor not mature yet", running: uniform("1.34.5"), newestPatch: "1.34.5",
            nextMinor: .published(newest: v("1.35.1")), policy: DetectionPolicy(allowMinor: true, minimumMinorPatch: 2),
            expected: .nothing(reason: "1.34.5 is the newest patch; minor 1.35.1 waits for patch 1.35.2")),
        Case(
            name: "minor just mature", running: uniform("1.34.5"), newestPatch: "1.34.5",
            nextMinor: .published(newest: v("1.35.2")), policy: DetectionPolicy(allowMinor: true, minimumMinorPatch: 2),
            expected: .minor(to: v("1.35.2"))),
        Case(
            name: "already current", running: uniform("1.35.2"), newestPatch: "1.35.2",
            nextMinor: .notPublished(v("1.36.0")), policy: DetectionPolicy(allowMinor: true),
            expected: .nothing(reason: "1.35.2 is the newest patch; 1.36 is not published")),
        Case(
            name: "never two minors ahead", running: uniform("1.34.5"), newestPatch: "1.34.5",
            nextMinor: .published(newest: v("1.36.0")), policy: DetectionPolicy(allowMinor: true),
            expected: .nothing(reason: "1.34.5 is the newest patch; 1.36.0 is not the next minor")),
        Case(
            name: "madison newest in another minor is no patch", running: uniform("1.34.5"), newestPatch: "1.35.0",
            nextMinor: .notPublished(v("1.35.0")), policy: DetectionPolicy(),
            expected: .nothing(reason: "1.34.5 is the newest patch; 1.35 is not published")),
        Case(
            name: "mid-upgrade",
            running: RunningVersions(apiServer: v("1.34.5"), kubelets: ["a": v("1.34.5"), "b": v("1.34.3")]),
            newestPatch: "1.34.5", nextMinor: .notPublished(v("1.35.0")), policy: DetectionPolicy(),
            expected: .midUpgrade(releases: [v("1.34.3"), v("1.34.5")])),
        Case(
            name: "suffixes do not make a mixed cluster",
            running: RunningVersions(apiServer: v("v1.34.3"), kubelets: ["a": v("v1.34.3"), "b": v("1.34.3-1.1")]),
            newestPatch: "1.34.3", nextMinor: .notPublished(v("1.35.0")), policy: DetectionPolicy(),
            expected: .nothing(reason: "1.34.3 is the newest patch; 1.35 is not published")),
    ]

    @Test(arguments: cases)
    func decides(_ c: Case) {
        let decision = Detector.decide(
            running: c.running, newestPatch: c.newestPatch.map(Self.v), nextMinor: c.nextMinor, policy: c.policy)
        #expect(decision == c.expected)
    }

    @Test func metricsClaimOnlyWhatExists() {
        let running = Self.v("1.34.3")
        let text = DetectionMetrics.render(
            decision: .patch(to: Self.v("1.34.5")), running: running, newestPatch: Self.v("1.34.5"),
            nextMinor: .published(newest: Self.v("1.35.2")), timestamp: 1_700_000_000)
        #expect(text.contains(#"k8s_upgrade_available{kind="patch",running="1.34.3",target="1.34.5"} 1"#))
        #expect(text.contains(#"k8s_upgrade_available{kind="minor",running="1.34.3",target="1.35.2"} 1"#))
        #expect(text.contains("# TYPE k8s_upgrade_available gauge"))
        #expect(text.contains("k8s_version_check_last_run_timestamp 1700000000"))
        #expect(text.hasSuffix("\n"))
        let current = DetectionMetrics.render(
            decision: .nothing(reason: ""), running: Self.v("1.35.2"), newestPatch: Self.v("1.35.2"),
            nextMinor: .notPublished(Self.v("1.36.0")), timestamp: 1)
        #expect(!current.contains("k8s_upgrade_available{"))
        #expect(!DetectionMetrics.renderFailure(timestamp: 1).contains("k8s_upgrade_available"))
        #expect(DetectionMetrics.renderFailure(timestamp: 1).contains("k8s_version_check_failed 1"))
    }

    @Test func summaryLine() {
        let line = DetectionSummary.line(
            running: Self.uniform("1.34.3"), newestPatch: Self.v("1.34.5-1.1"),
            nextMinor: .published(newest: Self.v("1.35.2")),
            policy: DetectionPolicy(), outcome: "dispatched patch → 1.34.5, job 7")
        #expect(
            line
                == "running 1.34.3, newest patch 1.34.5, next minor 1.35.2 available (not allowed), dispatched patch → 1.34.5, job 7"
        )
    }
}

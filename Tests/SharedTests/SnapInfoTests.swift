import Shared
import Testing

/// `snap info microk8s`, as snapd prints it without a terminal (a real
/// capture, REFERENCE.md §7.1): what the MicroK8s distribution reads to
/// find the newest patch of a minor and whether the next minor is out.
@Suite struct SnapInfoTests {
    static let capture = """
        name:      microk8s
        summary:   Kubernetes for workstations and appliances
        publisher: Canonical**
        store-url: https://snapcraft.io/microk8s
        license:   Apache-2.0
        description: |
          MicroK8s is a small, fast, secure, certified Kubernetes distribution that
          installs on just about any Linux box.
        commands:
          - microk8s.kubectl
        services:
          microk8s.daemon-kubelite: simple, enabled, active
        snap-id:      EaXqgt1lyCaxKaQCU349mlodBkDCXRcg
        tracking:     1.33/stable
        refresh-date: yesterday at 00:30 EDT
        channels:
          1.32/stable:           v1.32.9  2025-10-14 (8511) 172MB classic
          latest/stable:         v1.34.1  2025-10-14 (8492) 184MB classic
          1.34-strict/stable:    v1.34.1  2025-10-16 (8447) 184MB -
          1.34/stable:           v1.34.1  2025-10-14 (8491) 184MB classic
          1.34/candidate:        v1.34.1  2025-10-10 (8491) 184MB classic
          1.33/stable:           v1.33.5  2025-10-14 (8507) 177MB classic
          1.23/candidate:        ^
          1.23/beta:             ↑
          1.22/stable:           --
          1.13/stable:           v1.13.6  2019-06-06  (581) 237MB classic
        installed:               v1.33.4             (8400) 177MB classic
        """

    @Test func channelsTrackingAndTheInstalledRelease() throws {
        let info = SnapInfo(parsing: Self.capture)
        #expect(info.problems.isEmpty, "\(info.problems)")
        #expect(info.tracking == "1.33/stable")
        #expect(info.installed == KubeVersion(major: 1, minor: 33, patch: 4))
        #expect(info.channels.count == 10)
        #expect(
            info.channels.first
                == .init(name: "1.32/stable", version: KubeVersion(major: 1, minor: 32, patch: 9), revision: 8511))
        #expect(info.channels.last?.revision == 581)
        #expect(
            info.channels.filter { $0.version == nil }.map(\.name) == ["1.23/candidate", "1.23/beta", "1.22/stable"])
    }

    /// The newest patch of the running minor is its `/stable` channel's; the
    /// next minor is out when its `/stable` channel is open (not the
    /// strict or latest tracks, nor a candidate).
    @Test func aMinorsStableChannelSaysItsNewestPatch() throws {
        let info = SnapInfo(parsing: Self.capture)
        let running = KubeVersion(major: 1, minor: 33, patch: 4)
        #expect(info.stable(of: running) == KubeVersion(major: 1, minor: 33, patch: 5))
        #expect(info.stable(of: running.nextMinor) == KubeVersion(major: 1, minor: 34, patch: 1), "1.34/stable is open")
        #expect(info.stable(of: KubeVersion(major: 1, minor: 22, patch: 0)) == nil, "closed")
        #expect(info.stable(of: KubeVersion(major: 1, minor: 35, patch: 0)) == nil, "not listed")
    }

    @Test func aChannelLineThatIsNotAVersionIsAProblem() {
        let info = SnapInfo(parsing: "channels:\n  1.34/stable:  banana 2025-10-14 (1) 1MB classic\n  nonsense\n")
        #expect(info.channels.isEmpty)
        #expect(info.problems.map(\.line) == [2, 3])
        #expect(info.problems.first?.reason == "banana is not a Kubernetes version")
    }
}

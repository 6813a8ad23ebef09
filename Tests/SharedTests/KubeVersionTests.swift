import Testing

@testable import Shared

@Suite struct KubeVersionTests {
    @Test(arguments: [
        ("v1.34.5", 1, 34, 5, [String](), ""),
        ("1.34.5", 1, 34, 5, [], ""),
        ("1.34.5-1.1", 1, 34, 5, [], "-1.1"),
        ("1.29.4-2.1", 1, 29, 4, [], "-2.1"),
        ("v1.34.5+k3s1", 1, 34, 5, [], "+k3s1"),
        ("v1.30.2-eks-3a4c2d1", 1, 30, 2, [], "-eks-3a4c2d1"),
        ("v1.22.3-3+9ec7c40ec93c73", 1, 22, 3, [], "-3+9ec7c40ec93c73"),
        ("v1.35.0-rc.1", 1, 35, 0, ["rc", "1"], "-rc.1"),
        ("v1.35.0-alpha.0.123+abcdef", 1, 35, 0, ["alpha", "0", "123"], "-alpha.0.123+abcdef"),
        ("1.26.6-00", 1, 26, 6, [], "-00"),
        ("0.0.0", 0, 0, 0, [], ""),
    ])
    func parsesAcceptedForms(text: String, major: Int, minor: Int, patch: Int, pre: [String], suffix: String) throws {
        let version = try KubeVersion(parsing: text)
        #expect(version.major == major)
        #expect(version.minor == minor)
        #expect(version.patch == patch)
        #expect(version.preRelease == pre)
        #expect(version.suffix == suffix)
    }

    @Test(arguments: [
        ("", "does not start with a version number"),
        ("v", "does not start with a version number"),
        ("1.34", "needs three numbers"),
        ("1.34.", "needs three numbers"),
        ("v1.34.x", "needs three numbers"),
        ("1..5", "needs three numbers"),
        (" 1.34.5", "does not start with a version number"),
        ("V1.34.5", "does not start with a version number"),
        ("1.34.5.6", "unexpected"),
        ("1.34.5 ", "unexpected"),
        ("1.34.5-", "characters a version cannot hold"),
        ("1.34.5-1.1;rm -rf /", "characters a version cannot hold"),
        ("1.34.5$(id)", "unexpected"),
        ("01.34.5", "leading zero"),
        ("1.034.5", "leading zero"),
        ("1.34.99999999999", "too large"),
        ("latest", "does not start with a version number"),
    ])
    func rejectsWithReason(text: String, reason: String) {
        #expect {
            try KubeVersion(parsing: text)
        } throws: { error in
            let error = error as! VersionParseError
            return error.input == text && error.reason.contains(reason) && error.description.contains("\"\(text)\"")
        }
    }

    @Test(arguments: ["1.34.5", "0.0.1", "10.200.3000", "1.34.5+k3s1", "1.34.5+k3s12"])
    func strictReleaseAccepts(text: String) throws {
        #expect(try KubeVersion(strictRelease: text).description == text)
    }

    @Test(arguments: [
        "v1.34.5", "1.34.5-1.1", "1.34", "1.34.5\n", "", "v1.34.5+k3s1", "١.٢.٣", "1.34.5 && id", "1.34.5+k3s",
        "1.34.5+k3s0", "1.34.5+k3s01", "1.34.5+k3s1;id", "1.34.5+k3s1+k3s2", "1.34.5+rke2r1", "+k3s1",
        "1.34.5+k3s1234567",
    ])
    func strictReleaseRejects(text: String) {
        #expect(throws: VersionParseError.self) { try KubeVersion(strictRelease: text) }
    }

    @Test(arguments: [
        ("1.34.5", "1.34.6"), ("1.34.9", "1.34.10"), ("1.33.15", "1.34.0"), ("1.35.0-alpha.1", "1.35.0-beta.0"),
        ("1.35.0-beta.2", "1.35.0-rc.1"), ("1.35.0-rc.1", "1.35.0-rc.2"), ("1.35.0-rc.2", "1.35.0"),
        ("0.99.99", "1.0.0"), ("1.35.0-rc.1", "1.35.0-rc.1.1"), ("v1.34.5+k3s1", "v1.34.5+k3s2"),
        ("v1.34.5+k3s9", "v1.34.5+k3s10"), ("v1.34.5+k3s9", "v1.34.6+k3s1"), ("1.34.5", "1.34.5+k3s1"),
        ("v1.35.0-rc1+k3s1", "v1.35.0+k3s1"), ("v1.35.0-rc1+k3s1", "v1.35.0-rc1+k3s2"),
    ])
    func orders(lower: String, higher: String) throws {
        let low = try KubeVersion(parsing: lower)
        let high = try KubeVersion(parsing: higher)
        #expect(low < high)
        #expect(!(high < low))
        #expect(low != high)
    }

    @Test func suffixesDoNotChangeIdentity() throws {
        let forms = ["v1.34.5", "1.34.5", "1.34.5-1.1", "1.34.5-2.1", "v1.34.5-eks-1", "v1.34.5-3+9ec7c40ec93c73"]
        let versions = try forms.map { try KubeVersion(parsing: $0) }
        #expect(Set(versions).count == 1)
        #expect(versions.allSatisfy { $0.description == "1.34.5" && $0.gitVersion == "v1.34.5" })
    }

    @Test func nextMinorAndLines() throws {
        let version = try KubeVersion(parsing: "v1.34.5+k3s1")
        #expect(version.nextMinor == KubeVersion(major: 1, minor: 35, patch: 0))
        #expect(version.minorLine == "1.34")
        #expect(version.release == version)
        #expect(version.release.description == "1.34.5+k3s1")
        #expect(version.isSameMinor(as: try KubeVersion(parsing: "1.34.0")))
        #expect(!version.isSameMinor(as: try KubeVersion(parsing: "1.35.5")))
        #expect(try KubeVersion(parsing: "v1.35.0-rc.1").description == "1.35.0-rc.1")
    }

    /// K3s releases: the build is read from the end of the suffix, kept by
    /// `release`, written by `description` and `gitVersion` (the kubelet's
    /// form), and round-trips through the strict form requests use.
    @Test(arguments: [
        ("v1.34.5+k3s1", 1, "1.34.5+k3s1"), ("v1.34.5+k3s12", 12, "1.34.5+k3s12"),
        ("v1.35.0-rc1+k3s1", 1, "1.35.0-rc.1+k3s1"), ("1.34.5+k3s2", 2, "1.34.5+k3s2"),
    ])
    func k3sBuilds(text: String, build: Int, description: String) throws {
        let version = try KubeVersion(parsing: text)
        #expect(version.k3sBuild == build)
        #expect(version.release.k3sBuild == build)
        #expect(version.description == description)
        #expect(version.gitVersion == "v" + description)
        if !version.isPreRelease { #expect(try KubeVersion(strictRelease: description) == version) }
    }

    @Test(arguments: ["v1.34.5+k3s", "v1.34.5+k3s0", "v1.34.5+rke2r1", "v1.34.5-k3s1", "v1.22.3-3+9ec7c40ec93c73"])
    func notK3sBuilds(text: String) throws {
        let version = try KubeVersion(parsing: text)
        #expect(version.k3sBuild == nil)
        #expect(version == KubeVersion(major: version.major, minor: version.minor, patch: version.patch))
    }
}

@Suite struct DebianVersionTests {
    @Test(arguments: [
        ("1.34.5-1.1", 0, "1.34.5", "1.1"),
        ("1.29.4-2.1", 0, "1.29.4", "2.1"),
        ("1:2.0-1", 1, "2.0", "1"),
        ("1.26.6-00", 0, "1.26.6", "00"),
        ("1.7.27", 0, "1.7.27", ""),
        ("1.6.20~ds1-1+b1", 0, "1.6.20~ds1", "1+b1"),
        ("2.0-rc1-3", 0, "2.0-rc1", "3"),
    ])
    func parses(text: String, epoch: Int, upstream: String, revision: String) throws {
        let version = try DebianVersion(parsing: text)
        #expect(version.epoch == epoch)
        #expect(version.upstream == upstream)
        #expect(version.revision == revision)
        #expect(version.text == text)
    }

    @Test(arguments: ["", "a1.0", "1.0-", ":1.0", "x:1.0", "1.0 -1", "1.0-1;id", "1.0-1/2"])
    func rejects(text: String) {
        #expect(throws: VersionParseError.self) { try DebianVersion(parsing: text) }
    }

    /// Pairs checked with `dpkg --compare-versions A lt B`.
    @Test(arguments: [
        ("1.34.5-1.1", "1.34.5-2.1"), ("1.34.5-2.1", "1.34.6-1.1"), ("1.34.9-1.1", "1.34.10-1.1"),
        ("1.0~rc1", "1.0"), ("1.0", "1.0-1"), ("1.0-1", "1:0.1"), ("1.0a", "1.0b"), ("1.0", "1.0a"),
        ("1.0~~", "1.0~"), ("1.0+", "1.0."), ("1.29.15-1.1", "1.30.0-1.1"),
    ])
    func ordersLikeDpkg(lower: String, higher: String) throws {
        #expect(try DebianVersion(parsing: lower) < DebianVersion(parsing: higher))
        #expect(!(try DebianVersion(parsing: higher) < DebianVersion(parsing: lower)))
    }

    @Test func equalSpellings() throws {
        #expect(try DebianVersion(parsing: "0:1.0-1") == DebianVersion(parsing: "1.0-1"))
        #expect(try DebianVersion(parsing: "1.00-1") == DebianVersion(parsing: "1.0-1"))
    }

    @Test func carriesKubeVersion() throws {
        #expect(try DebianVersion(parsing: "1.29.4-2.1").kubeVersion == KubeVersion(major: 1, minor: 29, patch: 4))
        #expect(try DebianVersion(parsing: "2.0-1").kubeVersion == nil)
    }
}

import Testing

@testable import Shared

@Suite struct MadisonListingTests {
    /// Real output (REFERENCE.md §4.4), with the 11-character version line.
    static let real = """
           kubeadm | 1.29.15-1.1 | https://pkgs.k8s.io/core:/stable:/v1.29/deb  Packages
           kubeadm | 1.29.4-2.1 | https://pkgs.k8s.io/core:/stable:/v1.29/deb  Packages
           kubeadm | 1.29.3-1.1 | https://pkgs.k8s.io/core:/stable:/v1.29/deb  Packages
           kubeadm | 1.29.2-1.1 | https://pkgs.k8s.io/core:/stable:/v1.29/deb  Packages
           kubeadm | 1.29.1-1.1 | https://pkgs.k8s.io/core:/stable:/v1.29/deb  Packages
           kubeadm | 1.29.0-1.1 | https://pkgs.k8s.io/core:/stable:/v1.29/deb  Packages

        """

    @Test func parsesRealOutput() throws {
        let listing = MadisonListing(parsing: Self.real)
        #expect(listing.problems.isEmpty)
        #expect(listing.entries.count == 6)
        #expect(listing.entries[1].version.text == "1.29.4-2.1")
        #expect(listing.entries[1].kubeVersion == KubeVersion(major: 1, minor: 29, patch: 4))
        #expect(listing.entries[1].source == "https://pkgs.k8s.io/core:/stable:/v1.29/deb  Packages")
        #expect(listing.newest(of: "kubeadm")?.version.text == "1.29.15-1.1")
    }

    /// A minor upgrade that stopped after its repository rewrite leaves the
    /// master's apt source on the next minor: madison (real apt, checked on
    /// the debootstrapped node) lists that minor only, not the installed one.
    @Test func aSourceLeftOnTheNextMinorIsNamedWithItsFix() throws {
        let output = """
               kubeadm | 1.35.2-1.1 | https://pkgs.k8s.io/core:/stable:/v1.35/deb  Packages
               kubeadm | 1.35.1-1.1 | https://pkgs.k8s.io/core:/stable:/v1.35/deb  Packages
               kubeadm | 1.35.0-1.1 | https://pkgs.k8s.io/core:/stable:/v1.35/deb  Packages

            """
        let running = KubeVersion(major: 1, minor: 34, patch: 5)
        let listing = MadisonListing(parsing: output)
        #expect(listing.newest(of: "kubeadm", inMinorOf: running) == nil)
        #expect(
            listing.missingMinor(of: "kubeadm", running: running, node: "master")
                == "the apt source on master points at the next minor: apt-cache madison kubeadm lists only 1.35 "
                + "(1.35.0-1.1 … 1.35.2-1.1), while the cluster runs 1.34.5. A minor upgrade rewrote the sources "
                + "and stopped before its first control plane: resume its job, or point the sources back at v1.34 "
                + "(runbook: Roll back, \"A minor that stopped after its repository rewrite\")")
        #expect(
            MadisonListing(parsing: "").missingMinor(of: "kubeadm", running: running, node: "master")
                == "apt-cache madison kubeadm on master lists no kubeadm for 1.34 (empty output: is the repository configured?)"
        )
        let older = MadisonListing(
            parsing: "   kubeadm | 1.33.9-1.1 | https://pkgs.k8s.io/core:/stable:/v1.33/deb  Packages\n")
        #expect(
            older.missingMinor(of: "kubeadm", running: running, node: "master")
                == "apt-cache madison kubeadm on master lists no kubeadm for 1.34, only 1.33")
    }

    @Test func newestComesFromVersionOrderNotLineOrder() throws {
        let output = """
               kubeadm | 1.34.3-1.1 | https://pkgs.k8s.io/core:/stable:/v1.34/deb  Packages
               kubeadm | 1.34.10-1.1 | https://pkgs.k8s.io/core:/stable:/v1.34/deb  Packages
               kubeadm | 1.35.1-1.1 | https://pkgs.k8s.io/core:/stable:/v1.35/deb  Packages
               kubeadm | 1.34.5-2.1 | https://pkgs.k8s.io/core:/stable:/v1.34/deb  Packages
               kubeadm | 1.34.5-1.1 | https://pkgs.k8s.io/core:/stable:/v1.34/deb  Packages
               kubeadm | 1.33.2-1.1 | /var/lib/dpkg/status
            """
        let listing = MadisonListing(parsing: output)
        let running = try KubeVersion(parsing: "1.34.3")
        #expect(listing.newest(of: "kubeadm", inMinorOf: running)?.version.text == "1.34.10-1.1")
        #expect(listing.newest(of: "kubeadm")?.version.text == "1.35.1-1.1")
        #expect(listing.entry(of: "kubeadm", release: try KubeVersion(parsing: "1.34.5"))?.version.text == "1.34.5-2.1")
        #expect(listing.entry(of: "kubeadm", release: try KubeVersion(parsing: "1.34.7")) == nil)
        #expect(listing.newest(of: "kubelet") == nil)
    }

    @Test func reportsGarbageLines() {
        let output = """
               kubeadm | 1.34.5-1.1 | https://pkgs.k8s.io/core:/stable:/v1.34/deb  Packages
            N: Unable to locate package kubeadm
               kubeadm | not-a-version | https://pkgs.k8s.io/core:/stable:/v1.34/deb  Packages
               kubeadm | 2.0-1 | https://example.invalid  Packages
               kubeadm | 1.34.6-1.1 |
            kube adm | 1.34.6-1.1 | https://pkgs.k8s.io/core:/stable:/v1.34/deb  Packages
               kubeadm | 1.34.7-1.1 | a | b
            """
        let listing = MadisonListing(parsing: output)
        #expect(listing.entries.map(\.version.text) == ["1.34.5-1.1"])
        #expect(listing.problems.map(\.line) == [2, 3, 4, 5, 6, 7])
        #expect(listing.problems[0].reason.contains("three fields"))
        #expect(listing.problems[1].reason.contains("not-a-version"))
        #expect(listing.problems[2].reason.contains("does not carry a Kubernetes release"))
        #expect(listing.problems[3].reason.contains("no index description"))
        #expect(listing.problems[4].reason.contains("not a package name"))
        #expect(listing.problems[0].description.contains("Unable to locate package"))
    }

    @Test(arguments: ["", "\n\n", "   \n"])
    func emptyOutputHasNothing(output: String) {
        let listing = MadisonListing(parsing: output)
        #expect(listing.entries.isEmpty)
        #expect(listing.problems.isEmpty)
    }
}

@Suite struct PackagesIndexTests {
    /// A real stanza from the v1.27 repository (REFERENCE.md §4.2), plus
    /// others in no particular order, several packages and architectures.
    static let index = """
        Package: kubeadm
        Version: 1.27.1-1.1
        Architecture: amd64
        Maintainer: Kubernetes Authors <dev@kubernetes.io>
        Installed-Size: 47088
        Depends: kubelet (>= 1.19.0),kubectl (>= 1.19.0),kubernetes-cni (>= 1.1.1),cri-tools (>= 1.25.0)
        Filename: amd64/kubeadm_1.27.1-1.1_amd64.deb
        Size: 9934392
        MD5sum: b495daec55689d79b15adb9919793b15
        SHA1: 2eac5255edfeacb9cfc9e7da36d45065c731a5ef
        SHA256: 8268229a12dba5b6ece21608fe44ba6c59b2ed9f29edcc7c4708ca3bec8eb859
        Section: admin
        Priority: optional
        Homepage: https://kubernetes.io
        Description: Command-line utility for administering a Kubernetes cluster
         Command-line utility for administering a Kubernetes cluster.

        Package: kubelet
        Version: 1.27.3-1.1
        Architecture: amd64
        Filename: amd64/kubelet_1.27.3-1.1_amd64.deb

        Package: kubeadm
        Version: 1.27.0-2.1
        Architecture: arm64
        Filename: arm64/kubeadm_1.27.0-2.1_arm64.deb

        Package: kubeadm
        Version: 1.27.10-1.1
        Architecture: amd64
        Filename: amd64/kubeadm_1.27.10-1.1_amd64.deb

        Package: kubeadm
        Version: 1.27.2-1.1
        Architecture: amd64
        Filename: amd64/kubeadm_1.27.2-1.1_amd64.deb

        Package: cri-tools
        Version: 1.27.0-1.1
        Architecture: amd64

        """

    @Test func parsesStanzas() throws {
        let index = PackagesIndex(parsing: Self.index)
        #expect(index.problems.isEmpty)
        #expect(index.packages.count == 6)
        #expect(index.packages[0].filename == "amd64/kubeadm_1.27.1-1.1_amd64.deb")
        #expect(index.packages[2].architecture == "arm64")
        #expect(index.newest(of: "kubeadm")?.version.text == "1.27.10-1.1")
        #expect(index.newest(of: "kubeadm", architecture: "arm64")?.version.text == "1.27.0-2.1")
        #expect(
            index.releases(of: "kubeadm").map(\.description) == ["1.27.10", "1.27.2", "1.27.1", "1.27.0"])
        #expect(index.releases(of: "kubectl").isEmpty)
    }

    @Test func reportsBrokenStanzasAndLines() {
        let text = """
            Package: kubeadm
            Version: 1.34.1-1.1

            Version: 1.34.2-1.1
            Architecture: amd64

            Package: kubeadm
            Architecture: amd64

            Package: kubeadm
            Version: banana
            this line has no colon
             continuation of nothing useful
            : empty field name

            Package: kubeadm
            Version: 1.34.3-1.1
            """
        let index = PackagesIndex(parsing: text)
        #expect(index.packages.map(\.version.text) == ["1.34.1-1.1", "1.34.3-1.1"])
        let reasons = index.problems.map(\.reason)
        #expect(reasons.contains("stanza has no Package field"))
        #expect(reasons.contains("stanza has no Version field"))
        #expect(reasons.contains { $0.contains("banana") })
        #expect(reasons.contains("expected \"Field: value\""))
        #expect(index.problems.contains { $0.line == 13 && $0.reason == "continuation line outside a field" })
        #expect(index.problems.contains { $0.line == 4 })
    }

    @Test func windowsLineEndingsAndNoTrailingNewline() {
        let index = PackagesIndex(
            parsing: "Package: kubeadm\r\nVersion: 1.34.1-1.1\r\n\r\nPackage: kubectl\r\nVersion: 1.34.1-1.1")
        #expect(index.problems.isEmpty)
        #expect(index.packages.map(\.name) == ["kubeadm", "kubectl"])
    }
}

import Foundation
import Shared
import SharedIO
import TestSupport
import Testing

@Suite("the test bed")
struct TestBedTests {
    /// Whether a process runs; a zombie waiting for its adoptive parent counts as ended.
    static func isRunning(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        return stat[stat.index(after: close)...].split(separator: " ").first != "Z"
    }

    /// The upgrade steps of a worker, as the kubeadm documentation gives them.
    static let workerUpgrade = Data(
        """
        set -euo pipefail
        release=$1
        revision=$(apt-cache madison kubeadm | awk -v r="$release" '$3 ~ "^"r"-" { print $3; exit }')
        sudo apt-mark unhold kubeadm kubelet kubectl
        sudo apt-get update
        sudo apt-get install -y "kubeadm=$revision"
        sudo kubeadm upgrade node
        sudo apt-get install -y "kubelet=$revision" "kubectl=$revision"
        sudo apt-mark hold kubeadm kubelet kubectl
        sudo systemctl daemon-reload
        sudo systemctl restart kubelet

        """.utf8)

    @Test func aWorkerUpgradedOverSSHShowsItsNewVersionInKubectl() async throws {
        let bed = try await TestBed.start()
        let result = try await bed.ssh("worker-2").run("bash -s -- 1.34.4", stdin: Self.workerUpgrade)
        #expect(result.exitStatus == 0, "\(result.stderrText)")
        #expect(result.stdoutText.contains("Setting up kubelet (1.34.4-2.1) ..."))
        let nodes = try await bed.kubectl("get", "nodes", "--no-headers")
        let versions = Dictionary(
            uniqueKeysWithValues: nodes.split(separator: "\n").map { line in
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                return (String(fields[0]), String(fields[4]))
            })
        #expect(versions["worker-2"] == "v1.34.4")
        #expect(versions.filter { $0.key != "worker-2" }.values.allSatisfy { $0 == "v1.34.3" })
    }

    @Test func heldPackagesAndUnknownVersionsAreRefusedLikeApt() async throws {
        let bed = try await TestBed.start()
        let ssh = try bed.ssh("worker-1")
        let held = try await ssh.run("sudo apt-get install -y kubeadm=1.34.5-1.1")
        #expect(held.exitStatus == 100)
        #expect(held.stderrText.contains("Held packages were changed"))
        let missing = try await ssh.run("sudo apt-mark unhold kubeadm && sudo apt-get install -y kubeadm=1.34.9-1.1")
        #expect(missing.exitStatus == 100)
        #expect(missing.stderrText.contains("Version '1.34.9-1.1' for 'kubeadm' was not found"))
        let unknown = try await ssh.run("kubeadm upgrade frobnicate")
        #expect(unknown.exitStatus == 1)
    }

    @Test func madisonOnTheMasterAgreesWithTheRepository() async throws {
        let bed = try await TestBed.start()
        let madison = MadisonListing(parsing: try await bed.ssh("master").run("apt-cache madison kubeadm").stdoutText)
        #expect(madison.problems.isEmpty)
        let base = try #require(bed.environment["TESTBED_REPO_BASE"])
        let packages = try await bed.http.send(HTTPRequest(url: base + "/v1.34/deb/Packages"))
        let index = PackagesIndex(parsing: packages.text)
        #expect(
            Set(madison.entries.map(\.version.text))
                == Set(index.packages.filter { $0.name == "kubeadm" }.map(\.version.text)))
        #expect(madison.newest(of: "kubeadm")?.version.text == "1.34.5-1.1")
        #expect(
            madison.entry(of: "kubeadm", release: KubeVersion(major: 1, minor: 34, patch: 4))?.version.text
                == "1.34.4-2.1")

        let next = try await bed.http.send(HTTPRequest(method: "HEAD", url: base + "/v1.35/deb/Release"))
        #expect(next.status == 200)
        let nextIndex = PackagesIndex(
            parsing: try await bed.http.send(HTTPRequest(url: base + "/v1.35/deb/Packages")).text)
        #expect(nextIndex.releases(of: "kubeadm").first == KubeVersion(major: 1, minor: 35, patch: 2))
        let unpublished = try await bed.http.send(HTTPRequest(method: "HEAD", url: base + "/v1.36/deb/Release"))
        #expect(unpublished.status == 403)
    }

    @Test func kubeadmUpgradeApplyMovesTheAPIServer() async throws {
        let bed = try await TestBed.start()
        let master = try bed.ssh("master")
        let tooHigh = try await master.run("sudo kubeadm upgrade apply v1.35.0 -y")
        #expect(tooHigh.exitStatus == 1)
        #expect(tooHigh.stderrText.contains("higher than the kubeadm version"))
        let apply = try await master.run(
            "sudo apt-mark unhold kubeadm && sudo apt-get install -y kubeadm=1.34.5-1.1 && sudo kubeadm upgrade apply v1.34.5 -y"
        )
        #expect(apply.exitStatus == 0, "\(apply.stderrText)")
        #expect(apply.stdoutText.contains(#"SUCCESS! Your cluster was upgraded to "v1.34.5". Enjoy!"#))
        let version = try await bed.kubectl("version", "-o", "json")
        #expect(version.contains(#""gitVersion": "v1.34.5""#))
    }

    @Test func downLeavesNoProcessBehind() async throws {
        let bed = try await TestBed.start(scenario: "ha")
        #expect(bed.nodes == ["cp-1", "cp-2", "cp-3", "worker-1", "worker-2", "worker-3"])
        let pids = bed.pids()
        #expect(pids.count == 8)
        #expect(pids.allSatisfy(Self.isRunning))
        try await bed.down()
        #expect(!pids.contains(where: Self.isRunning))
        #expect(!FileManager.default.fileExists(atPath: bed.directory.path))
    }
}

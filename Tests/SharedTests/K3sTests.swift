import Foundation
import Testing

@testable import Shared

/// The K3s distribution: the channel server's list, the datastore's
/// probes and backup, and the node step, pinned as a real server sees them.
@Suite struct K3sTests {
    let k3s = try! K3s()

    static func v(_ text: String) -> KubeVersion { try! KubeVersion(parsing: text) }

    /// The collection as rancher's channelserver writes it (REFERENCE.md §8.2).
    static func channels(_ entries: [(String, String?)]) -> String {
        let items = entries.map { id, latest in
            var item =
                #"{"id":"\#(id)","type":"channel","links":{"self":"https://update.k3s.io/v1-release/channels/\#(id)"},"name":"\#(id)""#
            if let latest { item += #","latest":"\#(latest)""# }
            if id.hasPrefix("v") {
                item += #","latestRegexp":"v1\\.\#(id.dropFirst(3))\\..*","excludeRegexp":"^[^+]+-""#
            }
            return item + "}"
        }
        return #"{"type":"collection","links":{"self":"https://update.k3s.io/v1-release/channels"},"actions":{},"#
            + #""resourceType":"channel","data":["# + items.joined(separator: ",") + "]}"
    }

    static let listing = channels([
        ("stable", "v1.34.5+k3s2"), ("latest", "v1.35.1+k3s1"), ("testing", "v1.35.2-rc1+k3s1"),
        ("v1.33", "v1.33.9+k3s1"), ("v1.34", "v1.34.5+k3s2"), ("v1.35", "v1.35.1+k3s1"), ("v1.36", nil),
    ])

    @Test func readsTheChannelServersList() throws {
        let channels = try K3sChannels(json: Self.listing)
        #expect(channels.problems.isEmpty)
        #expect(channels.latest["v1.34"] == Self.v("v1.34.5+k3s2"))
        #expect(channels.latest["v1.36"] == nil)
        #expect(channels.newest(inMinorOf: Self.v("v1.33.2+k3s1")) == Self.v("v1.33.9+k3s1"))
        #expect(channels.newest(inMinorOf: Self.v("v1.37.0+k3s1")) == nil)
    }

    @Test(arguments: [
        ("v1.34.5+k3s1", "1.34.5+k3s2", "1.35.1+k3s1"),
        ("v1.34.2+k3s1", "1.34.5+k3s2", "1.35.1+k3s1"),
        ("v1.35.0+k3s1", "1.35.1+k3s1", nil),
    ])
    func offersTheMinorsChannelAndTheNext(running: String, patch: String, next: String?) throws {
        let offer = try k3s.offer(in: Self.listing, running: Self.v(running), node: "server-1")
        #expect(offer.newestPatch.description == patch)
        if let next {
            #expect(offer.nextMinor == .published(newest: Self.v(next)))
        } else {
            #expect(offer.nextMinor == .notPublished(Self.v("1.36.0")))
        }
    }

    @Test func aRebuildOfTheRunningReleaseIsANewerPatch() throws {
        let offer = try k3s.offer(in: Self.listing, running: Self.v("v1.34.5+k3s1"), node: "server-1")
        #expect(offer.newestPatch > Self.v("v1.34.5+k3s1"))
        #expect(offer.newestPatch.release == Self.v("v1.34.5+k3s2"))
    }

    @Test(arguments: [
        (channels([("v1.33", "v1.33.9+k3s1")]), "lists no v1.34 channel with a 1.34 release"),
        (channels([("v1.34", "v1.33.9+k3s1")]), "lists no v1.34 channel with a 1.34 release"),
        (channels([("v1.34", "v1.34.5")]), "v1.34.5 is not a K3s release"),
        (channels([("v1.34", "latest-and-greatest")]), "channel v1.34: invalid version"),
        (channels([]), "listed no channel with a release"),
        ("<html>502 Bad Gateway</html>", "did not answer with its channel list"),
        (#"{"data": [{"latest": "v1.34.5+k3s1"}]}"#, "an item without an id"),
    ])
    func refusesListingsItCannotTrust(listing: String, message: String) {
        #expect {
            try k3s.offer(in: listing, running: Self.v("v1.34.2+k3s1"), node: "server-1")
        } throws: { error in
            (error as? PlanError)?.description.contains(message) == true
        }
    }

    @Test func offersOnlyAChannelsNewestBuild() throws {
        #expect(k3s.offers(Self.v("1.34.5+k3s2"), in: Self.listing))
        #expect(!k3s.offers(Self.v("1.34.5+k3s1"), in: Self.listing))
        #expect(!k3s.offers(Self.v("1.34.5"), in: Self.listing))
        #expect(!k3s.offers(Self.v("1.36.0+k3s1"), in: Self.listing))
        #expect(!k3s.offers(Self.v("1.34.5+k3s2"), in: "not json"))
    }

    @Test func theListingIsFetchedOnTheMasterBoundedAndFailingOnHTTPErrors() throws {
        #expect(
            Shell.command(k3s.offeredListing)
                == "curl -fsS --max-time 30 --retry 2 -H 'Accept: application/json' "
                + "https://update.k3s.io/v1-release/channels")
        let mirror = try K3s(channelServer: "http://mirror.lan:8080/k3s/channels/", artifacts: "http://mirror.lan/k3s")
        #expect(mirror.offeredListing.last == "http://mirror.lan:8080/k3s/channels")
        #expect(mirror.nodeStep(role: .worker, target: Self.v("1.34.5+k3s2")).last == "http://mirror.lan/k3s")
    }

    @Test(arguments: [
        "ftp://mirror/k3s", "https://", "https:///path", "mirror.lan/k3s", "https://mirror.lan/k3s?token=x",
        "https://user:pw@mirror.lan/k3s", "https://mirror.lan/k3s channels", "https://mirror.lan/$(id)",
        "https://mirror.lan/k3s#frag", "https://mirrör.lan/k3s",
    ])
    func refusesURLsThatAreNotPlainHTTP(url: String) {
        #expect(throws: PlanError.self) { try K3s(channelServer: url) }
        #expect(throws: PlanError.self) { try K3s(artifacts: url) }
    }

    // MARK: The datastore

    static let members =
        #"{"members":[{"name":"server-1-3f2a","clientURLs":["https://10.0.0.11:2379"]},{"name":"server-2-9c1d","clientURLs":["https://10.0.0.12:2379"]},{"name":"server-3-77e0","clientURLs":["https://10.0.0.13:2379"]}]}"#

    @Test func readsEmbeddedEtcdThroughK3sCertificates() throws {
        let health =
            #"[{"endpoint":"https://10.0.0.11:2379","health":true},{"endpoint":"https://10.0.0.12:2379","health":true},{"endpoint":"https://10.0.0.13:2379","health":false,"error":"context deadline exceeded"}]"#
        let result = try k3s.datastoreHealth(
            [ProbeOutput(exitStatus: 0, stdout: Self.members), ProbeOutput(exitStatus: 1, stdout: health)], nodes: [])
        #expect(result.datastore == "etcd")
        #expect(result.memberCount == 3)
        #expect(result.hasQuorum)
        #expect(result.summary.contains("2 of 3 members healthy; unhealthy: server-3-77e0"))
        let probe = Shell.command(k3s.datastoreProbes[1])
        #expect(probe.contains("--cacert=/var/lib/rancher/k3s/server/tls/etcd/server-ca.crt"))
        #expect(probe.contains("--cert=/var/lib/rancher/k3s/server/tls/etcd/server-client.crt"))
        #expect(probe.contains("endpoint health --cluster -w json"))
    }

    @Test func readsSQLiteOnASingleServer() throws {
        let healthy = try k3s.datastoreHealth(
            [ProbeOutput(exitStatus: 0, stdout: "sqlite\n"), ProbeOutput(exitStatus: 0, stdout: "sqlite\nok\n")],
            nodes: [])
        #expect(healthy.datastore == "SQLite")
        #expect(healthy.memberCount == 1 && healthy.hasQuorum)
        #expect(try healthy.quorum(without: "server-1").get().contains("a single SQLite member"))

        let corrupt = try k3s.datastoreHealth(
            [
                ProbeOutput(exitStatus: 0, stdout: "sqlite\n"),
                ProbeOutput(exitStatus: 0, stdout: "sqlite\n*** in database main ***\nPage 7 is never used\n"),
            ], nodes: [])
        #expect(!corrupt.hasQuorum)
        #expect(corrupt.summary.contains("Page 7 is never used"))
        #expect(throws: PlanError.self) { try corrupt.quorum(without: "server-1").get() }
    }

    @Test func aServerWithoutEitherDatastoreFailsTheProbe() {
        let missing = ProbeOutput(exitStatus: 3, stdout: "", stderr: "neither embedded etcd (…) nor SQLite (…)")
        #expect {
            try k3s.datastoreHealth([missing, missing], nodes: [])
        } throws: { error in
            (error as? PlanError)?.description.contains("exited 3: neither embedded etcd") == true
        }
    }

    // MARK: The backup

    @Test(arguments: [
        ("48213 etcd ./,./datastore,./etcd-snapshot,./token,", "K3s etcd snapshot and server token, 48213 bytes"),
        ("9120 sqlite ./,./datastore,./state.db,./token,", "K3s SQLite copy and server token, 9120 bytes"),
    ])
    func readsTheBackupsListing(output: String, summary: String) throws {
        #expect(try k3s.snapshotSummary(output) == summary)
    }

    @Test(arguments: [
        ("48213 etcd ./,./datastore,./etcd-snapshot,", "lacks the server token"),
        ("9120 sqlite ./,./datastore,./token,", "lacks state.db"),
        ("9120 postgres ./,./token,", "no size, datastore and files"),
        ("", "no size, datastore and files"),
    ])
    func refusesABackupThatCannotRestore(output: String, message: String) {
        #expect {
            try k3s.snapshotSummary(output)
        } throws: { error in
            (error as? PlanError)?.description.contains(message) == true
        }
    }

    /// K3s' ETCDSnapshotFile of the snapshot the save named: confirmed
    /// when ready, failed with its error, missing until it is written.
    @Test func theSnapshotIsConfirmedByItsETCDSnapshotFile() throws {
        let saved = "etcd-snapshot k8s-upgrade-server-1-1733443200 listed\n"
        func record(_ name: String, _ status: String) throws -> JSONValue {
            try JSONValue(
                parsing: Data(
                    (#"{"metadata":{"name":"local-\#(name)"},"spec":{"snapshotName":"\#(name)","nodeName":"server-1"},"#
                        + #""status":\#(status)}"#).utf8))
        }
        let ready = try record("k8s-upgrade-server-1-1733443200", #"{"readyToUse":true,"size":"6148128"}"#)
        let other = try record("on-demand-server-2-1733443100", #"{"readyToUse":true,"size":"10"}"#)
        #expect(
            k3s.snapshotRecord(saveOutput: saved, in: [other, ready])
                == .confirmed("ETCDSnapshotFile local-k8s-upgrade-server-1-1733443200 ready on server-1, size 6148128"))
        #expect(
            k3s.snapshotRecord(saveOutput: saved, in: [other])
                == .missing("no ETCDSnapshotFile names k8s-upgrade-server-1-1733443200 yet"))
        let pending = try record("k8s-upgrade-server-1-1733443200", "{}")
        #expect(
            k3s.snapshotRecord(saveOutput: saved, in: [pending])
                == .missing(
                    "ETCDSnapshotFile local-k8s-upgrade-server-1-1733443200 of k8s-upgrade-server-1-1733443200 "
                        + "is not ready to use yet"))
        let failed = try record(
            "k8s-upgrade-server-1-1733443200", #"{"readyToUse":false,"error":{"message":"disk full"}}"#)
        #expect(
            k3s.snapshotRecord(saveOutput: saved, in: [failed])
                == .failed(
                    "ETCDSnapshotFile local-k8s-upgrade-server-1-1733443200 of k8s-upgrade-server-1-1733443200 says: "
                        + "disk full"))
        // A SQLite copy names no etcd snapshot: nothing to confirm.
        #expect(k3s.snapshotRecord(saveOutput: "", in: [ready]) == nil)
        #expect(KubeadmApt().snapshotRecord(saveOutput: saved, in: [ready]) == nil)
        #expect(KubeadmApt().snapshotRecordsPath == nil)
    }

    /// Without records (K3s before v1.28.4+k3s2), `k3s etcd-snapshot ls`
    /// must list the snapshot the save wrote.
    @Test func anOlderK3sConfirmsTheSnapshotByItsListing() {
        #expect(
            (try? k3s.snapshotUnrecorded(saveOutput: "etcd-snapshot k8s-upgrade-server-1-5 listed\n").get())?
                .hasPrefix("listed by k3s etcd-snapshot ls") == true)
        guard
            case let .failure(error) = k3s.snapshotUnrecorded(
                saveOutput: "etcd-snapshot k8s-upgrade-server-1-5 unlisted")
        else {
            Issue.record("an unlisted snapshot is not confirmed")
            return
        }
        #expect(error.description == "k3s etcd-snapshot ls does not list k8s-upgrade-server-1-5, which the save wrote")
        #expect((try? k3s.snapshotUnrecorded(saveOutput: "").get()) == "")
    }

    /// The archive reader runs for real against archives made here.
    @Test func theBackupsListingReadsARealArchive() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("k3s-\(UUID().uuidString)")
        try FileManager.default.createDirectory(
            at: folder.appendingPathComponent("in"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try "sqlite\n".write(to: folder.appendingPathComponent("in/datastore"), atomically: true, encoding: .utf8)
        try "SQLite format 3".write(to: folder.appendingPathComponent("in/state.db"), atomically: true, encoding: .utf8)
        try "K10abc::server:def".write(to: folder.appendingPathComponent("in/token"), atomically: true, encoding: .utf8)
        let archive = folder.appendingPathComponent("backup it's.tar.gz").path
        #expect(try Self.run(["tar", "-czf", archive, "-C", folder.appendingPathComponent("in").path, "."]).0 == 0)

        let (status, output) = try Self.run(k3s.snapshotStatus(of: archive))
        #expect(status == 0)
        #expect(try k3s.snapshotSummary(output).hasPrefix("K3s SQLite copy and server token, "))

        let truncated = folder.appendingPathComponent("cut.tar.gz").path
        let bytes = try Data(contentsOf: URL(fileURLWithPath: archive))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: truncated))
        #expect(try Self.run(k3s.snapshotStatus(of: truncated)).0 != 0)
    }

    /// Runs `words`; its output goes to a file, read once it has exited. A
    /// pipe read to its end would wait as long as any other process holds
    /// its write end, and servers that other tests start at the same time
    /// can inherit it (a whole test run hung on this once).
    static func run(_ words: [String]) throws -> (Int32, String) {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("k3s-run-\(UUID().uuidString)")
        guard FileManager.default.createFile(atPath: output.path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown)
        }
        defer { try? FileManager.default.removeItem(at: output) }
        let handle = try FileHandle(forWritingTo: output)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = words
        process.standardOutput = handle
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try handle.close()
        return (process.terminationStatus, String(decoding: try Data(contentsOf: output), as: UTF8.self))
    }

    // MARK: Nodes

    @Test func serversThenAgentsFromTheArtifactURL() {
        let target = Self.v("1.34.5+k3s2")
        #expect(
            k3s.nodeStep(role: .master, target: target)
                == ["--k3s", "server", "--release", "1.34.5+k3s2", "--artifacts", K3s.defaultArtifacts])
        #expect(k3s.nodeStep(role: .controlPlane, target: target)[1] == "server")
        #expect(k3s.nodeStep(role: .worker, target: target)[1] == "agent")
        let previous = Self.v("1.34.4+k3s1")
        #expect(k3s.revertStep(role: .worker, to: previous) == ["--k3s-revert", "agent", "--release", "1.34.4+k3s1"])
        #expect(k3s.revertStep(role: .master, to: previous)?[1] == "server")
        #expect(k3s.apiServerPod(on: "server-1") == nil)
        #expect(k3s.hold == nil)
        #expect(k3s.notApplicable(.containerd)?.contains("inside its binary") == true)
        #expect(k3s.notApplicable(.repo)?.contains("channel server") == true)
        #expect(k3s.notApplicable(.snapshot) == nil)
        #expect(k3s.notApplicable(.workers) == nil)
    }
}

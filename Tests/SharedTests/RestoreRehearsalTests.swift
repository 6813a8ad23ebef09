import Testing

@testable import Shared

/// The restore rehearsal's commands and its judgement of the restored etcd.
@Suite struct RestoreRehearsalTests {
    static let snapshot = try! SnapshotStatus(
        json: #"{"hash":3925447093,"revision":4113,"totalKey":1204,"totalSize":2473984}"#)
    static let namespaces = "/registry/namespaces/default\n\n/registry/namespaces/kube-node-lease\n"

    @Test func aOneMemberClusterOnLoopbackFromTheSnapshot() {
        let rehearsal = RestoreRehearsal(restorer: "etcdutl")
        #expect(
            rehearsal.restore("/b/s.db", into: "/b/s.db.rehearsal/data", peerURL: "http://127.0.0.1:2")
                == [
                    "etcdutl", "snapshot", "restore", "/b/s.db", "--data-dir", "/b/s.db.rehearsal/data", "--name",
                    "rehearsal", "--initial-cluster", "rehearsal=http://127.0.0.1:2", "--initial-advertise-peer-urls",
                    "http://127.0.0.1:2",
                ])
        let server = rehearsal.server(dataDir: "/d", clientURL: "http://127.0.0.1:1", peerURL: "http://127.0.0.1:2")
        #expect(server.first == "etcd" && server.contains("--listen-client-urls"))
        #expect(server.joined(separator: " ").contains("--heartbeat-interval 10 --election-timeout 100"), "on loopback")
        #expect(!server.joined(separator: " ").contains("0.0.0.0"), "loopback only")
        #expect(rehearsal.count("http://127.0.0.1:1").contains("--limit"), "no --count-only: etcd 3.4 lacks it")
    }

    @Test func theRestoredEtcdMustHoldTheSnapshotsRevisionAndTheNamespaces() throws {
        let count =
            #"{"header":{"cluster_id":1,"member_id":2,"revision":4113,"raft_term":2},"kvs":[{"key":"L3I="}],"more":true,"count":377}"#
        let verdict = try RestoreRehearsal.verdict(
            countOutput: count, sampleOutput: Self.namespaces, snapshot: Self.snapshot
        ).get()
        #expect(verdict.keys == 377 && verdict.revision == 4113)
        #expect(verdict.sample == ["/registry/namespaces/default", "/registry/namespaces/kube-node-lease"])
    }

    @Test(arguments: [
        (#"{"header":{"revision":4113},"count":0}"#, namespaces, "the restored etcd holds no keys"),
        (#"{"header":{"revision":4000},"count":9}"#, namespaces, "at revision 4000, the snapshot at 4113"),
        (#"{"header":{"revision":4113},"count":9}"#, "/registry/pods/a\n", "holds no namespaces"),
        ("Error: context deadline exceeded", namespaces, "printed no revision"),
    ])
    func refusals(count: String, sample: String, message: String) {
        guard
            case let .failure(error) = RestoreRehearsal.verdict(
                countOutput: count, sampleOutput: sample, snapshot: Self.snapshot)
        else {
            Issue.record("\(count) was taken")
            return
        }
        #expect(error.description.contains(message), "\(error)")
    }

    /// A K3s SQLite copy: SQLite's own integrity check, then kine's rows.
    @Test(arguments: [
        ("ok\n412\n", "412"),
        ("*** in database main ***\nPage 3: btreeInitPage() returns error code 11\n", "integrity check"),
        ("ok\n0\n", "holds no rows"),
        ("ok\n", "could not be counted"),
        ("ok\nParse error: no such table: kine\n", "could not be counted"),
    ])
    func aSQLiteCopyIsIntactAndHoldsRows(output: String, expected: String) {
        switch RestoreRehearsal.sqliteVerdict(output) {
        case let .success(rows): #expect("\(rows)" == expected)
        case let .failure(error): #expect(error.description.contains(expected), "\(error)")
        }
        #expect(
            RestoreRehearsal.sqliteCheck("/b/a/state.db")
                == ["sqlite3", "-readonly", "/b/a/state.db", "PRAGMA integrity_check; SELECT count(*) FROM kine;"])
        #expect(MicroK8sSnap().backupForm == .opaque && KubeadmApt().backupForm == .etcdSnapshot)
    }
}

import FoundationEssentials
import Shared
import Testing

@Suite("in-flight mark: what the namespace annotations let a new service adopt")
struct InFlightMarkTests {
    static let request = ExecuteRequest(targetVersion: KubeVersion(major: 1, minor: 34, patch: 5), kind: .patch)

    @Test func theMarkRoundTripsThroughItsAnnotations() throws {
        let mark = InFlightMark(jobID: 7, request: Self.request, snapshotPath: "/var/lib/etcd-backups/pre.db")
        let read = try #require(InFlightMark.read(mark.annotations))
        #expect(try read.get() == mark)
        #expect(Set(mark.annotations.keys).isSubset(of: Set(InFlightMark.keys)))
    }

    @Test(
        arguments: [
            ([:], nil), (["in-flight": "false", "job": "3"], nil),
            (["in-flight": "true"], "the in-flight mark names no job (annotation job: missing)"),
            (
                ["in-flight": "true", "job": "-1", "request": "{}"],
                "the in-flight mark names no job (annotation job: -1)"
            ),
            (["in-flight": "true", "job": "3"], "the in-flight mark of job 3 carries no request"),
            (
                ["in-flight": "true", "job": "3", "request": #"{"target_version":"1.34.5; reboot","kind":"patch"}"#],
                "the in-flight request of job 3 is not valid"
            ),
        ] as [([String: String], String?)])
    func badOrAbsentMarksAreNotAdopted(annotations: [String: String], error: String?) {
        let read = InFlightMark.read(annotations)
        guard let error else {
            #expect(read == nil)
            return
        }
        guard case let .failure(problem)? = read else {
            Issue.record("adopted \(String(describing: read))")
            return
        }
        #expect(problem.description.hasPrefix(error), "\(problem)")
    }

    @Test func aSnapshotPathThatIsNoAbsolutePathIsDropped() throws {
        var annotations = InFlightMark(jobID: 2, request: Self.request).annotations
        annotations["snapshot-path"] = "relative/x.db"
        #expect(try InFlightMark.read(annotations)?.get().snapshotPath == nil)
    }
}

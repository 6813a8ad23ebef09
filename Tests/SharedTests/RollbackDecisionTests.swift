import Foundation
import Testing

@testable import Shared

/// Which node of which job may be rolled back, from the job's record alone.
@Suite struct RollbackDecisionTests {
    static let upgrade = ExecuteRequest(targetVersion: KubeVersion(major: 1, minor: 34, patch: 5), kind: .patch)

    /// The report a job keeps: a master, a worker it upgraded, one it
    /// skipped (already at the target), one whose version it never read.
    static let report = try! JSONValue(
        parsing: Data(
            """
            {"nodes":[
              {"name":"master","role":"master","before":"1.34.3","after":"1.34.5"},
              {"name":"worker-1","role":"worker","before":"1.34.3","after":"1.34.5"},
              {"name":"worker-2","role":"worker","before":"1.34.5","after":"1.34.5"},
              {"name":"worker-3","role":"worker","before":"?","after":"?"},
              {"name":"worker-4","role":"worker","before":"1.34.6","after":"1.34.6"}]}
            """.utf8))

    static func decide(
        state: JobState = .succeeded, request: ExecuteRequest = upgrade, result: JSONValue? = report,
        node: String = "worker-1", dryRun: Bool = false
    ) -> RollbackDecision {
        RollbackDecision.decide(job: 4, state: state, request: request, result: result, node: node, dryRun: dryRun)
    }

    @Test func anUpgradedWorkerGoesBackToItsReleaseBeforeTheJobThroughTheWorkersStage() {
        #expect(
            Self.decide()
                == .accepted(
                    ExecuteRequest(
                        targetVersion: KubeVersion(major: 1, minor: 34, patch: 3), kind: .patch,
                        stages: .only([.workers]), rollback: .init(job: 4, node: "worker-1"))))
        guard case let .accepted(dry) = Self.decide(state: .failed, dryRun: true) else {
            Issue.record("a failed job's worker is rolled back too")
            return
        }
        #expect(dry.dryRun && dry.rollback == .init(job: 4, node: "worker-1"))
        let k3s = try! JSONValue(
            parsing: Data(#"{"nodes":[{"name":"agent-1","role":"worker","before":"1.34.3+k3s1"}]}"#.utf8))
        let k3sUpgrade = ExecuteRequest(
            targetVersion: KubeVersion(major: 1, minor: 34, patch: 5, k3sBuild: 1), kind: .patch)
        guard case let .accepted(back) = Self.decide(request: k3sUpgrade, result: k3s, node: "agent-1") else {
            Issue.record("a K3s agent is rolled back")
            return
        }
        #expect(back.targetVersion.description == "1.34.3+k3s1")
    }

    @Test(arguments: [
        (JobState.running, "worker-1", "job 4 is running; abort it first"),
        (.queued, "worker-1", "job 4 is queued; abort it first"),
        (.aborting, "worker-1", "job 4 is aborting"),
        (.interrupted, "worker-1", "job 4 is interrupted and would be resumed; abort it first (DELETE /jobs/4)"),
        (
            .aborted, "master",
            "master is a control plane (master) in job 4: taking a control plane back is a datastore snapshot restore"
        ),
        (.succeeded, "worker-2", "job 4 did not change worker-2: it was at 1.34.5 before the job"),
        (.succeeded, "worker-3", "job 4 did not record worker-3's version before it (\"?\")"),
        (
            .succeeded, "worker-4",
            "worker-4 was at 1.34.6 before job 4, which is not older than that job's target 1.34.5"
        ),
        (
            .succeeded, "worker-9",
            "job 4 recorded nothing of worker-9 (its report lists master, worker-1, worker-2, worker-3, worker-4)"
        ),
    ])
    func refusals(state: JobState, node: String, expected: String) {
        guard case let .refused(reason) = Self.decide(state: state, node: node) else {
            Issue.record("\(node) of a \(state) job is refused")
            return
        }
        #expect(reason.hasPrefix(expected), "\(reason)")
    }

    @Test func aDryRunARollbackAndAJobWithoutAReportAreRefused() {
        var dry = Self.upgrade
        dry.dryRun = true
        #expect(Self.decide(request: dry) == .refused("job 4 was a dry run: it changed no node"))
        var rollback = Self.upgrade
        rollback.rollback = .init(job: 2, node: "worker-1")
        guard case let .refused(again) = Self.decide(request: rollback) else {
            Issue.record("a rollback is not rolled back")
            return
        }
        #expect(again.hasPrefix("job 4 is itself the rollback of worker-1 (job 2)"), "\(again)")
        #expect(
            Self.decide(state: .failed, result: nil)
                == .refused("job 4 recorded nothing of worker-1 (its report lists no node)"))
    }
}

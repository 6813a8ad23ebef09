import Shared
import Testing

/// A node's procedure, by role and live action: the table the pipeline's
/// step runner carries out.
@Suite struct NodeProcedureTests {
    static let script = ["--role", "worker", "--release", "1.34.5"]

    @Test(arguments: [
        (
            NodeRole.worker, NodeAction.upgrade, true,
            "gate, start, kubelet skew, reach, cordon, drain, script --role worker --release 1.34.5, uncordon, verify, done, soak"
        ),
        (
            .worker, .upgrade, false,
            "gate, start, kubelet skew, reach, cordon, drain, script --role worker --release 1.34.5, uncordon, verify, done"
        ),
        (.worker, .finish, true, "gate, start, uncordon, verify, done, soak"),
        (
            .master, .upgrade, true,
            "gate, quorum, start, reach, cordon, drain, script --role worker --release 1.34.5, uncordon, verify, done"
        ),
        (.controlPlane, .finish, true, "gate, quorum, start, uncordon, verify, done"),
        (.worker, .skip("already at 1.34.5"), true, ""),
    ])
    func operations(role: NodeRole, action: NodeAction, soaks: Bool, expected: String) {
        let operations = NodeProcedure.operations(role: role, action: action, script: Self.script, soaks: soaks)
        #expect(operations.map(\.description).joined(separator: ", ") == expected)
    }

    /// A patch with `--patch-drain false` cordons the node but leaves its
    /// pods running through the restart; a minor always drains.
    @Test func aPatchWithoutDrainOnlyCordons() {
        let kept = NodeProcedure.operations(
            role: .master, action: .upgrade, script: Self.script, soaks: false, drains: false)
        #expect(
            kept.map(\.description).joined(separator: ", ")
                == "gate, quorum, start, reach, cordon, script --role worker --release 1.34.5, uncordon, verify, done")
        #expect(NodeProcedure.drains(kind: .minor, patchDrain: false))
        #expect(NodeProcedure.drains(kind: .patch, patchDrain: true))
        #expect(!NodeProcedure.drains(kind: .patch, patchDrain: false))
    }

    /// Only what lies between start and done fails the node itself: the
    /// gate, the quorum check and the soak fail the job before or after it.
    @Test func nodeStepsAreThoseBetweenStartAndDone() {
        let operations = NodeProcedure.operations(role: .worker, action: .upgrade, script: [], soaks: true)
        let inside = operations.filter(\.isNodeStep).map(\.description)
        #expect(inside.first == "start" && inside.last == "done")
        #expect(!inside.contains("gate") && !inside.contains("soak"))
    }

    /// A rollback: no gate (an alert is why one rolls back), no kubelet
    /// skew check (an older kubelet never gets ahead), no soak; drained
    /// as the upgrade was.
    @Test func aRollbackRunsTheNodeStepsWithoutGateSkewOrSoak() {
        let script = ["--role", "worker", "--release", "1.34.3", "--rollback"]
        func text(_ action: NodeAction, drains: Bool) -> String {
            NodeProcedure.rollbackOperations(action: action, script: script, drains: drains).map(\.description)
                .joined(separator: ", ")
        }
        #expect(
            text(.upgrade, drains: true)
                == "start, reach, cordon, drain, script --role worker --release 1.34.3 --rollback, uncordon, verify, done"
        )
        #expect(
            text(.upgrade, drains: false)
                == "start, reach, cordon, script --role worker --release 1.34.3 --rollback, uncordon, verify, done")
        #expect(text(.finish, drains: true) == "start, uncordon, verify, done")
        #expect(text(.skip("already at 1.34.3"), drains: true) == "")
    }

    @Test func aControlPlaneRestoreNeitherCordonsNorDrains() {
        let script = ["--role", "master", "--release", "1.34.3", "--restore-snapshot", "/s.db"]
        func text(_ action: NodeAction) -> String {
            NodeProcedure.restoreOperations(action: action, script: script).map(\.description).joined(separator: ", ")
        }
        #expect(
            text(.upgrade)
                == "start, reach, script --role master --release 1.34.3 --restore-snapshot /s.db, verify, done")
        #expect(text(.finish) == "start, verify, done")
        #expect(text(.skip("already at 1.34.3")) == "")
    }
}

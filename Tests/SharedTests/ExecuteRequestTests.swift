import Foundation
import Testing

@testable import Shared

@Suite struct ExecuteRequestTests {
    private func decode(_ json: String) throws(RequestValidationError) -> ExecuteRequest {
        try ExecuteRequest(json: Data(json.utf8))
    }

    @Test func fullRequest() throws {
        let request = try decode(
            #"{"target_version":"1.34.5","kind":"patch","dry_run":true,"stages":"snapshot,preflight"}"#)
        #expect(request.targetVersion == KubeVersion(major: 1, minor: 34, patch: 5))
        #expect(request.kind == .patch)
        #expect(request.dryRun)
        #expect(request.stages == .only([.preflight, .snapshot]))
    }

    @Test func defaults() throws {
        let request = try decode(#"{"target_version":"1.35.2","kind":"minor"}"#)
        #expect(request.dryRun == false)
        #expect(request.stages == .all)
        #expect(request.stages.stages == UpgradeStage.allCases)
    }

    @Test func roundTripsThroughItsOwnBody() throws {
        let original = ExecuteRequest(
            targetVersion: KubeVersion(major: 1, minor: 35, patch: 2), kind: .minor, dryRun: true,
            stages: .only([.preflight, .snapshot]))
        let body = String(decoding: original.jsonBody(), as: UTF8.self)
        #expect(body == #"{"dry_run":true,"kind":"minor","stages":"preflight,snapshot","target_version":"1.35.2"}"#)
        #expect(try decode(body) == original)
    }

    /// A rollback job's request keeps the node and the job it undoes; a
    /// request without one writes no `rollback` field, as before.
    @Test func aRollbackRoundTripsAndIsLeftOutWhenUnset() throws {
        let rollback = ExecuteRequest(
            targetVersion: KubeVersion(major: 1, minor: 34, patch: 3), kind: .patch, stages: .only([.workers]),
            rollback: .init(job: 7, node: "worker-2"))
        let body = String(decoding: rollback.jsonBody(), as: UTF8.self)
        #expect(body.contains(#""rollback":{"job":7,"node":"worker-2"}"#), "\(body)")
        #expect(try decode(body) == rollback)
        #expect(try decode(#"{"target_version":"1.34.5","kind":"patch"}"#).rollback == nil)
    }

    @Test func theRollbackBodyNamesANodeAndMayBeADryRun() throws {
        let parsed = try RollbackRequest(json: Data(#"{"node":"worker-2","dry_run":true}"#.utf8))
        #expect(parsed == RollbackRequest(node: "worker-2", dryRun: true))
        #expect(try RollbackRequest(json: parsed.jsonBody()) == parsed)
        #expect(try RollbackRequest(json: Data(#"{"node":"w"}"#.utf8)).dryRun == false)
        for (body, field, rule) in [
            ("[]", "body", "a JSON object"), ("{", "body", "valid JSON"), ("{}", "node", "is required"),
            (#"{"node":7}"#, "node", "must be a string, got a number"),
            (#"{"node":"Worker 2"}"#, "node", "DNS-1123"), (#"{"node":"w","dry_run":"no"}"#, "dry_run", "boolean"),
            (#"{"node":"w","force":true}"#, "force", "unknown field; allowed: node, dry_run, confirm_restore"),
        ] {
            #expect {
                try RollbackRequest(json: Data(body.utf8))
            } throws: { error in
                guard let error = error as? RequestValidationError else { return false }
                return error.field == field && error.rule.contains(rule)
            }
        }
    }

    @Test(arguments: [
        ("", "body", "valid JSON"),
        ("{", "body", "valid JSON"),
        ("[]", "body", "a JSON object, got an array"),
        ("\"1.34.5\"", "body", "got a string"),
        (#"{"kind":"patch"}"#, "target_version", "is required"),
        (#"{"target_version":"1.34.5"}"#, "kind", "is required"),
        (#"{"target_version":"v1.34.5","kind":"patch"}"#, "target_version", "must be X.Y.Z"),
        (#"{"target_version":"1.34.5-1.1","kind":"patch"}"#, "target_version", "must be X.Y.Z"),
        (#"{"target_version":"1.34.5; reboot","kind":"patch"}"#, "target_version", "must be X.Y.Z"),
        (#"{"target_version":"1.34","kind":"patch"}"#, "target_version", "must be X.Y.Z"),
        (#"{"target_version":1.34,"kind":"patch"}"#, "target_version", "must be a string, got a number"),
        (#"{"target_version":null,"kind":"patch"}"#, "target_version", "must be a string, got null"),
        (#"{"target_version":"1.34.5","kind":"major"}"#, "kind", "\"patch\" or \"minor\""),
        (#"{"target_version":"1.34.5","kind":["patch"]}"#, "kind", "got an array"),
        (#"{"target_version":"1.34.5","kind":"patch","dry_run":"yes"}"#, "dry_run", "must be a boolean, got a string"),
        (#"{"target_version":"1.34.5","kind":"patch","dry_run":1}"#, "dry_run", "must be a boolean, got a number"),
        (#"{"target_version":"1.34.5","kind":"patch","dry_run":0}"#, "dry_run", "must be a boolean, got a number"),
        (
            #"{"target_version":"1.34.5","kind":"patch","stages":"preflight,drain"}"#, "stages",
            "unknown stage \"drain\"; valid: all, preflight, snapshot, containerd, repo, master, workers, postflight"
        ),
        (#"{"target_version":"1.34.5","kind":"patch","stages":"preflight,,snapshot"}"#, "stages", "an empty name"),
        (#"{"target_version":"1.34.5","kind":"patch","stages":""}"#, "stages", "comma list"),
        (#"{"target_version":"1.34.5","kind":"patch","stages":"all,preflight"}"#, "stages", "cannot be combined"),
        (#"{"target_version":"1.34.5","kind":"patch","stages":"master,master"}"#, "stages", "listed twice"),
        (
            #"{"target_version":"1.34.5","kind":"patch","stages":["preflight"]}"#, "stages",
            "must be a string, got an array"
        ),
        (
            #"{"target_version":"1.34.5","kind":"patch","force":true}"#, "force",
            "unknown field; allowed: target_version, kind, dry_run, stages, rollback"
        ),
        (#"{"target_version":"1.34.3","kind":"patch","rollback":"worker-2"}"#, "rollback", "an object, got a string"),
        (#"{"target_version":"1.34.3","kind":"patch","rollback":{"node":"w"}}"#, "rollback.job", "positive integer"),
        (#"{"target_version":"1.34.3","kind":"patch","rollback":{"job":0,"node":"w"}}"#, "rollback.job", "positive"),
        (#"{"target_version":"1.34.3","kind":"patch","rollback":{"job":1.5,"node":"w"}}"#, "rollback.job", "integer"),
        (#"{"target_version":"1.34.3","kind":"patch","rollback":{"job":1}}"#, "rollback.node", "a node name"),
        (
            #"{"target_version":"1.34.3","kind":"patch","rollback":{"job":1,"node":"w;reboot"}}"#, "rollback.node",
            "a node name"
        ),
        (
            #"{"target_version":"1.34.3","kind":"patch","rollback":{"job":1,"node":"w","all":true}}"#,
            "rollback.all", "unknown field; allowed: job, node"
        ),
        (#"{"target_version":"1.34.5","kind":"patch","Target_Version":"1.34.5"}"#, "Target_Version", "unknown field"),
    ])
    func rejects(json: String, field: String, rule: String) {
        #expect {
            try decode(json)
        } throws: { error in
            guard let error = error as? RequestValidationError else { return false }
            return error.field == field && error.rule.contains(rule)
        }
    }

    @Test func stageSelectionTolerantSpacingButStrictNames() throws {
        #expect(try StageSelection(parsing: " workers , master ") == .only([.master, .workers]))
        #expect(try StageSelection(parsing: "all").description == "all")
        #expect(try StageSelection(parsing: "postflight,preflight").description == "preflight,postflight")
        #expect(StageSelection.all.includes(.repo))
        #expect(!StageSelection.only([.preflight]).includes(.repo))
    }
}

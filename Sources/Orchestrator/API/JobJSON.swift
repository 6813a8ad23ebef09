import FoundationEssentials
import Shared
import SharedIO

/// The JSON forms of jobs and events that the API serves, as documented in
/// the OpenAPI document.
enum JobJSON {
    static func time(_ seconds: Double?) -> JSONValue {
        guard let seconds else { return .null }
        return .string(Timestamp.rfc3339(seconds))
    }

    static func optional(_ text: String?) -> JSONValue { text.map(JSONValue.string) ?? .null }

    static func request(_ request: ExecuteRequest) -> JSONValue {
        var fields: [String: JSONValue] = [
            "target_version": .string(request.targetVersion.description), "kind": .string(request.kind.rawValue),
            "dry_run": .bool(request.dryRun), "stages": .string(request.stages.description),
            "accept_blockers": .bool(request.acceptBlockers),
        ]
        if let rollback = request.rollback { fields["rollback"] = rollback.json }
        return .object(fields)
    }

    /// The fields every job form has.
    static func summary(_ job: JobRecord) -> [String: JSONValue] {
        [
            "id": .number(Double(job.id)), "state": .string(job.state.rawValue), "request": request(job.request),
            "created_at": time(job.createdAt), "started_at": time(job.startedAt),
            "finished_at": time(job.finishedAt), "updated_at": time(job.updatedAt),
            "current_stage": optional(job.progress.currentStage?.rawValue),
            "current_node": optional(job.progress.currentNode), "error": optional(job.progress.lastError),
        ]
    }

    /// One job in full, with a page of its events.
    static func detail(_ job: JobRecord, events: [JobEvent], limit: Int) -> JSONValue {
        var object = summary(job)
        object["wait"] =
            job.progress.wait.map { wait in
                JSONValue.object([
                    "what": .string(wait.what), "reason": .string(wait.reason), "since": time(wait.since),
                    "deadline": time(wait.deadline), "stage": optional(wait.stage?.rawValue),
                    "node": optional(wait.node),
                ])
            } ?? .null
        object["stages"] = .array(
            job.progress.stages.map { stage in
                .object([
                    "name": .string(stage.stage.rawValue), "status": .string(stage.status.rawValue),
                    "started_at": time(stage.startedAt), "finished_at": time(stage.finishedAt),
                    "duration_seconds": stage.durationSeconds.map(JSONValue.number) ?? .null,
                    "detail": optional(stage.detail),
                ])
            })
        object["nodes"] = .array(
            job.progress.nodes.map { node in
                .object([
                    "name": .string(node.name), "stage": optional(node.stage?.rawValue),
                    "status": .string(node.status.rawValue), "started_at": time(node.startedAt),
                    "finished_at": time(node.finishedAt),
                    "duration_seconds": node.durationSeconds.map(JSONValue.number) ?? .null,
                    "detail": optional(node.detail),
                ])
            })
        object["result"] = job.result ?? .null
        let last = events.last?.sequence
        object["events"] = .object([
            "items": .array(events.map(event)), "total": .number(Double(job.eventCount)),
            "next_after": last.map { events.count == limit && $0 < job.eventCount ? .number(Double($0)) : .null }
                ?? .null,
        ])
        return .object(object)
    }

    /// A job in full without its events and without what moves with each
    /// event (`updated_at`): what a follower's `job` message carries, sent
    /// only when it reads differently.
    static func state(_ job: JobRecord) -> JSONValue {
        guard case var .object(object) = detail(job, events: [], limit: 1) else { return .null }
        object["events"] = nil
        object["updated_at"] = nil
        return .object(object)
    }

    static func event(_ event: JobEvent) -> JSONValue {
        .object([
            "seq": .number(Double(event.sequence)), "time": time(event.time), "kind": .string(event.kind.rawValue),
            "stage": optional(event.stage?.rawValue), "node": optional(event.node), "message": .string(event.message),
            "deadline": time(event.deadline),
        ])
    }
}

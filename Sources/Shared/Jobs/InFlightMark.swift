public import FoundationEssentials

/// What the namespace annotations say about the upgrade in flight: enough
/// for a service whose job store was lost (a new volume, a pod on another
/// node) to adopt the job and continue it. The annotations come from the
/// cluster, so they are validated here like any request.
public struct InFlightMark: Sendable, Equatable {
    /// The job's id; nodes it cordoned carry `cordoned-by: job-<id>`.
    public var jobID: Int64
    public var request: ExecuteRequest
    /// The first pre-upgrade snapshot, when the job took one.
    public var snapshotPath: String?

    public init(jobID: Int64, request: ExecuteRequest, snapshotPath: String? = nil) {
        self.jobID = jobID
        self.request = request
        self.snapshotPath = snapshotPath
    }

    /// The annotations (without the prefix) that carry this mark.
    public var annotations: [String: String] {
        var values = [
            "in-flight": "true", "job": String(jobID), "target": request.targetVersion.description,
            "request": String(decoding: request.jsonBody(), as: UTF8.self),
        ]
        if let snapshotPath { values["snapshot-path"] = snapshotPath }
        return values
    }

    /// The annotation keys a finished upgrade removes.
    public static let keys = [
        "in-flight", "job", "target", "request", "snapshot-path", "snapshot-copy", "snapshot-sha256",
    ]

    /// Reads the mark out of the namespace annotations (prefix removed):
    /// nil when no upgrade is in flight; an error when one is but the mark
    /// cannot be trusted (written by an older version, or edited by hand).
    public static func read(_ annotations: [String: String]) -> Result<InFlightMark, InFlightMarkError>? {
        guard annotations["in-flight"] == "true" else { return nil }
        guard let text = annotations["job"], let id = Int64(text), id > 0 else {
            return .failure(
                InFlightMarkError(
                    "the in-flight mark names no job (annotation job: \(annotations["job"] ?? "missing"))"))
        }
        guard let body = annotations["request"] else {
            return .failure(InFlightMarkError("the in-flight mark of job \(id) carries no request"))
        }
        let request: ExecuteRequest
        do { request = try ExecuteRequest(json: Data(body.utf8)) } catch {
            return .failure(InFlightMarkError("the in-flight request of job \(id) is not valid: \(error)"))
        }
        let snapshot = annotations["snapshot-path"].flatMap { $0.hasPrefix("/") && !$0.contains("\n") ? $0 : nil }
        return .success(InFlightMark(jobID: id, request: request, snapshotPath: snapshot))
    }
}

public struct InFlightMarkError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

import FoundationEssentials
import HTTPTypes
import Hummingbird
import Shared
import SharedIO
import Synchronization

/// `/execute` and `/jobs…`: translates HTTP into coordinator and store
/// calls and their answers back into HTTP; every decision about jobs is
/// the coordinator's.
struct JobsController {
    let coordinator: JobCoordinator
    let store: JobStore
    /// The status page's sessions: a browser's `GET /jobs/{id}` is the job's page.
    let sessions: PageSessions
    /// Answers already written, by what they were made of: a job's form
    /// is a function of its record and events, both fixed by the row's
    /// revision, and a list's of its jobs' ids and revisions.
    let rendered = RenderedAnswers()
    /// Larger request bodies are refused with 413.
    static let maximumBodyBytes = 64 * 1024

    func add(to group: RouterGroup<BasicRequestContext>) {
        group.post("/execute") { request, _ in try await execute(request) }
        group.get("/jobs") { request, _ in
            let limit = try Self.integer(request.uri.queryParameters, "limit", default: 50, range: 1...500)
            let listed = RenderedAnswers.Key.list(
                try await store.revisions(limit: limit).flatMap { [$0.id, $0.revision] })
            if let bytes = rendered[listed] { return APIResponse.json(bytes) }
            let jobs = try await store.jobs(limit: limit)
            let bytes = JSONValue.object(["jobs": .array(jobs.map { .object(JobJSON.summary($0)) })]).jsonBytes
            rendered[.list(jobs.flatMap { [$0.id, $0.revision] })] = bytes
            return APIResponse.json(bytes)
        }
        group.get("/jobs/{id}") { request, context in
            // JSON or the job's page, by the request's Accept: caches keep them apart.
            var response = try await job(request, context)
            response.headers[.vary] = "Accept"
            return response
        }
        group.delete("/jobs/{id}") { _, context in
            let id = try Self.jobID(context)
            let job = try await coordinator.abort(id).job(id)
            return APIResponse.json(.object(JobJSON.summary(job)), status: .accepted)
        }
        group.post("/jobs/{id}/rollback") { request, context in
            let id = try Self.jobID(context)
            let body = try await Self.readJSONBody(request)
            let rollback: RollbackRequest
            do { rollback = try RollbackRequest(json: body) } catch let error as RequestValidationError {
                throw Self.badRequest(error)
            }
            switch try await Self.checked({ try await coordinator.rollback(id, rollback) }) {
            case .notFound: throw Self.notFound(id)
            case let .queued(job):
                var response = APIResponse.json(.object(JobJSON.summary(job)), status: .accepted)
                response.headers[.location] = "/jobs/\(job.id)"
                return response
            case let .conflict(active): throw Self.activeConflict(active)
            case let .refused(reason):
                throw Problem(
                    status: .unprocessableContent, message: reason,
                    detail: .object(["job": .number(Double(id)), "node": .string(rollback.node)]))
            }
        }
        group.post("/jobs/{id}/resume") { _, context in
            let id = try Self.jobID(context)
            let job = try await coordinator.resume(id).job(id)
            return APIResponse.json(.object(JobJSON.summary(job)), status: .accepted)
        }
    }

    /// One job as JSON, or its page for a browser.
    private func job(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let id = try Self.jobID(context)
        let query = request.uri.queryParameters
        let after = try Self.integer(query, "events_after", default: 0, range: 0...Int(Int32.max))
        let limit = try Self.integer(query, "events_limit", default: 100, range: 1...1000)
        if PageController.wantsHTML(request) { return try await page(id, request) }
        if let revision = try await store.revision(of: id),
            let bytes = rendered[.job(id: id, revision: revision, after: after, limit: limit)]
        {
            return APIResponse.json(bytes)
        }
        guard let detail = try await store.detail(id, eventsAfter: after, limit: limit) else {
            throw Self.notFound(id)
        }
        let bytes = JobJSON.detail(detail.job, events: detail.events, limit: limit).jsonBytes
        rendered[.job(id: id, revision: detail.job.revision, after: after, limit: limit)] = bytes
        return APIResponse.json(bytes)
    }

    /// The job's page: the job as the API has it, with its last
    /// ``pageEvents`` events; its forms only for a signed-in browser.
    private func page(_ id: Int64, _ request: Request) async throws -> Response {
        guard let job = try await store.job(id) else { throw Self.notFound(id) }
        let after = max(0, job.eventCount - Self.pageEvents)
        guard let detail = try await store.detail(id, eventsAfter: after, limit: Self.pageEvents) else {
            throw Self.notFound(id)
        }
        let session = sessions.session(cookieHeader: request.headers[.cookie], now: PageController.now())
        let planned = await coordinator.plannedNodes(id, target: detail.job.request.targetVersion)
        let html = StatusPage.job(
            JobJSON.detail(detail.job, events: [], limit: 1), events: detail.events.map(JobJSON.event),
            now: PageController.now(), csrf: session?.csrf, planned: planned)
        return PageController.page(html)
    }

    /// The events a job's page starts with (the most recent); the rest follow live.
    static let pageEvents = 500

    private func execute(_ request: Request) async throws -> Response {
        let body = try await Self.readJSONBody(request)
        let executeRequest: ExecuteRequest
        do { executeRequest = try ExecuteRequest(json: body) } catch { throw Self.badRequest(error) }
        guard executeRequest.rollback == nil else {
            throw Self.badRequest(
                RequestValidationError(field: "rollback", rule: "is not taken here; use POST /jobs/{id}/rollback"))
        }
        switch try await Self.checked({ try await coordinator.submit(executeRequest) }) {
        case let .queued(job):
            var response = APIResponse.json(.object(JobJSON.summary(job)), status: .accepted)
            response.headers[.location] = "/jobs/\(job.id)"
            return response
        case let .conflict(active): throw Self.activeConflict(active)
        case let .nothingToDo(reason):
            return APIResponse.json(.object(["outcome": .string("nothing_to_do"), "reason": .string(reason)]))
        case let .refused(reason):
            throw Problem(
                status: .unprocessableContent, message: reason,
                detail: .object([
                    "target_version": .string(executeRequest.targetVersion.description),
                    "kind": .string(executeRequest.kind.rawValue),
                ]))
        }
    }

    // MARK: - Request checks

    private static func readJSONBody(_ request: Request) async throws -> Data {
        let type = request.headers[.contentType] ?? ""
        let mediaType = type.split(separator: ";").first.map { $0.trimmingWhitespace().lowercased() } ?? ""
        guard mediaType == "application/json" else {
            throw Problem(
                status: .unsupportedMediaType,
                message: "Content-Type must be application/json, got \(type.isEmpty ? "none" : type)")
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maximumBodyBytes {
            throw bodyTooLarge()
        }
        var request = request
        do {
            return Data(buffer: try await request.collectBody(upTo: maximumBodyBytes))
        } catch {
            throw bodyTooLarge()
        }
    }

    private static func badRequest(_ error: RequestValidationError) -> Problem {
        Problem(
            status: .badRequest, message: "\(error.field): \(error.rule)",
            detail: .object(["field": .string(error.field), "rule": .string(error.rule)]))
    }

    private static func bodyTooLarge() -> Problem {
        Problem(status: .contentTooLarge, message: "the request body is larger than \(maximumBodyBytes) bytes")
    }

    private static func jobID(_ context: BasicRequestContext) throws -> Int64 {
        let text = context.parameters.get("id") ?? ""
        guard let id = Int64(text), id > 0 else {
            throw Problem(status: .badRequest, message: "job id must be a positive integer, got \"\(text)\"")
        }
        return id
    }

    private static func integer(
        _ query: Parameters, _ name: String, default fallback: Int, range: ClosedRange<Int>
    ) throws -> Int {
        guard let text = query[name[...]] else { return fallback }
        guard let value = Int(text), range.contains(value) else {
            throw Problem(
                status: .badRequest,
                message: "\(name) must be an integer in \(range.lowerBound)...\(range.upperBound), got \"\(text)\"",
                detail: .object([
                    "field": .string(name), "rule": .string("integer in \(range.lowerBound)...\(range.upperBound)"),
                ]))
        }
        return value
    }

    /// A request the cluster could not be read to check: 503, try again
    /// later; nothing was queued.
    private static func checked<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let unchecked as Admitter.Unchecked {
            var refusal = Problem(status: .serviceUnavailable, message: unchecked.description)
            refusal.headers[.retryAfter] = "30"
            throw refusal
        }
    }

    static func notFound(_ id: Int64) -> Problem {
        Problem(status: .notFound, message: "job \(id) does not exist")
    }

    static func activeConflict(_ active: JobRecord) -> Problem {
        Problem(
            status: .conflict, message: "job \(active.id) is \(active.state.rawValue); one job at a time",
            detail: .object(["active_job": .object(JobJSON.summary(active))]))
    }
}

extension JobCoordinator.AbortOutcome {
    /// The job the abort was taken for, or the problem to answer with
    /// instead: one answer for the API and the status page.
    func job(_ id: Int64) throws -> JobRecord {
        switch self {
        case .notFound: throw JobsController.notFound(id)
        case let .accepted(job): return job
        case let .refused(job):
            throw Problem(
                status: .conflict,
                message: "job \(id) is \(job.state.rawValue); only a queued, running or interrupted job can be aborted",
                detail: .object(["job": .object(JobJSON.summary(job))]))
        }
    }
}

extension JobCoordinator.ResumeOutcome {
    /// The job queued again, or the problem to answer with instead: one
    /// answer for the API and the status page.
    func job(_ id: Int64) throws -> JobRecord {
        switch self {
        case .notFound: throw JobsController.notFound(id)
        case let .accepted(job): return job
        case let .conflict(active): throw JobsController.activeConflict(active)
        case let .refused(job):
            throw Problem(
                status: .conflict,
                message: "job \(id) is \(job.state.rawValue); only failed, aborted or interrupted jobs can be resumed",
                detail: .object(["job": .object(JobJSON.summary(job))]))
        }
    }
}

/// The last answers written for job reads, at most ``limit`` of them (past
/// it they start over): a few kilobytes each, read far more often than
/// the jobs change.
final class RenderedAnswers: Sendable {
    enum Key: Hashable {
        case job(id: Int64, revision: Int64, after: Int, limit: Int)
        case list([Int64])
    }

    static let limit = 32
    private let answers = Mutex<[Key: [UInt8]]>([:])

    subscript(key: Key) -> [UInt8]? {
        get { answers.withLock { $0[key] } }
        set {
            answers.withLock { answers in
                if answers.count >= Self.limit, answers[key] == nil { answers.removeAll(keepingCapacity: true) }
                answers[key] = newValue
            }
        }
    }
}

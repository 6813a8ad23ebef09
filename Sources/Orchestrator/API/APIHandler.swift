import FoundationEssentials
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Shared
import SharedIO

/// The service's HTTP application, as Hummingbird's template builds one: the
/// API handler as its responder and the services it runs beside the server.
/// Tests build it without argument parsing and call it in-process.
func buildApplication(
    handler: APIHandler, configuration: ApplicationConfiguration = .init(), services: [any Service] = [],
    onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
) -> some ApplicationProtocol {
    Application(
        responder: CallbackResponder { request, context in await handler.respond(to: request, context: context) },
        configuration: configuration, services: services, onServerRunning: onServerRunning,
        logger: Logger(label: "k8s-upgrade", factory: { _ in SwiftLogNoOpLogHandler() }))
}

/// The orchestrator's HTTP API: routing, bearer-token auth, request limits
/// and JSON errors `{"error": "...", "detail": ...}`. Every decision about
/// jobs is the coordinator's; this layer only translates.
struct APIHandler: Sendable {
    let coordinator: JobCoordinator
    let store: JobStore
    let token: BearerToken
    let metrics: ServiceMetrics
    /// Larger request bodies are refused with 413.
    static let maximumBodyBytes = 64 * 1024

    /// A refusal: status, message and optional detail.
    struct Problem: Error {
        let status: HTTPResponse.Status
        let message: String
        var detail: JSONValue = .null
        var headers: HTTPFields = [:]
    }

    func respond(to request: Request, context: BasicRequestContext) async -> Response {
        let path = request.uri.path
        let (route, response) = await answer(request, path: path)
        metrics.count(method: request.method.rawValue, route: route, status: response.status.code)
        return response
    }

    private func answer(_ request: Request, path: String) async -> (route: String, response: Response) {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let route: String
        switch parts {
        case ["healthz"]: route = "/healthz"
        case ["readyz"]: route = "/readyz"
        case ["metrics"]: route = "/metrics"
        case ["openapi.yaml"]: route = "/openapi.yaml"
        case ["execute"]: route = "/execute"
        case ["jobs"]: route = "/jobs"
        case let p where p.count == 2 && p[0] == "jobs": route = "/jobs/{id}"
        case let p where p.count == 3 && p[0] == "jobs" && p[2] == "resume": route = "/jobs/{id}/resume"
        default: return ("other", problem(Problem(status: .notFound, message: "no such route: \(path)")))
        }
        do {
            return (route, try await dispatch(request, route: route, parts: parts))
        } catch let refusal as Problem {
            return (route, problem(refusal))
        } catch let standby as JobCoordinator.StandingBy {
            var refusal = Problem(status: .serviceUnavailable, message: standby.description)
            refusal.headers[.retryAfter] = "2"
            return (route, problem(refusal))
        } catch {
            return (route, problem(Problem(status: .internalServerError, message: "internal error: \(error)")))
        }
    }

    private func dispatch(_ request: Request, route: String, parts: [String]) async throws -> Response {
        let method = request.method
        let allowed: [HTTPRequest.Method] =
            switch route {
            case "/execute", "/jobs/{id}/resume": [.post]
            case "/jobs/{id}": [.get, .delete]
            default: [.get]
            }
        guard allowed.contains(method) || (method == .head && allowed.contains(.get)) else {
            var refusal = Problem(
                status: .methodNotAllowed,
                message:
                    "\(method.rawValue) is not allowed on \(route); allowed: \(allowed.map(\.rawValue).joined(separator: ", "))"
            )
            refusal.headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ")
            throw refusal
        }
        switch route {
        case "/healthz": return json(.object(["status": .string("ok")]))
        case "/readyz":
            // Ready once this process leads: a Service sends clients only to the leader.
            try await coordinator.requireLeading()
            do {
                _ = try await store.activeJob()
                return json(.object(["status": .string("ready")]))
            } catch {
                throw Problem(status: .serviceUnavailable, message: "the job store cannot be read: \(error)")
            }
        default: break
        }
        guard token.accepts(authorizationHeader: request.headers[.authorization]) else {
            var refusal = Problem(status: .unauthorized, message: "missing or wrong bearer token")
            refusal.headers[.wwwAuthenticate] = "Bearer realm=\"k8s-upgrade\""
            throw refusal
        }
        let query = request.uri.queryParameters
        switch route {
        case "/metrics":
            let text = metrics.exposition(jobs: try await store.countsByState(), active: try await store.activeJob())
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        case "/openapi.yaml":
            return Response(
                status: .ok, headers: [.contentType: "application/yaml"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: OpenAPIDocument.yaml)))
        case "/execute":
            let body = try await readJSONBody(request)
            let executeRequest: ExecuteRequest
            do { executeRequest = try ExecuteRequest(json: body) } catch {
                throw Problem(
                    status: .badRequest, message: "\(error.field): \(error.rule)",
                    detail: .object(["field": .string(error.field), "rule": .string(error.rule)]))
            }
            let outcome: JobCoordinator.SubmitOutcome
            do { outcome = try await coordinator.submit(executeRequest) } catch let unchecked as Admitter.Unchecked {
                var refusal = Problem(status: .serviceUnavailable, message: unchecked.description)
                refusal.headers[.retryAfter] = "30"
                throw refusal
            }
            switch outcome {
            case let .queued(job):
                var response = json(.object(JobJSON.summary(job)), status: .accepted)
                response.headers[.location] = "/jobs/\(job.id)"
                return response
            case let .conflict(active): throw activeConflict(active)
            case let .nothingToDo(reason):
                return json(.object(["outcome": .string("nothing_to_do"), "reason": .string(reason)]))
            case let .refused(reason):
                throw Problem(
                    status: .unprocessableContent, message: reason,
                    detail: .object([
                        "target_version": .string(executeRequest.targetVersion.description),
                        "kind": .string(executeRequest.kind.rawValue),
                    ]))
            }
        case "/jobs":
            let limit = try integer(query, "limit", default: 50, range: 1...500)
            let jobs = try await store.jobs(limit: limit)
            return json(.object(["jobs": .array(jobs.map { .object(JobJSON.summary($0)) })]))
        case "/jobs/{id}":
            let id = try jobID(parts[1])
            if method == .delete {
                switch try await coordinator.abort(id) {
                case .notFound: throw notFound(id)
                case let .accepted(job): return json(.object(JobJSON.summary(job)), status: .accepted)
                case let .refused(job):
                    throw Problem(
                        status: .conflict,
                        message:
                            "job \(id) is \(job.state.rawValue); only a queued, running or interrupted job can be aborted",
                        detail: .object(["job": .object(JobJSON.summary(job))]))
                }
            }
            let after = try integer(query, "events_after", default: 0, range: 0...Int(Int32.max))
            let limit = try integer(query, "events_limit", default: 100, range: 1...1000)
            guard let detail = try await store.detail(id, eventsAfter: after, limit: limit) else { throw notFound(id) }
            return json(JobJSON.detail(detail.job, events: detail.events, limit: limit))
        case "/jobs/{id}/resume":
            let id = try jobID(parts[1])
            switch try await coordinator.resume(id) {
            case .notFound: throw notFound(id)
            case let .accepted(job): return json(.object(JobJSON.summary(job)), status: .accepted)
            case let .conflict(active): throw activeConflict(active)
            case let .refused(job):
                throw Problem(
                    status: .conflict,
                    message:
                        "job \(id) is \(job.state.rawValue); only failed, aborted or interrupted jobs can be resumed",
                    detail: .object(["job": .object(JobJSON.summary(job))]))
            }
        default:
            throw Problem(status: .notFound, message: "no such route")
        }
    }

    // MARK: - Request checks

    private func readJSONBody(_ request: Request) async throws -> Data {
        let type = request.headers[.contentType] ?? ""
        let mediaType = type.split(separator: ";").first.map { $0.trimmingWhitespace().lowercased() } ?? ""
        guard mediaType == "application/json" else {
            throw Problem(
                status: .unsupportedMediaType,
                message: "Content-Type must be application/json, got \(type.isEmpty ? "none" : type)")
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > Self.maximumBodyBytes {
            throw bodyTooLarge()
        }
        var request = request
        do {
            return Data(buffer: try await request.collectBody(upTo: Self.maximumBodyBytes))
        } catch {
            throw bodyTooLarge()
        }
    }

    private func bodyTooLarge() -> Problem {
        Problem(status: .contentTooLarge, message: "the request body is larger than \(Self.maximumBodyBytes) bytes")
    }

    private func jobID(_ text: String) throws -> Int64 {
        guard let id = Int64(text), id > 0 else {
            throw Problem(status: .badRequest, message: "job id must be a positive integer, got \"\(text)\"")
        }
        return id
    }

    private func integer(
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

    private func notFound(_ id: Int64) -> Problem { Problem(status: .notFound, message: "job \(id) does not exist") }

    private func activeConflict(_ active: JobRecord) -> Problem {
        Problem(
            status: .conflict, message: "job \(active.id) is \(active.state.rawValue); one job at a time",
            detail: .object(["active_job": .object(JobJSON.summary(active))]))
    }

    // MARK: - Responses

    private func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    private func problem(_ refusal: Problem) -> Response {
        var response = json(
            .object(["error": .string(refusal.message), "detail": refusal.detail]), status: refusal.status)
        for field in refusal.headers { response.headers.append(field) }
        return response
    }
}

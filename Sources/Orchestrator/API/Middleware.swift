import FoundationEssentials
import HTTPTypes
import Hummingbird
import Shared
import SharedIO

/// A refusal: status, message and optional detail, answered as the
/// problem body `{"error": "...", "detail": ...}`.
struct Problem: Error {
    let status: HTTPResponse.Status
    let message: String
    var detail: JSONValue = .null
    var headers: HTTPFields = [:]
}

enum APIResponse {
    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        json(value.jsonBytes, status: status)
    }

    /// JSON text already written.
    static func json(_ bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func problem(_ refusal: Problem) -> Response {
        var response = json(
            .object(["error": .string(refusal.message), "detail": refusal.detail]), status: refusal.status)
        for field in refusal.headers { response.headers.append(field) }
        return response
    }
}

/// Every error becomes the problem body: a ``Problem`` as it says, the
/// router's not-found as 404 (or 405 with `Allow` for a known path), a
/// standing-by replica as 503 with `Retry-After`, anything else as 500.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    )
        async throws -> Response
    {
        do {
            return try await next(request, context)
        } catch let refusal as Problem {
            return APIResponse.problem(refusal)
        } catch let error as HTTPError where error.status == .notFound {
            let path = request.uri.path
            guard let route = APIRoutes.route(of: path) else {
                return APIResponse.problem(Problem(status: .notFound, message: "no such route: \(path)"))
            }
            let allowed = route.methods.map(\.rawValue).joined(separator: ", ")
            var refusal = Problem(
                status: .methodNotAllowed,
                message: "\(request.method.rawValue) is not allowed on \(route.template); allowed: \(allowed)")
            refusal.headers[.allow] = allowed
            return APIResponse.problem(refusal)
        } catch let standby as JobCoordinator.StandingBy {
            var refusal = Problem(status: .serviceUnavailable, message: standby.description)
            refusal.headers[.retryAfter] = "2"
            return APIResponse.problem(refusal)
        } catch {
            return APIResponse.problem(Problem(status: .internalServerError, message: "internal error: \(error)"))
        }
    }
}

/// One line per request at debug, through the request's logger (which
/// carries Hummingbird's `hb.request.id`); a server error at error.
struct RequestLogMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    )
        async throws -> Response
    {
        let response = try await next(request, context)
        let fields = [
            "method": request.method.rawValue, "path": request.uri.path, "status": String(response.status.code),
        ]
        if response.status.code >= 500 {
            context.logger.error("request failed", fields)
        } else {
            context.logger.debug("request", metadata: fields.mapValues { .string($0) })
        }
        return response
    }
}

/// Counts every answer under its route template (`other` for no route) and status.
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let metrics: ServiceMetrics

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    )
        async throws -> Response
    {
        let response = try await next(request, context)
        let route = APIRoutes.route(of: request.uri.path)?.template ?? "other"
        metrics.count(method: request.method.rawValue, route: route, status: response.status.code)
        return response
    }
}

/// The bearer token, compared in constant time, in front of every route but
/// the probes and the status page's own. A signed-in page's session cookie
/// opens the reads (GET and HEAD) too, never a change: the page changes a
/// job only through its forms, which carry the session's form token. A
/// browser that is not signed in is sent to the sign-in form.
struct BearerAuthMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let token: BearerToken
    let sessions: PageSessions

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    )
        async throws -> Response
    {
        if token.accepts(authorizationHeader: request.headers[.authorization]) {
            return try await next(request, context)
        }
        let reads = request.method == .get || request.method == .head
        if sessions.session(cookieHeader: request.headers[.cookie], now: PageController.now()) != nil {
            guard reads else {
                throw Problem(
                    status: .forbidden,
                    message: "a signed-in page may only read the API; changes go through the page's forms or the token")
            }
            return try await next(request, context)
        }
        if reads, PageController.wantsHTML(request) { return PageController.redirect("/ui/login") }
        var refusal = Problem(status: .unauthorized, message: "missing or wrong bearer token")
        refusal.headers[.wwwAuthenticate] = "Bearer realm=\"k8s-upgrade\""
        throw refusal
    }
}

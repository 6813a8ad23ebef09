import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Shared
import SharedIO

/// What the HTTP API stands on.
struct APIDependencies: Sendable {
    let coordinator: JobCoordinator
    let store: JobStore
    let token: BearerToken
    let metrics: ServiceMetrics
    /// What `GET /plan` asks; `nil` answers 503 (a server without a cluster).
    var planner: Planner?
    var logger = Logger(label: "k8s-upgrade.http", factory: { _ in SwiftLogNoOpLogHandler() })
}

/// The service's HTTP application, as Hummingbird's template builds one:
/// a router over the controllers, and the services it runs beside the
/// server. Tests build it without argument parsing and call it in-process.
func buildApplication(
    _ dependencies: APIDependencies, configuration: ApplicationConfiguration = .init(),
    services: [any Service] = [], onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
) -> some ApplicationProtocol {
    Application(
        router: buildRouter(dependencies), configuration: configuration, services: services,
        onServerRunning: onServerRunning, logger: dependencies.logger)
}

/// Every route and the methods it answers; a known path asked with another
/// method is answered 405 with `Allow` (HEAD goes with GET).
enum APIRoutes {
    static let table: [(template: String, methods: [HTTPRequest.Method])] = [
        ("/healthz", [.get]), ("/readyz", [.get]), ("/metrics", [.get]), ("/openapi.yaml", [.get]),
        ("/execute", [.post]), ("/jobs", [.get]), ("/jobs/{id}", [.get, .delete]), ("/jobs/{id}/resume", [.post]),
        ("/jobs/{id}/events", [.get]), ("/plan", [.get]),
        // The status page.
        ("/", [.get]), ("/ui/login", [.get, .post]), ("/ui/logout", [.post]), ("/ui/jobs/{id}/abort", [.post]),
        ("/ui/jobs/{id}/resume", [.post]), ("/ui/page.css", [.get]), ("/ui/page.js", [.get]),
        ("/ui/icon.svg", [.get]),
    ]

    /// The template `path` matches and its methods, if any.
    static func route(of path: String) -> (template: String, methods: [HTTPRequest.Method])? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        return table.first { route in
            let template = route.template.split(separator: "/")
            return template.count == parts.count
                && zip(template, parts).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
        }
    }
}

/// Request logs, metrics and problems around everything; the probes open; the bearer
/// token in front of the rest.
func buildRouter(_ dependencies: APIDependencies) -> Router<BasicRequestContext> {
    let router = Router(options: .autoGenerateHeadEndpoints)
    router.addMiddleware {
        RequestLogMiddleware()
        RequestMetricsMiddleware(metrics: dependencies.metrics)
        ProblemMiddleware()
    }
    HealthController(coordinator: dependencies.coordinator, store: dependencies.store).add(to: router)
    let sessions = PageSessions()
    PageController(
        coordinator: dependencies.coordinator, store: dependencies.store, token: dependencies.token, sessions: sessions
    ).add(to: router)
    let authenticated = router.group().add(
        middleware: BearerAuthMiddleware(token: dependencies.token, sessions: sessions))
    MetaController(store: dependencies.store, metrics: dependencies.metrics).add(to: authenticated)
    JobsController(coordinator: dependencies.coordinator, store: dependencies.store, sessions: sessions).add(
        to: authenticated)
    EventsController(store: dependencies.store, feeds: JobFeeds(store: dependencies.store)).add(to: authenticated)
    PlanController(planner: dependencies.planner).add(to: authenticated)
    return router
}

/// `/healthz` (alive) and `/readyz` (leads and can read its store): no token.
struct HealthController {
    let coordinator: JobCoordinator
    let store: JobStore

    func add(to router: Router<BasicRequestContext>) {
        router.get("/healthz") { _, _ in APIResponse.json(.object(["status": .string("ok")])) }
        router.get("/readyz") { _, _ in
            // Ready once this process leads: a Service sends clients only to the leader.
            try await coordinator.requireLeading()
            do {
                _ = try await store.activeJob()
                return APIResponse.json(.object(["status": .string("ready")]))
            } catch {
                throw Problem(status: .serviceUnavailable, message: "the job store cannot be read: \(error)")
            }
        }
    }
}

/// `/metrics` and `/openapi.yaml`.
struct MetaController {
    let store: JobStore
    let metrics: ServiceMetrics

    func add(to group: RouterGroup<BasicRequestContext>) {
        group.get("/metrics") { _, _ in
            let text = metrics.exposition(jobs: try await store.countsByState(), active: try await store.activeJob())
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        }
        group.get("/openapi.yaml") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/yaml"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: OpenAPIDocument.yaml)))
        }
    }
}

/// `GET /plan[?target=X.Y.Z]`: what a job would do, read from live state.
struct PlanController {
    let planner: Planner?

    func add(to group: RouterGroup<BasicRequestContext>) {
        group.get("/plan") { request, _ in
            let query = request.uri.queryParameters
            var target: KubeVersion?
            if let text = query["target"].map(String.init) {
                guard let version = try? KubeVersion(strictRelease: text) else {
                    throw Problem(
                        status: .badRequest, message: "target: must be X.Y.Z or X.Y.Z+k3sN, got \(text.prefix(40))")
                }
                target = version
            }
            let accept: Bool
            switch query["accept_blockers"].map(String.init) {
            case nil, "false": accept = false
            case "true": accept = true
            case let other?:
                throw Problem(
                    status: .badRequest, message: "accept_blockers: must be true or false, got \(other.prefix(40))")
            }
            guard let planner else {
                throw Problem(status: .serviceUnavailable, message: "this server has no cluster to plan for")
            }
            do {
                let forecast = try await planner.forecast(
                    target: target, now: SystemJobClock().now(), acceptBlockers: accept)
                return APIResponse.json(forecast.json)
            } catch let refused as Planner.Failure {
                throw Problem(status: .unprocessableContent, message: refused.description)
            } catch {
                throw Problem(status: .serviceUnavailable, message: "the cluster could not be read: \(error)")
            }
        }
    }
}

import FoundationEssentials
import HTTPTypes
import Hummingbird
import NIOCore
import Shared
import SharedIO

/// The status page: `GET /` (the jobs, or the sign-in form), the sign-in
/// and sign-out, the forms that abort or resume a job, and the page's
/// stylesheet and script, served from the binary. A job's own page is
/// `GET /jobs/{id}` asked for as HTML (``JobsController``).
struct PageController {
    let coordinator: JobCoordinator
    let store: JobStore
    let token: BearerToken
    let sessions: PageSessions

    /// Larger form bodies are refused.
    static let maximumFormBytes = 8 * 1024

    func add(to router: Router<BasicRequestContext>) {
        router.get("/") { request, _ in
            guard let session = sessions.session(cookieHeader: request.headers[.cookie], now: Self.now()) else {
                return Self.page(StatusPage.login())
            }
            let jobs = try await store.jobs(limit: 50)
            return Self.page(StatusPage.jobs(jobs.map { .object(JobJSON.summary($0)) }, csrf: session.csrf))
        }
        router.get("/ui/login") { _, _ in Self.page(StatusPage.login()) }
        router.post("/ui/login") { request, _ in
            let fields = try await Self.form(request)
            guard token.accepts(authorizationHeader: "Bearer " + (fields["token"] ?? "")) else {
                return Self.page(StatusPage.login(message: "That is not the API token."), status: .unauthorized)
            }
            let session = sessions.create(now: Self.now())
            var response = Self.redirect("/")
            // Secure too where the page is reached over HTTPS (a TLS ingress says so).
            let secure = request.headers[HTTPField.Name("X-Forwarded-Proto")!] == "https" ? "; Secure" : ""
            response.headers[.setCookie] =
                "\(PageSessions.cookie)=\(session.id); Path=/; HttpOnly; SameSite=Strict\(secure)"
            return response
        }
        router.post("/ui/logout") { request, _ in
            let (session, _) = try await signedInForm(request)
            sessions.end(session.id)
            var response = Self.redirect("/ui/login")
            response.headers[.setCookie] = "\(PageSessions.cookie)=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
            return response
        }
        router.post("/ui/jobs/{id}/{action}") { request, context in
            let (_, fields) = try await signedInForm(request)
            let text = context.parameters.get("id") ?? ""
            guard let id = Int64(text), id > 0 else {
                throw Problem(status: .badRequest, message: "job id must be a positive integer, got \"\(text)\"")
            }
            guard fields["confirm"] == "yes" else {
                throw Problem(status: .badRequest, message: "tick the box to confirm, then send the form again")
            }
            switch context.parameters.get("action") {
            case "abort": _ = try await coordinator.abort(id).job(id)
            case "resume": _ = try await coordinator.resume(id).job(id)
            default:
                throw Problem(status: .notFound, message: "no such action: \(context.parameters.get("action") ?? "")")
            }
            return Self.redirect("/jobs/\(id)")
        }
        router.get("/ui/page.css") { _, _ in Self.asset(PageAssets.css, type: "text/css; charset=utf-8") }
        router.get("/ui/page.js") { _, _ in Self.asset(PageAssets.script, type: "text/javascript; charset=utf-8") }
        router.get("/ui/icon.svg") { _, _ in Self.asset(PageAssets.icon, type: "image/svg+xml") }
    }

    /// A form sent from a signed-in page: its session, and its fields once
    /// the form's token is the session's.
    private func signedInForm(_ request: Request) async throws -> (PageSessions.Session, [String: String]) {
        guard let session = sessions.session(cookieHeader: request.headers[.cookie], now: Self.now()) else {
            throw Problem(status: .unauthorized, message: "sign in first: the session is missing or has ended")
        }
        let fields = try await Self.form(request)
        guard PageSessions.matches(fields["csrf"], session.csrf) else {
            throw Problem(status: .forbidden, message: "the form's token is not this session's; reload the page")
        }
        return (session, fields)
    }

    static func now() -> Double { SystemJobClock().now() }

    private static func form(_ request: Request) async throws -> [String: String] {
        let type = request.headers[.contentType] ?? ""
        guard type.lowercased().hasPrefix("application/x-www-form-urlencoded") else {
            throw Problem(
                status: .unsupportedMediaType,
                message: "Content-Type must be application/x-www-form-urlencoded, got \(type.isEmpty ? "none" : type)")
        }
        var request = request
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: maximumFormBytes) } catch {
            throw Problem(status: .contentTooLarge, message: "the form is larger than \(maximumFormBytes) bytes")
        }
        return FormBody.fields(String(buffer: body))
    }

    /// An HTML page with the headers every page carries: no caching, no
    /// framing, no code but the page's own files.
    static func page(_ html: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
            headers: [
                .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                .contentSecurityPolicy:
                    "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
                .xContentTypeOptions: "nosniff", HTTPField.Name("Referrer-Policy")!: "no-referrer",
            ],
            body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }

    private static func asset(_ text: String, type: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: type, .cacheControl: "max-age=300", .xContentTypeOptions: "nosniff"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// Whether a request would rather have the page than JSON: a browser's `Accept`.
    static func wantsHTML(_ request: Request) -> Bool {
        (request.headers[.accept] ?? "").contains("text/html")
    }
}

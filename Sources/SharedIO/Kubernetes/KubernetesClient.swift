import FoundationEssentials
public import Shared

/// Reads (and, with the pipeline, writes) the Kubernetes API over HTTPS.
public struct KubernetesClient: Sendable {
    public let access: KubernetesAccess
    /// How long a call that met a transient failure is tried again.
    public let retryBudget: RetryBudget
    private let http: HTTPClient

    /// Told about the retries of every call made in the current task and
    /// its child tasks (a job sets one, so the retries of its drain's
    /// eviction tasks reach it too); `nil`: retries are silent.
    @TaskLocal public static var retryReporter: APIRetryReporter?

    public init(access: KubernetesAccess, timeout: Duration = .seconds(30), retryBudget: RetryBudget = .standard) {
        self.access = access
        self.retryBudget = retryBudget
        var configuration = HTTPClient.Configuration()
        configuration.tls = access.tls
        configuration.timeout = timeout
        configuration.connectTimeout = .seconds(10)
        http = HTTPClient(configuration: configuration)
    }

    /// `GET /version`: the API server's `gitVersion`.
    public func serverVersion() async throws -> KubeVersion {
        let object = try await getJSON("/version")
        guard let text = object[["gitVersion"]]?.stringValue else {
            throw KubernetesAPIError(path: "/version", status: 200, reason: "", message: "no gitVersion in the answer")
        }
        do { return try KubeVersion(parsing: text) } catch {
            throw KubernetesAPIError(path: "/version", status: 200, reason: "", message: error.description)
        }
    }

    /// Every node (the one pagination of ``list(_:pageSize:)``), as the one
    /// node model the detector and the orchestrator share; `cordonAnnotation`
    /// is the key this tool writes when it cordons a node.
    public func nodes(cordonAnnotation: String = "", pageSize: Int = 500) async throws -> [NodeFacts] {
        // Each page is reduced to the facts before the next is read: the
        // nodes' full objects are never all held at once.
        var nodes: [NodeFacts] = []
        try await forEachPage("/api/v1/nodes", pageSize: pageSize) { page in
            nodes += page.map { NodeFacts(node: $0, cordonAnnotation: cordonAnnotation) }
        }
        return nodes
    }

    /// RFC 3986 percent-encoding of everything but unreserved characters.
    public static func percentEncoded(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            let character = Character(Unicode.Scalar(byte))
            if character.isASCII && (character.isLetter || character.isNumber || "-._~".contains(character)) {
                result.append(character)
            } else {
                result += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return result
    }

    /// GETs a path and returns the decoded JSON object; a non-2xx answer
    /// becomes a ``KubernetesAPIError`` with the `Status` reason and message.
    /// Retried on transient failures (``request(_:_:body:contentType:retry:)``).
    public func getJSON(_ path: String) async throws -> JSONValue {
        try await request("GET", path, retry: true)
    }

    /// GETs an object; `nil` when it does not exist (404).
    public func getIfExists(_ path: String) async throws -> JSONValue? {
        do { return try await getJSON(path) } catch let error as KubernetesAPIError where error.status == 404 {
            return nil
        }
    }

    /// Every item of a list, following `continue` tokens (`limit` per page).
    public func list(_ path: String, pageSize: Int = 500) async throws -> [JSONValue] {
        var items: [JSONValue] = []
        try await forEachPage(path, pageSize: pageSize) { items += $0 }
        return items
    }

    /// Lists `path` page by page, handing each page's items to `body`
    /// before the next is read: a fold over a large list (every pod of a
    /// cluster) holds one page at a time.
    public func forEachPage(
        _ path: String, pageSize: Int = 500, _ body: ([JSONValue]) throws -> Void
    ) async throws {
        var token: String?
        let separator = path.contains("?") ? "&" : "?"
        repeat {
            var page = "\(path)\(separator)limit=\(pageSize)"
            if let token { page += "&continue=" + Self.percentEncoded(token) }
            let answer = try await getJSON(page)
            try body(answer[["items"]]?.arrayValue ?? [])
            token = answer[["metadata", "continue"]]?.stringValue
            if token?.isEmpty == true { token = nil }
        } while token != nil
    }

    /// A JSON merge patch (RFC 7386); patches are idempotent, so retried.
    @discardableResult
    public func mergePatch(_ path: String, _ patch: JSONValue) async throws -> JSONValue {
        try await request("PATCH", path, body: patch, contentType: "application/merge-patch+json", retry: true)
    }

    /// How an eviction request ended.
    public enum EvictionAnswer: Sendable, Equatable {
        /// Accepted: the pod is being deleted.
        case accepted
        /// The pod is already gone.
        case gone
        /// 429: a PodDisruptionBudget does not allow it now; the cause names the budget.
        case refusedByBudget(String)
        /// 403 in a terminating namespace: retry, as kubectl does.
        case namespaceTerminating(String)
        /// 500: more than one PodDisruptionBudget covers the pod; the
        /// eviction API refuses it until one is removed.
        case multipleBudgets(String)
    }

    /// `POST /api/v1/namespaces/{ns}/pods/{name}/eviction`. Retried on
    /// transient failures but 429, which is the budget's answer: the caller
    /// decides. Evicting again is safe: a pod already gone answers 404.
    /// With `dryRun`, the API answers as it would (budgets included) and
    /// changes nothing (`deleteOptions.dryRun: ["All"]`, as
    /// `kubectl drain --dry-run=server` asks).
    public func evict(namespace: String, name: String, dryRun: Bool = false) async throws -> EvictionAnswer {
        let path = "/api/v1/namespaces/\(namespace)/pods/\(name)/eviction"
        var body: JSONValue = .object([
            "apiVersion": .string("policy/v1"), "kind": .string("Eviction"),
            "metadata": .object(["name": .string(name), "namespace": .string(namespace)]),
        ])
        if dryRun { body[["deleteOptions", "dryRun"]] = .array([.string("All")]) }
        do {
            _ = try await request(
                "POST", path, body: body, contentType: "application/json", retry: true, retryTooManyRequests: false)
            return .accepted
        } catch let error as KubernetesAPIError {
            switch error.status {
            case 404: return .gone
            case 429: return .refusedByBudget(error.causes.first ?? error.message)
            case 500 where error.isMultipleBudgets: return .multipleBudgets(error.message)
            case 403 where error.causeReasons.contains("NamespaceTerminating"):
                return .namespaceTerminating(error.message)
            default: throw error
            }
        }
    }

    /// One request with the client's credentials. With `retry`, a
    /// transient failure (connection refused or reset, a timeout, a 5xx, a
    /// 429 unless `retryTooManyRequests` is false) is tried again with
    /// bounded exponential backoff within ``retryBudget``, each retry told
    /// to ``retryReporter``; when the budget is spent the call fails with
    /// ``KubernetesUnavailableError``, naming it.
    public func request(
        _ method: String, _ path: String, body: JSONValue? = nil, contentType: String? = nil, retry: Bool,
        retryTooManyRequests: Bool = true
    ) async throws -> JSONValue {
        var headers: [(name: String, value: String)] = [("Accept", "application/json")]
        if let contentType { headers.append(("Content-Type", contentType)) }
        let data = body.map { Data($0.jsonBytes) }
        let call = "\(method) \(path)"
        let reporter = Self.retryReporter
        let clock = ContinuousClock()
        let started = clock.now
        var tries = 0
        while true {
            tries += 1
            do {
                let answer = try await send(method, path, headers: headers, body: data)
                if tries > 1 {
                    try await reporter?.report(.recovered(call: call, tries: tries, elapsed: clock.now - started))
                }
                return answer
            } catch let error where retry && Self.isTransient(error, retryTooManyRequests: retryTooManyRequests) {
                let elapsed = clock.now - started
                guard let delay = retryBudget.delay(afterTries: tries, elapsed: elapsed) else {
                    guard tries > 1 else { throw error }
                    try await reporter?.report(.gaveUp(call: call, tries: tries, elapsed: elapsed, reason: "\(error)"))
                    throw KubernetesUnavailableError(call: call, tries: tries, elapsed: elapsed, last: error)
                }
                try await reporter?.report(
                    .retrying(
                        call: call, tries: tries, reason: Self.reason(error), remaining: retryBudget.total - elapsed))
                try await Task.sleep(for: delay)
            }
        }
    }

    private func send(
        _ method: String, _ path: String, headers: [(name: String, value: String)], body: Data?
    ) async throws -> JSONValue {
        let response = try await http.send(
            HTTPRequest(
                method: method, url: access.server + path, headers: headers, body: body,
                bearerToken: try access.bearerToken()))
        let object = try? JSONValue(parsing: response.body)
        guard response.isSuccess else {
            throw KubernetesAPIError(
                path: path, status: response.status, reason: object?[["reason"]]?.stringValue ?? "",
                message: object?[["message"]]?.stringValue ?? String(response.text.prefix(200)),
                details: object?[["details"]])
        }
        guard let object, case .object = object else {
            throw KubernetesAPIError(
                path: path, status: response.status, reason: "", message: "the answer is not a JSON object")
        }
        return object
    }

    /// Connection refused, reset or timed out, a TLS handshake cut short, a
    /// 5xx and (unless told otherwise) a 429: what an API server that is
    /// restarting or overloaded answers. A certificate that does not verify
    /// is not transient.
    static func isTransient(_ error: any Error, retryTooManyRequests: Bool = true) -> Bool {
        if let error = error as? KubernetesAPIError {
            if error.isMultipleBudgets { return false }
            return (error.status == 429 && retryTooManyRequests) || error.status >= 500
        }
        if let error = error as? HTTPClientError {
            return [.timedOut, .connectionRefused, .connectFailed, .tlsFailure, .transport].contains(error.kind)
        }
        return false
    }

    /// A short reason for a retry: the HTTP status or the transport failure.
    private static func reason(_ error: any Error) -> String {
        switch error {
        case let error as KubernetesAPIError:
            "HTTP \(error.status)\(error.reason.isEmpty ? "" : " \(error.reason)")"
        case let error as HTTPClientError:
            error.kindDescription
        default:
            "\(error)"
        }
    }
}

/// Told about the retries of Kubernetes calls; see ``KubernetesClient/retryReporter``.
public struct APIRetryReporter: Sendable {
    /// One moment of a call's retries.
    public enum Event: Sendable, Equatable {
        /// Try `tries` failed for `reason`; another follows within `remaining`.
        case retrying(call: String, tries: Int, reason: String, remaining: Duration)
        /// Try `tries` answered, `elapsed` after the first.
        case recovered(call: String, tries: Int, elapsed: Duration)
        /// The budget is spent after `tries`; the call fails.
        case gaveUp(call: String, tries: Int, elapsed: Duration, reason: String)
    }

    /// Records an event; throwing (an abort, a shutdown) ends the retries with that error.
    public let report: @Sendable (Event) async throws -> Void

    public init(report: @escaping @Sendable (Event) async throws -> Void) {
        self.report = report
    }
}

/// A Kubernetes call that kept failing transiently until its retry budget was spent.
public struct KubernetesUnavailableError: Error, Sendable, CustomStringConvertible {
    /// `METHOD path` of the call.
    public let call: String
    public let tries: Int
    public let elapsed: Duration
    /// The last try's failure.
    public let last: any Error

    public var description: String {
        let seconds = Int(
            (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18).rounded())
        return "Kubernetes API \(call): no answer after \(seconds) s and \(tries) tries; last: \(last)"
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

/// A non-2xx answer from the API server, with its `Status` reason.
public struct KubernetesAPIError: Error, Sendable, CustomStringConvertible {
    public let path: String
    public let status: Int
    public let reason: String
    public let message: String
    /// The `details` of the `Status`, when the server sent one.
    public let details: JSONValue?

    public init(path: String, status: Int, reason: String, message: String, details: JSONValue? = nil) {
        self.path = path
        self.status = status
        self.reason = reason
        self.message = message
        self.details = details
    }

    /// The messages of `details.causes`.
    public var causes: [String] {
        (details?[["causes"]]?.arrayValue ?? []).compactMap { $0[["message"]]?.stringValue }
    }

    /// The eviction API's 500 for a pod that more than one
    /// PodDisruptionBudget covers: it answers the same until a budget is
    /// removed, so it is not retried (kubectl fails the pod at once too).
    public var isMultipleBudgets: Bool {
        status == 500 && message.contains("more than one PodDisruptionBudget")
    }

    /// The reasons of `details.causes`.
    public var causeReasons: [String] {
        (details?[["causes"]]?.arrayValue ?? []).compactMap { $0[["reason"]]?.stringValue }
    }

    public var description: String {
        "Kubernetes API \(path): HTTP \(status)\(reason.isEmpty ? "" : " \(reason)"): \(message)"
    }
}

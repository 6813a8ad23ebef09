import Foundation
import HTTPTypes
import Hummingbird
import Shared
import Synchronization

/// Turns Kubernetes REST requests into store calls and store results into
/// Kubernetes JSON: discovery, lists with `limit`/`continue` and selectors,
/// get, patch, delete, evictions, and the server-side Table form that
/// `kubectl get` asks for.
struct APIHandler: Sendable {
    let store: ClusterStore
    let token: String
    let faults: Scenario.Faults
    /// Custom resources whose CRD is installed, as `plural.group`.
    var customResources: Set<String> = []
    /// Where ConfigMaps live, when the simulator has an etcd.
    var etcd: EtcdObjects? = nil
    /// Every authorised request outside /sim/, by method: what a client
    /// cost the API server (`GET /sim/v1/requests`).
    let requests = RequestCounter()

    /// A custom resource is served only with its CRD.
    func serves(_ resource: Resource) -> Bool {
        resource.customResourceName.map(customResources.contains) ?? true
    }

    func respond(to request: Request, context: BasicRequestContext) async -> Response {
        do {
            let path = request.uri.path
            if ["/healthz", "/readyz", "/livez"].contains(path) { return text("ok") }
            if path == "/version" { return json(try await versionInfo()) }
            guard authorised(request) else {
                throw APIError(code: 401, reason: "Unauthorized", message: "Unauthorized")
            }
            if faults.latencyMilliseconds > 0 { try await Task.sleep(for: .milliseconds(faults.latencyMilliseconds)) }
            if !path.hasPrefix("/sim/"), faults.errorRate > 0, Double.random(in: 0..<1) < faults.errorRate {
                throw APIError(code: 500, reason: "InternalError", message: "simulated failure (fault injection)")
            }
            if path == "/sim/v1/requests" { return json(requests.json) }
            if !path.hasPrefix("/sim/") { requests.count(request.method.rawValue) }
            let body = try await request.body.collect(upTo: 8 << 20)
            return try await route(request, body: Data(buffer: body))
        } catch let error as APIError {
            return status(error)
        } catch {
            return status(APIError(code: 500, reason: "InternalError", message: "\(error)"))
        }
    }

    // MARK: - Routing

    private func route(_ request: Request, body: Data) async throws -> Response {
        let parts = request.uri.path.split(separator: "/").map(String.init)
        let query = request.uri.queryParameters
        let method = request.method

        switch parts {
        case ["api"]: return json(Discovery.apiVersions)
        case ["apis"]: return json(Discovery.groupList(customResources: customResources))
        case ["api", "v1"]: return json(try Discovery.resources(groupVersion: "v1", customResources: customResources))
        case let p where p.count == 3 && p[0] == "apis":
            return json(
                try Discovery.resources(groupVersion: "\(p[1])/\(p[2])", customResources: customResources))
        case let p where p.count == 4 && p[0] == "sim" && p[1] == "v1" && p[2] == "control-plane" && method == .put:
            let version = try decodeObject(body)[["version"]]?.stringValue ?? ""
            guard (try? KubeVersion(strictRelease: version)) != nil else {
                throw APIError.badRequest("version must be X.Y.Z")
            }
            try await store.upgradeControlPlane(node: p[3], to: version)
            return json(.object(["node": .string(p[3]), "version": .string(version)]))
        default: break
        }

        // /api/v1/... or /apis/{group}/{version}/...
        let rest: ArraySlice<String>
        let groupVersion: String
        if parts.first == "api", parts.count >= 3, parts[1] == "v1" {
            rest = parts[2...]
            groupVersion = "v1"
        } else if parts.first == "apis", parts.count >= 4 {
            rest = parts[3...]
            groupVersion = "\(parts[1])/\(parts[2])"
        } else {
            throw APIError(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
        }
        var segments = Array(rest)
        let namespace: String? = segments.count >= 3 && segments[0] == "namespaces" ? segments[1] : nil
        if namespace != nil { segments = Array(segments[2...]) }
        guard let resource = Resource(rawValue: segments[0]), resource.apiVersion == groupVersion,
            serves(resource)
        else {
            throw APIError(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
        }
        if resource.isNamespaced == false && namespace != nil {
            throw APIError(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
        }
        let name = segments.count > 1 ? segments[1] : nil
        let subresource = segments.count > 2 ? segments[2] : nil

        if resource == .configmaps, [.post, .put].contains(method), let type = request.headers[.contentType],
            !type.hasPrefix("application/json")
        {
            // kubectl's typed create sends protobuf, which the simulator does not
            // decode: `kubectl create -f` (JSON or YAML) does.
            throw APIError(
                code: 415, reason: "UnsupportedMediaType",
                message: "the body of the request was in an unknown format - accepted media types include: "
                    + "application/json")
        }
        if resource == .configmaps, let etcd {
            return try await configMap(
                method, namespace: namespace, name: name, subresource: subresource, body: body, etcd: etcd,
                query: query,
                accept: request.headers[.accept] ?? "")
        }
        switch (method, name, subresource) {
        case (.get, nil, nil):
            if query["watch"] == "true" || query["watch"] == "1" {
                throw APIError(code: 405, reason: "MethodNotAllowed", message: "the simulator does not serve watches")
            }
            return try await list(resource, namespace: namespace, query: query, accept: request.headers[.accept] ?? "")
        case (.post, nil, nil):
            let object = try decodeObject(body)
            return json(
                try await store.perform(dryRun: try dryRun(query, "CreateOptions")) {
                    try $0.create(resource, namespace: namespace, object: object)
                }, status: .created)
        case (.get, let name?, nil), (.get, let name?, "status"):
            let object = try await store.get(resource, namespace: namespace, name: name)
            if resource == .nodes, (request.headers[.accept] ?? "").contains("as=Table") {
                return json(Tables.nodes([object]))
            }
            return json(object)
        case (.put, let name?, nil):
            let object = try decodeObject(body)
            return json(
                try await store.perform(dryRun: try dryRun(query, "UpdateOptions")) {
                    try $0.replace(resource, namespace: namespace, name: name, object: object)
                })
        case (.patch, let name?, let sub) where sub == nil || sub == "status":
            let contentType = request.headers[.contentType] ?? ""
            let strategic = contentType.hasPrefix("application/strategic-merge-patch+json")
            guard strategic || contentType.hasPrefix("application/merge-patch+json") else {
                throw APIError(
                    code: 415, reason: "UnsupportedMediaType",
                    message: "the body of the request was in an unknown format - accepted media types include: "
                        + "application/merge-patch+json, application/strategic-merge-patch+json")
            }
            let patch = try decodeObject(body)
            return json(
                try await store.perform(dryRun: try dryRun(query, "PatchOptions")) {
                    try $0.patch(
                        resource, namespace: namespace, name: name, patch: patch, strategic: strategic,
                        status: sub == "status")
                })
        case (.delete, let name?, nil) where resource == .pods:
            let options = body.isEmpty ? JSONValue.object([:]) : try decodeObject(body)
            let grace = options[["gracePeriodSeconds"]]?.intValue
            let dry = try dryRun(query, "DeleteOptions", body: options[["dryRun"]])
            return json(
                try await store.perform(dryRun: dry) {
                    try $0.deletePod(namespace: namespace ?? "default", name: name, gracePeriodSeconds: grace)
                })
        case (.post, let name?, "eviction") where resource == .pods:
            let eviction = try decodeObject(body)
            if let given = eviction[["metadata", "name"]]?.stringValue, given != name {
                throw APIError.badRequest("name in URL does not match name in Eviction object")
            }
            let grace = eviction[["deleteOptions", "gracePeriodSeconds"]]?.intValue
            // The eviction's own delete options, else the request's (`propagateDryRun`).
            let dry = try dryRun(query, "DeleteOptions", body: eviction[["deleteOptions", "dryRun"]])
            try await store.perform(dryRun: dry) {
                try $0.evict(namespace: namespace ?? "default", name: name, gracePeriodSeconds: grace)
            }
            return json(
                .object([
                    "kind": .string("Status"), "apiVersion": .string("v1"), "metadata": .object([:]),
                    "status": .string("Success"), "code": .number(201),
                ]), status: .created)
        default:
            throw APIError(
                code: 405, reason: "MethodNotAllowed", message: "\(method) is not supported on \(request.uri.path)")
        }
    }

    /// Whether a write asks for a dry run: `dryRun=All` in the query or,
    /// for a deletion or an eviction, `dryRun: ["All"]` in its options. Any
    /// other value is refused, as the API server refuses it; a body and a
    /// query that disagree are refused too.
    private func dryRun(_ query: Parameters, _ kind: String, body: JSONValue? = nil) throws -> Bool {
        let asked = query.getAll("dryRun").map { String($0) }
        let given = body?.arrayValue?.compactMap(\.stringValue) ?? []
        for value in asked + given where value != "All" {
            throw APIError(
                code: 422, reason: "Invalid",
                message: "\(kind).meta.k8s.io \"\" is invalid: dryRun: Unsupported value: \"\(value)\": "
                    + "supported values: \"All\"")
        }
        if !asked.isEmpty, !given.isEmpty, asked != given {
            throw APIError.badRequest(
                "Non-matching dry-run options in request and content: \(asked) and \(given)")
        }
        return !(asked + given).isEmpty
    }

    /// ConfigMaps with an etcd: read from it before every read, written to
    /// it after every write, so the store only mirrors what etcd holds.
    private func configMap(
        _ method: HTTPRequest.Method, namespace: String?, name: String?, subresource: String?, body: Data,
        etcd: EtcdObjects, query: Parameters, accept: String
    ) async throws -> Response {
        await store.replaceAll(.configmaps, with: try await etcd.load())
        switch (method, name, subresource) {
        case (.get, nil, nil):
            return try await list(.configmaps, namespace: namespace, query: query, accept: accept)
        case (.get, let name?, nil):
            return json(try await store.get(.configmaps, namespace: namespace, name: name))
        case (.post, nil, nil):
            let given = try decodeObject(body)
            let dry = try dryRun(query, "CreateOptions")
            let object = try await store.perform(dryRun: dry) {
                try $0.create(.configmaps, namespace: namespace, object: given)
            }
            if !dry { try await etcd.save(object) }
            return json(object, status: .created)
        case (.put, let name?, nil):
            let given = try decodeObject(body)
            let dry = try dryRun(query, "UpdateOptions")
            let object = try await store.perform(dryRun: dry) {
                try $0.replace(.configmaps, namespace: namespace, name: name, object: given)
            }
            if !dry { try await etcd.save(object) }
            return json(object)
        case (.delete, let name?, nil):
            let dry = try dryRun(
                query, "DeleteOptions", body: body.isEmpty ? nil : try decodeObject(body)[["dryRun"]])
            let object = try await store.perform(dryRun: dry) {
                try $0.remove(.configmaps, namespace: namespace, name: name)
            }
            if !dry { try await etcd.delete(object) }
            return json(object)
        default:
            throw APIError(
                code: 405, reason: "MethodNotAllowed", message: "\(method) is not supported on configmaps here")
        }
    }

    // MARK: - Lists

    private func list(
        _ resource: Resource, namespace: String?, query: Parameters, accept: String
    ) async throws -> Response {
        let fields = try query["fieldSelector"].map(String.init).flatMap {
            $0.isEmpty ? nil : try Selector(parsing: $0)
        }
        let labels = try query["labelSelector"].map(String.init).flatMap {
            $0.isEmpty ? nil : try Selector(parsing: $0)
        }
        var after: String?
        if let token = query["continue"].map(String.init), !token.isEmpty {
            guard let data = Data(base64Encoded: token), let key = String(data: data, encoding: .utf8) else {
                throw APIError(
                    code: 410, reason: "Expired",
                    message:
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter."
                )
            }
            after = key
        }
        let limit = query["limit"].flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil }
        let keep: @Sendable (JSONValue) -> Bool = { object in
            (fields?.matches(fields: object) ?? true)
                && (labels?.matches(labels: object.stringMap("metadata.labels")) ?? true)
        }
        func metadata(_ continueAfter: String?, _ remaining: Int) async -> [String: JSONValue] {
            var metadata: [String: JSONValue] = ["resourceVersion": .string(await store.currentResourceVersion)]
            if let last = continueAfter {
                metadata["continue"] = .string(Data(last.utf8).base64EncodedString())
                // As the API server: unknown, so left out, when a selector filters the list.
                if fields == nil, labels == nil { metadata["remainingItemCount"] = .number(Double(remaining)) }
            }
            return metadata
        }
        guard resource == .nodes, accept.contains("as=Table") else {
            // The items as text kept by the store; the list around them.
            let page = await store.pageJSON(resource, namespace: namespace, after: after, limit: limit, keep: keep)
            let head = JSONValue.object([
                "kind": .string(resource.kind + "List"), "apiVersion": .string(resource.apiVersion),
                "metadata": .object(await metadata(page.continueAfter, page.remaining)),
            ]).jsonBytes
            var body = head.dropLast()  // the closing brace: the items go before it
            body += Array(#","items":["#.utf8) + page.items + Array("]}".utf8)
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
        }
        let page = await store.page(resource, namespace: namespace, after: after, limit: limit, keep: keep)
        let items = page.items
        let metadata = await metadata(page.continueAfter, page.remaining)
        var table = Tables.nodes(items.map(\.object))
        table[["metadata"]] = .object(metadata)
        return json(table)
    }

    // MARK: - Helpers

    private func authorised(_ request: Request) -> Bool {
        BearerToken(token).accepts(authorizationHeader: request.headers[.authorization])
    }

    private func versionInfo() async throws -> JSONValue {
        let gitVersion = await store.apiServerVersion
        let version = try? KubeVersion(parsing: gitVersion)
        return .object([
            "major": .string(String(version?.major ?? 0)), "minor": .string(String(version?.minor ?? 0)),
            "gitVersion": .string(gitVersion), "gitCommit": .string("0000000000000000000000000000000000000000"),
            "gitTreeState": .string("clean"), "buildDate": .string("2026-01-01T00:00:00Z"),
            "goVersion": .string("go1.24.6"), "compiler": .string("gc"), "platform": .string("linux/amd64"),
        ])
    }

    private func decodeObject(_ body: Data) throws -> JSONValue {
        guard let value = try? JSONValue(parsing: body), case .object = value else {
            throw APIError.badRequest("the request body must be a JSON object")
        }
        return value
    }

    private func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: value.jsonBytes)))
    }

    private func text(_ body: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: "text/plain"], body: ResponseBody(byteBuffer: ByteBuffer(string: body))
        )
    }

    private func status(_ error: APIError) -> Response {
        var object: [String: JSONValue] = [
            "kind": .string("Status"), "apiVersion": .string("v1"), "metadata": .object([:]),
            "status": .string("Failure"), "message": .string(error.message), "reason": .string(error.reason),
            "code": .number(Double(error.code)),
        ]
        var details = error.details?.objectValue ?? [:]
        if let retry = error.retryAfterSeconds { details["retryAfterSeconds"] = .number(Double(retry)) }
        if !details.isEmpty { object["details"] = .object(details) }
        var response = json(.object(object), status: HTTPResponse.Status(code: error.code))
        if let retry = error.retryAfterSeconds { response.headers[.retryAfter] = String(retry) }
        return response
    }
}

/// A field or label selector: comma-separated `key=value`, `key==value`,
/// `key!=value`, `key` (exists) and `!key` (absent) terms.
struct Selector: Sendable {
    enum Term {
        case equals(String, String)
        case notEquals(String, String)
        case exists(String)
        case absent(String)
    }

    let terms: [Term]

    init(parsing text: String) throws {
        terms = try text.split(separator: ",").map { raw in
            let term = String(raw).trimmingCharacters(in: .whitespaces)
            if let range = term.range(of: "!=") {
                return .notEquals(String(term[..<range.lowerBound]), String(term[range.upperBound...]))
            }
            if let range = term.range(of: "==") ?? term.range(of: "=") {
                return .equals(String(term[..<range.lowerBound]), String(term[range.upperBound...]))
            }
            if term.hasPrefix("!") { return .absent(String(term.dropFirst())) }
            guard !term.isEmpty, !term.contains(" ") else {
                throw APIError.badRequest("unable to parse selector \(text)")
            }
            return .exists(term)
        }
    }

    func matches(labels: [String: String]) -> Bool {
        terms.allSatisfy { term in
            switch term {
            case .equals(let key, let value): labels[key] == value
            case .notEquals(let key, let value): labels[key] != value
            case .exists(let key): labels[key] != nil
            case .absent(let key): labels[key] == nil
            }
        }
    }

    func matches(fields object: JSONValue) -> Bool {
        terms.allSatisfy { term in
            switch term {
            case .equals(let key, let value): (object[dotted: key]?.stringValue ?? "") == value
            case .notEquals(let key, let value): (object[dotted: key]?.stringValue ?? "") != value
            case .exists, .absent: false
            }
        }
    }
}

/// Requests served, by HTTP method.
final class RequestCounter: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    func count(_ method: String) { counts.withLock { $0[method, default: 0] += 1 } }

    var json: JSONValue {
        let counts = counts.withLock { $0 }
        return .object([
            "total": .number(Double(counts.values.reduce(0, +))),
            "by_method": .object(counts.mapValues { .number(Double($0)) }),
        ])
    }
}

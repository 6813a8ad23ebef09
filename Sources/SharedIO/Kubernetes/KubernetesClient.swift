import FoundationEssentials
public import Shared

/// Reads (and, with the pipeline, writes) the Kubernetes API over HTTPS.
public struct KubernetesClient: Sendable {
    public let access: KubernetesAccess
    private let http: HTTPClient

    public init(access: KubernetesAccess, timeout: Duration = .seconds(30)) {
        self.access = access
        var configuration = HTTPClient.Configuration()
        configuration.tls = access.tls
        configuration.timeout = timeout
        configuration.connectTimeout = .seconds(10)
        http = HTTPClient(configuration: configuration)
    }

    /// A node's name, labels, kubelet version and addresses.
    public struct Node: Sendable, Equatable {
        public let name: String
        public let labels: [String: String]
        public let kubeletVersion: KubeVersion
        public let internalIP: String?
        public let isControlPlane: Bool
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

    /// Every node, following `continue` tokens (`limit` per page).
    public func nodes(pageSize: Int = 500) async throws -> [Node] {
        var nodes: [Node] = []
        var token: String?
        repeat {
            var path = "/api/v1/nodes?limit=\(pageSize)"
            if let token { path += "&continue=" + Self.percentEncoded(token) }
            let page = try await getJSON(path)
            for item in page[["items"]]?.arrayValue ?? [] {
                nodes.append(try Self.node(from: item, path: path))
            }
            token = page[["metadata", "continue"]]?.stringValue
            if token?.isEmpty == true { token = nil }
        } while token != nil
        return nodes
    }

    private static func node(from item: JSONValue, path: String) throws -> Node {
        guard let name = item[["metadata", "name"]]?.stringValue else {
            throw KubernetesAPIError(path: path, status: 200, reason: "", message: "a node without a name")
        }
        let versionText = item[["status", "nodeInfo", "kubeletVersion"]]?.stringValue ?? ""
        let version: KubeVersion
        do { version = try KubeVersion(parsing: versionText) } catch {
            throw KubernetesAPIError(path: path, status: 200, reason: "", message: "node \(name): \(error.description)")
        }
        let labels = item.stringMap("metadata.labels")
        let addresses = item[["status", "addresses"]]?.arrayValue ?? []
        return Node(
            name: name, labels: labels, kubeletVersion: version,
            internalIP: addresses.first { $0[["type"]]?.stringValue == "InternalIP" }?[["address"]]?.stringValue,
            isControlPlane: labels["node-role.kubernetes.io/control-plane"] != nil)
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
    /// Retried on 5xx, 429 and timeouts.
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
        var token: String?
        let separator = path.contains("?") ? "&" : "?"
        repeat {
            var page = "\(path)\(separator)limit=\(pageSize)"
            if let token { page += "&continue=" + Self.percentEncoded(token) }
            let answer = try await getJSON(page)
            items += answer[["items"]]?.arrayValue ?? []
            token = answer[["metadata", "continue"]]?.stringValue
            if token?.isEmpty == true { token = nil }
        } while token != nil
        return items
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
    }

    /// `POST /api/v1/namespaces/{ns}/pods/{name}/eviction`. Not retried by
    /// the client: a 429 is the budget's answer and the caller decides.
    public func evict(namespace: String, name: String) async throws -> EvictionAnswer {
        let path = "/api/v1/namespaces/\(namespace)/pods/\(name)/eviction"
        let body: JSONValue = .object([
            "apiVersion": .string("policy/v1"), "kind": .string("Eviction"),
            "metadata": .object(["name": .string(name), "namespace": .string(namespace)]),
        ])
        do {
            _ = try await request("POST", path, body: body, contentType: "application/json", retry: false)
            return .accepted
        } catch let error as KubernetesAPIError {
            switch error.status {
            case 404: return .gone
            case 429: return .refusedByBudget(error.causes.first ?? error.message)
            case 403 where error.causeReasons.contains("NamespaceTerminating"):
                return .namespaceTerminating(error.message)
            default: throw error
            }
        }
    }

    /// One request with the client's credentials. With `retry`, a 5xx, a
    /// 429 or a transport timeout is tried again up to four times with
    /// doubling backoff (0.2 s, 0.4 s, 0.8 s, 1.6 s).
    public func request(
        _ method: String, _ path: String, body: JSONValue? = nil, contentType: String? = nil, retry: Bool
    ) async throws -> JSONValue {
        var headers: [(name: String, value: String)] = [("Accept", "application/json")]
        if let contentType { headers.append(("Content-Type", contentType)) }
        let data = try body.map { try JSONEncoder().encode($0) }
        var delay = Duration.milliseconds(200)
        var attempt = 1
        while true {
            do {
                let response = try await http.send(
                    HTTPRequest(
                        method: method, url: access.server + path, headers: headers, body: data,
                        bearerToken: try access.bearerToken()))
                let object = try? JSONDecoder().decode(JSONValue.self, from: response.body)
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
            } catch let error where retry && attempt < 5 && Self.isTransient(error) {
                try await Task.sleep(for: delay)
                delay *= 2
                attempt += 1
            }
        }
    }

    static func isTransient(_ error: any Error) -> Bool {
        if let error = error as? KubernetesAPIError { return error.status == 429 || error.status >= 500 }
        if let error = error as? HTTPClientError {
            return [.timedOut, .connectionRefused, .connectFailed, .transport].contains(error.kind)
        }
        return false
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

    /// The reasons of `details.causes`.
    public var causeReasons: [String] {
        (details?[["causes"]]?.arrayValue ?? []).compactMap { $0[["reason"]]?.stringValue }
    }

    public var description: String {
        "Kubernetes API \(path): HTTP \(status)\(reason.isEmpty ? "" : " \(reason)"): \(message)"
    }
}

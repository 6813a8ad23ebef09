public import FoundationEssentials
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
    static func percentEncoded(_ text: String) -> String {
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
    public func getJSON(_ path: String) async throws -> JSONValue {
        let response = try await http.send(
            HTTPRequest(
                url: access.server + path, headers: [("Accept", "application/json")],
                bearerToken: try access.bearerToken()))
        let object = try? JSONDecoder().decode(JSONValue.self, from: response.body)
        guard response.isSuccess else {
            throw KubernetesAPIError(
                path: path, status: response.status, reason: object?[["reason"]]?.stringValue ?? "",
                message: object?[["message"]]?.stringValue ?? String(response.text.prefix(200)))
        }
        guard let object, case .object = object else {
            throw KubernetesAPIError(
                path: path, status: response.status, reason: "", message: "the answer is not a JSON object")
        }
        return object
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

    public var description: String {
        "Kubernetes API \(path): HTTP \(status)\(reason.isEmpty ? "" : " \(reason)"): \(message)"
    }
}

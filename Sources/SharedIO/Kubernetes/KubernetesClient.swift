public import Foundation
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
        guard let text = object["gitVersion"] as? String else {
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
            if let token {
                path += "&continue=" + (token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
            }
            let page = try await getJSON(path)
            for item in (page["items"] as? [[String: Any]]) ?? [] {
                nodes.append(try Self.node(from: item, path: path))
            }
            token = (page["metadata"] as? [String: Any])?["continue"] as? String
            if token?.isEmpty == true { token = nil }
        } while token != nil
        return nodes
    }

    private static func node(from item: [String: Any], path: String) throws -> Node {
        let metadata = item["metadata"] as? [String: Any] ?? [:]
        let status = item["status"] as? [String: Any] ?? [:]
        guard let name = metadata["name"] as? String else {
            throw KubernetesAPIError(path: path, status: 200, reason: "", message: "a node without a name")
        }
        let info = status["nodeInfo"] as? [String: Any] ?? [:]
        let versionText = info["kubeletVersion"] as? String ?? ""
        let version: KubeVersion
        do { version = try KubeVersion(parsing: versionText) } catch {
            throw KubernetesAPIError(path: path, status: 200, reason: "", message: "node \(name): \(error.description)")
        }
        let labels = metadata["labels"] as? [String: String] ?? [:]
        let addresses = status["addresses"] as? [[String: String]] ?? []
        return Node(
            name: name, labels: labels, kubeletVersion: version,
            internalIP: addresses.first { $0["type"] == "InternalIP" }?["address"],
            isControlPlane: labels["node-role.kubernetes.io/control-plane"] != nil)
    }

    /// GETs a path and returns the decoded JSON object; a non-2xx answer
    /// becomes a ``KubernetesAPIError`` with the `Status` reason and message.
    public func getJSON(_ path: String) async throws -> [String: Any] {
        let response = try await http.send(
            HTTPRequest(
                url: access.server + path, headers: [("Accept", "application/json")],
                bearerToken: try access.bearerToken()))
        let object = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any]
        guard response.isSuccess else {
            throw KubernetesAPIError(
                path: path, status: response.status, reason: object?["reason"] as? String ?? "",
                message: object?["message"] as? String ?? String(response.text.prefix(200)))
        }
        guard let object else {
            throw KubernetesAPIError(
                path: path, status: response.status, reason: "", message: "the answer is not a JSON object")
        }
        return object
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

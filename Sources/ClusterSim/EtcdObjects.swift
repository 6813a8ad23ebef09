import Foundation
import Shared
import SharedIO

/// Where the simulator keeps its ConfigMaps when given an etcd: under
/// `/registry/configmaps/NAMESPACE/NAME`, as JSON, through etcd's v3 JSON
/// gateway over mutual TLS (an API server's client certificate). Every
/// write goes through to etcd and every read comes from it, so a snapshot
/// restored into that etcd shows through the API as it does on a cluster.
struct EtcdObjects: Sendable {
    static let prefix = "/registry/configmaps/"

    let endpoint: String
    let client: HTTPClient

    init(endpoint: String, caFile: String, certificateFile: String, keyFile: String) {
        var configuration = HTTPClient.Configuration()
        configuration.connectTimeout = .seconds(2)
        configuration.timeout = .seconds(5)
        configuration.tls = TLSConfiguration(
            trustRoots: .file(caFile), clientCertificate: .file(certificateFile), clientKey: .file(keyFile))
        self.endpoint = endpoint
        self.client = HTTPClient(configuration: configuration)
    }

    /// Every ConfigMap etcd holds.
    func load() async throws(APIError) -> [JSONValue] {
        // The range end of a prefix: its last byte plus one.
        var end = Array(Self.prefix.utf8)
        end[end.count - 1] += 1
        let answer = try await call(
            "range",
            [
                "key": .string(Data(Self.prefix.utf8).base64EncodedString()),
                "range_end": .string(Data(end).base64EncodedString()),
            ])
        return (answer[["kvs"]]?.arrayValue ?? []).compactMap { pair in
            guard let value = pair[["value"]]?.stringValue, let data = Data(base64Encoded: value) else { return nil }
            return try? JSONValue(parsing: data)
        }
    }

    func save(_ object: JSONValue) async throws(APIError) {
        _ = try await call(
            "put",
            [
                "key": .string(Data(Self.key(of: object).utf8).base64EncodedString()),
                "value": .string(Data(object.jsonBytes).base64EncodedString()),
            ])
    }

    func delete(_ object: JSONValue) async throws(APIError) {
        _ = try await call("deleterange", ["key": .string(Data(Self.key(of: object).utf8).base64EncodedString())])
    }

    private static func key(of object: JSONValue) -> String {
        let namespace = object[["metadata", "namespace"]]?.stringValue ?? "default"
        return prefix + namespace + "/" + (object[["metadata", "name"]]?.stringValue ?? "")
    }

    /// An etcd that does not answer is the API server's 500, as
    /// `etcdserver: request timed out` is on a cluster.
    private func call(_ operation: String, _ body: [String: JSONValue]) async throws(APIError) -> JSONValue {
        let request = HTTPRequest(
            method: "POST", url: "\(endpoint)/v3/kv/\(operation)", headers: [("Content-Type", "application/json")],
            body: Data(JSONValue.object(body).jsonBytes))
        let response: HTTPResponse
        do { response = try await client.send(request) } catch {
            throw APIError(code: 500, reason: "InternalError", message: "etcd: \(error)")
        }
        guard response.status == 200, let answer = try? JSONValue(parsing: response.body) else {
            throw APIError(
                code: 500, reason: "InternalError",
                message:
                    "etcd \(operation) answered \(response.status): \(String(decoding: response.body, as: UTF8.self))")
        }
        return answer
    }
}

/// Pushes metric groups to a Prometheus Pushgateway.
public struct Pushgateway: Sendable {
    public let baseURL: String
    private let http: HTTPClient

    public init(baseURL: String, http: HTTPClient = HTTPClient()) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.http = http
    }

    /// Replaces the whole group of `job` (PUT): metrics not in `exposition` disappear.
    public func replace(job: String, exposition: String) async throws {
        let url = baseURL + "/metrics/job/" + job
        let response = try await http.send(
            HTTPRequest(
                method: "PUT", url: url, headers: [("Content-Type", "text/plain; version=0.0.4")],
                body: .init(exposition.utf8), timeout: .seconds(10)))
        guard response.isSuccess else {
            throw PushgatewayError(
                description: "Pushgateway PUT \(url): HTTP \(response.status): \(response.text.prefix(200))")
        }
    }
}

public struct PushgatewayError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

import FoundationEssentials
public import Shared

/// Reads alerts from Prometheus' HTTP API and answers the halt-on-alert gate.
/// Anything but a clear answer (unreachable, an error status, an unreadable
/// body) closes the gate: an unknown state is never taken as healthy.
public struct Prometheus: Sendable {
    public let baseURL: String
    private let http: HTTPClient

    public init(baseURL: String, http: HTTPClient = HTTPClient()) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.http = http
    }

    /// Every alert Prometheus holds now, pending and firing.
    public func alerts() async throws -> [Alert] {
        let url = baseURL + "/api/v1/alerts"
        let response = try await http.send(HTTPRequest(method: "GET", url: url, timeout: .seconds(10)))
        guard response.isSuccess else {
            throw GateError("Prometheus GET /api/v1/alerts: HTTP \(response.status): \(response.text.prefix(200))")
        }
        let document: JSONValue
        do { document = try JSONValue(parsing: response.body) } catch {
            throw GateError("Prometheus GET /api/v1/alerts: the answer is not JSON")
        }
        return try Alert.parse(alertsResponse: document)
    }

    /// The gate's verdict now; closed, naming the cause, when Prometheus cannot answer.
    public func gate(_ selector: GateSelector) async -> GateVerdict {
        do {
            return GateVerdict.evaluate(try await alerts(), selector: selector)
        } catch is CancellationError {
            return .closed(["cancelled"])
        } catch {
            return .closed(["Prometheus unreachable or failing (gate stays closed): \(error)"])
        }
    }
}

extension Prometheus {
    /// An instant query, evaluated now or at `time` (seconds since 1970);
    /// the label sets of the resulting vector.
    public func query(_ expression: String, at time: Double? = nil) async throws -> [[String: String]] {
        var url = baseURL + "/api/v1/query?query=" + KubernetesClient.percentEncoded(expression)
        if let time { url += "&time=" + Self.timestamp(time) }
        let response = try await http.send(HTTPRequest(method: "GET", url: url, timeout: .seconds(30)))
        let document = try? JSONValue(parsing: response.body)
        guard response.isSuccess, document?[dotted: "status"]?.stringValue == "success" else {
            let error = document?[dotted: "error"]?.stringValue ?? String(response.text.prefix(200))
            throw GateError("Prometheus query \(expression): HTTP \(response.status): \(error)")
        }
        return (document?[dotted: "data.result"]?.arrayValue ?? []).map { $0.stringMap("metric") }
    }
}

extension Prometheus {
    /// Seconds since 1970 to the millisecond, as the query API takes them
    /// (`1796110181.043`). Whole seconds would move a window's end by up to
    /// a second: an alert that fired just before a job would fall outside
    /// the job's quiet period.
    public static func timestamp(_ seconds: Double) -> String {
        let millis = Int64((seconds * 1000).rounded())
        let fraction = String(millis % 1000)
        return "\(millis / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }
}

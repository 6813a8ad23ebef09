/// Why an HTTP exchange failed before a response arrived. HTTP status codes
/// are not errors here: a 404 is a response.
public struct HTTPClientError: Error, Sendable, CustomStringConvertible {
    /// The kinds of failure that callers treat differently.
    public enum Kind: Sendable, Equatable {
        /// The host name did not resolve.
        case nameNotResolved
        /// The server actively refused the connection.
        case connectionRefused
        /// The connection could not be made for another reason (unreachable).
        case connectFailed
        /// The connect or total timeout passed.
        case timedOut
        /// The server's certificate did not verify against the trusted CAs.
        case tlsVerificationFailed
        /// The server refused our client certificate (or its absence).
        case clientCertificateRejected
        /// Our own client certificate or key could not be used.
        case clientCertificateInvalid
        /// Another TLS failure.
        case tlsFailure
        /// More redirects than allowed.
        case tooManyRedirects
        /// The body was larger than the configured limit.
        case responseTooLarge
        /// The request itself is malformed (bad URL, bad option).
        case invalidRequest
        /// The connection broke or another transport failure.
        case transport
    }

    /// What went wrong.
    public let kind: Kind
    /// `METHOD URL` of the request, with secret URLs redacted.
    public let request: String
    /// libcurl's own message.
    public let detail: String
    /// libcurl's error code (`CURLcode`), 0 when the error is not libcurl's.
    public let code: Int

    public init(kind: Kind, request: String, detail: String, code: Int) {
        self.kind = kind
        self.request = request
        self.detail = detail
        self.code = code
    }

    public var description: String { "\(request): \(kindDescription) (\(detail))" }

    /// The kind in a few words ("connection refused").
    public var kindDescription: String {
        switch kind {
        case .nameNotResolved: "host name not resolved"
        case .connectionRefused: "connection refused"
        case .connectFailed: "could not connect"
        case .timedOut: "timed out"
        case .tlsVerificationFailed: "server certificate not trusted"
        case .clientCertificateRejected: "server rejected the client certificate"
        case .clientCertificateInvalid: "client certificate or key unusable"
        case .tlsFailure: "TLS failure"
        case .tooManyRedirects: "too many redirects"
        case .responseTooLarge: "response too large"
        case .invalidRequest: "invalid request"
        case .transport: "transport failure"
        }
    }
}

public import FoundationEssentials

/// Where PEM material comes from: a file, or bytes held in memory (the
/// kubeconfig `*-data` fields, already base64-decoded).
public enum PEMSource: Sendable, Equatable {
    case file(String)
    case data(Data)
}

/// How the client checks the server and proves who it is.
public struct TLSConfiguration: Sendable, Equatable {
    /// The CA bundle to trust; `nil` trusts the system's CAs.
    public var trustRoots: PEMSource?
    /// A client certificate for mutual TLS.
    public var clientCertificate: PEMSource?
    /// The key of ``clientCertificate``.
    public var clientKey: PEMSource?
    /// Verify the server's certificate and host name. Only kubeconfig's
    /// `insecure-skip-tls-verify` turns this off. Default `true`.
    public var verifyPeer: Bool

    public init(
        trustRoots: PEMSource? = nil, clientCertificate: PEMSource? = nil, clientKey: PEMSource? = nil,
        verifyPeer: Bool = true
    ) {
        self.trustRoots = trustRoots
        self.clientCertificate = clientCertificate
        self.clientKey = clientKey
        self.verifyPeer = verifyPeer
    }
}

/// One HTTP request.
public struct HTTPRequest: Sendable {
    /// `GET`, `HEAD`, `POST`, `PUT`, `PATCH`, `DELETE`, …
    public var method: String
    /// The absolute URL.
    public var url: String
    /// Header fields, in order. Use ``bearerToken`` for credentials.
    public var headers: [(name: String, value: String)]
    /// The body, sent as is.
    public var body: Data?
    /// Sent as `Authorization: Bearer …`; never appears in errors or logs.
    public var bearerToken: String?
    /// Overrides the client's total timeout for this request.
    public var timeout: Duration?
    /// The URL itself is a secret (a Slack webhook): errors name only its host.
    public var urlIsSecret: Bool

    public init(
        method: String = "GET", url: String, headers: [(name: String, value: String)] = [], body: Data? = nil,
        bearerToken: String? = nil, timeout: Duration? = nil, urlIsSecret: Bool = false
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.bearerToken = bearerToken
        self.timeout = timeout
        self.urlIsSecret = urlIsSecret
    }

    /// The URL as it may appear in an error or a log line.
    public var loggableURL: String {
        guard urlIsSecret else { return url }
        guard let schemeEnd = url.firstRange(of: "://") else { return "<secret URL>" }
        let afterScheme = url[schemeEnd.upperBound...]
        let host = afterScheme.prefix { $0 != "/" && $0 != "?" }
        return url[..<schemeEnd.upperBound] + host + "/<redacted>"
    }
}

/// A complete HTTP response.
public struct HTTPResponse: Sendable {
    /// The status code of the final response (after redirects, when followed).
    public let status: Int
    /// Header fields of the final response, in order, names as sent.
    public let headers: [(name: String, value: String)]
    /// The body.
    public let body: Data

    public init(status: Int, headers: [(name: String, value: String)], body: Data) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first header named `name`, compared case-insensitively.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// The body as UTF-8 text (invalid bytes replaced).
    public var text: String { String(decoding: body, as: UTF8.self) }

    /// Whether the status is 2xx.
    public var isSuccess: Bool { (200..<300).contains(status) }
}

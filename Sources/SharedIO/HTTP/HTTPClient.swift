import CCurl
import FoundationEssentials
import Glibc
import Shared

/// An HTTP/1.1 and HTTPS client on libcurl: any method, headers and body,
/// connect and total timeouts, TLS with a CA bundle or PEM data, client
/// certificates, bearer tokens, and no redirects unless asked.
///
/// Each request runs on its own thread, off Swift's cooperative pool, and
/// stops promptly when its task is cancelled.
public struct HTTPClient: Sendable {
    /// Settings shared by every request of a client.
    public struct Configuration: Sendable {
        /// Time allowed to connect, TLS handshake included. Default 10 s.
        public var connectTimeout: Duration = .seconds(10)
        /// Time allowed for the whole exchange. Default 30 s.
        public var timeout: Duration = .seconds(30)
        /// Server verification and client identity. Default: system CAs, no client certificate.
        public var tls = TLSConfiguration()
        /// Follow `Location` redirects. Default `false`: a redirect is returned as a response.
        public var followRedirects = false
        /// The most redirects followed when ``followRedirects`` is on. Default 5.
        public var maximumRedirects = 5
        /// Larger bodies fail with ``HTTPClientError/Kind/responseTooLarge``. Default 64 MiB.
        public var maximumResponseBytes = 64 << 20
        /// The `User-Agent` header. Default `k8s-upgrade`.
        public var userAgent = "k8s-upgrade"

        public init() {}
    }

    /// The settings this client uses.
    public let configuration: Configuration

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Sends `request` and waits for the whole response.
    ///
    /// - Throws: ``HTTPClientError`` when no response arrived;
    ///   `CancellationError` when the task was cancelled.
    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let configuration = configuration
        return try await BlockingWork.run(named: "http \(request.method)") { flag in
            try Self.perform(request, configuration: configuration, cancellation: flag)
        }
    }

    /// Sends `request` and hands each piece of the body to `onData` as it
    /// arrives (a stream that stays open, such as server-sent events),
    /// from the transfer's thread. There is no total timeout: the
    /// transfer fails when nothing at all arrives for `idle`. The
    /// response's body keeps only its first 64 KiB (for an error's message).
    public func stream(
        _ request: HTTPRequest, idle: Duration, onData: @escaping @Sendable ([UInt8]) -> Void
    ) async throws -> HTTPResponse {
        let configuration = configuration
        return try await BlockingWork.run(named: "http stream \(request.method)") { flag in
            try Self.perform(request, configuration: configuration, cancellation: flag, idle: idle, onData: onData)
        }
    }

    // MARK: - The transfer, on its own thread

    private static func perform(
        _ request: HTTPRequest, configuration: Configuration, cancellation: CancellationFlag, idle: Duration? = nil,
        onData: (@Sendable ([UInt8]) -> Void)? = nil
    ) throws -> HTTPResponse {
        let label = "\(request.method) \(request.loggableURL)"
        let collector = ResponseCollector(
            limit: onData == nil ? configuration.maximumResponseBytes : 64 << 10, cancellation: cancellation)
        collector.onData = onData
        let easy: CurlEasyHandle
        do {
            easy = try CurlEasyHandle()
            try configure(easy, request: request, configuration: configuration, collector: collector)
            if let idle {
                // No total time: a stream stays open. A byte every `idle` at least.
                try easy.set(CURLOPT_TIMEOUT_MS, 0)
                try easy.set(CURLOPT_LOW_SPEED_LIMIT, 1)
                try easy.set(CURLOPT_LOW_SPEED_TIME, max(1, Int(idle.milliseconds / 1000)))
            }
        } catch {
            throw HTTPClientError(kind: .invalidRequest, request: label, detail: error.message, code: 0)
        }
        let (code, message) = withExtendedLifetime(collector) { easy.perform() }
        if code == CURLE_ABORTED_BY_CALLBACK, cancellation.isCancelled { throw CancellationError() }
        if code == CURLE_WRITE_ERROR, collector.exceededLimit {
            throw HTTPClientError(
                kind: .responseTooLarge, request: label,
                detail: "body exceeds \(configuration.maximumResponseBytes) bytes", code: Int(code.rawValue))
        }
        guard code == CURLE_OK else {
            throw HTTPClientError(
                kind: classify(code, message: message, osErrno: easy.osErrno()), request: label, detail: message,
                code: Int(code.rawValue))
        }
        return HTTPResponse(status: easy.responseCode(), headers: collector.headers, body: collector.body)
    }

    private static func configure(
        _ easy: CurlEasyHandle, request: HTTPRequest, configuration: Configuration, collector: ResponseCollector
    ) throws(CurlSetupError) {
        try easy.set(CURLOPT_URL, request.url)
        // Signals cannot be used for timeouts in a multi-threaded program.
        try easy.set(CURLOPT_NOSIGNAL, true)
        try easy.set(CURLOPT_CONNECTTIMEOUT_MS, max(1, configuration.connectTimeout.milliseconds))
        try easy.set(CURLOPT_TIMEOUT_MS, max(1, (request.timeout ?? configuration.timeout).milliseconds))
        try easy.set(CURLOPT_FOLLOWLOCATION, configuration.followRedirects)
        try easy.set(CURLOPT_MAXREDIRS, configuration.maximumRedirects)
        try easy.set(CURLOPT_PROTOCOLS_STR, "http,https")
        try easy.set(CURLOPT_USERAGENT, configuration.userAgent)

        switch request.method {
        case "GET": try easy.set(CURLOPT_HTTPGET, true)
        case "HEAD": try easy.set(CURLOPT_NOBODY, true)
        default: try easy.set(CURLOPT_CUSTOMREQUEST, request.method)
        }
        if let body = request.body {
            try easy.setBody(body)
        }

        var headerLines = request.headers.map { "\($0.name): \($0.value)" }
        if let token = request.bearerToken { headerLines.append("Authorization: Bearer \(token)") }
        // No "Expect: 100-continue" round trip before a body.
        headerLines.append("Expect:")
        try easy.setHeaders(headerLines)

        let tls = configuration.tls
        try easy.set(CURLOPT_SSL_VERIFYPEER, tls.verifyPeer)
        try easy.set(CURLOPT_SSL_VERIFYHOST, tls.verifyPeer ? 2 : 0)
        switch tls.trustRoots {
        case .file(let path)?: try easy.set(CURLOPT_CAINFO, path)
        case .data(let pem)?: try easy.set(CURLOPT_CAINFO_BLOB, blob: pem)
        case nil: break
        }
        switch tls.clientCertificate {
        case .file(let path)?: try easy.set(CURLOPT_SSLCERT, path)
        case .data(let pem)?: try easy.set(CURLOPT_SSLCERT_BLOB, blob: pem)
        case nil: break
        }
        if tls.clientCertificate != nil { try easy.set(CURLOPT_SSLCERTTYPE, "PEM") }
        switch tls.clientKey {
        case .file(let path)?: try easy.set(CURLOPT_SSLKEY, path)
        case .data(let pem)?: try easy.set(CURLOPT_SSLKEY_BLOB, blob: pem)
        case nil: break
        }

        let context = Unmanaged.passUnretained(collector).toOpaque()
        try easy.set(CURLOPT_WRITEFUNCTION, callback: writeBody)
        try easy.set(CURLOPT_WRITEDATA, pointer: context)
        try easy.set(CURLOPT_HEADERFUNCTION, callback: writeHeader)
        try easy.set(CURLOPT_HEADERDATA, pointer: context)
        try easy.setProgress(callback: progress)
        try easy.set(CURLOPT_XFERINFODATA, pointer: context)
        try easy.set(CURLOPT_NOPROGRESS, false)
    }

    /// Sorts libcurl's result codes into the failures callers act on.
    static func classify(_ code: CURLcode, message: String, osErrno: Int) -> HTTPClientError.Kind {
        let lower = message.lowercased()
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            return .nameNotResolved
        case CURLE_COULDNT_CONNECT:
            // libcurl's message does not say why; the socket's errno does.
            return osErrno == Int(ECONNREFUSED) || lower.contains("refused") ? .connectionRefused : .connectFailed
        case CURLE_OPERATION_TIMEDOUT:
            return .timedOut
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE:
            return .tlsVerificationFailed
        case CURLE_SSL_CERTPROBLEM:
            return .clientCertificateInvalid
        case CURLE_TOO_MANY_REDIRECTS:
            return .tooManyRedirects
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL:
            return .invalidRequest
        case CURLE_SSL_CONNECT_ERROR, CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_GOT_NOTHING:
            // A server refusing our certificate answers with a TLS alert:
            // "certificate required" (TLS 1.3), "bad certificate", "unknown ca"
            // or "handshake failure" (TLS 1.2).
            let alerts = ["certificate required", "bad certificate", "unknown ca", "certificate unknown"]
            if alerts.contains(where: lower.contains) { return .clientCertificateRejected }
            return code == CURLE_SSL_CONNECT_ERROR ? .tlsFailure : .transport
        default:
            return .transport
        }
    }
}

// MARK: - Callbacks

/// Collects one response; libcurl calls into it from the transfer thread only.
private final class ResponseCollector {
    let limit: Int
    let cancellation: CancellationFlag
    var body = Data()
    var headers: [(name: String, value: String)] = []
    var exceededLimit = false
    /// Streaming: every piece of the body, as it arrives.
    var onData: (@Sendable ([UInt8]) -> Void)?

    init(limit: Int, cancellation: CancellationFlag) {
        self.limit = limit
        self.cancellation = cancellation
    }
}

private func collector(_ userdata: UnsafeMutableRawPointer?) -> ResponseCollector {
    Unmanaged<ResponseCollector>.fromOpaque(userdata!).takeUnretainedValue()
}

private let writeBody: ccurl_data_callback = { pointer, size, count, userdata in
    let target = collector(userdata)
    let length = size * count
    if let onData = target.onData {
        guard let pointer else { return length }
        let piece = [UInt8](UnsafeRawBufferPointer(start: pointer, count: length))
        onData(piece)
        if target.body.count < target.limit {
            target.body.append(contentsOf: piece.prefix(target.limit - target.body.count))
        }
        return length
    }
    guard target.body.count + length <= target.limit else {
        target.exceededLimit = true
        return 0  // anything but `length` makes libcurl stop with CURLE_WRITE_ERROR
    }
    if let pointer { target.body.append(UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self), count: length) }
    return length
}

private let writeHeader: ccurl_data_callback = { pointer, size, count, userdata in
    let target = collector(userdata)
    let length = size * count
    guard let pointer else { return length }
    let line = String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self)
        .trimmingWhitespace()
    if line.hasPrefix("HTTP/") {
        // A new status line: an interim (1xx) or redirected response came before.
        target.headers.removeAll()
    } else if let colon = line.firstIndex(of: ":") {
        let name = String(line[..<colon])
        let value = line[line.index(after: colon)...].trimmingWhitespace()
        target.headers.append((name, value))
    }
    return length
}

private let progress: ccurl_xferinfo_callback = { userdata, _, _, _, _ in
    collector(userdata).cancellation.isCancelled ? 1 : 0
}

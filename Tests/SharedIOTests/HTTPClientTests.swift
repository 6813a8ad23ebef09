import Foundation
import SharedIO
import TestSupport
import Testing

/// What the echo server saw.
private struct Echo: Decodable {
    let method: String
    let path: String
    let headers: [[String]]
    let body: String
    let client_subject: String?

    func header(_ name: String) -> String? {
        headers.first { $0[0].lowercased() == name.lowercased() }?[1]
    }
    var bodyData: Data { Data(base64Encoded: body) ?? Data() }
}

private func echo(_ response: HTTPResponse) throws -> Echo {
    try JSONDecoder().decode(Echo.self, from: response.body)
}

private func client(_ configure: (inout HTTPClient.Configuration) -> Void = { _ in }) -> HTTPClient {
    var configuration = HTTPClient.Configuration()
    configuration.connectTimeout = .seconds(5)
    configuration.timeout = .seconds(10)
    configure(&configuration)
    return HTTPClient(configuration: configuration)
}

@discardableResult
private func expectFailure(
    _ kind: HTTPClientError.Kind, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> HTTPResponse
) async -> HTTPClientError? {
    do {
        let response = try await body()
        Issue.record("expected \(kind), got HTTP \(response.status)", sourceLocation: sourceLocation)
        return nil
    } catch let error as HTTPClientError {
        #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected HTTPClientError.\(kind), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

@Suite("HTTP client over libcurl, plain HTTP")
struct PlainHTTPTests {
    let server: EchoServer

    init() async throws { server = try await EchoServer.plain() }

    @Test func getSendsHeadersAndBearerToken() async throws {
        let request = HTTPRequest(
            url: server.httpURL + "/api/v1/nodes?limit=500", headers: [("Accept", "application/json")],
            bearerToken: "s3cret-token")
        let response = try await client().send(request)
        #expect(response.status == 200)
        #expect(response.header("content-type") == "application/json")
        let seen = try echo(response)
        #expect(seen.method == "GET")
        #expect(seen.path == "/api/v1/nodes?limit=500")
        #expect(seen.header("Accept") == "application/json")
        #expect(seen.header("Authorization") == "Bearer s3cret-token")
        #expect(seen.header("User-Agent") == "k8s-upgrade")
    }

    @Test(arguments: ["POST", "PUT", "PATCH", "DELETE"])
    func methodsWithBody(method: String) async throws {
        let body = Data("{\"spec\":{\"unschedulable\":true}}\u{0}tail".utf8)
        let request = HTTPRequest(
            method: method, url: server.httpURL + "/x", headers: [("Content-Type", "application/merge-patch+json")],
            body: body)
        let seen = try echo(try await client().send(request))
        #expect(seen.method == method)
        #expect(seen.bodyData == body)
        #expect(seen.header("Content-Type") == "application/merge-patch+json")
        #expect(seen.header("Expect") == nil)
    }

    @Test func largeBodyRoundTrip() async throws {
        let body = Data((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let seen = try echo(
            try await client().send(HTTPRequest(method: "POST", url: server.httpURL + "/big", body: body)))
        #expect(seen.bodyData == body)
    }

    @Test func emptyBodyPost() async throws {
        let seen = try echo(
            try await client().send(HTTPRequest(method: "POST", url: server.httpURL + "/e", body: Data())))
        #expect(seen.method == "POST")
        #expect(seen.bodyData.isEmpty)
        #expect(seen.header("Content-Length") == "0")
    }

    @Test func headHasStatusAndHeadersButNoBody() async throws {
        let response = try await client().send(HTTPRequest(method: "HEAD", url: server.httpURL + "/status/403"))
        #expect(response.status == 403)
        #expect(response.body.isEmpty)
        #expect(response.header("Content-Length") != nil)
    }

    @Test(arguments: [404, 409, 429, 500, 503])
    func errorStatusesAreResponses(status: Int) async throws {
        let response = try await client().send(HTTPRequest(url: server.httpURL + "/status/\(status)"))
        #expect(response.status == status)
        #expect(!response.isSuccess)
    }

    @Test func redirectsAreNotFollowedUnlessAsked() async throws {
        let response = try await client().send(HTTPRequest(url: server.httpURL + "/redirect"))
        #expect(response.status == 302)
        #expect(response.header("Location") == "/echo?redirected=1")

        let followed = try await client { $0.followRedirects = true }.send(
            HTTPRequest(url: server.httpURL + "/redirect"))
        #expect(followed.status == 200)
        #expect(try echo(followed).path == "/echo?redirected=1")
        #expect(followed.headers.filter { $0.name.lowercased() == "location" }.isEmpty)
    }

    @Test func totalTimeoutIsHonoured() async throws {
        let started = ContinuousClock.now
        await expectFailure(.timedOut) {
            try await client().send(HTTPRequest(url: server.httpURL + "/slow?ms=60000", timeout: .milliseconds(300)))
        }
        // Far sooner than the server's 60 s answer, with room for a loaded machine.
        #expect(ContinuousClock.now - started < .seconds(15))
    }

    @Test func responseLimit() async throws {
        let small = client { $0.maximumResponseBytes = 1000 }
        #expect(try await small.send(HTTPRequest(url: server.httpURL + "/bytes/1000")).body.count == 1000)
        await expectFailure(.responseTooLarge) {
            try await small.send(HTTPRequest(url: server.httpURL + "/bytes/1001"))
        }
    }

    @Test func cancellationStopsTheTransfer() async throws {
        let url = server.httpURL + "/slow?ms=60000"
        let started = ContinuousClock.now
        let task = Task { try await client().send(HTTPRequest(url: url)) }
        try await Task.sleep(for: .milliseconds(200))
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(ContinuousClock.now - started < .seconds(15))
    }
}

@Suite("HTTP client over libcurl, failures before a response")
struct TransportFailureTests {
    @Test func nameNotResolved() async {
        let error = await expectFailure(.nameNotResolved) {
            try await client().send(HTTPRequest(url: "http://no-such-host.invalid/version"))
        }
        #expect(error?.description.contains("host name not resolved") == true)
    }

    @Test func connectionRefused() async throws {
        let port = try TestEnvironment.freePort()
        let error = await expectFailure(.connectionRefused) {
            try await client().send(HTTPRequest(url: "http://127.0.0.1:\(port)/healthz"))
        }
        #expect(error?.request == "GET http://127.0.0.1:\(port)/healthz")
    }

    @Test func secretURLsAndTokensStayOutOfErrors() async throws {
        let port = try TestEnvironment.freePort()
        let error = await expectFailure(.connectionRefused) {
            try await client().send(
                HTTPRequest(
                    method: "POST", url: "http://127.0.0.1:\(port)/services/T000/B000/XXXXSECRET", bearerToken: "tok3n",
                    urlIsSecret: true))
        }
        let text = error.map(String.init(describing:)) ?? ""
        #expect(text.contains("127.0.0.1:\(port)/<redacted>"))
        #expect(!text.contains("XXXXSECRET"))
        #expect(!text.contains("tok3n"))
    }

    @Test func malformedURL() async {
        await expectFailure(.invalidRequest) { try await client().send(HTTPRequest(url: "ht!tp:/nope")) }
        await expectFailure(.invalidRequest) { try await client().send(HTTPRequest(url: "file:///etc/passwd")) }
    }
}

@Suite("HTTP client over libcurl, TLS")
struct TLSTests {
    let server: EchoServer
    let pki: TestPKI

    init() async throws {
        server = try await EchoServer.tls()
        pki = try await TestPKI.shared()
    }

    @Test func trustsTheCAFile() async throws {
        let tls = client { $0.tls = TLSConfiguration(trustRoots: .file(pki.caCertificate.path)) }
        #expect(try await tls.send(HTTPRequest(url: server.httpsURL + "/version")).status == 200)
        #expect(try await tls.send(HTTPRequest(url: server.localhostURL + "/version")).status == 200)
    }

    @Test func trustsInlineCAData() async throws {
        let pem = try Data(contentsOf: pki.caCertificate)
        let tls = client { $0.tls = TLSConfiguration(trustRoots: .data(pem)) }
        #expect(try await tls.send(HTTPRequest(url: server.httpsURL + "/version")).status == 200)
    }

    @Test func wrongCAFails() async throws {
        let wrong = client { $0.tls = TLSConfiguration(trustRoots: .file(pki.otherCACertificate.path)) }
        await expectFailure(.tlsVerificationFailed) { try await wrong.send(HTTPRequest(url: server.httpsURL + "/")) }
        let system = client()
        await expectFailure(.tlsVerificationFailed) { try await system.send(HTTPRequest(url: server.httpsURL + "/")) }
    }

    @Test func skippingVerificationIsExplicit() async throws {
        let insecure = client { $0.tls = TLSConfiguration(verifyPeer: false) }
        #expect(try await insecure.send(HTTPRequest(url: server.httpsURL + "/")).status == 200)
    }
}

@Suite("HTTP client over libcurl, mutual TLS")
struct MutualTLSTests {
    let server: EchoServer
    let pki: TestPKI

    init() async throws {
        server = try await EchoServer.mutualTLS()
        pki = try await TestPKI.shared()
    }

    @Test func acceptedWithTheRightClientCertificateFiles() async throws {
        let tls = client {
            $0.tls = TLSConfiguration(
                trustRoots: .file(pki.caCertificate.path), clientCertificate: .file(pki.clientCertificate.path),
                clientKey: .file(pki.clientKey.path))
        }
        let seen = try echo(try await tls.send(HTTPRequest(url: server.httpsURL + "/api")))
        #expect(seen.client_subject == "k8s-upgrade-test-client")
    }

    @Test func acceptedWithInlineKubeconfigStyleData() async throws {
        let tls = client {
            $0.tls = TLSConfiguration(
                trustRoots: .data(try! Data(contentsOf: pki.caCertificate)),
                clientCertificate: .data(try! Data(contentsOf: pki.clientCertificate)),
                clientKey: .data(try! Data(contentsOf: pki.clientKey)))
        }
        let seen = try echo(try await tls.send(HTTPRequest(url: server.httpsURL + "/api")))
        #expect(seen.client_subject == "k8s-upgrade-test-client")
    }

    @Test func refusedWithoutAClientCertificate() async throws {
        let tls = client { $0.tls = TLSConfiguration(trustRoots: .file(pki.caCertificate.path)) }
        await expectFailure(.clientCertificateRejected) {
            try await tls.send(HTTPRequest(url: server.httpsURL + "/api"))
        }
    }

    @Test func refusedWithACertificateFromAnotherCA() async throws {
        let tls = client {
            $0.tls = TLSConfiguration(
                trustRoots: .file(pki.caCertificate.path), clientCertificate: .file(pki.strangerCertificate.path),
                clientKey: .file(pki.strangerKey.path))
        }
        await expectFailure(.clientCertificateRejected) {
            try await tls.send(HTTPRequest(url: server.httpsURL + "/api"))
        }
    }

    @Test func unusableClientKeyIsOurError() async throws {
        let tls = client {
            $0.tls = TLSConfiguration(
                trustRoots: .file(pki.caCertificate.path), clientCertificate: .file(pki.clientCertificate.path),
                clientKey: .file(pki.strangerKey.path))
        }
        await expectFailure(.clientCertificateInvalid) {
            try await tls.send(HTTPRequest(url: server.httpsURL + "/api"))
        }
    }
}

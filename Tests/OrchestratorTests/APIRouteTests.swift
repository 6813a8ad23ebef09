import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Shared
import SharedIO
import Synchronization
import TestSupport
import Testing

@testable import Orchestrator

/// The HTTP API in-process (Hummingbird's router test client, no socket):
/// auth, the admission's answers, and a job read back, against a
/// coordinator running a recording pipeline held at its first stage.
@Suite struct APIRouteTests {
    static let token = "route-test-token"

    /// Admission stand-in: 1.34.3 runs everywhere, minors are refused,
    /// 1.34.9 (and a rollback to 1.34.1) finds the cluster unreadable.
    static func admit(_ request: ExecuteRequest) async throws -> Admission {
        switch (request.targetVersion.description, request.kind) {
        case ("1.34.3", _): return .nothingToDo("every API server and kubelet already runs 1.34.3; nothing to do")
        case (_, .minor):
            return .refused("minor upgrades are not allowed by this server's policy (--allow-minor false)")
        case ("1.34.9", _), ("1.34.1", _):
            throw Admitter.Unchecked(description: "the cluster's versions could not be read")
        default: return .accepted
        }
    }

    func withAPI(
        logger: Logger = .silent, _ body: @Sendable (any TestClientProtocol, JobStore) async throws -> Void
    ) async throws {
        let path = try TestEnvironment.makeDirectory("routes").appendingPathComponent("jobs.sqlite").path
        let store = try await JobStore(path: path)
        let coordinator = JobCoordinator(
            store: store, pipeline: StageLoopTests.RecordingPipeline(holding: .preflight), admit: Self.admit,
            log: Logger.silent, pollInterval: .seconds(5), clock: SteppingJobClock())
        let running = Task { try await coordinator.run() }
        defer { running.cancel() }
        try await poll(until: "the coordinator leading") { await coordinator.leading }
        let dependencies = APIDependencies(
            coordinator: coordinator, store: store, token: BearerToken(Self.token),
            metrics: ServiceMetrics(
                startTime: 0, gauges: GaugePublisher(pushgatewayURL: nil, log: Logger.silent)), logger: logger)
        try await buildApplication(dependencies).test(.router) { client in try await body(client, store) }
    }

    static func post(
        _ client: any TestClientProtocol, _ body: String, token: String? = token
    ) async throws
        -> (status: HTTPResponse.Status, json: JSONValue)
    {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await client.execute(
            uri: "/execute", method: .post, headers: headers, body: ByteBuffer(string: body)
        ) {
            response in
            (response.status, (try? JSONValue.parse(String(buffer: response.body))) ?? .null)
        }
    }

    /// Waits until job 1 waits at the gate, where the held pipeline keeps it.
    static func waitUntilHeldAtTheGate(_ store: JobStore) async throws {
        try await poll(until: "job 1 waiting at the gate") {
            guard let job = try await store.job(1) else { return false }
            if job.state.isFinished { throw FixtureError("job 1 is \(job.state.rawValue): \(job.progress)") }
            return job.progress.wait != nil
        }
    }

    @Test func executeAnswersEachAdmissionAndQueuesOnlyWhatItAccepts() async throws {
        try await withAPI { client, store in
            let unauthorised = try await Self.post(client, #"{"target_version":"1.34.5","kind":"patch"}"#, token: nil)
            #expect(unauthorised.status == .unauthorized)
            let refused = try await Self.post(client, #"{"target_version":"1.35.2","kind":"minor"}"#)
            #expect(refused.status == .unprocessableContent)
            #expect(refused.json[dotted: "error"]?.stringValue?.hasPrefix("minor upgrades are not allowed") == true)
            let nothing = try await Self.post(client, #"{"target_version":"1.34.3","kind":"patch"}"#)
            #expect(nothing.status == .ok)
            #expect(nothing.json[dotted: "outcome"]?.stringValue == "nothing_to_do")
            let unchecked = try await Self.post(client, #"{"target_version":"1.34.9","kind":"patch"}"#)
            #expect(unchecked.status == .serviceUnavailable)
            #expect(try await store.jobs(limit: 10).isEmpty, "nothing queued so far")

            let queued = try await Self.post(client, #"{"target_version":"1.34.5","kind":"patch"}"#)
            #expect(queued.status == .accepted)
            #expect(queued.json[dotted: "id"]?.intValue == 1)
            let again = try await Self.post(client, #"{"target_version":"1.34.5","kind":"patch"}"#)
            #expect(again.status == .conflict)
            #expect(again.json[dotted: "detail.active_job.id"]?.intValue == 1)
        }
    }

    @Test func aJobIsReadBackWithItsEventsWhileItWaits() async throws {
        try await withAPI { client, store in
            _ = try await Self.post(client, #"{"target_version":"1.34.5","kind":"patch"}"#)
            try await Self.waitUntilHeldAtTheGate(store)
            let headers: HTTPFields = [.authorization: "Bearer \(Self.token)"]
            try await client.execute(uri: "/jobs/1?events_limit=2", method: .get, headers: headers) { response in
                #expect(response.status == .ok)
                let job = try JSONValue.parse(String(buffer: response.body))
                #expect(job[dotted: "state"]?.stringValue == "running")
                #expect(job[dotted: "wait.what"]?.stringValue == "the gate to open")
                #expect(job[dotted: "events.items"]?.arrayValue?.count == 2)
                #expect(job[dotted: "events.next_after"]?.intValue == 2)
            }
            try await client.execute(uri: "/jobs/1", method: .delete, headers: headers) { response in
                #expect(response.status == .accepted)
            }
        }
    }

    /// Answers kept between reads never outlive the job they show: each
    /// change (an event, a state, a result alone, another job) is in the
    /// next answer of both forms, and a page of events stays its own page.
    @Test func keptAnswersFollowEveryChangeOfTheJobs() async throws {
        try await withAPI { client, store in
            _ = try await Self.post(client, #"{"target_version":"1.34.5","kind":"patch"}"#)
            // Held at the gate, the job itself writes nothing more until aborted.
            try await Self.waitUntilHeldAtTheGate(store)
            let headers: HTTPFields = [.authorization: "Bearer \(Self.token)"]
            func read(_ uri: String) async throws -> JSONValue {
                try await client.execute(uri: uri, method: .get, headers: headers) { response in
                    try JSONValue.parse(String(buffer: response.body))
                }
            }
            var total = try #require(try await read("/jobs/1")[dotted: "events.total"]?.intValue)
            for round in 1...3 {
                #expect(try await read("/jobs/1")[dotted: "events.total"]?.intValue == total)
                try await store.append(1, [JobEvent(time: Double(round), kind: .info, message: "round \(round)")])
                total += 1
                let job = try await read("/jobs/1")
                #expect(job[dotted: "events.total"]?.intValue == total)
                #expect(
                    job[dotted: "events.items"]?.arrayValue?.last?[dotted: "message"]?.stringValue == "round \(round)")
                let page = try await read("/jobs/1?events_after=\(total - 1)")
                #expect(page[dotted: "events.items"]?.arrayValue?.count == 1)
            }
            try await store.append(1, [], result: .object(["total_seconds": .number(9)]))
            #expect(try await read("/jobs/1")[dotted: "result.total_seconds"]?.intValue == 9)
            _ = try await client.execute(uri: "/jobs/1", method: .delete, headers: headers) { _ in }
            try await poll(until: "job 1 finishing") { try await store.job(1)?.state.isFinished == true }
            #expect(try await read("/jobs/1")[dotted: "state"]?.stringValue == "aborted")
            #expect(
                try await read("/jobs")[dotted: "jobs"]?.arrayValue?.map { $0[dotted: "state"]?.stringValue } == [
                    "aborted"
                ])
            _ = try await Self.post(client, #"{"target_version":"1.34.6","kind":"patch"}"#)
            #expect(try await read("/jobs")[dotted: "jobs"]?.arrayValue?.count == 2)
        }
    }

    /// A rollback is checked against the cluster as an upgrade is: one that
    /// cannot be read answers 503 with Retry-After and queues nothing.
    @Test func aRollbackAnswersAsTheAdmissionFindsTheCluster() async throws {
        try await withAPI { client, store in
            let headers: HTTPFields = [.authorization: "Bearer \(Self.token)", .contentType: "application/json"]
            func rollback() async throws -> HTTPResponse.Status {
                try await client.execute(
                    uri: "/jobs/1/rollback", method: .post, headers: headers,
                    body: ByteBuffer(string: #"{"node":"worker-1"}"#)
                ) { $0.status }
            }
            _ = try await Self.post(client, #"{"target_version":"1.34.5","kind":"patch"}"#)
            try await Self.waitUntilHeldAtTheGate(store)
            // A job still running is refused by the decision: abort it first.
            #expect(try await rollback() == .unprocessableContent)
            _ = try await client.execute(uri: "/jobs/1", method: .delete, headers: headers) { _ in }
            try await poll(until: "job 1 finishing") { try await store.job(1)?.state.isFinished == true }
            // What its report would say of a worker it upgraded.
            try await store.append(
                1, [],
                result: try JSONValue.parse(
                    #"{"nodes":[{"name":"worker-1","role":"worker","before":"1.34.1","after":"1.34.5"}]}"#))
            let unchecked = try await client.execute(
                uri: "/jobs/1/rollback", method: .post, headers: headers,
                body: ByteBuffer(string: #"{"node":"worker-1"}"#)
            ) { ($0.status, $0.headers[.retryAfter], String(buffer: $0.body)) }
            #expect(unchecked.0 == .serviceUnavailable && unchecked.1 == "30", "\(unchecked)")
            #expect(try await store.job(2) == nil, "nothing was queued")
        }
    }

    /// Routing answers a known path asked with the wrong method 405 naming
    /// what it allows (before the token is asked for), an unknown path 404,
    /// both as problem bodies; a debug logger sees each request with its id.
    @Test func wrongMethodsUnknownPathsAndRequestLogs() async throws {
        let lines = LogLines()
        var logger = Logger(label: "test") { _ in RecordingLogHandler(lines: lines) }
        logger.logLevel = .debug
        try await withAPI(logger: logger) { client, _ in
            try await client.execute(uri: "/jobs/7", method: .put) { response in
                #expect(response.status == .methodNotAllowed)
                #expect(response.headers[.allow] == "GET, DELETE")
                let body = try JSONValue.parse(String(buffer: response.body))
                #expect(body[dotted: "error"]?.stringValue == "PUT is not allowed on /jobs/{id}; allowed: GET, DELETE")
            }
            try await client.execute(uri: "/jobs/7/nothing", method: .get) { response in
                #expect(response.status == .notFound)
                let body = try JSONValue.parse(String(buffer: response.body))
                #expect(body[dotted: "error"]?.stringValue == "no such route: /jobs/7/nothing")
            }
            try await client.execute(uri: "/healthz", method: .get) { response in #expect(response.status == .ok) }
        }
        let logged = lines.all.filter { $0.message == "request" }
        #expect(logged.map { $0.metadata["path"] ?? "" } == ["/jobs/7", "/jobs/7/nothing", "/healthz"])
        #expect(logged.allSatisfy { $0.metadata["hb.request.id"] != nil }, "\(logged)")
    }
}

final class LogLines: Sendable {
    struct Line: Sendable {
        var message: String
        var metadata: [String: String]
    }
    private let lines = Mutex<[Line]>([])
    var all: [Line] { lines.withLock { $0 } }
    func add(_ line: Line) { lines.withLock { $0.append(line) } }
}

struct RecordingLogHandler: LogHandler {
    let lines: LogLines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }.mapValues { "\($0)" }
        lines.add(LogLines.Line(message: "\(event.message)", metadata: merged))
    }
}

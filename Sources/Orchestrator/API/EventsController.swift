import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle
import Shared
import SharedIO

/// `GET /jobs/{id}/events`: a job's events as server-sent events
/// (`text/event-stream`), from after `Last-Event-ID` (or `after`); with
/// `follow=true` the stream stays open and carries each event as it is
/// written, and a `job` message whenever the job's state moves, until the
/// job ends (an `end` message).
struct EventsController {
    let store: JobStore
    let feeds: JobFeeds

    func add(to group: RouterGroup<BasicRequestContext>) {
        group.get("/jobs/{id}/events") { request, context in
            let text = context.parameters.get("id") ?? ""
            guard let id = Int64(text), id > 0 else {
                throw Problem(status: .badRequest, message: "job id must be a positive integer, got \"\(text)\"")
            }
            let query = request.uri.queryParameters
            let follow: Bool
            switch query["follow"].map(String.init) {
            case nil, "false": follow = false
            case "true": follow = true
            case let other?:
                throw Problem(status: .badRequest, message: "follow: must be true or false, got \(other.prefix(40))")
            }
            let after = try Self.resumePoint(request)
            guard try await store.revision(of: id) != nil else {
                throw Problem(status: .notFound, message: "job \(id) does not exist")
            }
            let feeds = feeds
            return Response(
                status: .ok,
                headers: [
                    .contentType: "text/event-stream", .cacheControl: "no-cache",
                    HTTPField.Name("X-Accel-Buffering")!: "no",
                ],
                body: ResponseBody { writer in
                    let (token, wakes) = await feeds.follow(id)
                    do {
                        // A stopping service ends every stream, or the server
                        // would wait for them (and the job's safe stop with it).
                        try await withGracefulShutdownHandler {
                            try await Self.stream(
                                id, after: after, follow: follow, feeds: feeds, wakes: wakes, to: &writer)
                        } onGracefulShutdown: {
                            Task { await feeds.closeAll() }
                        }
                    } catch {
                        // The client went away.
                    }
                    await feeds.unfollow(id, token: token)
                    try? await writer.finish(nil)
                })
        }
    }

    /// How long a follower waits after a change before writing, to send a burst at once.
    static let coalescing: Duration = .milliseconds(100)

    /// Where a client resumes: after `Last-Event-ID`, else `after`, else from the start.
    private static func resumePoint(_ request: Request) throws -> Int {
        if let header = request.headers[HTTPField.Name("Last-Event-ID")!] {
            guard (1...10).contains(header.count), header.allSatisfy({ $0.isASCII && $0.isNumber }),
                let value = Int(header)
            else {
                throw Problem(
                    status: .badRequest,
                    message: "Last-Event-ID must be an event's sequence number, got \"\(header.prefix(40))\"")
            }
            return value
        }
        guard let text = request.uri.queryParameters["after"].map(String.init) else { return 0 }
        guard let value = Int(text), (0...Int(Int32.max)).contains(value) else {
            throw Problem(
                status: .badRequest, message: "after must be an integer in 0...2147483647, got \"\(text.prefix(40))\"")
        }
        return value
    }

    private static func stream(
        _ id: Int64, after: Int, follow: Bool, feeds: JobFeeds, wakes: AsyncStream<JobFeeds.Wake>,
        to writer: inout any ResponseBodyWriter
    ) async throws {
        var cursor = after
        var version = 0
        try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
        var wakes = wakes.makeAsyncIterator()
        var why = JobFeeds.Wake.changed
        while true {
            let update = await feeds.update(id, after: cursor, sentVersion: version)
            if update.loading {
                if why == .keepalive { try await writer.write(ByteBuffer(string: ServerSentEvents.keepalive)) }
            } else {
                if !update.text.isEmpty {
                    try await writer.write(ByteBuffer(string: update.text))
                } else if why == .keepalive {
                    try await writer.write(ByteBuffer(string: ServerSentEvents.keepalive))
                }
                (cursor, version) = (update.cursor, update.version)
                if update.finished {
                    let end = JSONValue.object(["id": .number(Double(id))]).jsonText
                    try await writer.write(ByteBuffer(string: ServerSentEvents.encode(event: "end", data: end)))
                    return
                }
                if !follow { return }
            }
            guard let next = await wakes.next() else { return }
            why = next
            // Events come in bursts: what the next tenth of a second adds
            // goes out in the same write (one write per burst, not per event).
            if next == .changed { try await Task.sleep(for: Self.coalescing) }
        }
    }
}

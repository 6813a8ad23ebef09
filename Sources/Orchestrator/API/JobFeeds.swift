import Shared
import SharedIO

/// The followers of a job's events (`GET /jobs/{id}/events?follow=true`)
/// share one reader of the store: a change to the store wakes the reader
/// once, it reads what is new and writes it once as server-sent events,
/// then wakes every follower, which sends what it has not sent yet. A few
/// hundred followers cost one read of the store per change.
actor JobFeeds {
    let store: JobStore
    /// How often a follower with nothing new sends a comment, so proxies
    /// keep the stream open and a client that went away is noticed.
    let keepalive: Duration

    private struct Feed {
        var loaded = false
        var events: [(sequence: Int, text: String)] = []
        var job: JobRecord?
        var jobText = ""
        /// Moves when ``jobText`` reads differently, not at every event.
        var jobVersion = 0
        var followers: [UInt64: AsyncStream<Wake>.Continuation] = [:]
        var reader: Task<Void, Never>?
        var stopListening: (@Sendable () -> Void)?
    }

    /// Why a follower was woken.
    enum Wake: Sendable { case changed, keepalive }

    private var feeds: [Int64: Feed] = [:]
    private var nextFollower: UInt64 = 0
    private var closed = false

    init(store: JobStore, keepalive: Duration = .seconds(15)) {
        self.store = store
        self.keepalive = keepalive
    }

    /// What a follower has not sent yet: the events after its cursor, and
    /// the job's state when it reads differently from the last one sent.
    struct Update: Sendable {
        var text: String
        var cursor: Int
        var version: Int
        /// The job will write no more: the follower may end.
        var finished: Bool
        /// The feed has not read the store yet.
        var loading: Bool
    }

    /// Joins the followers of job `id`; the first one starts its reader.
    /// Once the service stops (``closeAll()``), the stream ends at once.
    func follow(_ id: Int64) -> (token: UInt64, wakes: AsyncStream<Wake>) {
        nextFollower += 1
        let token = nextFollower
        let (stream, continuation) = AsyncStream<Wake>.makeStream(bufferingPolicy: .bufferingNewest(1))
        guard !closed else {
            continuation.finish()
            return (token, stream)
        }
        feeds[id, default: Feed()].followers[token] = continuation
        if feeds[id]?.reader == nil { start(id) }
        return (token, stream)
    }

    /// Leaves; the last one out stops the reader.
    func unfollow(_ id: Int64, token: UInt64) {
        feeds[id]?.followers.removeValue(forKey: token)?.finish()
        guard let feed = feeds[id], feed.followers.isEmpty else { return }
        feed.reader?.cancel()
        feed.stopListening?()
        feeds[id] = nil
    }

    /// How many follow job `id` now.
    func followers(of id: Int64) -> Int { feeds[id]?.followers.count ?? 0 }

    func update(_ id: Int64, after cursor: Int, sentVersion: Int) -> Update {
        guard let feed = feeds[id], feed.loaded, let job = feed.job else {
            return Update(text: "", cursor: cursor, version: sentVersion, finished: false, loading: true)
        }
        var text = ""
        // Events are in sequence order: the first one after the cursor, by bisection.
        var low = 0
        var high = feed.events.count
        while low < high {
            let middle = (low + high) / 2
            if feed.events[middle].sequence <= cursor { low = middle + 1 } else { high = middle }
        }
        for event in feed.events[low...] { text += event.text }
        if feed.jobVersion != sentVersion { text += feed.jobText }
        let last = feed.events.last?.sequence ?? cursor
        return Update(
            text: text, cursor: max(cursor, last), version: feed.jobVersion, finished: job.state.isFinished,
            loading: false)
    }

    // MARK: - The reader

    private func start(_ id: Int64) {
        let (changes, stop) = store.changes.listen()
        feeds[id]?.stopListening = stop
        let period = keepalive
        feeds[id]?.reader = Task { [weak self] in
            await self?.refresh(id)
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await _ in changes { await self?.refresh(id) }
                }
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: period)
                        await self?.wake(id, .keepalive)
                    }
                }
                await group.next()
                group.cancelAll()
            }
        }
    }

    /// Reads what the store has after the last event the feed holds, every
    /// page of it, and publishes it at once: a follower never sees a
    /// finished job with only some of its events.
    private func refresh(_ id: Int64) async {
        guard let start = feeds[id] else { return }
        var after = start.events.last?.sequence ?? 0
        var fresh: [(sequence: Int, text: String)] = []
        var latest: JobRecord?
        while true {
            guard let detail = try? await store.detail(id, eventsAfter: after, limit: 1000) else { return }
            // A reader stopped meanwhile (its followers left) writes nothing.
            if Task.isCancelled { return }
            for event in detail.events {
                fresh.append(
                    (
                        event.sequence,
                        ServerSentEvents.encode(id: String(event.sequence), data: JobJSON.event(event).jsonText)
                    ))
            }
            latest = detail.job
            guard detail.events.count == 1000, let last = detail.events.last else { break }
            after = last.sequence
        }
        // Another refresh may have run meanwhile: keep only what is still new.
        guard var feed = feeds[id], let latest else { return }
        var moved = !feed.loaded
        let last = feed.events.last?.sequence ?? 0
        for event in fresh where event.sequence > last {
            feed.events.append(event)
            moved = true
        }
        if latest.revision > (feed.job?.revision ?? -1) {
            feed.job = latest
            let text = ServerSentEvents.encode(event: "job", data: JobJSON.state(latest).jsonText)
            if text != feed.jobText {
                (feed.jobText, feed.jobVersion) = (text, feed.jobVersion + 1)
                moved = true
            }
        }
        feed.loaded = true
        feeds[id] = feed
        if moved { wake(id, .changed) }
    }

    /// The service is stopping: every follower's stream ends (without
    /// `end`, so clients reconnect to whoever serves next), and no new one
    /// waits; a follower must not hold the server's shutdown open until
    /// its job ends.
    func closeAll() {
        closed = true
        for (id, feed) in feeds {
            for follower in feed.followers.values { follower.finish() }
            feed.reader?.cancel()
            feed.stopListening?()
            feeds[id] = nil
        }
    }

    private func wake(_ id: Int64, _ why: Wake) {
        guard let followers = feeds[id]?.followers else { return }
        for follower in followers.values { follower.yield(why) }
    }
}

import Foundation
import Shared
import SharedIO
import TestSupport
import Testing

@testable import Orchestrator

/// The followers of a job's events, in process, on a real store.
@Suite struct JobFeedsTests {
    /// A finished job of 2,500 events (three pages of the store), opened
    /// by twenty readers at once: each sees the job finished only with
    /// every event, never with the first page alone.
    @Test func aFinishedJobIsShownWithAllItsEventsOrNotYet() async throws {
        let path = try TestEnvironment.makeDirectory("feeds").appendingPathComponent("jobs.sqlite").path
        let store = try await JobStore(path: path)
        let job = try await store.create(
            ExecuteRequest(targetVersion: try KubeVersion(strictRelease: "1.34.5"), kind: .patch), at: 1
        ).get()
        let events = (0..<2499).map { JobEvent(time: 2, kind: .info, message: "event \($0)") }
        try await store.append(job.id, events, state: .succeeded)
        let feeds = JobFeeds(store: store)
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    let (token, wakes) = await feeds.follow(job.id)
                    defer { Task { await feeds.unfollow(job.id, token: token) } }
                    var iterator = wakes.makeAsyncIterator()
                    while true {
                        let update = await feeds.update(job.id, after: 0, sentVersion: 0)
                        if !update.loading {
                            #expect(update.finished)
                            return update.text.components(separatedBy: "\nid: ").count
                        }
                        guard await iterator.next() != nil else { return -1 }
                    }
                }
            }
            for try await count in group { #expect(count == 2500) }
        }
    }

    /// Once the service stops, every follower's stream ends, and a new
    /// one ends at once.
    @Test func stoppingEndsEveryFollowersStream() async throws {
        let path = try TestEnvironment.makeDirectory("feeds").appendingPathComponent("jobs.sqlite").path
        let store = try await JobStore(path: path)
        let job = try await store.create(
            ExecuteRequest(targetVersion: try KubeVersion(strictRelease: "1.34.5"), kind: .patch), at: 1
        ).get()
        let feeds = JobFeeds(store: store, keepalive: .seconds(3600))
        let (_, wakes) = await feeds.follow(job.id)
        let drained = Task {
            var count = 0
            for await _ in wakes { count += 1 }
            return count
        }
        try await Task.sleep(for: .milliseconds(100))
        await feeds.closeAll()
        #expect(await drained.value >= 0)
        #expect(await feeds.followers(of: job.id) == 0)
        let (_, late) = await feeds.follow(job.id)
        var iterator = late.makeAsyncIterator()
        #expect(await iterator.next() == nil)
    }
}

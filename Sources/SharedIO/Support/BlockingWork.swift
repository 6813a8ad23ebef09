import Glibc
import Synchronization

/// A flag that a blocking C loop polls to learn that the Swift task waiting
/// for it was cancelled.
final class CancellationFlag: Sendable {
    private let state = Atomic<Bool>(false)

    /// Whether the waiting task was cancelled.
    var isCancelled: Bool { state.load(ordering: .relaxed) }

    func cancel() { state.store(true, ordering: .relaxed) }
}

/// Runs blocking C work (curl_easy_perform, libssh2 poll loops) on a thread
/// of its own, so that it never occupies a thread of Swift's cooperative pool.
enum BlockingWork {
    /// Runs `body` on a new thread and returns its result.
    ///
    /// The flag passed to `body` turns true when the calling task is
    /// cancelled; `body` decides where it is safe to stop.
    static func run<T: Sendable>(
        named name: String, _ body: @escaping @Sendable (CancellationFlag) throws -> T
    ) async throws -> T {
        let flag = CancellationFlag()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                startThread { continuation.resume(with: Result { try body(flag) }) }
            }
        } onCancel: {
            flag.cancel()
        }
    }

    /// Starts a detached POSIX thread running `work`.
    static func startThread(_ work: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(ThreadWork(work)).toOpaque()
        var thread = pthread_t()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        let created = pthread_create(
            &thread, &attributes,
            { context in
                let work = Unmanaged<ThreadWork>.fromOpaque(context!).takeRetainedValue()
                work.run()
                return nil
            }, box)
        if created != 0 {
            // No thread to be had: run here rather than never.
            Unmanaged<ThreadWork>.fromOpaque(box).takeRetainedValue().run()
        }
    }
}

/// The closure a new thread runs, boxed to cross pthread_create's `void *`.
private final class ThreadWork: Sendable {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

import Foundation
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
                let thread = Thread {
                    continuation.resume(with: Result { try body(flag) })
                }
                thread.name = name
                thread.start()
            }
        } onCancel: {
            flag.cancel()
        }
    }
}

import Glibc

/// One long-lived POSIX thread that runs submitted work in order. A SQLite
/// connection lives on it: every call is blocking C, so it stays off Swift's
/// cooperative pool, and one thread means one connection without locks.
final class SerialThread: @unchecked Sendable {
    // The queue and the stop flag are guarded by `mutex`; `condition` wakes the thread.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var queue: [@Sendable () -> Void] = []
    private var stopping = false

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        // The thread keeps the object alive until `stop()` ends its loop.
        BlockingWork.startThread { [self] in loop() }
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` on the thread and returns its result.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            submit { continuation.resume(with: Result { try body() }) }
        }
    }

    /// Lets the thread finish what is queued, then end.
    func stop() {
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }

    private func submit(_ work: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(mutex)
        queue.append(work)
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }

    private func loop() {
        while true {
            pthread_mutex_lock(mutex)
            while queue.isEmpty && !stopping { pthread_cond_wait(condition, mutex) }
            if queue.isEmpty && stopping {
                pthread_mutex_unlock(mutex)
                return
            }
            let batch = queue
            queue.removeAll(keepingCapacity: true)
            pthread_mutex_unlock(mutex)
            for work in batch { work() }
        }
    }
}

import Synchronization

/// Wakes whoever listens when something changed: each listener gets its
/// own stream, which holds at most one pending wake (changes that come
/// while it is busy fold into one).
public final class ChangeSignal: Sendable {
    private let listeners = Mutex<(next: UInt64, streams: [UInt64: AsyncStream<Void>.Continuation])>((0, [:]))

    public init() {}

    /// Wakes every listener.
    public func signal() {
        listeners.withLock { state in
            for continuation in state.streams.values { continuation.yield() }
        }
    }

    /// A stream of wakes, until `cancel` is called.
    public func listen() -> (wakes: AsyncStream<Void>, cancel: @Sendable () -> Void) {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let key = listeners.withLock { state in
            state.next += 1
            state.streams[state.next] = continuation
            return state.next
        }
        let cancel: @Sendable () -> Void = { [weak self] in
            let removed = self?.listeners.withLock { $0.streams.removeValue(forKey: key) }
            removed?.finish()
        }
        continuation.onTermination = { _ in cancel() }
        return (stream, cancel)
    }

    /// How many listen now.
    public var listenerCount: Int { listeners.withLock { $0.streams.count } }
}

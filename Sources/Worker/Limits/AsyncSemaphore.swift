import Synchronization

/// A FIFO-fair async counting semaphore.
///
/// - Fair: waiters are served strictly in the order they started waiting. A released permit is handed
///   straight to the oldest waiter, so a newcomer never overtakes a queue.
/// - Cancellation-aware: a waiting task that is cancelled leaves the queue at once and its `acquire()`
///   throws `CancellationError`; it never takes a permit. `acquire()` in an already-cancelled task
///   throws without taking one either.
/// - Permits are conserved: every successful `acquire()` must be matched by exactly one `release()`
///   (``withPermit(isolation:_:)`` does it for you); the count is never lost or duplicated by cancellation.
final class AsyncSemaphore: Sendable {
    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var permits: Int
        /// Oldest first. Removal from the middle only happens on cancellation; queues stay short
        /// (one episode's calls, one worker's renders), so an array is the simplest fair queue.
        var waiters: [Waiter] = []
        var nextID: UInt64 = 0
    }

    private let state: Mutex<State>
    /// The number of permits the semaphore was created with.
    let initialPermits: Int

    /// - Parameter permits: how many holders may be inside at once; 0 or more.
    init(permits: Int) {
        precondition(permits >= 0, "AsyncSemaphore needs 0 or more permits, got \(permits)")
        self.initialPermits = permits
        self.state = Mutex(State(permits: permits))
    }

    /// Permits free right now (0 while anyone is waiting).
    var availablePermits: Int { state.withLock { $0.permits } }

    /// Tasks waiting for a permit right now.
    var waiterCount: Int { state.withLock { $0.waiters.count } }

    /// Waits for a permit, in FIFO order. Throws `CancellationError` (holding no permit) if the task is
    /// or becomes cancelled before it is granted one.
    func acquire() async throws {
        try Task.checkCancellation()
        let fast: UInt64? = state.withLock { state in
            if state.waiters.isEmpty, state.permits > 0 {
                state.permits -= 1
                return nil
            }
            defer { state.nextID &+= 1 }
            return state.nextID
        }
        guard let id = fast else { return }

        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                // Checked under the lock: the cancellation handler runs only after the task's cancelled
                // flag is set, so either it finds this waiter in the queue, or we see the flag here.
                let outcome: Result<Void, any Error>? = state.withLock { state in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if state.waiters.isEmpty, state.permits > 0 {
                        state.permits -= 1
                        return .success(())
                    }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let removed: CheckedContinuation<Void, any Error>? = state.withLock { state in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index).continuation
            }
            removed?.resume(throwing: CancellationError())
        }
    }

    /// Returns a permit: hands it to the oldest waiter, or puts it back.
    func release() {
        let next: CheckedContinuation<Void, any Error>? = state.withLock { state in
            if state.waiters.isEmpty {
                state.permits += 1
                precondition(
                    state.permits <= initialPermits,
                    "AsyncSemaphore released more often than acquired (\(state.permits) > \(initialPermits))"
                )
                return nil
            }
            return state.waiters.removeFirst().continuation
        }
        next?.resume()
    }

    /// Runs `body` holding one permit, released when `body` returns or throws.
    /// Throws `CancellationError` without running `body` if cancelled while waiting.
    func withPermit<T>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> T
    ) async throws -> T {
        try await acquire()
        defer { release() }
        return try await body()
    }
}

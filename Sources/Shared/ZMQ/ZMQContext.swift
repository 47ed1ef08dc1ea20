import CZMQ
import Synchronization

/// A libzmq context: the I/O threads and the registry of sockets. One per process is usual.
///
/// Shared freely between threads and tasks: libzmq documents the context as thread safe (`zmq(7)`,
/// "Thread safety"), which is what the one `nonisolated(unsafe)` property relies on.
///
/// Lifetime: every ``ZMQSocket`` (and so every ``ZMQSocketThread``) keeps its context alive, so `deinit` runs only
/// after the last socket is closed. `deinit` calls `zmq_ctx_term`, which waits for those sockets to finish
/// lingering. That wait is finite because every socket is created with a finite `ZMQ_LINGER`.
public final class ZMQContext: Sendable {
    /// The `void *` context. Thread safe per libzmq; the pointer itself never changes.
    nonisolated(unsafe) let handle: UnsafeMutableRawPointer
    private let didShutdown = Atomic<Bool>(false)

    /// Creates a context with `ioThreads` libzmq I/O threads (`ZMQ_IO_THREADS`; one is plenty below ~1 GB/s).
    public init(ioThreads: Int = 1) throws(ZMQError) {
        let handle = try zmqCall("zmq_ctx_new") { zmq_ctx_new() }
        do {
            try zmqCall("zmq_ctx_set", detail: "ZMQ_IO_THREADS") {
                zmq_ctx_set(handle, ZMQ_IO_THREADS, Int32(clamping: ioThreads))
            }
        } catch {
            Self.terminate(handle)
            throw error
        }
        self.handle = handle
    }

    /// Starts shutting the context down (`zmq_ctx_shutdown`): every blocking or later call on its sockets fails
    /// with ``ZMQError/Code/terminated``, which makes each ``ZMQSocketThread`` close its socket and stop.
    /// Idempotent; never blocks.
    public func shutdown() {
        guard !didShutdown.exchange(true, ordering: .acquiringAndReleasing) else {
            return
        }
        // Fails only with EFAULT (not a context), which cannot happen for a live `handle`.
        _ = try? zmqCall("zmq_ctx_shutdown") { zmq_ctx_shutdown(handle) }
    }

    /// Whether ``shutdown()`` has been called.
    public var isShutdown: Bool {
        didShutdown.load(ordering: .acquiring)
    }

    deinit {
        Self.terminate(handle)
    }

    /// `zmq_ctx_term`, retrying `EINTR` (the only failure it reports for a valid context).
    private static func terminate(_ handle: UnsafeMutableRawPointer) {
        _ = try? zmqCall("zmq_ctx_term") { zmq_ctx_term(handle) }
    }
}

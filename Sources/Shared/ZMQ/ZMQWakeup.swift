import CZMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An eventfd that wakes a thread blocked in `zmq_poll` (which polls raw fds alongside sockets).
///
/// Any thread may ``signal()``; the polling thread ``drain()``s after waking. Signals coalesce: many signals before a
/// drain make one wake-up. The fd is closed when the value is destroyed, so whoever signals must keep it alive
/// (``ZMQSocketThread`` keeps it in the object both sides hold).
struct ZMQWakeup: ~Copyable, Sendable {
    let fileDescriptor: Int32

    init() throws(ZMQError) {
        fileDescriptor = try zmqCall("eventfd") { czmq_eventfd_open() }
    }

    /// Makes the fd readable. Never blocks (the fd is non-blocking; a full counter already means "wake up").
    func signal() {
        _ = try? zmqCall("write(eventfd)") { czmq_eventfd_post(fileDescriptor) }
    }

    /// Makes the fd unreadable again. Never blocks (EAGAIN just means no signal was pending).
    func drain() {
        _ = try? zmqCall("read(eventfd)") { czmq_eventfd_drain(fileDescriptor) }
    }

    deinit {
        // Not retried on EINTR: on Linux the fd is released even then.
        _ = close(fileDescriptor)
    }
}

import CZMQ

/// What to wait for on a poll item, and what `zmq_poll` reported.
public struct ZMQPollEvents: OptionSet, Sendable {
    public let rawValue: Int16

    public init(rawValue: Int16) {
        self.rawValue = rawValue
    }

    /// `ZMQ_POLLIN`: a whole message can be received (socket), or the fd is readable.
    public static let readable = ZMQPollEvents(rawValue: Int16(ZMQ_POLLIN))
    /// `ZMQ_POLLOUT`: a message can be sent without blocking, or the fd is writable.
    public static let writable = ZMQPollEvents(rawValue: Int16(ZMQ_POLLOUT))
    /// `ZMQ_POLLERR`: an error condition on a raw fd (never reported for sockets).
    public static let error = ZMQPollEvents(rawValue: Int16(ZMQ_POLLERR))
}

/// A thin `zmq_poll` over libzmq sockets and raw file descriptors (for example an eventfd used as a wake-up).
///
/// The set refers to each socket by its raw handle without owning it, so it is used on the socket's owning thread
/// only (it is not `Sendable`), and must not be polled after one of its sockets was closed: rebuild it instead.
public struct ZMQPollSet {
    private var items: [zmq_pollitem_t] = []

    public init() {}

    /// Adds `socket`, waiting for `events`. Returns the item's index for ``returnedEvents(at:)``.
    @discardableResult
    public mutating func add(_ socket: borrowing ZMQSocket, events: ZMQPollEvents = .readable) -> Int {
        items.append(zmq_pollitem_t(socket: socket.handle, fd: -1, events: events.rawValue, revents: 0))
        return items.count - 1
    }

    /// Adds a raw file descriptor, waiting for `events`. Returns the item's index for ``returnedEvents(at:)``.
    @discardableResult
    public mutating func add(fileDescriptor: Int32, events: ZMQPollEvents = .readable) -> Int {
        items.append(zmq_pollitem_t(socket: nil, fd: fileDescriptor, events: events.rawValue, revents: 0))
        return items.count - 1
    }

    /// The number of items.
    public var count: Int { items.count }

    /// Removes every item.
    public mutating func removeAll() {
        items.removeAll(keepingCapacity: true)
    }

    /// What the last ``poll(timeout:)`` reported for the item at `index`.
    public func returnedEvents(at index: Int) -> ZMQPollEvents {
        ZMQPollEvents(rawValue: items[index].revents)
    }

    /// Waits until at least one item is ready or `timeout` has passed (`nil`: no limit; `.zero`: just look).
    /// Returns the number of ready items (0 on timeout); see ``returnedEvents(at:)`` for which.
    ///
    /// The timeout is passed to `zmq_poll` in milliseconds, rounded up. A signal (`EINTR`) restarts the wait with
    /// what is left of the timeout. After the context shut down this throws ``ZMQError/Code/terminated``.
    @discardableResult
    public mutating func poll(timeout: Duration?) throws(ZMQError) -> Int {
        let clock = ContinuousClock()
        let deadline = timeout.map { clock.now.advanced(by: $0) }
        let itemCount = Int32(items.count)
        let ready = try zmqCall("zmq_poll") {
            let milliseconds = deadline.map { clock.now.duration(to: $0).zmqPollMilliseconds } ?? -1
            return items.withUnsafeMutableBufferPointer { buffer in
                zmq_poll(buffer.baseAddress, itemCount, milliseconds)
            }
        }
        return Int(ready)
    }
}

@available(*, unavailable, message: "A ZMQPollSet holds raw socket handles of one thread")
extension ZMQPollSet: Sendable {}

import CZMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The libzmq socket types this project uses.
public enum ZMQSocketType: Sendable, Equatable, CustomStringConvertible {
    case router, dealer, pair, push, pull, req, rep

    var rawValue: Int32 {
        switch self {
        case .router: ZMQ_ROUTER
        case .dealer: ZMQ_DEALER
        case .pair: ZMQ_PAIR
        case .push: ZMQ_PUSH
        case .pull: ZMQ_PULL
        case .req: ZMQ_REQ
        case .rep: ZMQ_REP
        }
    }

    public var description: String {
        switch self {
        case .router: "ROUTER"
        case .dealer: "DEALER"
        case .pair: "PAIR"
        case .push: "PUSH"
        case .pull: "PULL"
        case .req: "REQ"
        case .rep: "REP"
        }
    }
}

/// One libzmq socket.
///
/// **Ownership: exactly one owner.** libzmq sockets are not thread safe, so the socket is a noncopyable value: it
/// cannot be shared, only moved, and it is deliberately not `Sendable`, so it cannot cross to another task or thread
/// once it exists. Create it on the thread that will use it; in this project that is the dedicated thread of a
/// ``ZMQSocketThread``, whose `setup` closure creates, configures and returns it.
///
/// **Closing.** ``close()`` is the normal end of a socket. If a socket is dropped without it (say, an error is
/// thrown between creation and hand-over), `deinit` closes it all the same. Either way libzmq keeps unsent
/// messages for at most the socket's `ZMQ_LINGER` (set at creation, default 0 ms), so closing never hangs the
/// context's termination.
///
/// **Frames** are `[UInt8]` copied in and out of `zmq_msg_t`; a message is `[[UInt8]]`, one array per frame.
/// Multipart sends are atomic (all frames or none), receives are never truncated.
public struct ZMQSocket: ~Copyable {
    /// The libzmq `void *` socket. Only the owning thread may use it.
    let handle: UnsafeMutableRawPointer
    /// The context that made the socket, kept alive so `zmq_ctx_term` cannot run while the socket is open.
    public let context: ZMQContext
    public let type: ZMQSocketType

    /// Creates a socket and sets its `ZMQ_LINGER` to `linger` (default: discard unsent messages on close).
    public init(context: ZMQContext, type: ZMQSocketType, linger: Duration = .zero) throws(ZMQError) {
        let handle = try zmqCall("zmq_socket") { zmq_socket(context.handle, type.rawValue) }
        do {
            try Self.setOption(handle, ZMQ_LINGER, linger.zmqOptionMilliseconds, name: "ZMQ_LINGER")
        } catch {
            Self.closeHandle(handle)
            throw error
        }
        self.handle = handle
        self.context = context
        self.type = type
    }

    /// Closes the socket now. Unsent messages linger for at most `ZMQ_LINGER`, in libzmq's I/O thread.
    public consuming func close() {
        // Ending the value's life runs `deinit`, which calls `zmq_close`. (`discard self` would need
        // trivially destroyed stored properties, and `context` is a class reference.)
        _ = consume self
    }

    deinit {
        // Reached through `close()`, or as the fallback for a socket dropped without it. The context reference is
        // released after this.
        Self.closeHandle(handle)
    }

    /// `zmq_close`. It fails only with ENOTSOCK, which a live handle cannot be.
    private static func closeHandle(_ handle: UnsafeMutableRawPointer) {
        _ = try? zmqCall("zmq_close") { zmq_close(handle) }
    }

    // MARK: - Endpoints

    /// Binds to `endpoint` and returns the endpoint actually bound (`ZMQ_LAST_ENDPOINT`): binding
    /// `"tcp://127.0.0.1:*"` returns `"tcp://127.0.0.1:<port>"` with the port the kernel chose.
    @discardableResult
    public func bind(_ endpoint: String) throws(ZMQError) -> String {
        try zmqCall("zmq_bind", detail: endpoint) { zmq_bind(handle, endpoint) }
        return try lastEndpoint()
    }

    /// Connects to `endpoint`. libzmq connects (and reconnects) in the background; this only fails for an endpoint
    /// it cannot use at all.
    public func connect(_ endpoint: String) throws(ZMQError) {
        try zmqCall("zmq_connect", detail: endpoint) { zmq_connect(handle, endpoint) }
    }

    /// `ZMQ_LAST_ENDPOINT`: the endpoint of the last bind or connect, or `""` if there was none.
    public func lastEndpoint() throws(ZMQError) -> String {
        var buffer = [CChar](repeating: 0, count: 1024)
        var size = buffer.count
        try zmqCall("zmq_getsockopt", detail: "ZMQ_LAST_ENDPOINT") {
            buffer.withUnsafeMutableBytes { bytes in
                zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, bytes.baseAddress, &size)
            }
        }
        let text = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: text, as: UTF8.self)
    }

    // MARK: - Messages

    /// Sends one message of `frames.count` frames, atomically: either all frames are queued or none is.
    ///
    /// With `dontWait` (the default) a socket that cannot queue the message now throws
    /// ``ZMQError/Code/wouldBlock`` instead of blocking. For a ROUTER, `frames[0]` is the peer's routing id; with
    /// `ZMQ_ROUTER_MANDATORY` an unknown id throws ``ZMQError/Code/hostUnreachable``.
    public func send(_ frames: [[UInt8]], dontWait: Bool = true) throws(ZMQError) {
        guard !frames.isEmpty else {
            throw ZMQError(code: .other, errno: EINVAL, function: "zmq_msg_send", detail: "a message needs a frame")
        }
        // A zmq_msg_t must stay at one address while libzmq uses it, so it lives in its own allocation.
        let message = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
        defer { message.deallocate() }
        let waitFlag = dontWait ? ZMQ_DONTWAIT : 0
        let last = frames.count - 1
        for (index, frame) in frames.enumerated() {
            try zmqCall("zmq_msg_init_size") { zmq_msg_init_size(message, frame.count) }
            frame.withUnsafeBytes { source in
                if let base = source.baseAddress, !source.isEmpty {
                    zmq_msg_data(message).copyMemory(from: base, byteCount: source.count)
                }
            }
            let flags = index < last ? waitFlag | ZMQ_SNDMORE : waitFlag
            do {
                // On success libzmq takes the content and leaves `message` empty; there is nothing to close.
                try zmqCall("zmq_msg_send") { zmq_msg_send(message, handle, flags) }
            } catch {
                Self.closeMessage(message)
                throw error
            }
        }
    }

    /// Receives one whole message (every frame, via `zmq_msg_recv` and `ZMQ_RCVMORE`; nothing is truncated).
    ///
    /// Returns `nil` when `dontWait` is set (the default) and no message is waiting. For a ROUTER, `frames[0]` is the
    /// sender's routing id.
    public func receive(dontWait: Bool = true) throws(ZMQError) -> [[UInt8]]? {
        let message = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
        defer { message.deallocate() }
        // Once the first frame is here, libzmq guarantees the rest are too, so DONTWAIT never bites mid-message.
        let flags = dontWait ? ZMQ_DONTWAIT : 0
        var frames: [[UInt8]] = []
        var more = true
        while more {
            zmq_msg_init(message)  // Cannot fail: it only marks the message empty.
            defer { Self.closeMessage(message) }
            do {
                try zmqCall("zmq_msg_recv") { zmq_msg_recv(message, handle, flags) }
            } catch {
                if error.code == .wouldBlock && dontWait && frames.isEmpty {
                    return nil
                }
                throw error
            }
            let bytes = UnsafeRawBufferPointer(start: zmq_msg_data(message), count: zmq_msg_size(message))
            frames.append([UInt8](bytes))
            more = zmq_msg_more(message) != 0
        }
        return frames
    }
}

extension ZMQSocket {
    /// `zmq_msg_close`, releasing the message's content. It fails only with EFAULT (not a message).
    fileprivate static func closeMessage(_ message: UnsafeMutablePointer<zmq_msg_t>) {
        _ = try? zmqCall("zmq_msg_close") { zmq_msg_close(message) }
    }
}

@available(*, unavailable, message: "A ZMQSocket belongs to one thread; use a ZMQSocketThread to reach it from tasks")
extension ZMQSocket: Sendable {}

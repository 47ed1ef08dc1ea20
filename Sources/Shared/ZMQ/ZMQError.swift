import CZMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed libzmq (or eventfd) call: what went wrong in a form callers can switch on, plus the raw
/// `errno` and the name of the C function that failed.
///
/// The ``Code`` names only the cases callers act on; everything else is ``Code/other`` and is told apart by
/// ``errno``. New codes can be added without breaking callers that match on the ones they know.
public struct ZMQError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The failure classes callers handle differently.
    public enum Code: Sendable, Equatable {
        /// `EAGAIN`: a non-blocking call could not complete now (nothing to receive, or the send queue is at its
        /// high-water mark, or `ZMQ_IMMEDIATE` with no peer).
        case wouldBlock
        /// `EHOSTUNREACH`: a ROUTER with `ZMQ_ROUTER_MANDATORY` was asked to send to a routing id that is not
        /// connected (unknown or gone peer).
        case hostUnreachable
        /// `ETERM`: the context was shut down. The socket must be closed; nothing else will work on it.
        case terminated
        /// `zmq_bind`/`zmq_connect` rejected the endpoint itself (malformed, unknown transport, transport not
        /// compatible with the socket type, or no such interface).
        case invalidEndpoint
        /// Anything else; see ``ZMQError/errno``.
        case other
    }

    public var code: Code
    /// The `errno` value libzmq reported (libzmq's own codes such as `ETERM` are above 156384712).
    public var errno: Int32
    /// The C function that failed, e.g. `"zmq_msg_send"`.
    public var function: String
    /// What the call was about, when that helps (the endpoint of a bind, the option of a setsockopt).
    public var detail: String?

    public init(code: Code, errno: Int32, function: String, detail: String? = nil) {
        self.code = code
        self.errno = errno
        self.function = function
        self.detail = detail
    }

    /// Classifies `errno` as reported by `function`.
    init(errno: Int32, function: String, detail: String? = nil) {
        self.init(
            code: Self.classify(errno: errno, function: function),
            errno: errno,
            function: function,
            detail: detail
        )
    }

    /// e.g. `zmq_bind failed: Address already in use (errno 98) [tcp://127.0.0.1:5555]`.
    public var description: String {
        var text = "\(function) failed: \(Self.message(for: errno)) (errno \(errno))"
        if let detail {
            text += " [\(detail)]"
        }
        return text
    }

    /// `zmq_strerror` knows libzmq's own codes as well as the system ones.
    static func message(for errno: Int32) -> String {
        guard let text = zmq_strerror(errno) else {
            return "unknown error"
        }
        return String(cString: text)
    }

    private static func classify(errno: Int32, function: String) -> Code {
        switch errno {
        case EAGAIN:
            return .wouldBlock
        case EHOSTUNREACH:
            return .hostUnreachable
        case ETERM:
            return .terminated
        case EINVAL, EPROTONOSUPPORT, ENOCOMPATPROTO, ENODEV:
            return function == "zmq_bind" || function == "zmq_connect" ? .invalidEndpoint : .other
        default:
            return .other
        }
    }
}

extension ZMQError {
    /// The error a ``ZMQSocketThread`` reports for work it can no longer do because it was closed or its
    /// context was shut down.
    static func threadStopped(_ function: String) -> ZMQError {
        ZMQError(code: .terminated, errno: ETERM, function: function, detail: "socket thread stopped")
    }

    /// The error a ``ZMQSocketThread`` reports for a send while it has no socket (the last setup failed).
    static func noSocket(_ function: String) -> ZMQError {
        ZMQError(code: .other, errno: ENOTSOCK, function: function, detail: "no socket: the last setup failed")
    }
}

/// Runs one C call the way every libzmq (and eventfd) call in this module is run: a result of -1 means failure,
/// `EINTR` (a signal arrived) is retried, and any other errno becomes a ``ZMQError`` naming `function`.
///
/// libzmq's `zmq_errno()` is the calling thread's `errno`, so the same helper serves the plain POSIX calls.
/// `body` may run several times, so it must be safe to repeat (it is for every call that fails with `EINTR`).
@inline(__always)
@discardableResult
func zmqCall<Result: FixedWidthInteger & SignedInteger>(
    _ function: String,
    detail: @autoclosure () -> String? = nil,
    _ body: () -> Result
) throws(ZMQError) -> Result {
    while true {
        let result = body()
        if result != -1 {
            return result
        }
        let code = zmq_errno()
        if code == EINTR {
            continue
        }
        throw ZMQError(errno: code, function: function, detail: detail())
    }
}

/// ``zmqCall(_:detail:_:)`` for the calls that return a pointer and signal failure with `NULL`.
@inline(__always)
func zmqCall(
    _ function: String,
    _ body: () -> UnsafeMutableRawPointer?
) throws(ZMQError) -> UnsafeMutableRawPointer {
    while true {
        if let pointer = body() {
            return pointer
        }
        let code = zmq_errno()
        if code == EINTR {
            continue
        }
        throw ZMQError(errno: code, function: function)
    }
}

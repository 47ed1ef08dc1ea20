/// DISCONNECT (both directions): the sender ends the session. A worker that receives it drops its
/// session, opens a new socket and sends HELLO again (unless the reason is `shutdown` and it was asked to exit).
public struct Disconnect: Codable, Sendable, Equatable {
    public var reason: Reason
    /// Human-readable detail for logs.
    public var detail: String

    public enum Reason: String, Codable, Sendable {
        /// The sender is shutting down.
        case shutdown
        /// The receiver's session token is not known (coordinator restarted, or the worker was declared dead).
        case unknownSession = "unknown_session"
        /// The receiver broke the protocol: an unsupported major version, or a HELLO that failed to decode.
        case protocolError = "protocol_error"
        /// The batch is over; a one-shot coordinator is about to exit.
        case batchComplete = "batch_complete"
    }

    public init(reason: Reason, detail: String = "") {
        self.reason = reason
        self.detail = detail
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        reason = try c.decode(Reason.self, forKey: .reason)
        detail = try c.decodeIfPresent(String.self, forKey: .detail) ?? ""
    }
}

/// Why an incoming message was rejected. The receiver counts it by `code`, logs it and drops the
/// message; it never crashes and never changes state because of it.
public struct DecodeError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        /// Fewer than 4 frames, or more than `WireProtocol.maxFrames`.
        case frameCount = "frame_count"
        /// Frame 0 is not a Reelfarm protocol identifier.
        case notReelfarm = "not_reelfarm"
        /// Frame 0 names another major version of the protocol.
        case unsupportedVersion = "unsupported_version"
        /// Frame 1 is not one byte, or names a kind this build does not know.
        case unknownKind = "unknown_kind"
        /// A frame or the whole message is larger than the protocol allows.
        case oversized
        /// Frame 2 is not a valid session token.
        case badSession = "bad_session"
        /// Frame 3 is not a JSON object of the kind's shape.
        case malformedBody = "malformed_body"
        /// The body parsed, but a field is out of its allowed range.
        case invalidField = "invalid_field"
        /// Blob frames (frame 4 and on) on a kind that carries none.
        case unexpectedBlobs = "unexpected_blobs"
    }

    public var code: Code
    public var detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { "\(code.rawValue): \(detail)" }
}

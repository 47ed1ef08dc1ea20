/// WELCOME (coordinator → worker): the answer to HELLO. Carries the session token that every
/// later message in both directions repeats in frame 2, and the timing both sides use.
public struct Welcome: Codable, Sendable, Equatable {
    /// Session token (also in frame 2). A coordinator restart or a dropped registration makes it unknown.
    public var session: String
    /// Heartbeat interval both sides use, in milliseconds.
    public var heartbeatIntervalMs: Int
    /// Missed intervals after which a peer counts as dead.
    public var liveness: Int
    /// Largest message the coordinator accepts, in bytes.
    public var maxMessageBytes: Int
    /// Coordinator software version.
    public var softwareVersion: String

    public init(session: String, heartbeatIntervalMs: Int, liveness: Int, maxMessageBytes: Int, softwareVersion: String) {
        self.session = session
        self.heartbeatIntervalMs = heartbeatIntervalMs
        self.liveness = liveness
        self.maxMessageBytes = maxMessageBytes
        self.softwareVersion = softwareVersion
    }
}

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
    /// Highest protocol minor version the coordinator speaks; a worker sends no kind of a later minor.
    public var protocolMinor: Int

    public init(
        session: String,
        heartbeatIntervalMs: Int,
        liveness: Int,
        maxMessageBytes: Int,
        softwareVersion: String,
        protocolMinor: Int = WireProtocol.minorVersion
    ) {
        self.session = session
        self.heartbeatIntervalMs = heartbeatIntervalMs
        self.liveness = liveness
        self.maxMessageBytes = maxMessageBytes
        self.softwareVersion = softwareVersion
        self.protocolMinor = protocolMinor
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        session = try c.decode(String.self, forKey: .session)
        heartbeatIntervalMs = try c.decode(Int.self, forKey: .heartbeatIntervalMs)
        liveness = try c.decode(Int.self, forKey: .liveness)
        maxMessageBytes = try c.decode(Int.self, forKey: .maxMessageBytes)
        softwareVersion = try c.decode(String.self, forKey: .softwareVersion)
        protocolMinor = try c.decodeIfPresent(Int.self, forKey: .protocolMinor) ?? 0
    }
}

/// HEARTBEAT (both directions): "I am alive". Sent when nothing else was sent for one interval.
/// Any message counts as a heartbeat for the receiver's liveness tracking.
public struct Heartbeat: Codable, Sendable, Equatable {
    /// Worker → coordinator: the attempts running on the worker. Empty from the coordinator.
    public var running: [JobRef]
    /// Minor 1, worker → coordinator: the worker is shutting down gracefully; send it no more JOBs. It
    /// finishes what it runs (or hands it back), then says goodbye. Written only when true.
    public var draining: Bool

    public init(running: [JobRef] = [], draining: Bool = false) {
        self.running = running
        self.draining = draining
    }

    enum CodingKeys: String, CodingKey {
        case running, draining
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        running = try c.decodeIfPresent([JobRef].self, forKey: .running) ?? []
        draining = try c.decodeIfPresent(Bool.self, forKey: .draining) ?? false
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(running, forKey: .running)
        if draining { try c.encode(draining, forKey: .draining) }
    }
}

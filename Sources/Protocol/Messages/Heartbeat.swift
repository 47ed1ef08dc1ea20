/// HEARTBEAT (both directions): "I am alive". Sent when nothing else was sent for one interval.
/// Any message counts as a heartbeat for the receiver's liveness tracking.
public struct Heartbeat: Codable, Sendable, Equatable {
    /// Worker → coordinator: the attempts running on the worker. Empty from the coordinator.
    public var running: [JobRef]

    public init(running: [JobRef] = []) {
        self.running = running
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        running = try c.decodeIfPresent([JobRef].self, forKey: .running) ?? []
    }
}

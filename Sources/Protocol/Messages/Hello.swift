/// HELLO (worker → coordinator): the first message on every new connection.
public struct Hello: Codable, Sendable, Equatable {
    /// Stable, human-chosen worker name (defaults to `hostname-pid`). 1…128 bytes.
    public var workerId: String
    /// Unique per worker process start (a UUID); tells a restarted worker from a reconnecting one.
    public var instance: String
    /// Host name of the worker's machine.
    public var host: String
    /// Process id of the worker on its host.
    public var pid: Int
    /// What the worker can run at once.
    public var capacity: Capacity
    /// Worker software version, e.g. `0.1.0`.
    public var softwareVersion: String
    /// Highest protocol minor version the worker speaks.
    public var protocolMinor: Int
    /// Episodes still running on this worker from before a reconnect. Empty on a fresh start.
    public var running: [JobRef]

    public init(
        workerId: String,
        instance: String,
        host: String,
        pid: Int,
        capacity: Capacity,
        softwareVersion: String,
        protocolMinor: Int = WireProtocol.minorVersion,
        running: [JobRef] = []
    ) {
        self.workerId = workerId
        self.instance = instance
        self.host = host
        self.pid = pid
        self.capacity = capacity
        self.softwareVersion = softwareVersion
        self.protocolMinor = protocolMinor
        self.running = running
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        workerId = try c.decode(String.self, forKey: .workerId)
        instance = try c.decode(String.self, forKey: .instance)
        host = try c.decode(String.self, forKey: .host)
        pid = try c.decode(Int.self, forKey: .pid)
        capacity = try c.decode(Capacity.self, forKey: .capacity)
        softwareVersion = try c.decode(String.self, forKey: .softwareVersion)
        protocolMinor = try c.decodeIfPresent(Int.self, forKey: .protocolMinor) ?? 0
        running = try c.decodeIfPresent([JobRef].self, forKey: .running) ?? []
    }
}

/// A worker's announced parallelism: the coordinator never has more than `episodes` jobs in flight on it.
public struct Capacity: Codable, Sendable, Equatable {
    /// Episodes the worker runs at once (MAX_PARALLEL_EPISODES). This is the worker's dispatch credit.
    public var episodes: Int
    /// External API calls one episode makes at once (MAX_PARALLEL_API_CALLS).
    public var apiCalls: Int

    public init(episodes: Int, apiCalls: Int) {
        self.episodes = episodes
        self.apiCalls = apiCalls
    }
}

/// Names one attempt of one episode.
public struct JobRef: Codable, Sendable, Hashable {
    public var episodeId: String
    public var attempt: Int

    public init(episodeId: String, attempt: Int) {
        self.episodeId = episodeId
        self.attempt = attempt
    }
}

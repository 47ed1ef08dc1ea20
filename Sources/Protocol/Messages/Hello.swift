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
    /// Minor 1: per budgeted provider, how many milliseconds ago each call this worker started in the last
    /// window began. A restarted coordinator seeds its ledger with them, so it grants no burst on top of
    /// calls its predecessor allowed. Empty on a fresh start.
    public var recentCalls: [String: [Int]]

    public init(
        workerId: String,
        instance: String,
        host: String,
        pid: Int,
        capacity: Capacity,
        softwareVersion: String,
        protocolMinor: Int = WireProtocol.minorVersion,
        running: [JobRef] = [],
        recentCalls: [String: [Int]] = [:]
    ) {
        self.workerId = workerId
        self.instance = instance
        self.host = host
        self.pid = pid
        self.capacity = capacity
        self.softwareVersion = softwareVersion
        self.protocolMinor = protocolMinor
        self.running = running
        self.recentCalls = recentCalls
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
        let recent = try c.decodeIfPresent([RecentCalls].self, forKey: .recentCalls) ?? []
        recentCalls = Dictionary(recent.map { ($0.provider, $0.agesMs) }, uniquingKeysWith: +)
    }

    enum CodingKeys: String, CodingKey {
        case workerId, instance, host, pid, capacity, softwareVersion, protocolMinor, running, recentCalls
    }

    /// `recent_calls` (minor 1) is written only when not empty.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(workerId, forKey: .workerId)
        try c.encode(instance, forKey: .instance)
        try c.encode(host, forKey: .host)
        try c.encode(pid, forKey: .pid)
        try c.encode(capacity, forKey: .capacity)
        try c.encode(softwareVersion, forKey: .softwareVersion)
        try c.encode(protocolMinor, forKey: .protocolMinor)
        try c.encode(running, forKey: .running)
        if !recentCalls.isEmpty {
            let list = recentCalls.keys.sorted().map { RecentCalls(provider: $0, agesMs: recentCalls[$0] ?? []) }
            try c.encode(list, forKey: .recentCalls)
        }
    }
}

/// One entry of HELLO's `recent_calls`: the ages of the calls a worker started recently on one provider.
struct RecentCalls: Codable, Sendable, Equatable {
    var provider: String
    var agesMs: [Int]
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

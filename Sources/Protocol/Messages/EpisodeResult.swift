/// RESULT (worker → coordinator): one attempt of one episode ended.
public struct EpisodeResult: Codable, Sendable, Equatable {
    public var episodeId: String
    public var attempt: Int
    public var status: Status
    /// Why the attempt failed (status `failed`), e.g. "script: simulated failure".
    public var error: String?
    /// Wall time of the attempt on the worker, in milliseconds.
    public var durationMs: Int
    /// Voice or image calls that failed and were replaced by a placeholder.
    public var placeholders: [Placeholder]
    /// External API calls the attempt made (including failed ones).
    public var apiCalls: Int
    /// Start and end events of the attempt and its calls, ordered by a per-worker-process sequence number.
    public var trace: [TraceEvent]
    /// Minor 2: the files a successful attempt made (its offer, PROTOCOL §17). Empty for a failed attempt
    /// and for workers that keep no files (the simulation).
    public var artifacts: [ArtifactFile]
    /// Minor 2: how ``artifacts`` reach the coordinator; `nil` (written only with artifacts) means transfer.
    public var delivery: ArtifactDelivery?
    /// Minor 4: the attempt failed because its spend allowance (JOB `spend_allowance_micros`) could not cover
    /// its script call; the coordinator does not retry it. Written only when true.
    public var spendCapped: Bool

    public enum Status: String, Codable, Sendable {
        case succeeded, failed
    }

    public init(
        episodeId: String,
        attempt: Int,
        status: Status,
        error: String? = nil,
        durationMs: Int,
        placeholders: [Placeholder] = [],
        apiCalls: Int = 0,
        trace: [TraceEvent] = [],
        artifacts: [ArtifactFile] = [],
        delivery: ArtifactDelivery? = nil,
        spendCapped: Bool = false
    ) {
        self.episodeId = episodeId
        self.attempt = attempt
        self.status = status
        self.error = error
        self.durationMs = durationMs
        self.placeholders = placeholders
        self.apiCalls = apiCalls
        self.trace = trace
        self.artifacts = artifacts
        self.delivery = delivery
        self.spendCapped = spendCapped
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        episodeId = try c.decode(String.self, forKey: .episodeId)
        attempt = try c.decode(Int.self, forKey: .attempt)
        status = try c.decode(Status.self, forKey: .status)
        error = try c.decodeIfPresent(String.self, forKey: .error)
        durationMs = try c.decode(Int.self, forKey: .durationMs)
        placeholders = try c.decodeIfPresent([Placeholder].self, forKey: .placeholders) ?? []
        apiCalls = try c.decodeIfPresent(Int.self, forKey: .apiCalls) ?? 0
        trace = try c.decodeIfPresent([TraceEvent].self, forKey: .trace) ?? []
        artifacts = try c.decodeIfPresent([ArtifactFile].self, forKey: .artifacts) ?? []
        delivery = try c.decodeIfPresent(ArtifactDelivery.self, forKey: .delivery)
        spendCapped = try c.decodeIfPresent(Bool.self, forKey: .spendCapped) ?? false
    }

    enum CodingKeys: String, CodingKey {
        case episodeId, attempt, status, error, durationMs, placeholders, apiCalls, trace, artifacts, delivery
        case spendCapped
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(episodeId, forKey: .episodeId)
        try c.encode(attempt, forKey: .attempt)
        try c.encode(status, forKey: .status)
        try c.encodeIfPresent(error, forKey: .error)
        try c.encode(durationMs, forKey: .durationMs)
        try c.encode(placeholders, forKey: .placeholders)
        try c.encode(apiCalls, forKey: .apiCalls)
        try c.encode(trace, forKey: .trace)
        // Written only when set, so a RESULT without files is byte for byte what minor 1 sent.
        if !artifacts.isEmpty { try c.encode(artifacts, forKey: .artifacts) }
        try c.encodeIfPresent(delivery, forKey: .delivery)
        if spendCapped { try c.encode(true, forKey: .spendCapped) }
    }

    /// How the files travel: ``delivery``, transfer when unset.
    public var effectiveDelivery: ArtifactDelivery { delivery ?? .transfer }

    public var ref: JobRef { JobRef(episodeId: episodeId, attempt: attempt) }
}

/// A voice clip or image that failed and was replaced, recorded so the user knows what to redo.
public struct Placeholder: Codable, Sendable, Equatable {
    public var stage: Stage
    /// The item within the stage, e.g. `line_3` or `scene_2`.
    public var item: String
    public var reason: String

    public init(stage: Stage, item: String, reason: String) {
        self.stage = stage
        self.item = item
        self.reason = reason
    }
}

/// One start or end event. `seq` increases strictly within one worker process (`Hello.instance`), so
/// events can be replayed in order to count what was in flight without trusting wall clocks.
public struct TraceEvent: Codable, Sendable, Equatable {
    public var seq: UInt64
    public var event: Kind
    /// What started or ended: `episode`, `render`, or a call such as `tts:line_2`.
    public var name: String
    /// Minor 4, `call_end` only: what the call cost in micro-dollars (US$ × 10⁶, 0…10¹²) at the worker's
    /// price table; absent when the call got no billed answer or its model has no price.
    public var costMicros: Int?
    /// Minor 5, `call_end` only: present when the call was answered from the coordinator's asset store
    /// (§18) instead of the provider; what the answers would have cost, in micro-dollars (0 when their
    /// model has no price). Such a call's `cost_micros` is 0.
    public var savedMicros: Int?

    /// The largest cost a trace event may carry (a million dollars).
    public static let maxCostMicros = 1_000_000_000_000

    public enum Kind: String, Codable, Sendable {
        case episodeStart = "episode_start"
        case episodeEnd = "episode_end"
        case callStart = "call_start"
        case callEnd = "call_end"
        case renderStart = "render_start"
        case renderEnd = "render_end"
    }

    public init(seq: UInt64, event: Kind, name: String, costMicros: Int? = nil, savedMicros: Int? = nil) {
        self.seq = seq
        self.event = event
        self.name = name
        self.costMicros = costMicros
        self.savedMicros = savedMicros
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        seq = try c.decode(UInt64.self, forKey: .seq)
        event = try c.decode(Kind.self, forKey: .event)
        name = try c.decode(String.self, forKey: .name)
        costMicros = try c.decodeIfPresent(Int.self, forKey: .costMicros)
        savedMicros = try c.decodeIfPresent(Int.self, forKey: .savedMicros)
    }

    enum CodingKeys: String, CodingKey {
        case seq, event, name, costMicros, savedMicros
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(event, forKey: .event)
        try c.encode(name, forKey: .name)
        try c.encode(seq, forKey: .seq)
        try c.encodeIfPresent(costMicros, forKey: .costMicros)
        try c.encodeIfPresent(savedMicros, forKey: .savedMicros)
    }
}

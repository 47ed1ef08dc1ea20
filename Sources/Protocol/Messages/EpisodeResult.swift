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
        trace: [TraceEvent] = []
    ) {
        self.episodeId = episodeId
        self.attempt = attempt
        self.status = status
        self.error = error
        self.durationMs = durationMs
        self.placeholders = placeholders
        self.apiCalls = apiCalls
        self.trace = trace
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
    }

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

    public enum Kind: String, Codable, Sendable {
        case episodeStart = "episode_start"
        case episodeEnd = "episode_end"
        case callStart = "call_start"
        case callEnd = "call_end"
        case renderStart = "render_start"
        case renderEnd = "render_end"
    }

    public init(seq: UInt64, event: Kind, name: String) {
        self.seq = seq
        self.event = event
        self.name = name
    }
}

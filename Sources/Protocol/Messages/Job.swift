/// JOB (coordinator → worker): run one attempt of one episode. Sent only while the worker has credit
/// (fewer jobs in flight than its `capacity.episodes`).
public struct Job: Codable, Sendable, Equatable {
    public var batchId: String
    public var episodeId: String
    /// 1 for the first attempt; a retry or a re-dispatch after a worker death gets the next number.
    public var attempt: Int
    public var spec: EpisodeSpec
    /// Minor 4: the most this attempt's paid calls may cost together, in micro-dollars (US$ × 10⁶), leased
    /// from the batch's spend cap (`--max-spend`). The worker makes no call whose expected cost would take
    /// the attempt past it. `nil` (absent): no cap.
    public var spendAllowanceMicros: Int?

    public init(batchId: String, episodeId: String, attempt: Int, spec: EpisodeSpec, spendAllowanceMicros: Int? = nil) {
        self.batchId = batchId
        self.episodeId = episodeId
        self.attempt = attempt
        self.spec = spec
        self.spendAllowanceMicros = spendAllowanceMicros
    }

    public var ref: JobRef { JobRef(episodeId: episodeId, attempt: attempt) }
}

/// What to make: the user's episode spec, as in a batch file.
public struct EpisodeSpec: Codable, Sendable, Equatable {
    /// The episode's subject, e.g. "the history of the lighthouse". 1…4096 bytes.
    public var topic: String
    /// Episode id; the coordinator fills in `episode_N` when the batch file leaves it out.
    public var id: String?
    /// Character names; the script writer invents them when absent.
    public var characters: [String]?
    /// Number of scenes (1…50); default 4.
    public var scenes: Int?
    /// Free-form visual/tone style, e.g. "noir" or "pastel documentary".
    public var style: String?

    public init(topic: String, id: String? = nil, characters: [String]? = nil, scenes: Int? = nil, style: String? = nil)
    {
        self.topic = topic
        self.id = id
        self.characters = characters
        self.scenes = scenes
        self.style = style
    }

    public static let defaultScenes = 4
    public static let maxScenes = 50
    public static let maxCharacters = 12
}

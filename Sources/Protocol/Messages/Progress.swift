/// PROGRESS (worker → coordinator): a pipeline stage of an episode started or finished.
public struct Progress: Codable, Sendable, Equatable {
    public var episodeId: String
    public var attempt: Int
    public var stage: Stage
    public var state: StageState
    /// Calls of the stage that succeeded and in all (0 for stages that are not API batches).
    public var succeeded: Int
    public var total: Int

    public init(episodeId: String, attempt: Int, stage: Stage, state: StageState, succeeded: Int = 0, total: Int = 0) {
        self.episodeId = episodeId
        self.attempt = attempt
        self.stage = stage
        self.state = state
        self.succeeded = succeeded
        self.total = total
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        episodeId = try c.decode(String.self, forKey: .episodeId)
        attempt = try c.decode(Int.self, forKey: .attempt)
        stage = try c.decode(Stage.self, forKey: .stage)
        state = try c.decode(StageState.self, forKey: .state)
        succeeded = try c.decodeIfPresent(Int.self, forKey: .succeeded) ?? 0
        total = try c.decodeIfPresent(Int.self, forKey: .total) ?? 0
    }
}

/// The stages of the episode pipeline, in order: script, then voices/scenes/broll side by side, then render.
public enum Stage: String, Codable, Sendable, CaseIterable {
    case script, voices, scenes, broll, render
}

public enum StageState: String, Codable, Sendable {
    case started, finished, failed
}

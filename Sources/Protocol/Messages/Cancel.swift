/// CANCEL (coordinator → worker): stop an attempt the coordinator no longer wants (it finished elsewhere,
/// or the batch was aborted). The worker answers with nothing; the attempt's RESULT, if any, is ignored.
public struct Cancel: Codable, Sendable, Equatable {
    public var episodeId: String
    public var attempt: Int

    public init(episodeId: String, attempt: Int) {
        self.episodeId = episodeId
        self.attempt = attempt
    }
}

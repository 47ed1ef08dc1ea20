/// Worker-wide limits shared by all episodes of one worker process.
///
/// Build it once at start-up and hand the same value to every ``EpisodePipeline``: the semaphores are
/// reference types, so copies share their permits.
struct WorkerLimits: Sendable {
    /// `MAX_PARALLEL_API_CALLS`: at most this many external calls of ONE episode are in flight at once.
    /// The script call and the voice, scene and B-roll calls all count; the three parallel groups share
    /// one limiter per episode attempt. 1 makes an episode's calls strictly sequential. The default is 5.
    var apiCallsPerEpisode: Int
    /// Render concurrency of the whole worker (ffmpeg wants the cores). The default is 1.
    var renders: AsyncSemaphore
    /// Optional cap on external API calls across all episodes of the worker; `nil` (the default) = none.
    /// Acquired after the episode's own permit, so an episode never holds a worker-wide permit while it
    /// waits for one of its own.
    var workerAPICalls: AsyncSemaphore?

    static let defaultAPICallsPerEpisode = 5
    static let defaultRenders = 1

    init(apiCallsPerEpisode: Int, renders: AsyncSemaphore, workerAPICalls: AsyncSemaphore? = nil) {
        precondition(apiCallsPerEpisode >= 1, "apiCallsPerEpisode must be at least 1, got \(apiCallsPerEpisode)")
        self.apiCallsPerEpisode = apiCallsPerEpisode
        self.renders = renders
        self.workerAPICalls = workerAPICalls
    }

    /// Limits from plain numbers, e.g. straight from the worker's configuration.
    /// - Parameters:
    ///   - apiCallsPerEpisode: 1 or more (`MAX_PARALLEL_API_CALLS`).
    ///   - renders: concurrent renders of the worker, 1 or more.
    ///   - workerAPICalls: cap on API calls across the worker's episodes, 1 or more; `nil` for none.
    init(
        apiCallsPerEpisode: Int = defaultAPICallsPerEpisode,
        renders: Int = defaultRenders,
        workerAPICalls: Int? = nil
    ) {
        precondition(renders >= 1, "renders must be at least 1, got \(renders)")
        if let workerAPICalls { precondition(workerAPICalls >= 1, "workerAPICalls must be at least 1") }
        self.init(
            apiCallsPerEpisode: apiCallsPerEpisode,
            renders: AsyncSemaphore(permits: renders),
            workerAPICalls: workerAPICalls.map { AsyncSemaphore(permits: $0) }
        )
    }
}

import Protocol

/// The dispatcher's view of one episode of the batch.
struct EpisodeRecord: Sendable, Equatable {
    enum Status: String, Sendable, Codable {
        case pending, running, succeeded, failed
    }

    /// Position in the batch (submission order).
    var index: Int
    let id: String
    let spec: EpisodeSpec
    var status: Status = .pending
    /// The number of the latest attempt dispatched; the attempt in flight, if any, is this number.
    /// Numbering starts after ``attemptBase``.
    var attempts = 0
    /// Attempt numbers at or below this one belong to earlier batches with an episode of the same id
    /// (the same coordinator's journal, or an earlier batch of `coordinator serve`): a worker that still
    /// announces one of them is fenced off instead of mistaken for this batch's episode.
    var attemptBase = 0
    /// Session of the worker running the current attempt.
    var session: String?
    /// Worker of the latest attempt (of the successful one once succeeded).
    var workerId: String?
    /// Worker-side duration of the successful attempt.
    var durationMs: Int?
    /// One line per failed or lost attempt.
    var errors: [String] = []
    var placeholders: [Placeholder] = []
    /// The files of the successful attempt, as stored and checked (recorded in the journal).
    var artifacts: [ArtifactFile] = []
    var apiCalls = 0
    /// Rank of the current attempt's dispatch (lower = earlier); its lease requests are served in this order.
    var dispatchOrder: Int?
    /// When the first attempt was dispatched, and when the episode ended (for latency figures).
    var firstDispatchedAt: ContinuousClock.Instant?
    var finishedAt: ContinuousClock.Instant?
    /// After a coordinator restart, an episode that was in flight waits until then for its worker to
    /// reconnect and re-announce it before it is handed to anyone else.
    var notBefore: ContinuousClock.Instant?

    var isFinished: Bool { status == .succeeded || status == .failed }

    /// Attempts this batch made of the episode (what `--max-attempts` limits and reports show).
    var attemptsUsed: Int { attempts - attemptBase }

    /// Whether `attempt` is an attempt of this batch's episode that was handed out.
    func owns(attempt: Int) -> Bool { attempt > attemptBase && attempt <= attempts }

    var currentRef: JobRef { JobRef(episodeId: id, attempt: attempts) }
}

extension EpisodeRecord {
    /// The same episode at another position (restored from the journal).
    init(copying other: EpisodeRecord, index: Int) {
        self = other
        self.index = index
    }
}

/// The dispatcher's view of one connected worker.
struct WorkerRecord: Sendable, Equatable {
    let session: String
    let routingId: [UInt8]
    let hello: Hello
    /// Order of registration, for a stable tie-break in dispatch.
    let joinOrder: Int
    /// Attempts sent to this worker whose RESULT has not arrived.
    var inflight: Set<JobRef> = []
    /// Last time anything arrived from the worker.
    var lastHeard: ContinuousClock.Instant
    /// Last time anything was sent to the worker.
    var lastSent: ContinuousClock.Instant
    var completed = 0
    /// The worker is shutting down gracefully: it gets no more jobs.
    var draining = false

    var credit: Int { draining ? 0 : hello.capacity.episodes - inflight.count }
}

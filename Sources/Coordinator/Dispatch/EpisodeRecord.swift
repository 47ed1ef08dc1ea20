import Protocol

/// The dispatcher's view of one episode of the batch.
///
/// Kept small, because a batch may queue 100,000 of them: 48 bytes for an episode that was never
/// dispatched. The spec stays in the batch's ``EpisodeSpecs`` (the record points into it); what an
/// episode gathers once dispatched (its worker, times, errors, files) lives out of line in an
/// ``Activity`` allocated at its first dispatch, copied on write like any Swift value.
struct EpisodeRecord: Sendable, Equatable {
    enum Status: String, Sendable, Codable {
        case pending, running, succeeded, failed
        /// Not started, or stopped by its allowance: the batch's spend cap (`--max-spend`) was reached.
        /// A batch resumed from the journal starts these again.
        case capped
    }

    /// What an episode gathers once dispatched; all empty (and not allocated) before that.
    struct Activity: Sendable, Equatable {
        var session: String?
        var workerId: String?
        var durationMs: Int?
        var errors: [String] = []
        var placeholders: [Placeholder] = []
        var artifacts: [ArtifactFile] = []
        var apiCalls = 0
        /// What every attempt's reported calls cost, in micro-dollars (fenced attempts' too: it was spent).
        var costMicros = 0
        var dispatchOrder: Int?
        var firstDispatchedAt: ContinuousClock.Instant?
        var finishedAt: ContinuousClock.Instant?
        var notBefore: ContinuousClock.Instant?

        static let none = Activity()
    }

    /// The out-of-line ``Activity``; only mutated through ``change(_:)``, which copies a shared one first.
    private final class Box: @unchecked Sendable {
        var activity: Activity

        init(_ activity: Activity) {
            self.activity = activity
        }
    }

    let id: String
    /// The batch's specs; this episode's is at ``index`` (or, in a table of one, the only one).
    private var specs: EpisodeSpecs
    private var box: Box?
    private var position: Int32
    private var latestAttempt: Int32 = 0
    private var baseAttempt: Int32 = 0
    var status: Status = .pending

    /// An episode with a spec of its own (a batch read back from the journal).
    init(index: Int, id: String, spec: EpisodeSpec) {
        self.init(index: index, id: id, specs: [spec])
    }

    /// The episode at `index` of the batch's `specs`, sharing them.
    init(index: Int, id: String, specs: EpisodeSpecs) {
        self.id = id
        self.specs = specs
        self.position = Int32(index)
    }

    /// Position in the batch (submission order).
    var index: Int { Int(position) }

    var spec: EpisodeSpec { specs[specs.count == 1 ? 0 : index] }

    /// The number of the latest attempt dispatched; the attempt in flight, if any, is this number.
    /// Numbering starts after ``attemptBase``.
    var attempts: Int {
        get { Int(latestAttempt) }
        set { latestAttempt = Int32(newValue) }
    }

    /// Attempt numbers at or below this one belong to earlier batches with an episode of the same id
    /// (the same coordinator's journal, or an earlier batch of `coordinator serve`): a worker that still
    /// announces one of them is fenced off instead of mistaken for this batch's episode.
    var attemptBase: Int {
        get { Int(baseAttempt) }
        set { baseAttempt = Int32(newValue) }
    }

    /// Everything the episode gathered since its first dispatch.
    var activity: Activity { box?.activity ?? .none }

    /// Session of the worker running the current attempt.
    var session: String? {
        get { box?.activity.session }
        set { set(\.session, newValue) }
    }

    /// Worker of the latest attempt (of the successful one once succeeded).
    var workerId: String? {
        get { box?.activity.workerId }
        set { set(\.workerId, newValue) }
    }

    /// Worker-side duration of the successful attempt.
    var durationMs: Int? {
        get { box?.activity.durationMs }
        set { set(\.durationMs, newValue) }
    }

    /// One line per failed or lost attempt.
    var errors: [String] {
        get { box?.activity.errors ?? [] }
        set { set(\.errors, newValue) }
    }

    var placeholders: [Placeholder] {
        get { box?.activity.placeholders ?? [] }
        set { set(\.placeholders, newValue) }
    }

    /// The files of the successful attempt, as stored and checked (recorded in the journal).
    var artifacts: [ArtifactFile] {
        get { box?.activity.artifacts ?? [] }
        set { set(\.artifacts, newValue) }
    }

    var apiCalls: Int {
        get { box?.activity.apiCalls ?? 0 }
        set { set(\.apiCalls, newValue) }
    }

    /// What the episode's attempts cost so far, in micro-dollars (see ``Activity/costMicros``).
    var costMicros: Int {
        get { box?.activity.costMicros ?? 0 }
        set { set(\.costMicros, newValue) }
    }

    /// Rank of the current attempt's dispatch (lower = earlier); its lease requests are served in this order.
    var dispatchOrder: Int? {
        get { box?.activity.dispatchOrder }
        set { set(\.dispatchOrder, newValue) }
    }

    /// When the first attempt was dispatched, and when the episode ended (for latency figures).
    var firstDispatchedAt: ContinuousClock.Instant? {
        get { box?.activity.firstDispatchedAt }
        set { set(\.firstDispatchedAt, newValue) }
    }

    var finishedAt: ContinuousClock.Instant? {
        get { box?.activity.finishedAt }
        set { set(\.finishedAt, newValue) }
    }

    /// After a coordinator restart, an episode that was in flight waits until then for its worker to
    /// reconnect and re-announce it before it is handed to anyone else.
    var notBefore: ContinuousClock.Instant? {
        get { box?.activity.notBefore }
        set { set(\.notBefore, newValue) }
    }

    var isFinished: Bool { status == .succeeded || status == .failed || status == .capped }

    /// Attempts this batch made of the episode (what `--max-attempts` limits and reports show).
    var attemptsUsed: Int { attempts - attemptBase }

    /// Whether `attempt` is an attempt of this batch's episode that was handed out.
    func owns(attempt: Int) -> Bool { attempt > attemptBase && attempt <= attempts }

    var currentRef: JobRef { JobRef(episodeId: id, attempt: attempts) }

    static func == (lhs: EpisodeRecord, rhs: EpisodeRecord) -> Bool {
        lhs.id == rhs.id && lhs.position == rhs.position && lhs.status == rhs.status
            && lhs.latestAttempt == rhs.latestAttempt && lhs.baseAttempt == rhs.baseAttempt
            && lhs.activity == rhs.activity && lhs.spec == rhs.spec
    }

    /// Sets one field of the activity; setting an empty value before the first dispatch allocates nothing.
    private mutating func set<Value: Equatable>(_ field: WritableKeyPath<Activity, Value>, _ value: Value) {
        if box == nil, value == Activity.none[keyPath: field] { return }
        change { $0[keyPath: field] = value }
    }

    private mutating func change(_ body: (inout Activity) -> Void) {
        if box == nil {
            box = Box(.none)
        } else if !isKnownUniquelyReferenced(&box) {
            box = Box(box!.activity)
        }
        body(&box!.activity)
    }
}

extension EpisodeRecord {
    /// The same episode at another position (restored from the journal).
    init(copying other: EpisodeRecord, index: Int) {
        self = other
        position = Int32(index)
        if index != other.index, other.specs.count > 1 {
            // The shared specs are indexed by position: at another one, the episode takes its own.
            specs = [other.spec]
        }
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

import Foundation
import Protocol
import Shared

/// One event of an attempt, as the journal's `attempt_event.event` column spells it.
enum AttemptEvent: String, Sendable, CaseIterable {
    case dispatched, succeeded, failed, lost, readopted, adopted
    /// The episode failed for good (its last attempt failed, or it was capped).
    case episodeFailed = "episode_failed"
}

/// What the dispatcher's notices of one step changed, to be buffered in the journal: the episodes' latest
/// state, an event per attempt change and the budgeted calls started.
struct JournalEntries: Sendable, Equatable {
    struct Event: Sendable, Equatable {
        var event: AttemptEvent
        var episode: String
        var attempt: Int
        var worker: String?
    }

    var episodes: [EpisodeRecord] = []
    var events: [Event] = []
    /// Calls started per provider (granted or reported started), in order.
    var leaseStarts: [(provider: String, count: Int)] = []

    var isEmpty: Bool { episodes.isEmpty && events.isEmpty && leaseStarts.isEmpty }

    static func == (a: Self, b: Self) -> Bool {
        a.episodes == b.episodes && a.events == b.events
            && a.leaseStarts.elementsEqual(b.leaseStarts) { $0.provider == $1.provider && $0.count == $1.count }
    }

    /// What `actions` change, read off their notices, and whether it must be durable before any of them is
    /// carried out (`urgent`): an episode ended, or permits were granted. An ended episode written first is
    /// never run again by a coordinator killed right after; a grant written first still counts in the
    /// windows of a restarted coordinator (``LeaseNotice/granted(provider:count:)``).
    static func of(_ actions: [DispatchAction], dispatcher: Dispatcher) -> (entries: JournalEntries, urgent: Bool) {
        var out = JournalEntries()
        var urgent = false
        func record(_ id: String, _ event: AttemptEvent, attempt: Int? = nil, worker: String? = nil) {
            guard let episode = dispatcher.episode(id) else { return }
            out.episodes.append(episode)
            out.events.append(
                Event(
                    event: event,
                    episode: id,
                    attempt: attempt ?? episode.attempts,
                    worker: worker ?? episode.workerId
                )
            )
        }
        for case .notice(let notice) in actions {
            switch notice {
            case .dispatched(let ref, let workerId):
                record(ref.episodeId, .dispatched, attempt: ref.attempt, worker: workerId)
            case .episodeSucceeded(let id, let attempt, let workerId, _, _, _, _):
                urgent = true
                record(id, .succeeded, attempt: attempt, worker: workerId)
            case .attemptFailed(let ref, let workerId, _, _):
                record(ref.episodeId, .failed, attempt: ref.attempt, worker: workerId)
            case .episodeFailed(let id, _, _, _):
                urgent = true
                record(id, .episodeFailed)
            case .workerLeft(let workerId, _, let requeued):
                for ref in requeued { record(ref.episodeId, .lost, attempt: ref.attempt, worker: workerId) }
            case .readopted(let ref, let workerId):
                record(ref.episodeId, .readopted, attempt: ref.attempt, worker: workerId)
            case .lease(.started(let provider, let count)):
                out.leaseStarts.append((provider, count))
            case .lease(.granted(let provider, let count)):
                out.leaseStarts.append((provider, count))
                urgent = true
            default: break
            }
        }
        return (out, urgent)
    }
}

/// When the journal's buffer is written: at once when the step's changes must be durable before its
/// actions (``JournalEntries/of(_:dispatcher:)``'s `urgent`), else at most `interval` behind, so that a
/// busy batch costs one transaction per 100 ms, not one per message.
struct JournalFlushPolicy: Sendable {
    var interval: Duration = .milliseconds(100)
    private(set) var lastFlush: ContinuousClock.Instant
    /// Something was buffered since the last write.
    private(set) var pending = false

    init(now: ContinuousClock.Instant, interval: Duration = .milliseconds(100)) {
        self.lastFlush = now
        self.interval = interval
    }

    /// Takes a step's entries; returns whether the buffer is to be written now.
    mutating func shouldFlush(adding entries: JournalEntries, urgent: Bool, now: ContinuousClock.Instant) -> Bool {
        if !entries.isEmpty { pending = true }
        guard pending, urgent || now - lastFlush >= interval else { return false }
        lastFlush = now
        pending = false
        return true
    }

    /// The buffer was written by other means (a batch closed).
    mutating func flushed(now: ContinuousClock.Instant) {
        lastFlush = now
        pending = false
    }
}

/// What the coordinator's core asks the journal to make durable. The core emits it ahead of the actions
/// that depend on it; the shell carries it out first and, when it fails, carries out none of them
/// (``CoordinatorCore/persistFailed(_:error:time:)``).
enum JournalWrite: Sendable {
    /// `serve`: a submitted batch, queued. Its reply goes out only once it is written.
    case enqueue(Batch, reply: ControlChannel.Reply<BatchListing>)
    /// A batch starts: it and all its episodes (pending).
    case begin(batchId: String, episodes: [EpisodeRecord])
    /// The batch read back at start continues: later writes go to it.
    case resume(batchId: String)
    /// A step's changes, buffered; with `flush`, the buffer and these counters are written now.
    case entries(JournalEntries, flush: DispatchCounters?)
    /// The batch ends: the buffer, the counters and, for a complete batch, its state (an interrupted one
    /// stays `running`, to be resumed).
    case close(counters: DispatchCounters, state: BatchState?)

    var label: String {
        switch self {
        case .enqueue: "enqueue"
        case .begin: "begin"
        case .resume: "resume"
        case .entries: "entries"
        case .close: "close"
        }
    }
}

extension Journal {
    /// Carries out one ``JournalWrite``.
    func apply(_ write: JournalWrite) throws {
        switch write {
        case .enqueue(let batch, _):
            try enqueue(batch)
        case .begin(let batchId, let episodes):
            try begin(batchId: batchId, episodes: episodes)
        case .resume(let batchId):
            resume(batchId: batchId)
        case .entries(let entries, let counters):
            for episode in entries.episodes { record(episode) }
            for e in entries.events { event(e.event, episode: e.episode, attempt: e.attempt, worker: e.worker) }
            for start in entries.leaseStarts { leaseStarted(provider: start.provider, count: start.count) }
            if let counters { try flush(counters: counters) }
        case .close(let counters, let state):
            try flush(counters: counters, status: state)
        }
    }
}

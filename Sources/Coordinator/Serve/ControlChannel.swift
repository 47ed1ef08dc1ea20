import Foundation
import Protocol
import Synchronization

/// Why the coordinator refused a request of its HTTP API; each maps to an HTTP status.
enum ControlError: Error, Sendable, Equatable {
    /// The request is malformed (400).
    case badRequest(String)
    /// It conflicts with the coordinator's state, e.g. a batch id already taken (409).
    case conflict(String)
    /// This coordinator runs one batch and takes no others: it is not `coordinator serve` (409).
    case notServing
    /// The coordinator is stopping, or cannot do it now (503).
    case unavailable(String)

    var message: String {
        switch self {
        case .badRequest(let m), .conflict(let m), .unavailable(let m): m
        case .notServing:
            "this coordinator runs a single batch; start `coordinator serve` to submit batches to it"
        }
    }
}

/// A batch as `GET /api/batches` lists it. snake_case JSON.
struct BatchListing: Codable, Sendable, Equatable {
    var id: String
    var state: BatchState
    var episodes: Int
    var succeeded = 0
    var failed = 0
    /// 1-based place in the queue of a queued batch.
    var position: Int?
    var submittedAt: String?
    var startedAt: String?
    var finishedAt: String?
    /// Where the batch's files and `summary.json` / `report.html` are, on the coordinator's machine.
    var folder: String?
    var summary: String?
    var report: String?
}

/// Requests from the HTTP side to the coordinator's loop: submit a batch, resize the local worker pool,
/// make a status document listing other episodes than the one published every 250 ms.
///
/// The loop owns the dispatcher, the journal and the pool's target, so HTTP handlers never touch them:
/// they send a request here and wait for the loop's reply. Every request is answered exactly once: by
/// the loop, or with ``ControlError/unavailable(_:)`` when the loop has stopped (``close()``).
final class ControlChannel: Sendable {
    enum Request: Sendable {
        /// A batch to queue: its id (nil: the coordinator names it) and its episodes.
        case submit(id: String?, episodes: EpisodeSpecs, reply: Reply<BatchListing>)
        /// Run this many local worker processes.
        case scale(workers: Int, reply: Reply<LocalWorkerPool.Snapshot>)
        /// What a status document listing other episodes than the published ones is made of. The loop
        /// answers at once with copies of its state (the dispatcher is a value: copying it is cheap, and it
        /// shares its storage until the loop changes it); the HTTP side lists the episodes, off the loop.
        case status(reply: Reply<StatusSource>)
    }

    /// Answers one request. Only the first answer counts.
    struct Reply<Value: Sendable>: Sendable {
        fileprivate let id: UInt64
        fileprivate let channel: ControlChannel
        fileprivate let resume: @Sendable (Result<Value, ControlError>) -> Void

        func callAsFunction(_ result: Result<Value, ControlError>) {
            if channel.settle(id) { resume(result) }
        }
    }

    private struct State {
        var nextId: UInt64 = 0
        var open: [UInt64: @Sendable (ControlError) -> Void] = [:]
        var closed = false
    }

    let requests: AsyncStream<Request>
    private let continuation: AsyncStream<Request>.Continuation
    private let state = Mutex(State())

    init() {
        (requests, continuation) = AsyncStream.makeStream(of: Request.self)
    }

    func submit(id: String?, episodes: EpisodeSpecs) async -> Result<BatchListing, ControlError> {
        await ask { .submit(id: id, episodes: episodes, reply: $0) }
    }

    func scale(workers: Int) async -> Result<LocalWorkerPool.Snapshot, ControlError> {
        await ask { .scale(workers: workers, reply: $0) }
    }

    func status() async -> Result<StatusSource, ControlError> {
        await ask { .status(reply: $0) }
    }

    /// The loop stopped: every request not answered yet, and every later one, gets 503.
    func close() {
        let pending = state.withLock { s in
            s.closed = true
            let pending = Array(s.open.values)
            s.open = [:]
            return pending
        }
        continuation.finish()
        for fail in pending { fail(.unavailable("the coordinator is stopping")) }
    }

    private func ask<Value: Sendable>(
        _ make: (Reply<Value>) -> Request
    ) async -> Result<Value, ControlError> {
        await withCheckedContinuation { (c: CheckedContinuation<Result<Value, ControlError>, Never>) in
            let resume: @Sendable (Result<Value, ControlError>) -> Void = { c.resume(returning: $0) }
            let id: UInt64? = state.withLock { s in
                guard !s.closed else { return nil }
                s.nextId += 1
                s.open[s.nextId] = { resume(.failure($0)) }
                return s.nextId
            }
            guard let id else {
                resume(.failure(.unavailable("the coordinator is stopping")))
                return
            }
            continuation.yield(make(Reply(id: id, channel: self, resume: resume)))
        }
    }

    /// Whether request `id` was still open (and is now answered).
    fileprivate func settle(_ id: UInt64) -> Bool {
        state.withLock { $0.open.removeValue(forKey: id) != nil }
    }
}

/// The loop's state at one moment, for a status document the HTTP side makes by itself.
struct StatusSource: Sendable {
    /// The fleet-wide parts (batches, local workers, security), listing no episodes.
    var base: FleetStatus
    var dispatcher: Dispatcher
    var now: ContinuousClock.Instant

    /// The status document listing the episodes `selection` names. Costs what it lists; runs on the
    /// caller's task, never on the coordinator's loop.
    func status(_ selection: EpisodeSelection) -> FleetStatus {
        var status = base
        let listed = dispatcher.fleetStatus(state: base.state, now: now, episodes: selection)
        status.episodes = listed.episodes
        status.episodeList = listed.episodeList
        return status
    }
}

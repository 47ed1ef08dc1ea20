import DequeModule
import Foundation
import Protocol
import Shared

/// Where a batch is in its life, as `GET /api/batches` and the journal's `batch.status` spell it.
enum BatchState: String, Codable, Sendable, CaseIterable {
    /// Submitted and journaled, waiting for the batch ahead of it.
    case queued
    /// Being dispatched (or held, resumed from the journal, until its workers re-announce their attempts).
    case running
    /// Every episode ended (succeeded, failed or capped).
    case completed
    /// Stopped half-way; the journal keeps it `running`, to be resumed by the next start.
    case interrupted

    var isFinished: Bool { self == .completed || self == .interrupted }
}

/// `coordinator serve`'s batches, as a value: the queue of submitted batches, the listing the HTTP API
/// shows, the ids already taken and the attempt floors that fence an old batch's attempts off a new
/// batch's episode of the same id.
///
/// Pure: no clock, no journal, no I/O. The coordinator's core validates a submission here, makes it
/// durable (``JournalWrite/enqueue(_:reply:)``) and only then ``enqueue(_:at:)``s it.
struct BatchQueue: Sendable {
    /// A long-running coordinator lists this many finished batches, the newest.
    static let finishedKept = 1000

    /// The `--output` folder: each batch's files are in `output/<batch id>`.
    let output: URL
    /// Submitted batches not started yet, oldest first.
    private(set) var waiting: Deque<Batch>
    /// Every batch known, in the order they became known (finished ones from the journal first).
    private(set) var listings: [BatchListing]
    /// Per episode id, the highest attempt number any earlier batch used (``Dispatcher/load(batchId:specs:attemptFloors:now:)``).
    private(set) var floors: [String: Int]
    /// Batches finished by this process.
    private(set) var batchesDone = 0
    /// Ids no new batch may take: every listed batch and every batch the journal holds.
    private var taken: Set<String>

    /// - Parameters:
    ///   - finished: what the journal finished before (a restarted `serve`), oldest first.
    ///   - queued: what it holds as submitted and not started, oldest first.
    ///   - takenIds: every batch id the journal holds.
    ///   - floors: the journal's attempt floors.
    init(
        output: URL,
        finished: [BatchListing] = [],
        queued: [Batch] = [],
        takenIds: Set<String> = [],
        floors: [String: Int] = [:]
    ) {
        self.output = output
        self.waiting = Deque(queued)
        self.floors = floors
        self.listings = finished.map { batch in
            var listing = batch
            let dir = output.appendingPathComponent(batch.id)
            listing.folder = dir.path
            listing.summary = dir.appendingPathComponent("summary.json").path
            listing.report = dir.appendingPathComponent("report.html").path
            return listing
        }
        for batch in queued {
            listings.append(
                BatchListing(
                    id: batch.id,
                    state: .queued,
                    episodes: batch.episodes.count,
                    folder: output.appendingPathComponent(batch.id).path
                )
            )
        }
        self.taken = takenIds.union(listings.map(\.id))
    }

    /// Checks a submission and names it: the batch to journal, or why it is refused. `generatedId` is the
    /// name given when the submission has none (``Batch/makeId(date:)``); `-2`, `-3`, … are added while it
    /// is taken.
    func prepare(id: String?, episodes: EpisodeSpecs, generatedId: String) -> Result<Batch, ControlError> {
        guard !episodes.isEmpty, episodes.count <= BatchFile.maxEpisodes else {
            return .failure(.badRequest("a batch needs 1 to \(BatchFile.maxEpisodes) episodes, got \(episodes.count)"))
        }
        if let id {
            do {
                try BatchNames.check(id, field: "batch id")
            } catch {
                return .failure(.badRequest(error.detail))
            }
            guard !taken.contains(id) else {
                return .failure(.conflict("batch id \(id) is already taken on this coordinator; choose another"))
            }
            return .success(Batch(id: id, episodes: episodes))
        }
        var candidate = generatedId
        var n = 2
        while taken.contains(candidate) {
            candidate = "\(generatedId)-\(n)"
            n += 1
        }
        return .success(Batch(id: candidate, episodes: episodes))
    }

    /// Queues a batch ``prepare(id:episodes:generatedId:)`` accepted and the journal holds.
    mutating func enqueue(_ batch: Batch, at date: Date) {
        waiting.append(batch)
        taken.insert(batch.id)
        listings.append(
            BatchListing(
                id: batch.id,
                state: .queued,
                episodes: batch.episodes.count,
                submittedAt: Self.iso(date),
                folder: folder(batch.id)
            )
        )
    }

    /// The oldest queued batch, taken off the queue.
    mutating func popNext() -> Batch? { waiting.popFirst() }

    /// `batch` is being dispatched from now.
    mutating func started(_ batch: Batch, at date: Date) {
        taken.insert(batch.id)
        if !listings.contains(where: { $0.id == batch.id }) {
            listings.append(BatchListing(id: batch.id, state: .running, episodes: batch.episodes.count))
        }
        let folder = folder(batch.id)
        change(batch.id) {
            $0.state = .running
            $0.startedAt = Self.iso(date)
            $0.folder = folder
        }
    }

    /// The running batch ended: `complete` (every episode ended) or interrupted. `attempts` is each
    /// episode's attempt count: a later batch's episode of the same id starts above it.
    mutating func finished(
        _ id: String,
        complete: Bool,
        succeeded: Int,
        failed: Int,
        attempts: some Sequence<(id: String, attempts: Int)>,
        at date: Date
    ) {
        for e in attempts { floors[e.id] = max(floors[e.id] ?? 0, e.attempts) }
        batchesDone += 1
        change(id) {
            $0.state = complete ? .completed : .interrupted
            $0.succeeded = succeeded
            $0.failed = failed
            $0.finishedAt = Self.iso(date)
        }
        let finished = listings.filter { $0.state.isFinished }
        if finished.count > Self.finishedKept {
            let drop = Set(finished.prefix(finished.count - Self.finishedKept).map(\.id))
            listings.removeAll { drop.contains($0.id) }
        }
    }

    /// Where the finished batch's `summary.json` and `report.html` were written (nil: could not be).
    mutating func filesWritten(_ id: String, summary: String?, report: String?) {
        change(id) {
            $0.summary = summary
            $0.report = report
        }
    }

    /// The listing with queue positions, and the running batch's counts as they are now.
    func live(running: (id: String, succeeded: Int, failed: Int)?) -> [BatchListing] {
        var positions: [String: Int] = [:]
        for (i, batch) in waiting.enumerated() { positions[batch.id] = i + 1 }
        var out = listings
        for i in out.indices {
            if out[i].state == .queued {
                out[i].position = positions[out[i].id]
            } else if let running, out[i].id == running.id {
                out[i].succeeded = running.succeeded
                out[i].failed = running.failed
            }
        }
        return out
    }

    private func folder(_ id: String) -> String { output.appendingPathComponent(id).path }

    private mutating func change(_ id: String, _ body: (inout BatchListing) -> Void) {
        guard let i = listings.lastIndex(where: { $0.id == id }) else { return }
        body(&listings[i])
    }

    private static func iso(_ date: Date) -> String { Timestamp.string(from: date) }
}

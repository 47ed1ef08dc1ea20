import DequeModule
import Protocol
import Shared

/// How the coordinator pulls episode files from workers (PROTOCOL §17).
struct ArtifactSettings: Sendable, Equatable {
    /// Bytes asked for in one ARTIFACT_FETCH. The default is 256 KiB.
    var chunkBytes = 256 * 1024
    /// Chunks one transfer may have outstanding: asked for, or received and not yet on disk. This is the
    /// credit of the ZeroMQ Guide's `fileio3` pattern; with the chunk size it bounds the memory a transfer
    /// holds (2 MiB by default) and keeps the link busy. The default is 8.
    var credit = 8
    /// Transfers at once; more wait their turn. The default is 4.
    var maxTransfers = 4
    /// A transfer that makes no progress for this long is given up (the attempt fails and is retried).
    /// The default is 30 s.
    var stallTimeout: Duration = .seconds(30)
    /// Times one file is fetched again after a SHA-256 mismatch before the transfer is given up.
    /// The default is 3.
    var maxFileRetries = 3
    /// While the coordinator's disk is full, how often one waiting transfer is tried again. The default
    /// is 5 s.
    var diskFullRetry: Duration = .seconds(5)
}

/// What the collector asks the disk (``ArtifactStore``) to do. Commands of one transfer carry its `id`;
/// they are carried out in order.
enum ArtifactCommand: Sendable, Equatable {
    /// Create the transfer's incoming folder (`<batch>/.incoming/<episode>-attempt-<n>-<id>/`).
    case begin(id: Int, ref: JobRef)
    /// Write a chunk at `offset` of `file` (`offset` 0 starts the file afresh). With `last`, check the
    /// file's SHA-256, sync it and rename it into place.
    case write(id: Int, file: ArtifactFile, offset: Int, bytes: [UInt8], last: Bool)
    /// Every file is stored: sync the folder and rename it to `<batch>/<episode>/`, then sync the batch.
    case publish(id: Int, ref: JobRef)
    /// Shared delivery: check that `<batch>/<episode>/` holds these files with these digests.
    case verifyShared(id: Int, ref: JobRef, files: [ArtifactFile])
    /// Give up: delete the incoming folder.
    case discard(id: Int)
}

/// What the disk reports back, one event per command (none for `discard`).
enum ArtifactEvent: Sendable, Equatable {
    /// A chunk that was not a file's last is written.
    case written(id: Int)
    /// A file's last chunk is written, its digest matched, and it is synced and in place.
    case fileStored(id: Int, name: String)
    /// A file's digest did not match the offer; the partial file is deleted.
    case fileCorrupt(id: Int, name: String, actual: String)
    /// The episode folder is in place and durable (or, shared delivery, checked).
    case published(id: Int)
    case failed(id: Int, error: String)
    /// The coordinator's own disk is full (ENOSPC, EDQUOT): not the attempt's fault. The transfer waits
    /// and is tried again; the worker keeps its files until they are stored.
    case noSpace(id: Int, error: String)

    var id: Int {
        switch self {
        case .written(let id), .fileStored(let id, _), .fileCorrupt(let id, _, _), .published(let id),
            .failed(let id, _), .noSpace(let id, _):
            id
        }
    }
}

/// Counts for `summary.json`.
struct ArtifactCounters: Sendable, Equatable, Codable {
    /// Episodes whose files arrived and are durable.
    var episodesStored = 0
    var filesStored = 0
    var bytesReceived = 0
    /// Files whose SHA-256 did not match the offer (fetched again).
    var checksumMismatches = 0
    /// Transfers given up (the attempt failed and was retried), and transfers cut short by a lost worker.
    var transfersFailed = 0
    var transfersAborted = 0
    /// ARTIFACT_CHUNKs for no transfer in progress on that session (late, or after a give-up).
    var staleChunks = 0
    /// Transfers carried on from where a lost connection left them, instead of from zero.
    var transfersResumed = 0

    init() {}

    init(from decoder: any Decoder) throws {
        // Counts journaled before `transfers_resumed` existed decode with it at 0.
        let c = try decoder.container(keyedBy: CodingKeys.self)
        episodesStored = try c.decode(Int.self, forKey: .episodesStored)
        filesStored = try c.decode(Int.self, forKey: .filesStored)
        bytesReceived = try c.decode(Int.self, forKey: .bytesReceived)
        checksumMismatches = try c.decode(Int.self, forKey: .checksumMismatches)
        transfersFailed = try c.decode(Int.self, forKey: .transfersFailed)
        transfersAborted = try c.decode(Int.self, forKey: .transfersAborted)
        staleChunks = try c.decode(Int.self, forKey: .staleChunks)
        transfersResumed = try c.decodeIfPresent(Int.self, forKey: .transfersResumed) ?? 0
    }
}

/// The pure state machine of episode-file transfers. The dispatcher feeds it RESULT offers, chunks,
/// disk events and ticks; it answers with fetches to send, disk commands, and outcomes.
///
/// Flow control: a transfer never has more than `credit` chunks outstanding (fetched and not yet
/// arrived, or arrived and not yet written), and at most `maxTransfers` run at once, so the memory
/// held for files is bounded by `maxTransfers × credit × chunkBytes` (8 MiB by default) however many
/// workers deliver at once. Chunks arrive in the order they were fetched (one DEALER–ROUTER connection
/// keeps order), so any other chunk is a fault of the sender and ends the transfer.
struct ArtifactCollector: Sendable {
    enum Output: Sendable, Equatable {
        case fetch(session: String, ArtifactFetch)
        case store(ArtifactCommand)
        /// Every file is durable: the episode succeeded with this result.
        case stored(JobRef, session: String, EpisodeResult)
        /// The transfer was given up: the attempt failed with this reason.
        case failed(JobRef, session: String, reason: String)
        case rejected(reason: String, detail: String)
        /// Storing paused: the coordinator's disk is full (said once per pause), or storing works again.
        case diskFull(error: String)
        case diskSpaceBack(pausedFor: Duration)
    }

    private struct Piece: Sendable, Equatable {
        var file: ArtifactFile
        var offset: Int
        var length: Int
        var last: Bool { offset + length >= file.size }
    }

    private struct Transfer: Sendable {
        let id: Int
        let ref: JobRef
        let session: String
        let result: EpisodeResult
        var started = false
        var pending: Deque<Piece> = []
        var expected: Deque<Piece> = []
        var unwritten = 0
        var stored: Set<String> = []
        var retries: [String: Int] = [:]
        var publishing = false
        /// Put back to wait for disk space: chunks still on their way from the worker are dropped quietly.
        var paused = false
        var lastProgress: ContinuousClock.Instant
        /// Per file, the end of the last piece handed to the store (what is on disk, or queued for it, in
        /// order), and whether that piece was the file's last.
        var commanded: [String: (end: Int, last: Bool)] = [:]
        /// The file the store has open (the latest that got a first piece).
        var openFile: String?
        /// Carried on from a parked transfer (its folder exists: no `begin` command).
        var resumed = false
        /// When the latest chunk arrived.
        var lastChunkAt: ContinuousClock.Instant?
    }

    /// A transfer whose worker vanished mid-way (dead for us, or reconnected on a new session). Its incoming
    /// folder and the store's open file stay, so that the same attempt offered again resumes where the bytes
    /// stopped instead of from zero.
    private struct Parked: Sendable {
        var transfer: Transfer
        var parkedAt: ContinuousClock.Instant
    }

    let settings: ArtifactSettings
    private(set) var counters = ArtifactCounters()
    private var transfers: [JobRef: Transfer] = [:]
    private var refById: [Int: JobRef] = [:]
    private var waiting: Deque<JobRef> = []
    private var nextId = 0
    /// Since when storing is paused because the coordinator's disk is full, and when a waiting transfer is
    /// tried again (one at a time until a file is stored).
    private(set) var diskFullSince: ContinuousClock.Instant?
    /// The error that paused storing (`No space left on device`).
    private(set) var diskFullError: String?
    private var retryAt: ContinuousClock.Instant?
    private var probing = false

    /// Whether storing is paused for lack of disk space (dispatch pauses with it).
    var isDiskFull: Bool { diskFullSince != nil }
    private var parked: [JobRef: Parked] = [:]
    /// Parked transfers kept at most (the oldest is discarded beyond). The default is 16.
    private let maxParked = 16

    /// - Parameter counters: the counts so far (a batch resumed from the journal goes on counting).
    init(settings: ArtifactSettings = ArtifactSettings(), counters: ArtifactCounters = ArtifactCounters()) {
        self.settings = settings
        self.counters = counters
    }

    /// The episodes some attempt of which is having its files collected.
    var collectingEpisodes: Set<String> { Set(transfers.keys.map(\.episodeId)) }

    /// Whether some attempt of this episode is having its files collected.
    func isCollecting(_ episodeId: String) -> Bool {
        transfers.keys.contains { $0.episodeId == episodeId }
    }

    /// The attempts whose files come from this session.
    func refs(of session: String) -> [JobRef] {
        transfers.values.filter { $0.session == session }.map(\.ref).sorted {
            ($0.episodeId, $0.attempt) < ($1.episodeId, $1.attempt)
        }
    }

    var activeCount: Int { transfers.values.count { $0.started } }

    /// Attempts whose partly pulled files wait for their worker to offer them again.
    var parkedRefs: [JobRef] { parked.keys.sorted { ($0.episodeId, $0.attempt) < ($1.episodeId, $1.attempt) } }

    /// Whether a transfer from `session` is moving: a chunk of it arrived within the stall timeout. Such a
    /// worker is alive whatever its heartbeats do: on a congested link they queue behind the chunks.
    func isReceiving(from session: String, now: ContinuousClock.Instant) -> Bool {
        transfers.values.contains {
            guard $0.session == session, let last = $0.lastChunkAt else { return false }
            return now - last < settings.stallTimeout
        }
    }

    /// The coordinator's loop stood still: no transfer is blamed for that time.
    mutating func refreshProgress(now: ContinuousClock.Instant) {
        for ref in transfers.keys { transfers[ref]?.lastProgress = now }
    }

    /// A successful RESULT offers files: start pulling them (or queue the transfer behind others). An
    /// attempt whose transfer was cut short resumes: files already stored are kept, the file the store has
    /// open goes on from its last byte on disk (its SHA-256 still covers the whole file), others start over.
    mutating func begin(_ result: EpisodeResult, session: String, now: ContinuousClock.Instant) -> [Output] {
        var outputs: [Output] = []
        for (ref, p) in parked
        where ref.episodeId == result.episodeId
            && (ref != result.ref || p.transfer.result.artifacts != result.artifacts)
        {
            outputs += discardParked(ref)
        }
        if let p = parked.removeValue(forKey: result.ref) {
            let old = p.transfer
            var t = Transfer(
                id: old.id,
                ref: old.ref,
                session: session,
                result: old.result,
                // Writes still queued at the store keep their credit until their event comes.
                unwritten: old.unwritten,
                stored: old.stored,
                retries: old.retries,
                lastProgress: now,
                commanded: old.commanded,
                openFile: old.openFile,
                resumed: true
            )
            for file in result.artifacts where !t.stored.contains(file.name) {
                if let c = t.commanded[file.name] {
                    // Its last piece is queued at the store: its event says whether it is stored.
                    if c.last { continue }
                    if file.name == t.openFile {
                        // The open file goes first: the store continues it at its last byte.
                        t.pending.insert(contentsOf: pieces(of: file, from: c.end), at: 0)
                        continue
                    }
                }
                t.pending.append(contentsOf: pieces(of: file))
            }
            counters.transfersResumed += 1
            transfers[result.ref] = t
            waiting.append(result.ref)
            return outputs + startWaiting(now: now)
        }
        nextId += 1
        var transfer = Transfer(id: nextId, ref: result.ref, session: session, result: result, lastProgress: now)
        for file in result.artifacts { transfer.pending.append(contentsOf: pieces(of: file)) }
        transfers[result.ref] = transfer
        refById[nextId] = result.ref
        waiting.append(result.ref)
        return outputs + startWaiting(now: now)
    }

    /// An ARTIFACT_CHUNK arrived on `session`.
    mutating func onChunk(_ chunk: ArtifactChunk, session: String, now: ContinuousClock.Instant) -> [Output] {
        if let t = transfers[chunk.ref], t.session == session, t.paused, !t.started {
            return []  // fetched before the disk filled up; fetched again when space is back
        }
        guard var t = transfers[chunk.ref], t.session == session, t.started else {
            counters.staleChunks += 1
            return [
                .rejected(
                    reason: "stale_chunk",
                    detail:
                        "ARTIFACT_CHUNK \(chunk.name)@\(chunk.offset) of \(chunk.episodeId) attempt \(chunk.attempt) for no transfer on that session"
                )
            ]
        }
        if let error = chunk.error {
            return fail(chunk.ref, reason: "the worker could not send \(chunk.name): \(error)", now: now)
        }
        guard let piece = t.expected.first, piece.file.name == chunk.name, piece.offset == chunk.offset,
            chunk.data.count == piece.length
        else {
            let wanted = t.expected.first.map { "\($0.file.name)@\($0.offset) (\($0.length) bytes)" } ?? "nothing"
            return fail(
                chunk.ref,
                reason:
                    "the worker sent \(chunk.name)@\(chunk.offset) (\(chunk.data.count) bytes) where \(wanted) was due",
                now: now
            )
        }
        t.expected.removeFirst()
        t.unwritten += 1
        t.lastProgress = now
        t.lastChunkAt = now
        t.commanded[piece.file.name] = (piece.offset + piece.length, piece.last)
        if piece.offset == 0 { t.openFile = piece.file.name }
        transfers[chunk.ref] = t
        counters.bytesReceived += chunk.data.count
        return [.store(.write(id: t.id, file: piece.file, offset: piece.offset, bytes: chunk.data, last: piece.last))]
    }

    /// The disk carried out a command.
    mutating func onEvent(_ event: ArtifactEvent, now: ContinuousClock.Instant) -> [Output] {
        if let ref = refById[event.id], var p = parked[ref], p.transfer.id == event.id {
            // A write queued before the worker vanished: keep what it stored for the resume.
            switch event {
            case .published:
                return []
            case .written:
                p.transfer.unwritten -= 1
                parked[ref] = p
                return []
            case .fileStored(_, let name):
                p.transfer.unwritten -= 1
                p.transfer.stored.insert(name)
                counters.filesStored += 1
                parked[ref] = p
                return []
            case .fileCorrupt, .failed:
                return discardParked(ref)
            case .noSpace:
                // What it held is incomplete: the offer made again starts over, and pauses storing then if
                // the disk is still full (no live transfer is blamed here).
                return discardParked(ref)
            }
        }
        guard let ref = refById[event.id], var t = transfers[ref], t.id == event.id else {
            return []  // a transfer given up meanwhile
        }
        t.lastProgress = now
        switch event {
        case .written:
            t.unwritten -= 1
            transfers[ref] = t
            return fill(ref)
        case .fileStored(_, let name):
            t.unwritten -= 1
            t.stored.insert(name)
            counters.filesStored += 1
            transfers[ref] = t
            return spaceBack(now: now) + fill(ref) + publishIfComplete(ref)
        case .fileCorrupt(_, let name, let actual):
            t.unwritten -= 1
            counters.checksumMismatches += 1
            let tries = t.retries[name, default: 0] + 1
            t.retries[name] = tries
            guard tries <= settings.maxFileRetries,
                let file = t.result.artifacts.first(where: { $0.name == name })
            else {
                transfers[ref] = t
                return fail(
                    ref,
                    reason:
                        "\(name) arrived with SHA-256 \(actual.prefix(12))… instead of the offered one, \(tries) times",
                    now: now
                )
            }
            t.commanded[name] = nil
            t.pending.append(contentsOf: pieces(of: file))
            transfers[ref] = t
            return fill(ref)
        case .published:
            transfers.removeValue(forKey: ref)
            refById.removeValue(forKey: t.id)
            counters.episodesStored += 1
            let back = spaceBack(now: now)
            return back + [.stored(ref, session: t.session, t.result)] + startWaiting(now: now)
        case .failed(_, let error):
            return fail(ref, reason: error, now: now)
        case .noSpace(_, let error):
            return pauseForSpace(ref, error: error, now: now)
        }
    }

    /// The disk is full: the transfer goes back to the head of the queue with a new id (late events of the
    /// old one are ignored), its partial files are deleted, and nothing new starts until a retry stores a
    /// file. Never the attempt's fault: it is not failed, and the worker keeps its files meanwhile.
    private mutating func pauseForSpace(_ ref: JobRef, error: String, now: ContinuousClock.Instant) -> [Output] {
        guard let old = transfers[ref] else { return [] }
        refById.removeValue(forKey: old.id)
        nextId += 1
        var t = Transfer(id: nextId, ref: ref, session: old.session, result: old.result, lastProgress: now)
        for file in old.result.artifacts { t.pending.append(contentsOf: pieces(of: file)) }
        t.paused = true
        transfers[ref] = t
        refById[t.id] = ref
        waiting.removeAll { $0 == ref }
        waiting.prepend(ref)
        probing = false
        retryAt = now + settings.diskFullRetry
        var outputs: [Output] = [.store(.discard(id: old.id))]
        if diskFullSince == nil {
            diskFullSince = now
            diskFullError = error
            outputs.append(.diskFull(error: error))
        }
        return outputs
    }

    /// A file was stored while storing was paused: space is back, every waiting transfer may start.
    private mutating func spaceBack(now: ContinuousClock.Instant) -> [Output] {
        guard let since = diskFullSince else { return [] }
        diskFullSince = nil
        diskFullError = nil
        retryAt = nil
        probing = false
        return [.diskSpaceBack(pausedFor: now - since)] + startWaiting(now: now)
    }

    /// The worker is gone (dead, or said goodbye): drop its transfers. The dispatcher requeues the episodes.
    /// What was pulled of a file transfer is kept (parked) for a while: the same attempt offered again, by
    /// the worker back on a new session, resumes from there.
    mutating func abort(session: String, now: ContinuousClock.Instant) -> [Output] {
        abort(refs: refs(of: session), now: now)
    }

    /// Stops the transfers of these attempts, parking what they pulled (see ``abort(session:now:)``).
    mutating func abort(refs: [JobRef], now: ContinuousClock.Instant) -> [Output] {
        var outputs: [Output] = []
        for ref in refs {
            guard let t = transfers.removeValue(forKey: ref) else { continue }
            waiting.removeAll { $0 == ref }
            counters.transfersAborted += 1
            guard t.started || t.resumed else {
                refById.removeValue(forKey: t.id)
                continue
            }
            if t.result.effectiveDelivery == .transfer, !t.publishing {
                parked[ref] = Parked(transfer: t, parkedAt: now)
            } else {
                refById.removeValue(forKey: t.id)
                outputs.append(.store(.discard(id: t.id)))
            }
        }
        while parked.count > maxParked, let oldest = parked.min(by: { $0.value.parkedAt < $1.value.parkedAt }) {
            outputs += discardParked(oldest.key)
        }
        return outputs + startWaiting(now: now)
    }

    /// Forgets the partly pulled files of attempts of this episode (it ended some other way).
    mutating func forgetParked(episodeId: String) -> [Output] {
        parked.keys.filter { $0.episodeId == episodeId }.flatMap { discardParked($0) }
    }

    private mutating func discardParked(_ ref: JobRef) -> [Output] {
        guard let p = parked.removeValue(forKey: ref) else { return [] }
        refById.removeValue(forKey: p.transfer.id)
        return [.store(.discard(id: p.transfer.id))]
    }

    /// Gives up on transfers that made no progress for `stallTimeout`.
    mutating func onTick(now: ContinuousClock.Instant) -> [Output] {
        var outputs: [Output] = []
        if isDiskFull, !probing, let retryAt, now >= retryAt {
            // One waiting transfer tries the disk again.
            probing = true
            outputs += startWaiting(now: now)
        }
        let stalled = transfers.values.filter { $0.started && now - $0.lastProgress >= settings.stallTimeout }
            .sorted { $0.id < $1.id }
        for t in stalled {
            outputs += fail(
                t.ref,
                reason: "no progress for \((now - t.lastProgress).shortDescription) (worker stopped answering fetches)",
                now: now
            )
        }
        return outputs
    }

    // MARK: - Internals

    private func pieces(of file: ArtifactFile, from start: Int = 0) -> [Piece] {
        if file.size == 0 { return [Piece(file: file, offset: 0, length: 0)] }
        return stride(from: start, to: file.size, by: settings.chunkBytes).map {
            Piece(file: file, offset: $0, length: min(settings.chunkBytes, file.size - $0))
        }
    }

    private mutating func startWaiting(now: ContinuousClock.Instant) -> [Output] {
        var outputs: [Output] = []
        while activeCount < (isDiskFull ? (probing ? 1 : 0) : settings.maxTransfers),
            let ref = waiting.popFirst()
        {
            guard var t = transfers[ref] else { continue }
            t.started = true
            t.paused = false
            t.lastProgress = now
            transfers[ref] = t
            if t.result.effectiveDelivery == .shared {
                t.publishing = true
                transfers[ref] = t
                outputs.append(.store(.verifyShared(id: t.id, ref: ref, files: t.result.artifacts)))
            } else {
                if !t.resumed { outputs.append(.store(.begin(id: t.id, ref: ref))) }
                outputs += fill(ref)
            }
        }
        return outputs
    }

    private mutating func fill(_ ref: JobRef) -> [Output] {
        guard var t = transfers[ref], t.started, !t.publishing else { return [] }
        var outputs: [Output] = []
        while t.expected.count + t.unwritten < settings.credit, let piece = t.pending.popFirst() {
            t.expected.append(piece)
            outputs.append(
                .fetch(
                    session: t.session,
                    ArtifactFetch(
                        episodeId: ref.episodeId,
                        attempt: ref.attempt,
                        name: piece.file.name,
                        offset: piece.offset,
                        length: piece.length
                    )
                )
            )
        }
        transfers[ref] = t
        return outputs
    }

    private mutating func publishIfComplete(_ ref: JobRef) -> [Output] {
        guard var t = transfers[ref], !t.publishing, t.pending.isEmpty, t.expected.isEmpty, t.unwritten == 0,
            t.stored.count == t.result.artifacts.count
        else { return [] }
        t.publishing = true
        transfers[ref] = t
        return [.store(.publish(id: t.id, ref: ref))]
    }

    private mutating func fail(_ ref: JobRef, reason: String, now: ContinuousClock.Instant) -> [Output] {
        guard let t = transfers.removeValue(forKey: ref) else { return [] }
        refById.removeValue(forKey: t.id)
        waiting.removeAll { $0 == ref }
        counters.transfersFailed += 1
        return [.store(.discard(id: t.id)), .failed(ref, session: t.session, reason: "artifacts: \(reason)")]
            + startWaiting(now: now)
    }
}

import Foundation
import Protocol
import Shared

/// The coordinator's decisions around the ``Dispatcher``, as a pure state machine: which batch runs, when
/// one ends and the next starts, what is journaled and when, serve's queue, local workers being retired,
/// progress and status publishing. ``CoordinatorService`` feeds it inputs with the time and carries out
/// the ``Effect``s it returns, in order.
///
/// No I/O, no clock: the time comes with each call, the journal's answers come back through
/// ``persisted(_:time:)`` and ``persistFailed(_:error:time:)``. Durability is in the output: a
/// ``Effect/persist(_:)`` comes ahead of every effect that depends on it, and when it fails the shell
/// carries out none of the effects after it.
///
/// Owned by the single task running ``CoordinatorService/run()``.
struct CoordinatorCore {
    struct Settings: Sendable {
        /// `coordinator serve`: batches come from ``submit(id:episodes:reply:time:)`` and the core keeps
        /// running after one ends. One-shot, it stops when its batch ends.
        var serve = false
        /// The `--output` folder.
        var output: URL
        /// A journal (`--state`) records what happens; without one nothing is persisted.
        var journaled = false
        var dispatch: DispatchSettings
        /// Episodes at once per worker (named in the log line a batch starts with).
        var maxParallelEpisodes = 1
        var progress: CoordinatorService.ProgressMode = .log
        var progressInterval: Duration = .seconds(10)
        /// How often the status document is published.
        var publishInterval: Duration = .milliseconds(250)
        /// How often a running batch without workers says so.
        var hintInterval: Duration = .seconds(10)
    }

    /// When an input happens: the monotonic instant (deadlines) and the wall time (listings, the UTC day
    /// of the daily spend cap).
    struct Time: Sendable {
        var now: ContinuousClock.Instant
        var date: Date
    }

    enum Input: Sendable {
        /// A message of a worker connection: routing id, then the message's frames.
        case message([[UInt8]])
        /// A send to this routing id failed (the peer is gone).
        case sendFailed(routingId: [UInt8])
        case tick
        /// A lease deadline passed (a permit left a window, a slot expired, a pause ended).
        case leaseTimer
        /// The artifact store carried out a command.
        case artifact(ArtifactEvent)
        /// `POST /api/batches`.
        case submit(id: String?, episodes: EpisodeSpecs, reply: ControlChannel.Reply<BatchListing>)
        /// SIGTERM / SIGINT, or the ZAP handler stopped: stop dispatching.
        case shutdown
    }

    /// What the shell carries out, in order.
    enum Effect: Sendable {
        /// Make this durable before anything that follows. The shell reports the outcome with
        /// ``CoordinatorCore/persisted(_:time:)`` (whose effects come next) or
        /// ``CoordinatorCore/persistFailed(_:error:time:)`` (whose effects replace the rest).
        case persist(JournalWrite)
        /// A dispatcher action: send, hand to the artifact or asset store, log a notice.
        case perform(DispatchAction)
        /// An episode succeeded in this long, from its first dispatch (the duration histogram).
        case episodeTimed(Duration)
        /// Prepare a batch's folder (its trace file, its marker) before its first episode is dispatched.
        case openBatch(BatchOpening)
        /// Write the ended batch's summary, report and closing lines; answer with ``CoordinatorCore/filesWritten(_:summary:report:)``.
        case closeBatch(BatchClosing)
        /// Publish this status document (the shell adds the local pool and the security state).
        case publish(FleetStatus)
        /// Redraw the progress bar with this line.
        case progressBar(String)
        /// A line of the coordinator's own life.
        case say(CoordinatorEvent)
        /// A retiring local worker has nothing running any more: stop its process.
        case stopLocalWorker(workerId: String, slot: Int)
        case reply(ControlChannel.Reply<BatchListing>, Result<BatchListing, ControlError>)
        /// The journal cannot be written: the coordinator stops and exits 1 (said once).
        case journalBroken(String)
        /// Leave the loop.
        case stop
    }

    /// The batch being dispatched.
    struct CurrentBatch: Sendable {
        let id: String
        let dir: URL
        let startedAt: Date
        let started: ContinuousClock.Instant
    }

    let settings: Settings
    private(set) var dispatcher: Dispatcher
    private(set) var queue: BatchQueue
    private(set) var current: CurrentBatch?
    /// Dispatch stopped (shutdown, a journal that cannot be written): no batch starts, none is accepted.
    private(set) var interrupted = false
    private(set) var journalFailed = false
    /// Local workers being drained before they stop (`coordinator scale` down): worker id → pool slot.
    private(set) var retiring: [String: Int] = [:]
    private var flushPolicy: JournalFlushPolicy
    /// `serve --max-spend-per-day`: the UTC day and what the batches completed on it cost.
    private var today: (day: String, micros: Int)
    private var lastProgress: ContinuousClock.Instant
    private var lastPublished: ContinuousClock.Instant
    private var lastHint: ContinuousClock.Instant
    private let makeBatchId: @Sendable (Date) -> String

    /// - Parameters:
    ///   - spentToday: what batches completed on `time`'s UTC day cost (the journal's record).
    ///   - makeBatchId: names a submitted batch that has no id.
    init(
        settings: Settings,
        dispatcher: Dispatcher,
        queue: BatchQueue,
        spentToday: Int = 0,
        time: Time,
        makeBatchId: @escaping @Sendable (Date) -> String = { Batch.makeId(date: $0) }
    ) {
        self.settings = settings
        self.dispatcher = dispatcher
        self.queue = queue
        self.today = (Self.day(time.date), spentToday)
        self.flushPolicy = JournalFlushPolicy(now: time.now)
        self.lastProgress = time.now
        self.lastPublished = time.now
        self.lastHint = time.now
        self.makeBatchId = makeBatchId
    }

    var state: CoordinatorState { current == nil ? .idle : .running }

    // MARK: - Inputs

    /// The first step: start `batch` (the one-shot batch, or the one the journal held unfinished), else
    /// the oldest queued one.
    mutating func begin(_ batch: Batch?, resumed: Journal.StoredBatch?, time: Time) -> [Effect] {
        var effects = batch.map { start($0, resumed: resumed, time: time) } ?? startNext(time: time)
        effects.append(.publish(status(state, time: time)))
        return effects + afterStep(time: time)
    }

    mutating func handle(_ input: Input, time: Time) -> [Effect] {
        let now = time.now
        var effects: [Effect] = []
        var actions: [DispatchAction]
        switch input {
        case .message(let frames):
            guard let routingId = frames.first else { return [] }
            do throws(DecodeError) {
                let envelope = try Codec.decode(Array(frames.dropFirst()))
                actions = dispatcher.onMessage(from: routingId, envelope, now: now)
            } catch {
                let kind = frames.count > 2 && frames[2].count == 1 ? frames[2][0] : nil
                actions = dispatcher.onDecodeError(from: routingId, error, kindByte: kind, now: now)
            }
        case .sendFailed(let routingId):
            actions = dispatcher.onSendFailed(to: routingId, now: now)
        case .tick:
            actions = dispatcher.onTick(now: now)
            for (workerId, slot) in retiring.sorted(by: { $0.value < $1.value }) {
                actions += dispatcher.retire(workerId: workerId)
                if !dispatcher.isBusy(workerId: workerId) {
                    retiring[workerId] = nil
                    effects.append(.say(.workerDrained(workerId: workerId)))
                    effects.append(.stopLocalWorker(workerId: workerId, slot: slot))
                }
            }
            effects += tickOutputs(time: time)
        case .leaseTimer:
            actions = dispatcher.onLeaseTimer(now: now)
        case .artifact(let event):
            actions = dispatcher.onArtifactEvent(event, now: now)
        case .submit(let id, let episodes, let reply):
            return submit(id: id, episodes: episodes, reply: reply, time: time) + afterStep(time: time)
        case .shutdown:
            interrupted = true
            return [.say(.shutdownRequested), .stop]
        }
        return settle(actions, time: time) + effects + afterStep(time: time)
    }

    /// `coordinator scale` down: these local workers get no more jobs and are stopped once idle.
    mutating func retire(_ workers: [(workerId: String, slot: Int)], time: Time) -> [Effect] {
        for worker in workers { retiring[worker.workerId] = worker.slot }
        var actions: [DispatchAction] = []
        for workerId in retiring.keys.sorted() { actions += dispatcher.retire(workerId: workerId) }
        return settle(actions, time: time)
    }

    /// A ``Effect/persist(_:)`` was carried out; what depended on it follows.
    mutating func persisted(_ write: JournalWrite, time: Time) -> [Effect] {
        guard case .enqueue(let batch, let reply) = write else { return [] }
        return accept(batch, reply: reply, time: time)
    }

    /// A ``Effect/persist(_:)`` failed; these effects replace the rest of the step. A submission is
    /// refused (503); any other write stops the coordinator, since without the journal's record a restart
    /// would run finished episodes again.
    mutating func persistFailed(_ write: JournalWrite, error: String, time: Time) -> [Effect] {
        if case .enqueue(_, let reply) = write {
            return [
                .say(.submitRefused(error: error)),
                .reply(reply, .failure(.unavailable("cannot write the journal: \(error)"))),
            ]
        }
        interrupted = true
        defer { journalFailed = true }
        return journalFailed ? [.stop] : [.journalBroken(error), .stop]
    }

    /// The shell wrote the ended batch's files (nil: that one could not be written).
    mutating func filesWritten(_ batchId: String, summary: String?, report: String?) {
        queue.filesWritten(batchId, summary: summary, report: report)
    }

    /// The loop ends: the batch still running is closed as interrupted (the journal keeps it, to be
    /// resumed), the last status published, and every worker told goodbye.
    mutating func stop(time: Time) -> [Effect] {
        let closing = finish(time: time)
        let oneShotDone = !settings.serve && !interrupted
        var effects = closing.filter { if case .persist = $0 { false } else { true } }
        effects.append(.publish(status(oneShotDone ? .completed : .stopped, time: time)))
        let goodbye = dispatcher.shutdown(
            reason: oneShotDone ? .batchComplete : .shutdown,
            detail: oneShotDone ? "batch \(dispatcher.batchId) complete" : "coordinator stopped"
        )
        // The journal's close goes last: the goodbye depends on nothing it records, and a journal that
        // fails here must not keep the workers waiting for a DISCONNECT.
        return effects + goodbye.map(Effect.perform) + closing.filter { if case .persist = $0 { true } else { false } }
    }

    /// The fleet's status document, listing the episodes `selection` names and every batch known.
    func status(
        _ state: CoordinatorState,
        time: Time,
        episodes selection: EpisodeSelection = .standard
    ) -> FleetStatus {
        var status = dispatcher.fleetStatus(state: state, now: time.now, episodes: selection)
        status.mode = settings.serve ? "serve" : "batch"
        status.batches = queue.live(
            running: current.map { ($0.id, dispatcher.succeededCount, dispatcher.failedCount) }
        )
        return status
    }

    // MARK: - Batches

    /// Makes `batch` the one being dispatched and hands out its first work.
    private mutating func start(_ batch: Batch, resumed: Journal.StoredBatch?, time: Time) -> [Effect] {
        let dir = settings.output.appendingPathComponent(batch.id)
        var effects: [Effect] = [.openBatch(BatchOpening(batchId: batch.id, dir: dir))]
        if settings.dispatch.dailySpendCapMicros != nil {
            rollDay(time.date)
            dispatcher.spentEarlierToday = today.micros
        }
        if let resumed {
            let done = resumed.episodes.count { $0.isFinished }
            let inFlight = resumed.episodes.count { $0.status == .running }
            _ = dispatcher.load(
                batchId: resumed.id,
                restored: resumed.episodes,
                counters: resumed.counters,
                holdUntil: time.now + settings.dispatch.deadAfter,
                now: nil
            )
            if settings.journaled { effects.append(.persist(.resume(batchId: resumed.id))) }
            effects.append(
                .say(
                    .resuming(
                        batchId: resumed.id,
                        done: done,
                        total: resumed.episodes.count,
                        inFlight: inFlight,
                        hold: settings.dispatch.deadAfter
                    )
                )
            )
        } else {
            _ = dispatcher.load(batchId: batch.id, specs: batch.episodes, attemptFloors: queue.floors, now: nil)
            if settings.journaled {
                effects.append(.persist(.begin(batchId: batch.id, episodes: dispatcher.episodes.records)))
            }
        }
        current = CurrentBatch(id: batch.id, dir: dir, startedAt: time.date, started: time.now)
        queue.started(batch, at: time.date)
        effects.append(
            .say(
                .started(
                    batchId: batch.id,
                    episodes: batch.episodes.count,
                    dir: dir.path,
                    workers: dispatcher.workers.count,
                    perWorker: settings.maxParallelEpisodes,
                    maxAttempts: settings.dispatch.maxAttempts
                )
            )
        )
        lastProgress = time.now
        return effects + settle(dispatcher.dispatchPending(now: time.now), time: time)
    }

    /// Starts the oldest queued batch, if there is one and none runs.
    private mutating func startNext(time: Time) -> [Effect] {
        guard current == nil, !interrupted, let next = queue.popNext() else { return [] }
        return start(next, resumed: nil, time: time)
    }

    /// Closes the current batch: its listing and the daily spend, then its files, the status saying it
    /// ended (published once the files are there) and the journal's record.
    private mutating func finish(time: Time) -> [Effect] {
        guard let run = current else { return [] }
        current = nil
        let complete = dispatcher.isComplete
        if settings.dispatch.dailySpendCapMicros != nil, complete {
            rollDay(time.date)
            today.micros += dispatcher.episodes.reduce(0) { $0 + $1.costMicros }
        }
        queue.finished(
            run.id,
            complete: complete,
            succeeded: dispatcher.succeededCount,
            failed: dispatcher.failedCount,
            attempts: dispatcher.episodes.lazy.map { ($0.id, $0.attempts) },
            at: time.date
        )
        // Listed with its files from now on; the shell writes them before anything else is published, and
        // says which could not be written (``filesWritten(_:summary:report:)``).
        queue.filesWritten(
            run.id,
            summary: run.dir.appendingPathComponent("summary.json").path,
            report: run.dir.appendingPathComponent("report.html").path
        )
        var effects: [Effect] = [
            .closeBatch(
                BatchClosing(
                    batchId: run.id,
                    dir: run.dir,
                    startedAt: run.startedAt,
                    finishedAt: time.date,
                    wall: time.now - run.started,
                    complete: complete,
                    dispatcher: dispatcher
                )
            ),
            .publish(status(complete ? .completed : .interrupted, time: time)),
        ]
        if settings.journaled, !journalFailed {
            // A complete batch is closed; an interrupted one stays `running`, to be resumed.
            effects.append(.persist(.close(counters: dispatcher.counters, state: complete ? .completed : nil)))
            flushPolicy.flushed(now: time.now)
        }
        return effects
    }

    /// After every step: a batch that ended is closed and, in `serve`, the next one started; one-shot, the
    /// loop ends with it.
    private mutating func afterStep(time: Time) -> [Effect] {
        var effects: [Effect] = []
        if current != nil, dispatcher.isComplete {
            effects += finish(time: time)
            guard settings.serve else { return effects + [.stop] }
            effects += startNext(time: time)
            effects.append(.publish(status(state, time: time)))
        }
        if interrupted { effects.append(.stop) }
        return effects
    }

    // MARK: - Serve's queue

    private mutating func submit(
        id: String?,
        episodes: EpisodeSpecs,
        reply: ControlChannel.Reply<BatchListing>,
        time: Time
    ) -> [Effect] {
        guard settings.serve else { return [.reply(reply, .failure(.notServing))] }
        guard !interrupted else { return [.reply(reply, .failure(.unavailable("the coordinator is stopping")))] }
        switch queue.prepare(id: id, episodes: episodes, generatedId: makeBatchId(time.date)) {
        case .failure(let error):
            return [.reply(reply, .failure(error))]
        case .success(let batch):
            // Journaled before it is accepted: a coordinator restarted after the reply still runs it.
            return settings.journaled
                ? [.persist(.enqueue(batch, reply: reply))] : accept(batch, reply: reply, time: time)
        }
    }

    /// A submitted batch is durable: queue it, answer, start it if nothing runs.
    private mutating func accept(_ batch: Batch, reply: ControlChannel.Reply<BatchListing>, time: Time) -> [Effect] {
        queue.enqueue(batch, at: time.date)
        let ahead = queue.waiting.count - 1 + (current == nil ? 0 : 1)
        let started = startNext(time: time)
        let running = current.map { ($0.id, dispatcher.succeededCount, dispatcher.failedCount) }
        let listing = queue.live(running: running).first { $0.id == batch.id }
        return [
            .say(.submitted(batchId: batch.id, episodes: batch.episodes.count, queuedBeforeIt: ahead)),
            .reply(reply, listing.map { .success($0) } ?? .failure(.unavailable("batch \(batch.id) was not listed"))),
        ] + started
    }

    // MARK: - Journal, progress

    /// A step's dispatcher actions, preceded by what the journal must record of them.
    private mutating func settle(_ actions: [DispatchAction], time: Time) -> [Effect] {
        var effects: [Effect] = []
        if settings.journaled, !journalFailed {
            let (entries, urgent) = JournalEntries.of(actions, dispatcher: dispatcher)
            let flush = flushPolicy.shouldFlush(adding: entries, urgent: urgent, now: time.now)
            if flush || !entries.isEmpty {
                effects.append(.persist(.entries(entries, flush: flush ? dispatcher.counters : nil)))
            }
        }
        for case .notice(.episodeSucceeded(let id, _, _, _, _, _, _)) in actions {
            if let e = dispatcher.episode(id), let start = e.firstDispatchedAt, let end = e.finishedAt {
                effects.append(.episodeTimed(end - start))
            }
        }
        return effects + actions.map(Effect.perform)
    }

    /// What a tick shows: the status document, the progress bar or line, the hint that no worker is there.
    private mutating func tickOutputs(time: Time) -> [Effect] {
        let now = time.now
        var effects: [Effect] = []
        if now - lastPublished >= settings.publishInterval {
            lastPublished = now
            effects.append(.publish(status(state, time: time)))
        }
        switch settings.progress {
        case .bar where now - lastProgress >= .milliseconds(250):
            lastProgress = now
            effects.append(
                .progressBar(
                    current == nil
                        ? "idle: \(queue.batchesDone) batches done, waiting for `coordinator submit` · \(dispatcher.workers.count) workers"
                        : dispatcher.progress(now: now).barLine()
                )
            )
        case .log where current != nil && now - lastProgress >= settings.progressInterval:
            lastProgress = now
            let snapshot = dispatcher.progress(now: now)
            if snapshot.elapsed != nil { effects.append(.say(.progress(snapshot.logLine))) }
        default:
            break
        }
        if current != nil, dispatcher.workers.isEmpty, now - lastHint >= settings.hintInterval {
            lastHint = now
            effects.append(.say(.waitingForWorkers(pending: dispatcher.pendingCount)))
        }
        return effects
    }

    private mutating func rollDay(_ date: Date) {
        let day = Self.day(date)
        if day != today.day { today = (day, 0) }
    }

    private static func day(_ date: Date) -> String { String(Timestamp.string(from: date).prefix(10)) }
}

/// A line of the coordinator's own life, said by ``CoordinatorLog``.
enum CoordinatorEvent: Sendable, Equatable {
    case submitted(batchId: String, episodes: Int, queuedBeforeIt: Int)
    /// The journal could not record a submission: it was refused.
    case submitRefused(error: String)
    case resuming(batchId: String, done: Int, total: Int, inFlight: Int, hold: Duration)
    case started(batchId: String, episodes: Int, dir: String, workers: Int, perWorker: Int, maxAttempts: Int)
    /// The periodic progress line (`--progress log`).
    case progress(String)
    case waitingForWorkers(pending: Int)
    case workerDrained(workerId: String)
    case shutdownRequested
}

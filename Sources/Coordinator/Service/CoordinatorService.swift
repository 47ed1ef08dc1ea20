import Foundation
import Logging
import Protocol
import ServiceLifecycle
import Shared
import Synchronization

/// The coordinator's I/O shell: binds the ROUTER socket, starts the local worker pool, feeds socket
/// events and clock ticks into the ``Dispatcher``, carries out its actions, and writes the batch's
/// `summary.json` and `trace.jsonl`.
///
/// The ROUTER socket is owned by one ``ZMQSocketThread``; this service only queues frames to it and
/// reads its event stream. The dispatcher is owned by the single task running ``run()``.
final class CoordinatorService: Service {
    struct Settings: Sendable {
        var bind: String
        var output: URL
        var batch: Batch
        var dispatch: DispatchSettings
        var leases: LeaseSettings = LeaseSettings()
        /// The durable journal (`--state`), if any, and the batch it held unfinished (being resumed).
        var journal: Journal?
        var resumed: Journal.StoredBatch?
        var parallelism: ParallelismSettings
        /// Local worker processes to start (`--workers`); 0 waits for remote workers only.
        var localWorkers: Int
        var workerExecutable: String?
        var workerArguments: [String]
        /// How often the dispatcher's clock advances. The default is 50 ms.
        var tick: Duration = .milliseconds(50)
        /// The live progress bar (a terminal), periodic progress log lines, or neither.
        var progress: ProgressMode = .log
        /// How often a progress log line is written (``ProgressMode/log``). The default is 10 s.
        var progressInterval: Duration = .seconds(10)
        /// Where the HTTP side reads the fleet's state and metrics (published every 250 ms), if it runs.
        var board: StatusBoard?
        var metrics: FleetMetrics?
    }

    enum ProgressMode: String, Sendable, CaseIterable {
        case bar, log, off
    }

    /// How the batch ended, read by `main` after the service group finished.
    struct Outcome: Sendable {
        var succeeded = 0
        var failed = 0
        var total = 0
        var interrupted = false
        var summaryPath: String?
        var exitCode: Int32 { (!interrupted && failed == 0 && succeeded == total) ? 0 : 1 }
    }

    private let settings: Settings
    private let logger: Logger
    private let outcomeBox = Mutex(Outcome())
    /// Called with the real endpoint once the socket is bound (tests and `--workers` use it).
    private let onBound: @Sendable (String) -> Void

    var outcome: Outcome { outcomeBox.withLock { $0 } }

    init(settings: Settings, logger: Logger, onBound: @escaping @Sendable (String) -> Void = { _ in }) {
        self.settings = settings
        self.logger = logger
        self.onBound = onBound
    }

    private enum Input: Sendable {
        case socket(ZMQSocketThread.Event)
        case tick
        /// A lease deadline passed (a permit left a window, a slot expired, a pause ended).
        case leaseTimer
        /// The artifact store carried out a command.
        case artifact(ArtifactEvent)
        case shutdown
    }

    func run() async throws {
        let startedAt = Date()
        let clock = ContinuousClock()
        let started = clock.now
        let context = try ZMQContext()
        let bindEndpoint = settings.bind
        let thread = try await ZMQSocketThread(name: "coordinator-router", context: context) { ctx in
            let socket = try ZMQSocket(context: ctx, type: .router, linger: .milliseconds(1000))
            try socket.setRouterMandatory(true)
            try socket.setMaxMessageSize(Int64(WireProtocol.maxMessageBytes))
            try socket.setSendHighWaterMark(10_000)
            try socket.setReceiveHighWaterMark(10_000)
            try socket.setHandshakeInterval(.seconds(5))
            try socket.setHeartbeat(interval: .seconds(1), timeout: .seconds(3), ttl: .seconds(3))
            _ = try socket.bind(bindEndpoint)
            return socket
        }
        let endpoint = thread.lastEndpoint ?? settings.bind
        onBound(endpoint)
        let batchDir = settings.output.appendingPathComponent(settings.batch.id)
        let traceWriter = try TraceWriter(url: batchDir.appendingPathComponent("trace.jsonl"))
        logger.info(
            "coordinator listening",
            metadata: ["endpoint": "\(endpoint)", "batch": "\(settings.batch.id)", "output": "\(batchDir.path)"]
        )
        logger.info(
            "Batch processing: \(settings.batch.episodes.count) episodes with max parallelism: \(settings.parallelism.maxParallelEpisodes) per worker",
            metadata: ["local_workers": "\(settings.localWorkers)", "max_attempts": "\(settings.dispatch.maxAttempts)"]
        )
        if settings.localWorkers == 0 {
            logger.notice("no local workers; start workers with: worker --connect \(endpoint)")
        }

        var dispatcher: Dispatcher
        if let resumed = settings.resumed {
            dispatcher = Dispatcher(
                batchId: resumed.id,
                restored: resumed.episodes,
                counters: resumed.counters,
                settings: settings.dispatch,
                leases: settings.leases,
                holdUntil: clock.now + settings.dispatch.deadAfter,
                makeSession: { Self.randomSession() }
            )
            settings.journal?.resume(batchId: resumed.id)
            if let journal = settings.journal, !settings.leases.isEmpty {
                // Calls its predecessor allowed still count in the windows: no burst after a restart.
                let longest =
                    settings.leases.budgets.map {
                        max($0.requestWindowMs, $0.units == nil ? 0 : $0.unitWindowMs)
                    }.max() ?? 0
                let recent =
                    (try? journal.recentStarts(within: .milliseconds(longest) + settings.leases.useWithin)) ?? [:]
                dispatcher.seedLeases(recentCalls: recent, now: clock.now)
                let seeded = recent.values.reduce(0) { $0 + $1.count }
                if seeded > 0 { logger.info("lease windows seeded from the journal", metadata: ["calls": "\(seeded)"]) }
            }
            let done = resumed.episodes.count { $0.isFinished }
            let inFlight = resumed.episodes.count { $0.status == .running }
            logger.notice(
                "resuming batch \(resumed.id) from the journal: \(done)/\(resumed.episodes.count) episodes done, \(inFlight) were in flight (held \(settings.dispatch.deadAfter.shortDescription) for their workers to re-announce them)",
                metadata: ["journal": "\(settings.journal?.url.path ?? "-")"]
            )
        } else {
            dispatcher = Dispatcher(
                batchId: settings.batch.id,
                specs: settings.batch.episodes,
                settings: settings.dispatch,
                leases: settings.leases,
                makeSession: { Self.randomSession() }
            )
            do {
                try settings.journal?.begin(batchId: settings.batch.id, episodes: dispatcher.episodes)
            } catch {
                logger.error("cannot write the journal; going on without it", metadata: ["error": "\(error)"])
            }
        }
        let journal = settings.journal
        var lastFlush = clock.now
        if !settings.leases.isEmpty {
            let budgets = settings.leases.budgets.map(Self.describe).joined(separator: "; ")
            logger.info("Rate-limit budgets (\(settings.leases.mode.rawValue)): \(budgets)")
        }
        let (inputs, continuation) = AsyncStream.makeStream(of: Input.self)
        // The disk task owns the artifact store and carries out its commands in order, off this loop, so
        // that writing and syncing files never delays a lease grant or a heartbeat.
        let (storeCommands, storeQueue) = AsyncStream.makeStream(of: ArtifactCommand.self)
        let store = ArtifactStore(batchFolder: batchDir)
        store.clearIncoming()
        let diskTask = Task.detached {
            for await command in storeCommands {
                if let event = store.perform(command) { continuation.yield(.artifact(event)) }
            }
        }
        var rejections = RejectionLog()
        var interrupted = false
        var lastProgress = clock.now
        var lastPublished = clock.now
        if settings.progress == .bar { StatusLine.activate() }
        func publish(_ state: String, now: ContinuousClock.Instant) {
            guard let board = settings.board else { return }
            let status = dispatcher.fleetStatus(state: state, now: now)
            board.publish(status)
            settings.metrics?.update(status)
        }
        publish("running", now: clock.now)

        await withTaskGroup(of: Void.self) { group in
            thread.feed(continuation, in: &group, wrap: { .socket($0) }, tick: .tick, every: settings.tick)
            if settings.localWorkers > 0, let executable = settings.workerExecutable {
                let pool = LocalWorkerPool(
                    settings: .init(
                        count: settings.localWorkers,
                        executable: executable,
                        endpoint: endpoint,
                        arguments: settings.workerArguments
                    ),
                    logger: logger
                )
                group.addTask { await pool.run() }
            }

            await withGracefulShutdownHandler {
                if dispatcher.isComplete { return }
                var lastHint = clock.now
                // One sleeping task wakes the loop at the lease manager's next deadline, so a permit is
                // granted the moment the budget allows, not at the next 50 ms tick.
                var leaseTimer: (at: ContinuousClock.Instant, task: Task<Void, Never>)?
                defer { leaseTimer?.task.cancel() }
                for await input in inputs {
                    let now = clock.now
                    let actions: [DispatchAction]
                    switch input {
                    case .socket(.message(let frames)):
                        guard let routingId = frames.first else { continue }
                        do throws(DecodeError) {
                            let envelope = try Codec.decode(Array(frames.dropFirst()))
                            actions = dispatcher.onMessage(from: routingId, envelope, now: now)
                        } catch {
                            let kind = frames.count > 2 && frames[2].count == 1 ? frames[2][0] : nil
                            actions = dispatcher.onDecodeError(from: routingId, error, kindByte: kind, now: now)
                        }
                    case .socket(.sendFailed(let frames, let error)):
                        logger.debug("send failed", metadata: ["error": "\(error)"])
                        actions = dispatcher.onSendFailed(to: frames.first ?? [], now: now)
                    case .tick:
                        actions = dispatcher.onTick(now: now)
                        if now - lastPublished >= .milliseconds(250) {
                            lastPublished = now
                            publish("running", now: now)
                        }
                        switch settings.progress {
                        case .bar where now - lastProgress >= .milliseconds(250):
                            lastProgress = now
                            StatusLine.update(dispatcher.progress(now: now).barLine())
                        case .log where now - lastProgress >= settings.progressInterval:
                            lastProgress = now
                            let snapshot = dispatcher.progress(now: now)
                            if snapshot.elapsed != nil { logger.info("\(snapshot.logLine)") }
                        default:
                            break
                        }
                        if dispatcher.workers.isEmpty, now - lastHint >= .seconds(10) {
                            lastHint = now
                            logger.notice(
                                "waiting for workers",
                                metadata: ["endpoint": "\(endpoint)", "pending": "\(dispatcher.pendingCount)"]
                            )
                        }
                    case .leaseTimer:
                        leaseTimer = nil
                        actions = dispatcher.onLeaseTimer(now: now)
                    case .artifact(let event):
                        actions = dispatcher.onArtifactEvent(event, now: now)
                    case .shutdown:
                        interrupted = true
                        logger.notice("shutdown requested; stopping dispatch")
                        actions = []
                    }
                    if let journal {
                        // Journal first: an episode's end is durable before it is logged or acted on,
                        // so a coordinator killed right after never runs a finished episode again.
                        // Other changes are batched (at most 100 ms behind).
                        let ended = Self.journal(actions, dispatcher: dispatcher, into: journal)
                        if journal.hasPendingWrites, ended || now - lastFlush >= .milliseconds(100) {
                            lastFlush = now
                            Self.flush(journal, dispatcher: dispatcher, logger: logger)
                        }
                    }
                    perform(
                        actions,
                        thread: thread,
                        traceWriter: traceWriter,
                        rejections: &rejections,
                        store: storeQueue
                    )
                    if let due = dispatcher.nextLeaseDeadline(after: clock.now) {
                        if leaseTimer.map({ due < $0.at }) ?? true {
                            leaseTimer?.task.cancel()
                            let task = Task {
                                try? await Task.sleep(until: due, tolerance: .microseconds(200), clock: clock)
                                if !Task.isCancelled { continuation.yield(.leaseTimer) }
                            }
                            leaseTimer = (due, task)
                        }
                    }
                    if dispatcher.isComplete || interrupted { break }
                }
            } onGracefulShutdown: {
                continuation.yield(.shutdown)
                SecondSignal.exitOnNext(logger: self.logger)
            }
            // The batch is over: no stale bar under the closing lines.
            StatusLine.finish()
            publish(dispatcher.isComplete ? "completed" : "interrupted", now: clock.now)

            // Say goodbye so that workers stop waiting, then give the socket a moment to flush.
            let goodbye = dispatcher.shutdown(
                reason: interrupted ? .shutdown : .batchComplete,
                detail: interrupted ? "coordinator stopped" : "batch \(settings.batch.id) complete"
            )
            perform(goodbye, thread: thread, traceWriter: traceWriter, rejections: &rejections, store: storeQueue)
            if let journal {
                // A complete batch is closed; an interrupted one stays `running`, to be resumed.
                Self.flush(
                    journal,
                    dispatcher: dispatcher,
                    logger: logger,
                    status: dispatcher.isComplete ? "completed" : nil
                )
                let s = journal.stats
                logger.info(
                    "journal flushed",
                    metadata: [
                        "path": "\(journal.url.path)", "flushes": "\(s.flushes)",
                        "episode_writes": "\(s.episodeWrites)",
                        "events": "\(s.events)", "write_time": "\(s.flushTime.shortDescription)",
                    ]
                )
            }
            try? await Task.sleep(for: .milliseconds(200))
            group.cancelAll()
            continuation.finish()
        }
        storeQueue.finish()
        await diskTask.value
        StatusLine.finish()
        await thread.close()
        context.shutdown()
        traceWriter.close()

        let wall = clock.now - started
        let summary = BatchSummary(
            dispatcher: dispatcher,
            batchDir: batchDir,
            startedAt: startedAt,
            finishedAt: Date(),
            wallSeconds: wall.secondsDouble,
            workersSeen: dispatcher.instancesSeen.count,
            slots: dispatcher.peakSlots
        )
        var summaryPath: String?
        do {
            try summary.write(to: batchDir)
            summaryPath = batchDir.appendingPathComponent("summary.json").path
        } catch {
            logger.error("cannot write summary.json", metadata: ["dir": "\(batchDir.path)", "error": "\(error)"])
        }
        do {
            try BatchReport.write(summary: summary, rates: BatchReport.rates(from: dispatcher), to: batchDir)
        } catch {
            logger.error("cannot write report.html", metadata: ["dir": "\(batchDir.path)", "error": "\(error)"])
        }
        let succeeded = dispatcher.succeededCount
        let total = dispatcher.episodes.count
        let line =
            "Batch complete: \(succeeded)/\(total) successful in \(wall.shortDescription) (\(dispatcher.peakWorkers) workers, \(dispatcher.peakSlots) slots)"
        let meta: Logger.Metadata = [
            "batch": "\(settings.batch.id)", "failed": "\(dispatcher.failedCount)",
            "summary": "\(summaryPath ?? "not written")",
        ]
        if interrupted {
            logger.warning(
                "Batch interrupted: \(succeeded)/\(total) successful in \(wall.shortDescription) (\(dispatcher.peakWorkers) workers, \(dispatcher.peakSlots) slots)",
                metadata: meta
            )
        } else if succeeded == total {
            logger.info("\(line)", metadata: meta)
        } else {
            logger.error("\(line)", metadata: meta)
        }
        for (provider, budget) in summary.budgets.sorted(by: { $0.key < $1.key }) {
            let signals = budget.signals.values.reduce(0, +)
            logger.info(
                "budget \(provider): \(budget.started) calls started, busiest window \(budget.maxStartedInWindow) (limit \(budget.limit)), \(signals) provider signals",
                metadata: [
                    "provider": "\(provider)", "granted": "\(budget.granted)", "returned": "\(budget.returned)",
                    "mean_wait_ms": "\(budget.meanWaitMs)", "pauses": "\(budget.pauses)",
                    "decreases": "\(budget.decreases)",
                ]
            )
        }
        let counters = dispatcher.counters
        if counters.totalRejected > 0 || counters.staleResults > 0 || counters.workersLost > 0
            || counters.duplicateResults > 0
        {
            logger.notice(
                "protocol counters",
                metadata: [
                    "rejected": "\(counters.totalRejected)", "stale_results": "\(counters.staleResults)",
                    "workers_lost": "\(counters.workersLost)", "attempts_requeued": "\(counters.attemptsRequeued)",
                    "duplicate_results": "\(counters.duplicateResults)",
                    "late_results_accepted": "\(counters.lateResultsAccepted)",
                    "attempts_readopted": "\(counters.attemptsReadopted)",
                ]
            )
        }
        outcomeBox.withLock {
            $0 = Outcome(
                succeeded: succeeded,
                failed: dispatcher.failedCount,
                total: total,
                interrupted: interrupted,
                summaryPath: summaryPath
            )
        }
    }

    private func perform(
        _ actions: [DispatchAction],
        thread: ZMQSocketThread,
        traceWriter: TraceWriter,
        rejections: inout RejectionLog,
        store: AsyncStream<ArtifactCommand>.Continuation
    ) {
        for action in actions {
            switch action {
            case .send(let routingId, let envelope):
                thread.send([routingId] + Codec.encode(envelope))
            case .store(let command):
                store.yield(command)
            case .notice(let notice):
                log(notice, traceWriter: traceWriter, rejections: &rejections)
            }
        }
    }

    private func log(_ notice: DispatchNotice, traceWriter: TraceWriter, rejections: inout RejectionLog) {
        switch notice {
        case .workerJoined(let workerId, let host, let capacity, _):
            logger.info(
                "worker joined",
                metadata: [
                    "worker": "\(workerId)", "host": "\(host)", "episodes": "\(capacity.episodes)",
                    "api_calls": "\(capacity.apiCalls)",
                ]
            )
        case .workerLeft(let workerId, let reason, let requeued):
            logger.warning(
                "worker left",
                metadata: [
                    "worker": "\(workerId)", "reason": "\(reason)", "requeued": "\(requeued.count)",
                    "episodes": "\(requeued.map(\.episodeId).joined(separator: ","))",
                ]
            )
        case .dispatched(let ref, let workerId):
            logger.debug(
                "dispatched",
                metadata: ["episode": "\(ref.episodeId)", "attempt": "\(ref.attempt)", "worker": "\(workerId)"]
            )
        case .episodeSucceeded(
            let id,
            let attempt,
            let workerId,
            let finished,
            let total,
            let durationMs,
            let placeholders
        ):
            let duration = Duration.milliseconds(durationMs).shortDescription
            logger.info(
                "✅ \(id) completed (\(finished)/\(total)) in \(duration)",
                metadata: [
                    "episode": "\(id)", "worker": "\(workerId)", "attempt": "\(attempt)",
                    "placeholders": "\(placeholders)",
                ]
            )
        case .attemptFailed(let ref, let workerId, let error, let willRetry):
            logger.warning(
                "attempt \(ref.attempt) failed\(willRetry ? "; retrying" : "")",
                metadata: ["episode": "\(ref.episodeId)", "worker": "\(workerId)", "error": "\(error)"]
            )
        case .episodeFailed(let id, let finished, let total, let reasons):
            logger.error(
                "❌ \(id) failed (\(finished)/\(total)) after \(reasons.count) attempts: \(reasons.last ?? "unknown")",
                metadata: ["episode": "\(id)"]
            )
        case .trace(let workerId, let instance, let ref, let events, let stale):
            traceWriter.append(workerId: workerId, instance: instance, ref: ref, events: events, stale: stale)
        case .stale(let kind, let ref, let workerId):
            logger.notice(
                "stale \(kind) ignored",
                metadata: ["episode": "\(ref.episodeId)", "attempt": "\(ref.attempt)", "worker": "\(workerId)"]
            )
        case .rejected(let reason, let detail):
            let (count, shouldLog) = rejections.record(reason)
            if shouldLog {
                logger.warning(
                    "message rejected",
                    metadata: ["reason": "\(reason)", "detail": "\(detail)", "count": "\(count)"]
                )
            }
        case .batchComplete:
            break
        case .lease(let notice):
            log(notice, rejections: &rejections)
        case .workerDraining(let workerId, let running):
            logger.notice(
                "worker draining: no more jobs for it",
                metadata: ["worker": "\(workerId)", "running": "\(running)"]
            )
        case .collecting(let ref, let workerId, let files, let bytes, let delivery):
            logger.debug(
                delivery == .transfer ? "pulling episode files" : "checking episode files (shared delivery)",
                metadata: [
                    "episode": "\(ref.episodeId)", "attempt": "\(ref.attempt)", "worker": "\(workerId)",
                    "files": "\(files)", "bytes": "\(bytes)",
                ]
            )
        case .readopted(let ref, let workerId):
            logger.info(
                "attempt re-adopted from its reconnected worker",
                metadata: ["episode": "\(ref.episodeId)", "attempt": "\(ref.attempt)", "worker": "\(workerId)"]
            )
        }
    }

    private func log(_ notice: LeaseNotice, rejections: inout RejectionLog) {
        switch notice {
        case .decreased(let provider, let factor, let concurrency, let signal):
            var meta: Logger.Metadata = ["provider": "\(provider)", "signal": "\(signal.rawValue)"]
            if let concurrency { meta["max_concurrent"] = "\(concurrency)" }
            logger.warning(
                "\(provider) budget lowered to \(Int((factor * 100).rounded()))% after a 429; recovering over clean windows",
                metadata: meta
            )
        case .paused(let provider, let duration, let signal):
            logger.warning(
                "\(provider) paused for \(duration.secondsText) on every worker",
                metadata: ["provider": "\(provider)", "signal": "\(signal.rawValue)"]
            )
        case .circuitOpened(let provider, let detail):
            logger.critical(
                "🔴 \(provider): billing or quota error, circuit OPEN: every remaining \(provider) call uses a placeholder. Fix the account, then rerun the failed items.",
                metadata: ["provider": "\(provider)", "detail": "\(detail)"]
            )
        case .started, .granted:
            break  // journaled, not logged
        case .rejected(let reason, let detail):
            let (count, shouldLog) = rejections.record(reason)
            if shouldLog {
                logger.warning(
                    "lease message rejected",
                    metadata: ["reason": "\(reason)", "detail": "\(detail)", "count": "\(count)"]
                )
            }
        }
    }

    /// `image: 10 per 1s, 4 concurrent`.
    static func describe(_ budget: ProviderBudget) -> String {
        var parts: [String] = []
        if let r = budget.requests {
            parts.append("\(r) per \(Duration.milliseconds(budget.requestWindowMs).shortDescription)")
        }
        if let b = budget.burst { parts.append("burst \(b)") }
        if let c = budget.maxConcurrent { parts.append("\(c) concurrent") }
        if let u = budget.units {
            parts.append("\(u) units per \(Duration.milliseconds(budget.unitWindowMs).shortDescription)")
        }
        return "\(budget.provider): " + (parts.isEmpty ? "no limit" : parts.joined(separator: ", "))
    }

    /// Buffers what the dispatcher's notices changed: the episodes' latest state and an event each.
    /// Returns whether the buffer must be written before the actions are carried out: an episode ended,
    /// or permits were granted.
    @discardableResult
    private static func journal(_ actions: [DispatchAction], dispatcher: Dispatcher, into journal: Journal) -> Bool {
        var ended = false
        func record(_ id: String, _ event: String, attempt: Int? = nil, worker: String? = nil) {
            guard let episode = dispatcher.episode(id) else { return }
            journal.record(episode)
            journal.event(event, episode: id, attempt: attempt ?? episode.attempts, worker: worker ?? episode.workerId)
        }
        for case .notice(let notice) in actions {
            switch notice {
            case .dispatched(let ref, let workerId):
                record(ref.episodeId, "dispatched", attempt: ref.attempt, worker: workerId)
            case .episodeSucceeded(let id, let attempt, let workerId, _, _, _, _):
                ended = true
                record(id, "succeeded", attempt: attempt, worker: workerId)
            case .attemptFailed(let ref, let workerId, _, _):
                record(ref.episodeId, "failed", attempt: ref.attempt, worker: workerId)
            case .episodeFailed(let id, _, _, _):
                ended = true
                record(id, "episode_failed")
            case .workerLeft(let workerId, _, let requeued):
                for ref in requeued { record(ref.episodeId, "lost", attempt: ref.attempt, worker: workerId) }
            case .readopted(let ref, let workerId):
                record(ref.episodeId, "readopted", attempt: ref.attempt, worker: workerId)
            case .lease(.started(let provider, let count)):
                journal.leaseStarted(provider: provider, count: count)
            case .lease(.granted(let provider, let count)):
                // Write-ahead: flushed before the grant leaves (see LeaseNotice.granted).
                journal.leaseStarted(provider: provider, count: count)
                ended = true
            default: break
            }
        }
        return ended
    }

    private static func flush(_ journal: Journal, dispatcher: Dispatcher, logger: Logger, status: String? = nil) {
        do {
            try journal.flush(counters: dispatcher.counters, status: status)
        } catch {
            logger.error("journal write failed", metadata: ["error": "\(error)", "path": "\(journal.url.path)"])
        }
    }

    /// A 32-hex-character session token from the system's random generator.
    static func randomSession() -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<16).map { _ in
            let b = UInt8.random(in: 0...255, using: &rng)
            return String(b >> 4, radix: 16) + String(b & 0x0F, radix: 16)
        }.joined()
    }
}

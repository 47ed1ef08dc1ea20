import DequeModule
import Foundation
import Logging
import Protocol
import ServiceLifecycle
import Shared
import Synchronization

/// The coordinator's I/O shell: binds the ROUTER socket, starts the local worker pool, feeds socket
/// events, clock ticks and HTTP API requests into the ``Dispatcher``, carries out its actions, and writes
/// each batch's `summary.json`, `report.html` and `trace.jsonl`.
///
/// One-shot (`coordinator --episodes N`) it runs one batch and returns. As `coordinator serve` it runs
/// the batches submitted through ``ControlChannel`` one after another, on the same workers and the same
/// rate-limit windows, until it is told to stop.
///
/// The ROUTER socket is owned by one ``ZMQSocketThread``; this service only queues frames to it and
/// reads its event stream. The dispatcher, the journal and the batch queue are owned by the single task
/// running ``run()``; the artifact store by the disk task it starts.
final class CoordinatorService: Service {
    struct Settings: Sendable {
        var bind: String
        var output: URL
        /// The batch to run first: the one-shot batch, or a batch `serve` resumes from the journal.
        var batch: Batch?
        var dispatch: DispatchSettings
        var leases: LeaseSettings = LeaseSettings()
        /// The durable journal (`--state`), if any, and the batch it held unfinished (being resumed).
        var journal: Journal?
        /// The `--state` folder as written into each batch folder's marker (``OutputCheck``).
        var stateTag: String?
        var resumed: Journal.StoredBatch?
        var parallelism: ParallelismSettings
        /// Local worker processes to start (`--workers`); 0 waits for remote workers only.
        var localWorkers: Int
        /// The `worker` executable for the local pool; without one, the pool cannot be started or scaled.
        var workerExecutable: String?
        var workerArguments: [String]
        /// Extra environment for local workers (their CURVE keys: never on a command line, which `ps` shows).
        var workerEnvironment: [String: String] = [:]
        /// How often the dispatcher's clock advances. The default is 50 ms.
        var tick: Duration = .milliseconds(50)
        /// The live progress bar (a terminal), periodic progress log lines, or neither.
        var progress: ProgressMode = .log
        /// How often a progress log line is written (``ProgressMode/log``). The default is 10 s.
        var progressInterval: Duration = .seconds(10)
        /// Where the HTTP side reads the fleet's state and metrics (published every 250 ms: the fleet-wide
        /// figures and at most 100 episodes, so that the cost does not grow with the batch), if it runs.
        var board: StatusBoard?
        var metrics: FleetMetrics?
        /// `coordinator serve`: keep running after a batch and take the next from the queue.
        var serve = false
        /// Batches the journal holds as submitted and not started (a restarted `serve`), oldest first.
        var queued: [Batch] = []
        /// Requests of the HTTP API (submit, scale).
        var control: ControlChannel?
        /// CURVE on the ROUTER socket and the allow-list of worker keys (`--curve-secret`, `--allow-workers`).
        var security: CoordinatorSecurity?
        /// The asset store (PROTOCOL §18), unless `--no-reuse`. It is opened when the service starts; one
        /// that cannot be opened turns reuse off for the run (said at error level).
        var assetStore: AssetStore.Settings?
    }

    enum ProgressMode: String, Sendable, CaseIterable {
        case bar, log, off
    }

    /// How the (last) batch ended, read by `main` after the service group finished.
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
    private let journalFailedBox = Mutex(false)
    /// Called with the real endpoint once the socket is bound (tests and `--workers` use it).
    private let onBound: @Sendable (String) -> Void

    var outcome: Outcome { outcomeBox.withLock { $0 } }
    /// The journal could not be written and the coordinator stopped (exit 1): without its record, a
    /// restart would run finished episodes again.
    var journalFailed: Bool { journalFailedBox.withLock { $0 } }

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
        /// A request of the HTTP API.
        case control(ControlChannel.Request)
        case shutdown
    }

    /// Work for the disk task: a new batch's folder, or a command of the current batch's store.
    private enum DiskCommand: Sendable {
        case open(URL)
        case store(ArtifactCommand)
    }

    /// What the loop keeps about the batch being dispatched.
    private struct BatchRun {
        let id: String
        let dir: URL
        let trace: TraceWriter?
        let startedAt: Date
        let started: ContinuousClock.Instant
    }

    func run() async throws {
        let clock = ContinuousClock()
        let context = try ZMQContext()
        let bindEndpoint = settings.bind
        // The ZAP handler is bound first: libzmq asks it about every CURVE connection from the start.
        let zapThread: ZMQSocketThread? =
            if settings.security != nil { try await CoordinatorSecurity.startZAP(context: context) } else { nil }
        let curveSecret = settings.security?.keys.secretKey
        let thread = try await ZMQSocketThread(name: "coordinator-router", context: context) { ctx in
            let socket = try ZMQSocket(context: ctx, type: .router, linger: .milliseconds(1000))
            if let curveSecret {
                try socket.setCurveServer(secretKey: curveSecret, zapDomain: WorkerAuthenticator.domain)
                try socket.monitor(
                    endpoint: CoordinatorSecurity.monitorEndpoint,
                    events: 0x0800 | 0x2000 | 0x4000  // ZMQ_EVENT_HANDSHAKE_FAILED_{NO_DETAIL,PROTOCOL,AUTH}
                )
            }
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
        logger.info(
            settings.serve
                ? "coordinator listening (serve): submit batches with `coordinator submit`" : "coordinator listening",
            metadata: [
                "endpoint": "\(endpoint)", "output": "\(settings.output.path)",
                "batch": "\(settings.batch?.id ?? "-")",
            ]
        )
        if settings.localWorkers == 0 {
            logger.notice("no local workers; start workers with: worker --connect \(endpoint)")
        }
        if settings.serve, settings.journal == nil {
            logger.notice("no --state: submitted batches live in memory only and are lost if the coordinator stops")
        }

        // The asset task owns the store and answers ASSET_GET itself, off this loop.
        var dispatchSettings = settings.dispatch
        var assets: AssetService?
        var assetTask: Task<Void, Never>?
        if dispatchSettings.assetReuse, let storeSettings = settings.assetStore {
            do {
                let store = try AssetStore(settings: storeSettings)
                let s = store.stats
                logger.info(
                    "asset store: paid answers are kept and reused (--no-reuse to pay for each afresh)",
                    metadata: [
                        "path": "\(storeSettings.folder.path)", "answers": "\(s.entries)",
                        "bytes": "\(s.bytes)", "max_bytes": "\(storeSettings.maxBytes)",
                    ]
                )
                let service = AssetService(logger: logger)
                assets = service
                assetTask = Task.detached { await service.run(store: store, send: { thread.send($0) }) }
            } catch {
                logger.error(
                    "cannot open the asset store; every asset is paid for afresh in this run",
                    metadata: ["path": "\(storeSettings.folder.path)", "error": "\(error)"]
                )
                dispatchSettings.assetReuse = false
            }
        } else {
            dispatchSettings.assetReuse = false
        }
        var dispatcher = Dispatcher(
            batchId: "",
            specs: [],
            settings: dispatchSettings,
            leases: settings.leases,
            makeSession: { Self.randomSession() }
        )
        let journal = settings.journal
        if let journal, !settings.leases.isEmpty {
            // Calls an earlier run allowed still count in the windows: no burst after a restart.
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
        if !settings.leases.isEmpty {
            let budgets = settings.leases.budgets.map(Self.describe).joined(separator: "; ")
            logger.info("Rate-limit budgets (\(settings.leases.mode.rawValue)): \(budgets)")
        }
        if settings.leases.learnLimits {
            logger.info("Rate limits: learned from the providers' answers, never above a configured budget")
        }
        var lastFlush = clock.now
        let (inputs, continuation) = AsyncStream.makeStream(of: Input.self)
        // The disk task owns the artifact store and carries out its commands in order, off this loop, so
        // that writing and syncing files never delays a lease grant or a heartbeat.
        let (diskCommands, diskQueue) = AsyncStream.makeStream(of: DiskCommand.self)
        let diskTask = Task.detached {
            var store: ArtifactStore?
            for await command in diskCommands {
                switch command {
                case .open(let folder):
                    store = ArtifactStore(batchFolder: folder)
                    store?.clearIncoming()
                case .store(let command):
                    if let event = store?.perform(command) { continuation.yield(.artifact(event)) }
                }
            }
        }
        let pool = settings.workerExecutable.map { executable in
            LocalWorkerPool(
                settings: .init(
                    count: settings.localWorkers,
                    executable: executable,
                    endpoint: endpoint,
                    arguments: settings.workerArguments,
                    environment: settings.workerEnvironment
                ),
                logger: logger
            )
        }
        var rejections = RejectionLog()
        var interrupted = false
        var lastProgress = clock.now
        var lastPublished = clock.now
        var current: BatchRun?
        var waiting = Deque(settings.queued)
        var listings: [BatchListing] = []
        var floors: [String: Int] = [:]
        var batchesDone = 0
        /// `serve --max-spend-per-day`: the UTC day and what the batches completed on it cost (read back from
        /// the journal after a restart).
        var today = (day: String(Timestamp.now().prefix(10)), micros: 0)
        if settings.dispatch.dailySpendCapMicros != nil, let journal = settings.journal {
            today.micros = (try? journal.spentByBatchesCompleted(on: today.day)) ?? 0
        }
        func rollDay() {
            let day = String(Timestamp.now().prefix(10))
            if day != today.day { today = (day, 0) }
        }
        /// Local workers being drained before they stop (`coordinator scale` down): worker id → pool slot.
        var retiring: [String: Int] = [:]
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if settings.serve, let journal {
            // What this journal finished before (the listing of a restarted `serve`).
            do {
                listings = try journal.finishedBatches().map { batch in
                    var listing = batch
                    let dir = settings.output.appendingPathComponent(batch.id)
                    listing.folder = dir.path
                    listing.summary = dir.appendingPathComponent("summary.json").path
                    listing.report = dir.appendingPathComponent("report.html").path
                    return listing
                }
            } catch {
                logger.error("cannot read the journal's batches", metadata: ["error": "\(error)"])
            }
        }
        for batch in settings.queued {
            listings.append(
                BatchListing(
                    id: batch.id,
                    state: "queued",
                    episodes: batch.episodes.count,
                    folder: settings.output.appendingPathComponent(batch.id).path
                )
            )
        }
        if settings.progress == .bar { StatusLine.activate() }

        /// The journal cannot be written (disk full, I/O error, removed): said once, then the coordinator
        /// stops dispatching and exits 1. Going on without it would run finished episodes again after a
        /// restart.
        func journalBroken(_ error: any Error) {
            let first = journalFailedBox.withLock { failed in
                defer { failed = true }
                return !failed
            }
            interrupted = true
            guard first else { return }
            logger.critical(
                "cannot write the journal in --state: stopping (exit 1). Its record is intact up to the last write; free space or fix the folder, then run the same command again to resume",
                metadata: ["path": "\(settings.journal?.url.path ?? "-")", "error": "\(error)"]
            )
        }

        func setListing(_ id: String, _ change: (inout BatchListing) -> Void) {
            guard let i = listings.firstIndex(where: { $0.id == id }) else { return }
            change(&listings[i])
        }
        func liveListings() -> [BatchListing] {
            var out = listings
            for i in out.indices {
                if out[i].state == "queued" {
                    out[i].position = waiting.firstIndex { $0.id == out[i].id }.map { $0 + 1 }
                } else if out[i].id == current?.id {
                    out[i].succeeded = dispatcher.succeededCount
                    out[i].failed = dispatcher.failedCount
                }
            }
            return out
        }
        /// The fleet's status document, listing the episodes `selection` names.
        func snapshot(
            _ state: String,
            now: ContinuousClock.Instant,
            episodes selection: EpisodeSelection
        ) -> FleetStatus {
            var status = dispatcher.fleetStatus(state: state, now: now, episodes: selection)
            status.mode = settings.serve ? "serve" : "batch"
            status.batches = liveListings()
            status.localWorkers = pool?.snapshot
            status.security = settings.security?.authenticator.status ?? WorkerAuthenticator.Status(curve: false)
            return status
        }
        func publish(_ state: String, now: ContinuousClock.Instant) {
            guard let board = settings.board else { return }
            let status = snapshot(state, now: now, episodes: .standard)
            board.publish(status)
            settings.metrics?.update(status)
        }

        /// Makes `batch` the one being dispatched; returns the first dispatches.
        func start(_ batch: Batch, resumed: Journal.StoredBatch?, now: ContinuousClock.Instant) -> [DispatchAction] {
            let dir = settings.output.appendingPathComponent(batch.id)
            var trace: TraceWriter?
            do {
                trace = try TraceWriter(url: dir.appendingPathComponent("trace.jsonl"))
            } catch {
                logger.error(
                    "cannot write to the batch's folder; its episodes will fail to be stored",
                    metadata: ["dir": "\(dir.path)", "error": "\(error)"]
                )
            }
            diskQueue.yield(.open(dir))
            if let tag = settings.stateTag {
                do {
                    try OutputCheck.writeMarker(batchDir: dir, stateTag: tag)
                } catch {
                    logger.error(
                        "cannot mark the batch's folder",
                        metadata: ["dir": "\(dir.path)", "error": "\(error)"]
                    )
                }
            }
            if settings.dispatch.dailySpendCapMicros != nil {
                rollDay()
                dispatcher.spentEarlierToday = today.micros
            }
            if let resumed {
                _ = dispatcher.load(
                    batchId: resumed.id,
                    restored: resumed.episodes,
                    counters: resumed.counters,
                    holdUntil: now + settings.dispatch.deadAfter,
                    now: nil
                )
                journal?.resume(batchId: resumed.id)
                let done = resumed.episodes.count { $0.isFinished }
                let inFlight = resumed.episodes.count { $0.status == .running }
                logger.notice(
                    "resuming batch \(resumed.id) from the journal: \(done)/\(resumed.episodes.count) episodes done, \(inFlight) were in flight (held \(settings.dispatch.deadAfter.shortDescription) for their workers to re-announce them)",
                    metadata: ["journal": "\(journal?.url.path ?? "-")"]
                )
            } else {
                var attemptFloors = floors
                if let journal {
                    do {
                        attemptFloors.merge(try journal.attemptFloors(excluding: batch.id), uniquingKeysWith: max)
                    } catch {
                        logger.error("cannot read the journal", metadata: ["error": "\(error)"])
                    }
                }
                _ = dispatcher.load(batchId: batch.id, specs: batch.episodes, attemptFloors: attemptFloors, now: nil)
                do {
                    try journal?.begin(batchId: batch.id, episodes: dispatcher.episodes.records)
                } catch {
                    journalBroken(error)
                    return []
                }
            }
            settings.metrics?.batchStarted()
            current = BatchRun(id: batch.id, dir: dir, trace: trace, startedAt: Date(), started: now)
            if !listings.contains(where: { $0.id == batch.id }) {
                listings.append(BatchListing(id: batch.id, state: "running", episodes: batch.episodes.count))
            }
            setListing(batch.id) {
                $0.state = "running"
                $0.startedAt = iso.string(from: Date())
                $0.folder = dir.path
            }
            logger.info(
                "Batch processing: \(batch.episodes.count) episodes with max parallelism: \(settings.parallelism.maxParallelEpisodes) per worker",
                metadata: [
                    "batch": "\(batch.id)", "output": "\(dir.path)", "workers": "\(dispatcher.workers.count)",
                    "max_attempts": "\(settings.dispatch.maxAttempts)",
                ]
            )
            lastProgress = now
            return dispatcher.dispatchPending(now: now)
        }

        /// Starts the oldest queued batch, if there is one and none runs.
        func startNext(now: ContinuousClock.Instant) -> [DispatchAction] {
            guard current == nil, !interrupted, let next = waiting.popFirst() else { return [] }
            return start(next, resumed: nil, now: now)
        }

        /// Closes the current batch: journal, summary.json, report.html, the closing log lines.
        func finish(now: ContinuousClock.Instant) {
            guard let run = current else { return }
            current = nil
            let complete = dispatcher.isComplete
            publish(complete ? "completed" : "interrupted", now: now)
            if let journal, !journalFailedBox.withLock({ $0 }) {
                // A complete batch is closed; an interrupted one stays `running`, to be resumed.
                do {
                    try journal.flush(counters: dispatcher.counters, status: complete ? "completed" : nil)
                } catch {
                    journalBroken(error)
                }
            }
            run.trace?.close()
            if settings.dispatch.dailySpendCapMicros != nil, complete {
                rollDay()
                today.micros += dispatcher.episodes.reduce(0) { $0 + $1.costMicros }
            }
            let wall = now - run.started
            let summary = BatchSummary(
                dispatcher: dispatcher,
                batchDir: run.dir,
                startedAt: run.startedAt,
                finishedAt: Date(),
                wallSeconds: wall.secondsDouble,
                workersSeen: dispatcher.instancesSeen.count,
                slots: dispatcher.peakSlots
            )
            var summaryPath: String?
            do {
                try summary.write(to: run.dir)
                summaryPath = run.dir.appendingPathComponent("summary.json").path
            } catch {
                logger.error("cannot write summary.json", metadata: ["dir": "\(run.dir.path)", "error": "\(error)"])
            }
            var reportPath: String?
            do {
                try BatchReport.write(summary: summary, rates: BatchReport.rates(from: dispatcher), to: run.dir)
                reportPath = run.dir.appendingPathComponent("report.html").path
            } catch {
                logger.error("cannot write report.html", metadata: ["dir": "\(run.dir.path)", "error": "\(error)"])
            }
            logClosing(
                dispatcher: dispatcher,
                summary: summary,
                wall: wall,
                summaryPath: summaryPath,
                interrupted: !complete
            )
            for e in dispatcher.episodes { floors[e.id] = max(floors[e.id] ?? 0, e.attempts) }
            batchesDone += 1
            setListing(run.id) {
                $0.state = complete ? "completed" : "interrupted"
                $0.succeeded = dispatcher.succeededCount
                $0.failed = dispatcher.failedCount
                $0.finishedAt = iso.string(from: Date())
                $0.summary = summaryPath
                $0.report = reportPath
            }
            // A long-running coordinator keeps the last 1,000 finished batches in its listing.
            let finished = listings.filter { $0.state == "completed" || $0.state == "interrupted" }
            if finished.count > 1000 {
                let drop = Set(finished.prefix(finished.count - 1000).map(\.id))
                listings.removeAll { drop.contains($0.id) }
            }
            outcomeBox.withLock {
                $0 = Outcome(
                    succeeded: dispatcher.succeededCount,
                    failed: dispatcher.failedCount,
                    total: dispatcher.episodes.count,
                    interrupted: !complete,
                    summaryPath: summaryPath
                )
            }
        }

        /// `POST /api/batches`: queue the batch (journaled first), start it if nothing runs.
        func submit(
            id: String?,
            episodes: EpisodeSpecs,
            reply: ControlChannel.Reply<BatchListing>,
            now: ContinuousClock.Instant
        ) -> [DispatchAction] {
            guard settings.serve else {
                reply(.failure(.notServing))
                return []
            }
            guard !interrupted else {
                reply(.failure(.unavailable("the coordinator is stopping")))
                return []
            }
            guard !episodes.isEmpty, episodes.count <= BatchFile.maxEpisodes else {
                reply(
                    .failure(.badRequest("a batch needs 1 to \(BatchFile.maxEpisodes) episodes, got \(episodes.count)"))
                )
                return []
            }
            var taken = Set(listings.map(\.id))
            if let journal, let stored = try? journal.batches() { taken.formUnion(stored.map(\.id)) }
            let batchId: String
            if let id {
                do {
                    try BatchNames.check(id, field: "batch id")
                } catch {
                    reply(.failure(.badRequest(error.detail)))
                    return []
                }
                guard !taken.contains(id) else {
                    reply(.failure(.conflict("batch id \(id) is already taken on this coordinator; choose another")))
                    return []
                }
                batchId = id
            } else {
                let base = Batch.makeId()
                var candidate = base
                var n = 2
                while taken.contains(candidate) {
                    candidate = "\(base)-\(n)"
                    n += 1
                }
                batchId = candidate
            }
            let batch = Batch(id: batchId, episodes: episodes)
            do {
                try journal?.enqueue(batch)
            } catch {
                logger.error("cannot write the journal; batch refused", metadata: ["error": "\(error)"])
                reply(.failure(.unavailable("cannot write the journal: \(error)")))
                return []
            }
            waiting.append(batch)
            listings.append(
                BatchListing(
                    id: batchId,
                    state: "queued",
                    episodes: episodes.count,
                    submittedAt: iso.string(from: Date()),
                    folder: settings.output.appendingPathComponent(batchId).path
                )
            )
            logger.info(
                "batch submitted",
                metadata: [
                    "batch": "\(batchId)", "episodes": "\(episodes.count)",
                    "queued_before_it": "\(waiting.count - 1 + (current == nil ? 0 : 1))",
                ]
            )
            let actions = startNext(now: now)
            reply(.success(liveListings().first { $0.id == batchId }!))
            return actions
        }

        // At most one tick waits in `inputs`: a loop held up (a big batch starting, a slow disk) must not
        // find a pile of ticks ahead of the workers' messages when it catches up.
        let tickGate = TickGate()
        await withTaskGroup(of: Void.self) { group in
            thread.feed(
                continuation,
                in: &group,
                wrap: { .socket($0) },
                tick: .tick,
                every: settings.tick,
                gate: tickGate
            )
            if let control = settings.control {
                group.addTask {
                    for await request in control.requests { continuation.yield(.control(request)) }
                }
            }
            if let pool { group.addTask { await pool.run() } }
            if let security = settings.security, let zapThread {
                let logger = self.logger
                group.addTask {
                    await security.serveZAP(zapThread, logger: logger)
                    // libzmq lets every client in when no ZAP handler answers: never go on without it.
                    if !Task.isCancelled {
                        logger.critical(
                            "the ZAP handler stopped (\(zapThread.stopError.map { "\($0)" } ?? "no error")); stopping: this coordinator does not run without authentication"
                        )
                        continuation.yield(.shutdown)
                    }
                }
                group.addTask { await security.serveMonitor(context: context, logger: logger) }
                group.addTask { await security.watchAllowList(logger: logger) }
                logger.info(
                    "CURVE on: only workers whose public key is on the allow-list get in",
                    metadata: [
                        "public_key": "\(security.keys.publicKey)", "allow_list": "\(security.authenticator.path)",
                        "keys": "\(security.authenticator.status.allowedKeys)",
                    ]
                )
            }

            await withGracefulShutdownHandler {
                var first: [DispatchAction] = []
                if let batch = settings.batch {
                    first = start(batch, resumed: settings.resumed, now: clock.now)
                } else {
                    first = startNext(now: clock.now)
                }
                perform(
                    first,
                    thread: thread,
                    trace: current?.trace,
                    rejections: &rejections,
                    store: diskQueue,
                    assets: assets
                )
                publish(current == nil ? "idle" : "running", now: clock.now)
                if current != nil, dispatcher.isComplete {
                    finish(now: clock.now)
                    if !settings.serve { return }
                }
                var lastHint = clock.now
                // One sleeping task wakes the loop at the lease manager's next deadline, so a permit is
                // granted the moment the budget allows, not at the next 50 ms tick.
                var leaseTimer: (at: ContinuousClock.Instant, task: Task<Void, Never>)?
                defer { leaseTimer?.task.cancel() }
                for await input in inputs {
                    let now = clock.now
                    var actions: [DispatchAction]
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
                        tickGate.consumed()
                        current?.trace?.flush()
                        actions = dispatcher.onTick(now: now)
                        for (workerId, slot) in retiring {
                            actions += dispatcher.retire(workerId: workerId)
                            if !dispatcher.isBusy(workerId: workerId) {
                                logger.info("local worker drained; stopping it", metadata: ["worker": "\(workerId)"])
                                retiring[workerId] = nil
                                pool?.stop(slot: slot)
                            }
                        }
                        if now - lastPublished >= .milliseconds(250) {
                            lastPublished = now
                            publish(current == nil ? "idle" : "running", now: now)
                        }
                        switch settings.progress {
                        case .bar where now - lastProgress >= .milliseconds(250):
                            lastProgress = now
                            StatusLine.update(
                                current == nil
                                    ? "idle: \(batchesDone) batches done, waiting for `coordinator submit` · \(dispatcher.workers.count) workers"
                                    : dispatcher.progress(now: now).barLine()
                            )
                        case .log where current != nil && now - lastProgress >= settings.progressInterval:
                            lastProgress = now
                            let snapshot = dispatcher.progress(now: now)
                            if snapshot.elapsed != nil { logger.info("\(snapshot.logLine)") }
                        default:
                            break
                        }
                        if current != nil, dispatcher.workers.isEmpty, now - lastHint >= .seconds(10) {
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
                    case .control(.submit(let id, let episodes, let reply)):
                        actions = submit(id: id, episodes: episodes, reply: reply, now: now)
                    case .control(.scale(let count, let reply)):
                        actions = []
                        guard let pool else {
                            reply(
                                .failure(
                                    .unavailable(
                                        "this coordinator cannot start local workers: no worker executable (give --worker-binary PATH)"
                                    )
                                )
                            )
                            continue
                        }
                        guard (0...256).contains(count) else {
                            reply(.failure(.badRequest("workers must be from 0 to 256, got \(count)")))
                            continue
                        }
                        for slot in pool.resize(to: count) { retiring[pool.workerId(slot: slot)] = slot }
                        for workerId in retiring.keys { actions += dispatcher.retire(workerId: workerId) }
                        reply(.success(pool.snapshot))
                    case .control(.status(let reply)):
                        // O(1) here: the episodes are listed by the HTTP side from this copy.
                        actions = []
                        let base = snapshot(current == nil ? "idle" : "running", now: now, episodes: .none)
                        reply(.success(StatusSource(base: base, dispatcher: dispatcher, now: now)))
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
                            do {
                                try journal.flush(counters: dispatcher.counters)
                            } catch {
                                // Nothing the journal could not record is acted on: the actions are dropped
                                // and the coordinator stops.
                                journalBroken(error)
                                break
                            }
                        }
                    }
                    settings.metrics?.observe(actions, dispatcher: dispatcher)
                    perform(
                        actions,
                        thread: thread,
                        trace: current?.trace,
                        rejections: &rejections,
                        store: diskQueue,
                        assets: assets
                    )
                    if current != nil, dispatcher.isComplete {
                        finish(now: clock.now)
                        if !settings.serve { break }
                        let next = startNext(now: clock.now)
                        perform(
                            next,
                            thread: thread,
                            trace: current?.trace,
                            rejections: &rejections,
                            store: diskQueue,
                            assets: assets
                        )
                        publish(current == nil ? "idle" : "running", now: clock.now)
                    }
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
                    if interrupted { break }
                }
            } onGracefulShutdown: {
                continuation.yield(.shutdown)
                SecondSignal.exitOnNext(logger: self.logger)
            }
            settings.control?.close()
            // A batch stopped half-way is closed as interrupted (the journal keeps it to be resumed).
            finish(now: clock.now)
            // No stale bar under the closing lines.
            StatusLine.finish()
            publish(settings.serve || interrupted ? "stopped" : "completed", now: clock.now)

            // Say goodbye so that workers stop waiting, then give the socket a moment to flush.
            let oneShotDone = !settings.serve && !interrupted
            let goodbye = dispatcher.shutdown(
                reason: oneShotDone ? .batchComplete : .shutdown,
                detail: oneShotDone ? "batch \(dispatcher.batchId) complete" : "coordinator stopped"
            )
            perform(goodbye, thread: thread, trace: nil, rejections: &rejections, store: diskQueue, assets: assets)
            if let journal {
                let s = journal.stats
                logger.info(
                    "journal flushed",
                    metadata: [
                        "path": "\(journal.url.path)", "flushes": "\(s.flushes)",
                        "episode_writes": "\(s.episodeWrites)",
                        "events": "\(s.events)", "write_time": "\(s.flushTime.shortDescription)",
                        "queued_batches": "\(waiting.count)",
                    ]
                )
            }
            try? await Task.sleep(for: .milliseconds(200))
            group.cancelAll()
            continuation.finish()
        }
        diskQueue.finish()
        await diskTask.value
        if let assets {
            assets.finish()
            await assetTask?.value
            let s = assets.stats
            logger.info(
                "asset store",
                metadata: [
                    "answers": "\(s.entries)", "bytes": "\(s.bytes)", "hits": "\(s.hits)", "misses": "\(s.misses)",
                    "stored": "\(s.stored)", "evicted": "\(s.evicted)", "refused": "\(s.refused)",
                    "damaged": "\(s.damaged)",
                ]
            )
        }
        StatusLine.finish()
        await thread.close()
        await zapThread?.close()
        context.shutdown()
    }

    /// The batch's closing log lines: the outcome, each budget's use, the protocol counters.
    private func logClosing(
        dispatcher: Dispatcher,
        summary: BatchSummary,
        wall: Duration,
        summaryPath: String?,
        interrupted: Bool
    ) {
        let succeeded = dispatcher.succeededCount
        let total = dispatcher.episodes.count
        let line =
            "Batch complete: \(succeeded)/\(total) successful in \(wall.shortDescription) (\(dispatcher.peakWorkers) workers, \(dispatcher.peakSlots) slots)"
        let meta: Logger.Metadata = [
            "batch": "\(dispatcher.batchId)", "failed": "\(dispatcher.failedCount)",
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
        if let warning = summary.placeholderWarning {
            logger.warning(
                "\(warning.line)",
                metadata: [
                    "batch": "\(dispatcher.batchId)", "placeholders": "\(warning.placeholders)",
                    "assets": "\(warning.assets)",
                ]
            )
        }
        if let spend = summary.spend,
            spend.totalMicros > 0 || spend.capMicros != nil || spend.unpricedCalls > 0 || spend.reusedCalls != nil
        {
            var line = "spend: \(spend.total)"
            if let cap = spend.cap { line += " of the \(cap) cap" }
            if let capped = spend.cappedEpisodes, capped > 0 { line += "; \(capped) episodes stopped by the cap" }
            if let reused = spend.reusedCalls, let saved = spend.saved {
                line += "; \(reused) calls reused from the asset store saved \(saved)"
            }
            if spend.unpricedCalls > 0 {
                line += "; \(spend.unpricedCalls) calls of models without a price not counted"
            }
            logger.info(
                "\(line)",
                metadata: spend.byProviderMicros.reduce(into: ["batch": "\(dispatcher.batchId)"]) {
                    $0[$1.key] = "\(PriceTable.dollars($1.value))"
                }
            )
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
    }

    private func perform(
        _ actions: [DispatchAction],
        thread: ZMQSocketThread,
        trace: TraceWriter?,
        rejections: inout RejectionLog,
        store: AsyncStream<DiskCommand>.Continuation,
        assets: AssetService?
    ) {
        for action in actions {
            switch action {
            case .send(let routingId, let envelope):
                thread.send([routingId] + Codec.encode(envelope))
            case .store(let command):
                store.yield(.store(command))
            case .asset(let command):
                assets?.submit(command)
            case .notice(let notice):
                log(notice, trace: trace, rejections: &rejections)
            }
        }
    }

    private func log(_ notice: DispatchNotice, trace: TraceWriter?, rejections: inout RejectionLog) {
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
            trace?.append(workerId: workerId, instance: instance, ref: ref, events: events, stale: stale)
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
        case .spendCapReached(let notStarted, let detail):
            logger.warning(
                "spend cap reached: no new episode starts; \(notStarted) not started end as capped",
                metadata: ["spend": "\(detail)"]
            )
        case .lease(let notice):
            log(notice, rejections: &rejections)
        case .loopStalled(let gap, let workers):
            logger.warning(
                "the coordinator's loop stood still; every worker gets a fresh liveness window",
                metadata: ["gap": "\(gap.shortDescription)", "workers": "\(workers)"]
            )
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
        case .diskFull(let error):
            logger.error(
                "the output folder's disk is full: storing and dispatch paused, retried every \(ArtifactSettings().diskFullRetry.shortDescription); the workers keep their finished files. Free some space",
                metadata: ["error": "\(error)", "output": "\(settings.output.path)"]
            )
        case .diskSpaceBack(let pausedFor):
            logger.notice(
                "disk space is back: storing and dispatch resumed",
                metadata: ["paused_for": "\(pausedFor.shortDescription)"]
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
        case .circuitOpened(let provider, let signal, let detail):
            // Once per provider and coordinator: the lease manager reports only the signal that opened it.
            logger.error(
                "\(Self.circuitLine(provider: provider, signal: signal, detail: detail))",
                metadata: ["provider": "\(provider)", "signal": "\(signal.rawValue)", "detail": "\(detail)"]
            )
        case .learned(let provider, let budget):
            logger.info(
                "\(provider) limits learned from the provider: leasing \(budget)",
                metadata: ["provider": "\(provider)"]
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

    /// The line an opened circuit is logged with: `🔴 tts: authentication failed (the key was refused (HTTP
    /// 401 …)), circuit OPEN for the whole fleet: every remaining tts call uses a placeholder. Fix: set
    /// ELEVENLABS_API_KEY to a valid key, then rerun.` The cure is the worker's (`…; fix: …` in its detail)
    /// when it named one, else a general one.
    static func circuitLine(provider: String, signal: ProviderSignal.Kind, detail: String) -> String {
        var what = detail
        var fix: String?
        if let range = detail.range(of: "; fix: ", options: .backwards) {
            what = String(detail[..<range.lowerBound])
            fix = String(detail[range.upperBound...])
        }
        let auth = signal == .authFailed
        let cure = fix.map { "Fix: \($0)" } ?? (auth ? "Fix the key" : "Add credits or raise the quota")
        return "🔴 \(provider): \(auth ? "authentication failed" : "billing or quota error")"
            + (what.isEmpty ? "" : " (\(what))")
            + ", circuit OPEN for the whole fleet: every remaining \(provider) call uses a placeholder. "
            + "\(cure), then rerun."
    }

    /// `image: 10 per 1s, 4 concurrent`.
    static func describe(_ budget: ProviderBudget) -> String {
        LeaseManager.describe(budget)
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

    /// A 32-hex-character session token from the system's random generator.
    static func randomSession() -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<16).map { _ in
            let b = UInt8.random(in: 0...255, using: &rng)
            return String(b >> 4, radix: 16) + String(b & 0x0F, radix: 16)
        }.joined()
    }
}

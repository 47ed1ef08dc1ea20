import DequeModule
import Foundation
import Logging
import Protocol
import ServiceLifecycle
import Shared
import Synchronization

/// The coordinator's I/O shell: binds the ROUTER socket, opens the asset store, starts the disk task and
/// the local worker pool, then feeds socket events, clock ticks, lease deadlines, stored files and HTTP API
/// requests into the ``CoordinatorCore`` and carries out the effects it returns (``EffectRunner``): sends,
/// journal writes, each batch's `trace.jsonl`, `summary.json` and `report.html`, log lines.
///
/// One-shot (`coordinator --episodes N`) it runs one batch and returns. As `coordinator serve` it runs
/// the batches submitted through ``ControlChannel`` one after another, on the same workers and the same
/// rate-limit windows, until it is told to stop.
///
/// The ROUTER socket is owned by one ``ZMQSocketThread``; this service only queues frames to it and
/// reads its event stream. The core (with the dispatcher and the batch queue) and the journal are owned
/// by the single task running ``run()``; the artifact store by the disk task, the asset store by its task.
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

    /// The loop: inputs go to the ``CoordinatorCore``, its effects to ``EffectRunner``. Everything it needs
    /// is set up by the methods below, in this order: the socket, the asset store, the core, the disk task,
    /// the local pool.
    func run() async throws {
        let clock = ContinuousClock()
        func time() -> CoordinatorCore.Time { .init(now: clock.now, date: Date()) }
        let context = try ZMQContext()
        // The ZAP handler is bound first: libzmq asks it about every CURVE connection from the start.
        let zapThread: ZMQSocketThread? =
            if settings.security != nil { try await CoordinatorSecurity.startZAP(context: context) } else { nil }
        let thread = try await bindRouter(context: context)
        let endpoint = thread.lastEndpoint ?? settings.bind
        onBound(endpoint)
        announce(endpoint: endpoint)
        let (inputs, continuation) = AsyncStream.makeStream(of: Input.self)
        let assets = openAssetStore(thread: thread)
        var core = makeCore(assetReuse: assets != nil, time: time())
        let disk = DiskTask { continuation.yield(.artifact($0)) }
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
        var runner = EffectRunner(
            service: self,
            thread: thread,
            disk: disk,
            assets: assets?.service,
            pool: pool,
            log: CoordinatorLog(logger: logger, output: settings.output, journalPath: settings.journal?.url.path)
        )
        runner.log.endpoint = endpoint
        if settings.progress == .bar { StatusLine.activate() }
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
                group.addTask { for await request in control.requests { continuation.yield(.control(request)) } }
            }
            if let pool { group.addTask { await pool.run() } }
            if let security = settings.security, let zapThread {
                startSecurity(security, zap: zapThread, context: context, in: &group) { continuation.yield(.shutdown) }
            }
            await withGracefulShutdownHandler {
                let first = time()
                guard
                    runner.perform(
                        core.begin(settings.batch, resumed: settings.resumed, time: first),
                        on: &core,
                        time: first
                    )
                else { return }
                // One sleeping task wakes the loop at the lease manager's next deadline, so a permit is
                // granted the moment the budget allows, not at the next 50 ms tick.
                var leaseTimer = LeaseTimer()
                defer { leaseTimer.cancel() }
                for await input in inputs {
                    let time = time()
                    let effects: [CoordinatorCore.Effect]
                    switch input {
                    case .socket(.message(let frames)):
                        effects = core.handle(.message(frames), time: time)
                    case .socket(.sendFailed(let frames, let error)):
                        logger.debug("send failed", metadata: ["error": "\(error)"])
                        effects = core.handle(.sendFailed(routingId: frames.first ?? []), time: time)
                    case .tick:
                        tickGate.consumed()
                        runner.batch?.trace?.flush()
                        effects = core.handle(.tick, time: time)
                    case .leaseTimer:
                        leaseTimer.fired()
                        effects = core.handle(.leaseTimer, time: time)
                    case .artifact(let event):
                        effects = core.handle(.artifact(event), time: time)
                    case .control(.submit(let id, let episodes, let reply)):
                        effects = core.handle(.submit(id: id, episodes: episodes, reply: reply), time: time)
                    case .control(.scale(let count, let reply)):
                        effects = scale(to: count, pool: pool, core: &core, time: time, reply: reply)
                    case .control(.status(let reply)):
                        // O(1) here: the episodes are listed by the HTTP side from this copy.
                        let base = runner.decorate(core.status(core.state, time: time, episodes: .none))
                        reply(.success(StatusSource(base: base, dispatcher: core.dispatcher, now: time.now)))
                        continue
                    case .shutdown:
                        effects = core.handle(.shutdown, time: time)
                    }
                    guard runner.perform(effects, on: &core, time: time) else { break }
                    leaseTimer.schedule(core.dispatcher.nextLeaseDeadline(after: clock.now), clock: clock) {
                        continuation.yield(.leaseTimer)
                    }
                }
            } onGracefulShutdown: {
                continuation.yield(.shutdown)
                SecondSignal.exitOnNext(logger: self.logger)
            }
            settings.control?.close()
            // A batch stopped half-way is closed as interrupted (the journal keeps it to be resumed); then the
            // workers are told goodbye so that they stop waiting.
            let last = time()
            _ = runner.perform(core.stop(time: last), on: &core, time: last)
            // No stale bar under the closing lines.
            StatusLine.finish()
            if let journal = settings.journal {
                let s = journal.stats
                logger.info(
                    "journal flushed",
                    metadata: [
                        "path": "\(journal.url.path)", "flushes": "\(s.flushes)",
                        "episode_writes": "\(s.episodeWrites)",
                        "events": "\(s.events)", "write_time": "\(s.flushTime.shortDescription)",
                        "queued_batches": "\(core.queue.waiting.count)",
                    ]
                )
            }
            // Give the socket a moment to flush the goodbyes.
            try? await Task.sleep(for: .milliseconds(200))
            group.cancelAll()
            continuation.finish()
        }
        await disk.finish()
        await assets?.close(logger: logger)
        await thread.close()
        await zapThread?.close()
        context.shutdown()
    }

    // MARK: - Setting up

    /// Binds the ROUTER socket, owned by its own ``ZMQSocketThread``: CURVE and its handshake monitor
    /// when on, mandatory routing, the message size bound, high-water marks and ZMTP heartbeats.
    private func bindRouter(context: ZMQContext) async throws -> ZMQSocketThread {
        let bindEndpoint = settings.bind
        let curveSecret = settings.security?.keys.secretKey
        return try await ZMQSocketThread(name: "coordinator-router", context: context) { ctx in
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
    }

    /// The lines a start begins with: where it listens, what to start, the budgets.
    private func announce(endpoint: String) {
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
        if !settings.leases.isEmpty {
            let budgets = settings.leases.budgets.map(LeaseManager.describe).joined(separator: "; ")
            logger.info("Rate-limit budgets (\(settings.leases.mode.rawValue)): \(budgets)")
        }
        if settings.leases.learnLimits {
            logger.info("Rate limits: learned from the providers' answers, never above a configured budget")
        }
    }

    /// The asset store and the task that owns it (it answers ASSET_GET itself, off the loop), unless reuse
    /// is off; a store that cannot be opened turns reuse off for this run.
    private func openAssetStore(thread: ZMQSocketThread) -> AssetTask? {
        guard settings.dispatch.assetReuse, let storeSettings = settings.assetStore else { return nil }
        do {
            let store = try AssetStore(settings: storeSettings)
            let s = store.stats
            logger.info(
                "asset store: paid answers are kept and reused (--no-reuse to pay for each afresh)",
                metadata: [
                    "path": "\(storeSettings.folder.path)", "answers": "\(s.entries)", "bytes": "\(s.bytes)",
                    "max_bytes": "\(storeSettings.maxBytes)",
                ]
            )
            let service = AssetService(logger: logger)
            let task = Task.detached { await service.run(store: store, send: { thread.send($0) }) }
            return AssetTask(service: service, task: task)
        } catch {
            logger.error(
                "cannot open the asset store; every asset is paid for afresh in this run",
                metadata: ["path": "\(storeSettings.folder.path)", "error": "\(error)"]
            )
            return nil
        }
    }

    /// The core, with what the journal knows: the lease windows of the calls an earlier run started (no
    /// burst after a restart), the batches it finished and queued, the ids taken, the attempt floors and
    /// today's spend.
    private func makeCore(assetReuse: Bool, time: CoordinatorCore.Time) -> CoordinatorCore {
        var dispatchSettings = settings.dispatch
        dispatchSettings.assetReuse = assetReuse
        var dispatcher = Dispatcher(
            batchId: "",
            specs: [],
            settings: dispatchSettings,
            leases: settings.leases,
            makeSession: { Self.randomSession() }
        )
        var queue = BatchQueue(output: settings.output, queued: settings.queued)
        var spentToday = 0
        if let journal = settings.journal {
            if !settings.leases.isEmpty {
                let longest =
                    settings.leases.budgets.map { max($0.requestWindowMs, $0.units == nil ? 0 : $0.unitWindowMs) }
                    .max() ?? 0
                let recent =
                    (try? journal.recentStarts(within: .milliseconds(longest) + settings.leases.useWithin)) ?? [:]
                dispatcher.seedLeases(recentCalls: recent, now: time.now)
                let seeded = recent.values.reduce(0) { $0 + $1.count }
                if seeded > 0 { logger.info("lease windows seeded from the journal", metadata: ["calls": "\(seeded)"]) }
            }
            do {
                queue = BatchQueue(
                    output: settings.output,
                    finished: settings.serve ? try journal.finishedBatches() : [],
                    queued: settings.queued,
                    takenIds: Set(try journal.batches().map(\.id)),
                    floors: try journal.attemptFloors(excluding: settings.resumed?.id ?? settings.batch?.id ?? "")
                )
            } catch {
                logger.error("cannot read the journal's batches", metadata: ["error": "\(error)"])
            }
            if settings.dispatch.dailySpendCapMicros != nil {
                spentToday =
                    (try? journal.spentByBatchesCompleted(on: String(Timestamp.string(from: time.date).prefix(10))))
                    ?? 0
            }
        }
        return CoordinatorCore(
            settings: .init(
                serve: settings.serve,
                output: settings.output,
                journaled: settings.journal != nil,
                dispatch: dispatchSettings,
                maxParallelEpisodes: settings.parallelism.maxParallelEpisodes,
                progress: settings.progress,
                progressInterval: settings.progressInterval
            ),
            dispatcher: dispatcher,
            queue: queue,
            spentToday: spentToday,
            time: time
        )
    }

    /// The ZAP handler, the handshake monitor and the allow-list watcher. libzmq lets every client in when
    /// no ZAP handler answers: if it stops, the coordinator stops.
    private func startSecurity(
        _ security: CoordinatorSecurity,
        zap: ZMQSocketThread,
        context: ZMQContext,
        in group: inout TaskGroup<Void>,
        stop: @escaping @Sendable () -> Void
    ) {
        let logger = self.logger
        group.addTask {
            await security.serveZAP(zap, logger: logger)
            if !Task.isCancelled {
                logger.critical(
                    "the ZAP handler stopped (\(zap.stopError.map { "\($0)" } ?? "no error")); stopping: this coordinator does not run without authentication"
                )
                stop()
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

    /// `coordinator scale`: resize the local pool; the workers above the new size are drained, then stopped.
    private func scale(
        to count: Int,
        pool: LocalWorkerPool?,
        core: inout CoordinatorCore,
        time: CoordinatorCore.Time,
        reply: ControlChannel.Reply<LocalWorkerPool.Snapshot>
    ) -> [CoordinatorCore.Effect] {
        guard let pool else {
            reply(
                .failure(
                    .unavailable(
                        "this coordinator cannot start local workers: no worker executable (give --worker-binary PATH)"
                    )
                )
            )
            return []
        }
        guard (0...256).contains(count) else {
            reply(.failure(.badRequest("workers must be from 0 to 256, got \(count)")))
            return []
        }
        let retired = pool.resize(to: count).map { (workerId: pool.workerId(slot: $0), slot: $0) }
        let effects = core.retire(retired, time: time)
        reply(.success(pool.snapshot))
        return effects
    }

    // MARK: - Carrying out effects

    /// Carries out the core's effects: the only place the coordinator sends, writes the journal, writes a
    /// batch's files and logs what the dispatcher did. Owned by the loop.
    private struct EffectRunner {
        let service: CoordinatorService
        let thread: ZMQSocketThread
        let disk: DiskTask
        let assets: AssetService?
        let pool: LocalWorkerPool?
        var log: CoordinatorLog
        /// The folder of the batch being dispatched.
        var batch: BatchOutput?

        private var settings: Settings { service.settings }

        /// Carries out `effects` in order; a persist's follow-ups come right after it, and when it fails
        /// the core's replacement effects take the place of the rest. Returns false once the loop is to end.
        mutating func perform(
            _ effects: [CoordinatorCore.Effect],
            on core: inout CoordinatorCore,
            time: CoordinatorCore.Time
        ) -> Bool {
            var pending = Deque(effects)
            var goOn = true
            while let effect = pending.popFirst() {
                switch effect {
                case .persist(let write):
                    guard let journal = settings.journal else { continue }
                    do {
                        try journal.apply(write)
                        pending.insert(contentsOf: core.persisted(write, time: time), at: 0)
                    } catch {
                        pending = Deque(core.persistFailed(write, error: "\(error)", time: time))
                    }
                case .perform(let action):
                    perform(action)
                case .episodeTimed(let duration):
                    settings.metrics?.episodeFinished(after: duration)
                case .openBatch(let opening):
                    batch = BatchOutput.open(opening, stateTag: settings.stateTag, logger: service.logger)
                    disk.open(opening.dir)
                    settings.metrics?.batchStarted()
                case .closeBatch(let closing):
                    let output: BatchOutput
                    if let batch, batch.dir == closing.dir {
                        output = batch
                    } else {
                        output = BatchOutput(dir: closing.dir, trace: nil)
                    }
                    batch = nil
                    let closed = output.close(closing, log: log)
                    core.filesWritten(closing.batchId, summary: closed.summary, report: closed.report)
                    let d = closing.dispatcher
                    service.outcomeBox.withLock {
                        $0 = Outcome(
                            succeeded: d.succeededCount,
                            failed: d.failedCount,
                            total: d.episodes.count,
                            interrupted: !closing.complete,
                            summaryPath: closed.summary
                        )
                    }
                case .publish(let status):
                    guard let board = settings.board else { continue }
                    let status = decorate(status)
                    board.publish(status)
                    settings.metrics?.update(status)
                case .progressBar(let line):
                    StatusLine.update(line)
                case .say(let event):
                    log.say(event)
                case .stopLocalWorker(_, let slot):
                    pool?.stop(slot: slot)
                case .reply(let reply, let result):
                    reply(result)
                case .journalBroken(let error):
                    service.journalFailedBox.withLock { $0 = true }
                    log.journalBroken(error)
                case .stop:
                    goOn = false
                }
            }
            return goOn
        }

        private mutating func perform(_ action: DispatchAction) {
            switch action {
            case .send(let routingId, let envelope):
                thread.send([routingId] + Codec.encode(envelope))
            case .store(let command):
                disk.store(command)
            case .asset(let command):
                assets?.submit(command)
            case .notice(let notice):
                log.log(notice, trace: batch?.trace)
            }
        }

        /// A status document with what only the shell knows: the local pool and the security state.
        func decorate(_ status: FleetStatus) -> FleetStatus {
            var status = status
            status.localWorkers = pool?.snapshot
            status.security = settings.security?.authenticator.status ?? WorkerAuthenticator.Status(curve: false)
            return status
        }
    }
}

/// The disk task: owns the current batch's ``ArtifactStore`` and carries out its commands in order, off
/// the loop, so that writing and syncing files never delays a lease grant or a heartbeat.
private struct DiskTask {
    private enum Command: Sendable {
        case open(URL)
        case store(ArtifactCommand)
    }

    private let queue: AsyncStream<Command>.Continuation
    private let task: Task<Void, Never>

    init(events: @escaping @Sendable (ArtifactEvent) -> Void) {
        let (commands, queue) = AsyncStream.makeStream(of: Command.self)
        self.queue = queue
        task = Task.detached {
            var store: ArtifactStore?
            for await command in commands {
                switch command {
                case .open(let folder):
                    store = ArtifactStore(batchFolder: folder)
                    store?.clearIncoming()
                case .store(let command):
                    if let event = store?.perform(command) { events(event) }
                }
            }
        }
    }

    /// A new batch's folder: later commands go to its store.
    func open(_ folder: URL) { queue.yield(.open(folder)) }
    func store(_ command: ArtifactCommand) { queue.yield(.store(command)) }

    /// Carries out what is queued, then ends.
    func finish() async {
        queue.finish()
        await task.value
    }
}

/// The asset store's task and the service it runs (PROTOCOL §18).
private struct AssetTask {
    let service: AssetService
    let task: Task<Void, Never>

    /// Stops the task once it has answered what is queued; logs the store's counters.
    func close(logger: Logger) async {
        service.finish()
        await task.value
        let s = service.stats
        logger.info(
            "asset store",
            metadata: [
                "answers": "\(s.entries)", "bytes": "\(s.bytes)", "hits": "\(s.hits)", "misses": "\(s.misses)",
                "stored": "\(s.stored)", "evicted": "\(s.evicted)", "refused": "\(s.refused)",
                "damaged": "\(s.damaged)",
            ]
        )
    }
}

/// One sleeping task that wakes the loop at the lease manager's next deadline.
private struct LeaseTimer {
    private var at: ContinuousClock.Instant?
    private var task: Task<Void, Never>?

    /// Wakes at `due` unless an earlier wake-up is already set.
    mutating func schedule(
        _ due: ContinuousClock.Instant?,
        clock: ContinuousClock,
        wake: @escaping @Sendable () -> Void
    ) {
        guard let due, at.map({ due < $0 }) ?? true else { return }
        task?.cancel()
        at = due
        task = Task {
            try? await Task.sleep(until: due, tolerance: .microseconds(200), clock: clock)
            if !Task.isCancelled { wake() }
        }
    }

    mutating func fired() {
        at = nil
        task = nil
    }

    func cancel() { task?.cancel() }
}

extension CoordinatorService {
    /// A 32-hex-character session token from the system's random generator.
    static func randomSession() -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<16).map { _ in
            let b = UInt8.random(in: 0...255, using: &rng)
            return String(b >> 4, radix: 16) + String(b & 0x0F, radix: 16)
        }.joined()
    }
}

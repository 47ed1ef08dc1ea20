import Logging
import Protocol
import ServiceLifecycle
import Shared

import class Foundation.FileHandle
import struct Foundation.URL

#if canImport(Glibc)
import Glibc
#endif

/// The worker's I/O shell: owns the DEALER socket through a ``ZMQSocketThread``, feeds socket events,
/// clock ticks and finished attempts into ``WorkerCore``, and carries out its actions — sending,
/// renewing the socket, starting and cancelling ``EpisodePipeline`` runs.
///
/// The socket is touched only by its thread; ``WorkerCore`` is owned by the single task running ``run()``.
final class WorkerAgent: Service {
    struct Settings: Sendable {
        var endpoint: String
        var hello: Hello
        /// How often the core's clock advances. The default is 50 ms.
        var tick: Duration = .milliseconds(50)
        /// How long running attempts may take to finish after SIGTERM/SIGINT before they are handed back.
        var shutdownGrace: Duration = .seconds(30)
        /// CURVE keys: the connection is encrypted and the coordinator checks this worker's public key.
        var curve: Curve?
        /// The coordinator process that started this worker (`REELFARM_PARENT_PID`, set by `--workers`), if
        /// any. When it is gone the worker drains: it takes no new jobs, finishes and delivers what it holds
        /// to a coordinator that answers within `orphanGrace`, then exits.
        var parentPid: Int32?
        /// How long a worker whose coordinator process died goes on (`REELFARM_ORPHAN_GRACE`). The
        /// default is 30 s.
        var orphanGrace: Duration = .seconds(30)
    }

    /// The keys of a CURVE connection (40-character Z85 text).
    struct Curve: Sendable {
        var serverKey: String
        var publicKey: String
        var secretKey: String
        /// Where `serverKey` came from (logged at start). The default is a literal key.
        var serverKeySource: CurveKeyPair.KeySource = .literal
    }

    private let settings: Settings
    private let pipeline: EpisodePipeline
    private let leases: LeaseClient
    /// The asset store's client; its messages travel like the lease client's.
    private let assets: AssetExchange?
    private let logger: Logger

    init(
        settings: Settings,
        pipeline: EpisodePipeline,
        leases: LeaseClient,
        assets: AssetExchange? = nil,
        logger: Logger
    ) {
        self.settings = settings
        self.pipeline = pipeline
        self.leases = leases
        self.assets = assets
        self.logger = logger
    }

    private enum Input: Sendable {
        case socket(ZMQSocketThread.Event)
        case tick
        /// An attempt ended; `files` is the folder of the files it offers for transfer, if any.
        case finished(EpisodeResult, files: URL?)
        case progress(Progress)
        /// A lease message from the ``LeaseClient`` (or an asset message from the ``AssetExchange``) for
        /// the coordinator.
        case lease(Message)
        case shutdown
        /// The coordinator process that started this worker is gone.
        case parentGone
    }

    func run() async throws {
        let clock = ContinuousClock()
        let context = try ZMQContext()
        let endpoint = settings.endpoint
        let curve = settings.curve
        let thread = try await ZMQSocketThread(name: "worker-dealer", context: context) { ctx in
            let socket = try ZMQSocket(context: ctx, type: .dealer, linger: .milliseconds(500))
            if let curve {
                try socket.setCurveClient(
                    serverKey: curve.serverKey,
                    publicKey: curve.publicKey,
                    secretKey: curve.secretKey
                )
            }
            try socket.setImmediate(true)
            try socket.setMaxMessageSize(Int64(WireProtocol.maxMessageBytes))
            try socket.setReconnectInterval(.milliseconds(250), max: .seconds(30))
            try socket.setHandshakeInterval(.seconds(5))
            try socket.setHeartbeat(interval: .seconds(1), timeout: .seconds(3), ttl: .seconds(3))
            try socket.connect(endpoint)
            return socket
        }
        logger.info(
            "worker connecting",
            metadata: [
                "endpoint": "\(endpoint)", "worker": "\(settings.hello.workerId)",
                "episodes": "\(settings.hello.capacity.episodes)", "api_calls": "\(settings.hello.capacity.apiCalls)",
            ]
        )

        var coreSettings = WorkerCore.Settings(hello: settings.hello)
        coreSettings.freshWindowAfterStall = true
        coreSettings.curve = settings.curve != nil
        coreSettings.minimumCoordinatorMinor = pipeline.delivery == .transfer && pipeline.outputRoot != nil ? 2 : 0
        var core = WorkerCore(settings: coreSettings, now: clock.now)
        let (inputs, continuation) = AsyncStream.makeStream(of: Input.self)
        var tasks: [JobRef: Task<Void, Never>] = [:]
        var rejections = RejectionLog()

        leases.attach { message in continuation.yield(.lease(message)) }
        assets?.attach { message in continuation.yield(.lease(message)) }

        await withTaskGroup(of: Void.self) { group in
            thread.feed(continuation, in: &group, wrap: { .socket($0) }, tick: .tick, every: settings.tick)
            if let parent = settings.parentPid {
                group.addTask {
                    await ParentWatch.waitUntilGone(parent)
                    if !Task.isCancelled { continuation.yield(.parentGone) }
                }
            }
            await withGracefulShutdownHandler {
                await perform(
                    core.start(now: clock.now, recentCalls: leases.recentCalls),
                    thread: thread,
                    tasks: &tasks,
                    continuation: continuation
                )
                for await input in inputs {
                    let now = clock.now
                    let actions: [WorkerAction]
                    switch input {
                    case .socket(.message(let frames)):
                        do throws(DecodeError) {
                            actions = core.onEnvelope(try Codec.decode(frames), now: now)
                        } catch {
                            let (count, shouldLog) = rejections.record(error.code.rawValue)
                            if shouldLog {
                                logger.warning(
                                    "message rejected",
                                    metadata: [
                                        "reason": "\(error.code.rawValue)", "detail": "\(error.detail)",
                                        "count": "\(count)",
                                    ]
                                )
                            }
                            actions = []
                        }
                    case .socket(.sendFailed(_, let error)):
                        logger.debug("send failed", metadata: ["error": "\(error)"])
                        actions = core.onSendFailed(now: now)
                    case .tick:
                        // Calls started recently count in a restarted coordinator's windows (HELLO).
                        actions = core.onTick(now: now, recentCalls: leases.recentCalls)
                    case .finished(let result, let files):
                        tasks.removeValue(forKey: result.ref)
                        actions = core.onFinished(result, files: files?.path, now: now)
                    case .progress(let progress):
                        actions = core.onProgress(progress, now: now)
                    case .lease(let message):
                        actions = core.onLeaseMessage(message, now: now)
                    case .shutdown:
                        // The shutdown handler set the second-signal trap; the line below promises it.
                        await SecondSignal.armed()
                        logger.notice(
                            "shutting down gracefully (a second signal exits at once)",
                            metadata: [
                                "running": "\(core.running.count)",
                                "grace": "\(settings.shutdownGrace.shortDescription)",
                            ]
                        )
                        actions = core.beginDrain(now: now, grace: settings.shutdownGrace)
                    case .parentGone:
                        logger.warning(
                            "the coordinator that started this worker is gone: finishing and delivering what this worker holds if a coordinator answers within the grace, then exiting",
                            metadata: [
                                "parent_pid": "\(settings.parentPid ?? 0)", "running": "\(core.running.count)",
                                "grace": "\(settings.orphanGrace.shortDescription)",
                            ]
                        )
                        actions = core.beginDrain(now: now, grace: settings.orphanGrace)
                    }
                    await perform(actions, thread: thread, tasks: &tasks, continuation: continuation)
                    if core.state == .stopped { return }
                }
            } onGracefulShutdown: {
                SecondSignal.exitOnNext(logger: self.logger)
                continuation.yield(.shutdown)
            }
            for task in tasks.values { task.cancel() }
            for task in tasks.values { await task.value }
            // Let the goodbye leave before the socket closes.
            try? await Task.sleep(for: .milliseconds(100))
            group.cancelAll()
            continuation.finish()
        }
        await thread.close()
        context.shutdown()
        let c = core.counters
        logger.info(
            "worker stopped",
            metadata: [
                "reconnects": "\(c.reconnects)", "rejected": "\(rejections.total)", "out_of_order": "\(c.outOfOrder)",
                "duplicate_jobs": "\(c.duplicateJobs)", "over_capacity_jobs": "\(c.overCapacityJobs)",
                "chunks_served": "\(c.chunksServed)", "episodes_delivered": "\(c.artifactsDelivered)",
            ]
        )
    }

    private func perform(
        _ actions: [WorkerAction],
        thread: ZMQSocketThread,
        tasks: inout [JobRef: Task<Void, Never>],
        continuation: AsyncStream<Input>.Continuation
    ) async {
        for action in actions {
            switch action {
            case .send(let envelope):
                thread.send(Codec.encode(envelope))
            case .exit:
                break  // the run loop ends once the core has stopped
            case .leases(let event):
                switch event {
                case .sessionStarted(let welcome):
                    if !welcome.budgets.isEmpty {
                        let names = welcome.budgets.map(\.provider).joined(separator: ",")
                        logger.info(
                            "fleet budgets",
                            metadata: ["providers": "\(names)", "mode": "\(welcome.budgetMode.rawValue)"]
                        )
                    }
                    leases.sessionStarted(welcome)
                    assets?.sessionStarted(welcome)
                    if welcome.assetReuse, assets?.isActive == true {
                        logger.info("the coordinator keeps an asset store: paid answers are reused")
                    }
                case .sessionLost:
                    leases.sessionLost()
                    assets?.sessionLost()
                case .receive(.assetData(let data)):
                    assets?.receive(data)
                case .receive(let message):
                    if case .providerPause(let pause) = message {
                        if pause.circuitOpen {
                            logger.error(
                                "🔴 \(pause.provider) circuit open: remaining \(pause.provider) calls use placeholders",
                                metadata: ["reason": "\(pause.reason)"]
                            )
                        } else if pause.pauseMs > 0 {
                            logger.warning(
                                "\(pause.provider) paused by the coordinator",
                                metadata: ["pause_ms": "\(pause.pauseMs)", "reason": "\(pause.reason)"]
                            )
                        }
                    }
                    leases.receive(message)
                }
            case .renewSocket:
                do {
                    try await thread.renewSocket()
                } catch {
                    logger.error("cannot open a new socket", metadata: ["error": "\(error)"])
                }
            case .start(let job):
                let pipeline = self.pipeline
                tasks[job.ref] = Task {
                    let (result, files) = await pipeline.runKeepingFiles(job) { progress in
                        continuation.yield(.progress(progress))
                    }
                    continuation.yield(.finished(result, files: files))
                }
            case .cancel(let ref):
                tasks.removeValue(forKey: ref)?.cancel()
            case .serveChunk(let fetch, let folder, let session):
                let chunk = Self.readChunk(fetch, folder: URL(fileURLWithPath: folder))
                if let error = chunk.error {
                    logger.error(
                        "cannot read an offered file",
                        metadata: ["file": "\(fetch.name)", "error": "\(error)"]
                    )
                }
                thread.send(Codec.encode(Envelope(session: session, .artifactChunk(chunk))))
            case .deleteFiles(let folder):
                do {
                    try AttemptWorkspace.deleteOffered(URL(fileURLWithPath: folder))
                } catch {
                    logger.warning(
                        "cannot delete delivered files",
                        metadata: ["path": "\(folder)", "error": "\(error)"]
                    )
                }
            case .log(let level, let message, let metadata):
                let meta = metadata.mapValues { Logger.MetadataValue.string($0) }
                switch level {
                case .debug: logger.debug("\(message)", metadata: meta)
                case .info: logger.info("\(message)", metadata: meta)
                case .warning: logger.warning("\(message)", metadata: meta)
                }
            }
        }
    }

    /// Reads the bytes one ARTIFACT_FETCH asks for (at most `length`, fewer at the end of the file). A
    /// file that cannot be read becomes a chunk with `error` and no bytes, so the coordinator gives up on
    /// these files at once instead of waiting.
    static func readChunk(_ fetch: ArtifactFetch, folder: URL) -> ArtifactChunk {
        var chunk = ArtifactChunk(
            episodeId: fetch.episodeId,
            attempt: fetch.attempt,
            name: fetch.name,
            offset: fetch.offset,
            data: []
        )
        do {
            chunk.data = try DurableFiles.read(
                folder.appendingPathComponent(fetch.name),
                offset: fetch.offset,
                length: fetch.length
            )
        } catch {
            chunk.error = "cannot read \(fetch.name): \(error)"
        }
        return chunk
    }
}

/// Notices that the process that started this worker is gone, without signals or `prctl` (whose death
/// signal follows the parent *thread*, not the process): the worker is re-parented (`getppid()` changes)
/// or, when something sits between them, `kill(pid, 0)` finds no such process.
enum ParentWatch {
    static func isGone(_ pid: Int32, startedUnder: Int32) -> Bool {
        if startedUnder == pid { return getppid() != pid }
        return kill(pid, 0) == -1 && errno == ESRCH
    }

    /// Returns once `pid` is gone (polled every 250 ms), or when the task is cancelled.
    static func waitUntilGone(_ pid: Int32) async {
        let startedUnder = getppid()
        while !Task.isCancelled {
            if isGone(pid, startedUnder: startedUnder) { return }
            try? await Task.sleep(for: .milliseconds(250))
        }
    }
}

import DequeModule
import Protocol
import Shared

/// The coordinator's core: the batch's episodes, the connected workers, credit-based dispatch,
/// retries and worker liveness, as a pure state machine.
///
/// It does no I/O and reads no clock: every input carries `now`, every output is a ``DispatchAction``
/// the shell (``CoordinatorService``) carries out. Unit tests drive it with stepped time.
///
/// Rules (normative text in docs/PROTOCOL.md):
/// - A worker gets JOBs only while it has credit: fewer attempts in flight than `capacity.episodes`.
/// - A worker silent for `liveness × heartbeatInterval` is dead; its attempts are requeued at the front.
/// - A RESULT counts only for the attempt in flight on the sender's session; anything else is stale.
/// - An episode gets `maxAttempts` attempts (failures and lost attempts alike), then it is failed.
struct Dispatcher: Sendable {
    private(set) var batchId: String
    let settings: DispatchSettings
    private(set) var episodes = EpisodeTable()
    private(set) var workers: [String: WorkerRecord] = [:]
    private(set) var counters = DispatchCounters()
    /// What the batch's reported calls cost.
    private(set) var spend = SpendTotals()
    /// The batch's spend cap, leased to its attempts (`--max-spend`); `nil` without one.
    private(set) var spendCap: SpendCap?
    /// With a daily cap (`serve --max-spend-per-day`): what the batches finished earlier the same UTC day
    /// cost. The shell sets it before it loads a batch; the batch's cap is what is left of the day's.
    var spentEarlierToday = 0
    private(set) var finishedCount = 0
    private(set) var isComplete = false
    /// Whether new attempts may be dispatched; false once the coordinator is shutting down.
    private(set) var dispatching = true
    /// The most workers, and the most episode slots, connected at once (for the batch line and summary).
    private(set) var peakWorkers = 0
    private(set) var peakSlots = 0
    /// Worker processes (`Hello.instance`) that registered during the batch.
    private(set) var instancesSeen: Set<String> = []

    /// Positions of the pending episodes, in dispatch order (4 bytes each: a batch may queue 100,000).
    private var queue: Deque<Int32> = []
    private var sessionByRoutingId: [[UInt8]: String] = [:]
    private var joinCounter = 0
    private let makeSession: @Sendable () -> String
    /// The fleet's rate-limit budgets and who holds which permits.
    private(set) var leases: LeaseManager
    /// Dispatches so far; an episode's `dispatchOrder` ranks its lease requests.
    private var dispatchCounter = 0
    /// Transfers of successful attempts' files from their workers.
    private var collector: ArtifactCollector
    /// The previous ``onTick(now:)``: liveness is judged on the coordinator's own loop time.
    private var lastTick: ContinuousClock.Instant?
    /// After a stall of the loop, no worker is declared dead before this moment.
    private var stallGraceUntil: ContinuousClock.Instant?
    /// When the latest stall was noticed, and the workers that had joined by then.
    private var stalledAt: ContinuousClock.Instant?
    private var joinedBeforeStall = 0

    init(
        batchId: String,
        specs: EpisodeSpecs,
        attemptFloors: [String: Int] = [:],
        settings: DispatchSettings,
        leases: LeaseSettings = LeaseSettings(),
        makeSession: @escaping @Sendable () -> String
    ) {
        self.batchId = batchId
        self.settings = settings
        self.leases = LeaseManager(settings: leases)
        self.collector = ArtifactCollector(settings: settings.artifacts)
        self.makeSession = makeSession
        _ = load(batchId: batchId, specs: specs, attemptFloors: attemptFloors, now: nil)
    }

    /// A dispatcher that carries on a batch read back from the journal after a restart (see
    /// ``load(batchId:restored:counters:holdUntil:now:)``).
    init(
        batchId: String,
        restored: [EpisodeRecord],
        counters: DispatchCounters,
        settings: DispatchSettings,
        leases: LeaseSettings = LeaseSettings(),
        holdUntil: ContinuousClock.Instant,
        makeSession: @escaping @Sendable () -> String
    ) {
        self.init(batchId: batchId, specs: [], settings: settings, leases: leases, makeSession: makeSession)
        _ = load(batchId: batchId, restored: restored, counters: counters, holdUntil: holdUntil, now: nil)
    }

    /// Makes `specs` the batch being dispatched (`coordinator serve` runs batches one after another on the
    /// same workers and budgets). The previous batch must be complete. Each episode's attempt numbers
    /// start above `attemptFloors[id]`, the highest attempt number an episode of that id had in an
    /// earlier batch, so that an old attempt a worker still announces is never taken for a new one.
    /// With `now`, hands out work at once.
    mutating func load(
        batchId: String,
        specs: EpisodeSpecs,
        attemptFloors: [String: Int] = [:],
        now: ContinuousClock.Instant?
    ) -> [DispatchAction] {
        let records = specs.indices.map { i in
            // The records share the batch's specs; a generated batch makes none up front.
            var record = EpisodeRecord(index: i, id: specs.id(at: i) ?? "episode_\(i + 1)", specs: specs)
            if let floor = attemptFloors[record.id] {
                record.attempts = floor
                record.attemptBase = floor
            }
            return record
        }
        let queue = Deque(records.indices.lazy.map { Int32($0) })
        return install(batchId: batchId, records: records, queue: queue, counters: .init(), now: now)
    }

    /// Makes a batch read back from the journal the batch being dispatched: finished episodes stay
    /// finished; episodes that were in flight keep their attempt count (so results of the old attempts are
    /// still fenced) and wait until `holdUntil` for their workers to reconnect and re-announce them (then
    /// they are re-adopted, not redone) before anyone else gets them.
    mutating func load(
        batchId: String,
        restored: [EpisodeRecord],
        counters: DispatchCounters,
        holdUntil: ContinuousClock.Instant,
        now: ContinuousClock.Instant?
    ) -> [DispatchAction] {
        var restored = restored
        var queue: Deque<Int32> = []
        for i in restored.indices {
            restored[i] = EpisodeRecord(copying: restored[i], index: i)
            // Episodes the spend cap stopped start again (the cap may have been raised).
            if restored[i].isFinished, restored[i].status != .capped { continue }
            if restored[i].status == .running { restored[i].notBefore = holdUntil }
            restored[i].status = .pending
            restored[i].session = nil
            queue.append(Int32(i))
        }
        return install(batchId: batchId, records: restored, queue: queue, counters: counters, now: now)
    }

    private mutating func install(
        batchId: String,
        records: [EpisodeRecord],
        queue: Deque<Int32>,
        counters: DispatchCounters,
        now: ContinuousClock.Instant?
    ) -> [DispatchAction] {
        self.batchId = batchId
        self.episodes = EpisodeTable(records)
        self.queue = queue
        self.counters = counters
        self.collector = ArtifactCollector(settings: settings.artifacts, counters: counters.artifacts)
        self.spend = SpendTotals()
        let dayLeft = settings.dailySpendCapMicros.map { max(0, $0 - spentEarlierToday) }
        self.spendCap = [settings.spendCapMicros, dayLeft].compactMap { $0 }.min().map { cap in
            var ledger = SpendCap(capMicros: cap, expectedEpisodeMicros: settings.expectedEpisodeCostMicros)
            if let daily = settings.dailySpendCapMicros, let dayLeft, dayLeft < settings.spendCapMicros ?? .max {
                ledger.origin =
                    "what is left of the daily \(PriceTable.dollars(daily)) "
                    + "(\(PriceTable.dollars(min(daily, spentEarlierToday))) spent by earlier batches today, UTC)"
            }
            // A resumed batch already spent what its episodes cost before the restart.
            ledger.seed(spentMicros: records.reduce(0) { $0 + $1.costMicros })
            return ledger
        }
        self.finishedCount = records.count { $0.isFinished }
        self.isComplete = finishedCount == records.count
        self.dispatching = true
        // Figures of the batch: the workers already connected count from its start.
        for session in workers.keys { workers[session]?.inflight = [] }
        peakWorkers = workers.count
        peakSlots = totalSlots
        instancesSeen = Set(workers.values.map(\.hello.instance))
        leases.resetStatistics()
        var actions: [DispatchAction] = []
        if let now { dispatch(now: now, into: &actions) }
        return actions
    }

    /// Counts budgeted calls started before a restart (from the journal) in the lease windows.
    mutating func seedLeases(recentCalls: [String: [Int]], now: ContinuousClock.Instant) {
        leases.seed(recentCalls: recentCalls, now: now)
    }

    /// The episode with this id.
    func episode(_ id: String) -> EpisodeRecord? {
        episodes.position(of: id).map { episodes[$0] }
    }

    var succeededCount: Int { episodes.counts.succeeded }
    var failedCount: Int { episodes.counts.failed }
    var pendingCount: Int { queue.count }
    var runningCount: Int { workers.values.reduce(0) { $0 + $1.inflight.count } }
    /// Transfers of episode files in progress or waiting.
    var collectingCount: Int { collectingEpisodes.count }
    /// The episodes whose files are on their way to the output folder.
    var collectingEpisodes: Set<String> { collector.collectingEpisodes }
    /// Since when, and why, storing episode files is paused (the coordinator's disk is full); nil otherwise.
    var diskFull: (since: ContinuousClock.Instant, error: String)? {
        collector.diskFullSince.map { ($0, collector.diskFullError ?? "no space left") }
    }
    /// Episode slots of all connected workers.
    var totalSlots: Int { workers.values.reduce(0) { $0 + $1.hello.capacity.episodes } }

    // MARK: - Inputs

    /// A decoded message arrived from the connection `routingId`.
    mutating func onMessage(
        from routingId: [UInt8],
        _ envelope: Envelope,
        now: ContinuousClock.Instant
    ) -> [DispatchAction] {
        var actions: [DispatchAction] = []
        noticeStall(now: now, into: &actions)
        if case .hello(let hello) = envelope.message {
            register(hello, routingId: routingId, now: now, into: &actions)
            dispatch(now: now, into: &actions)
            return actions
        }
        guard !envelope.session.isEmpty, let session = sessionByRoutingId[routingId], session == envelope.session,
            var worker = workers[session]
        else {
            counters.unknownSession += 1
            actions.append(
                .notice(
                    .rejected(
                        reason: "unknown_session",
                        detail:
                            "\(envelope.message.kind) with session \"\(envelope.session)\" from an unregistered connection"
                    )
                )
            )
            actions.append(
                .send(
                    to: routingId,
                    Envelope(
                        session: envelope.session.isEmpty ? "" : envelope.session,
                        .disconnect(
                            Disconnect(reason: .unknownSession, detail: "unknown session; send HELLO on a new socket")
                        )
                    )
                )
            )
            return actions
        }
        worker.lastHeard = now
        workers[session] = worker

        switch envelope.message {
        case .hello:
            break  // handled above
        case .heartbeat(let heartbeat):
            if heartbeat.draining, var w = workers[session], !w.draining {
                w.draining = true
                workers[session] = w
                actions.append(.notice(.workerDraining(workerId: w.hello.workerId, running: w.inflight.count)))
            }
        case .progress(let progress):
            let ref = JobRef(episodeId: progress.episodeId, attempt: progress.attempt)
            if !worker.inflight.contains(ref) {
                counters.staleProgress += 1
            }
        case .result(let result):
            handleResult(result, session: session, now: now, into: &actions)
        case .artifactChunk(let chunk):
            apply(collector.onChunk(chunk, session: session, now: now), now: now, into: &actions)
        case .disconnect(let disconnect):
            drop(
                session: session,
                reason: "worker said goodbye (\(disconnect.reason.rawValue))",
                now: now,
                into: &actions
            )
        case .leaseRequest, .leaseStarted, .leaseRelease, .leaseCancel, .providerSignal:
            var priority = Int.max
            if case .leaseRequest(let request) = envelope.message, let id = request.episodeId,
                let index = episodes.position(of: id), let order = episodes[index].dispatchOrder
            {
                priority = order
            }
            let leaseActions = leases.onMessage(envelope.message, session: session, priority: priority, now: now)
            apply(leaseActions, now: now, into: &actions)
        case .assetGet, .assetPut:
            if settings.assetReuse {
                actions.append(.asset(.message(routingId: routingId, session: session, envelope.message)))
                return actions  // nothing to dispatch: the store is not the dispatcher's state
            }
            counters.outOfOrder += 1
            actions.append(
                .notice(
                    .rejected(
                        reason: "out_of_order",
                        detail: "\(envelope.message.kind) but this coordinator keeps no asset store (--no-reuse)"
                    )
                )
            )
        case .welcome, .job, .cancel, .leaseGrant, .providerPause, .artifactFetch, .artifactAck, .assetData:
            counters.outOfOrder += 1
            actions.append(
                .notice(
                    .rejected(
                        reason: "out_of_order",
                        detail: "\(envelope.message.kind) is never sent by a worker"
                    )
                )
            )
        }
        dispatch(now: now, into: &actions)
        return actions
    }

    /// A message from `routingId` could not be decoded. Counted and dropped. Two peers are told why,
    /// since they could otherwise retry forever: one of another major version, and one whose HELLO
    /// (`kindByte` 0x01) is refused (a capacity of 0, a slash in its worker id, …).
    mutating func onDecodeError(
        from routingId: [UInt8],
        _ error: DecodeError,
        kindByte: UInt8?,
        now: ContinuousClock.Instant
    ) -> [DispatchAction] {
        counters.decodeErrors[error.code.rawValue, default: 0] += 1
        var actions: [DispatchAction] = [.notice(.rejected(reason: error.code.rawValue, detail: error.detail))]
        let detail: String?
        switch error.code {
        case .unsupportedVersion:
            detail = "this coordinator speaks reelfarm/1; \(error.detail)"
        case .malformedBody, .invalidField, .badSession, .unexpectedBlobs, .oversized:
            detail = kindByte == MessageKind.hello.rawValue ? "HELLO refused: \(error.detail)" : nil
        default:
            detail = nil
        }
        if let detail {
            actions.append(
                .send(to: routingId, Envelope(.disconnect(Disconnect(reason: .protocolError, detail: detail))))
            )
        }
        return actions
    }

    /// libzmq could not deliver to `routingId` (the peer is gone, or its queue is full).
    mutating func onSendFailed(to routingId: [UInt8], now: ContinuousClock.Instant) -> [DispatchAction] {
        counters.sendFailures += 1
        var noticed: [DispatchAction] = []
        noticeStall(now: now, into: &noticed)
        guard let session = sessionByRoutingId[routingId] else { return noticed }
        if let until = stallGraceUntil, now < until, var worker = workers[session] {
            // After our own stall: the worker closed this connection while we did not listen and is on its
            // way back on a new one. No more jobs here; its attempts wait for it until the grace ends.
            worker.draining = true
            workers[session] = worker
            return noticed
        }
        var actions = noticed
        counters.workersLost += 1
        drop(session: session, reason: "connection lost (send failed)", now: now, into: &actions)
        dispatch(now: now, into: &actions)
        return actions
    }

    /// Time passed: declare silent workers dead and heartbeat idle connections.
    ///
    /// Liveness is judged on the coordinator's own loop time. When more than a heartbeat interval passed
    /// since the previous tick, the loop itself stood still (the process was stopped, swapped out, or busy)
    /// and the workers' messages of that time may still sit unread in the socket: every worker, and every
    /// transfer, then gets a fresh window instead of being declared dead for our own silence.
    mutating func onTick(now: ContinuousClock.Instant) -> [DispatchAction] {
        var actions: [DispatchAction] = []
        noticeStall(now: now, into: &actions)
        lastTick = now
        let inGrace = stallGraceUntil.map { now < $0 } ?? false
        let silent = workers.values
            .filter {
                now - $0.lastHeard >= settings.deadAfter && !inGrace
                    && !collector.isReceiving(from: $0.session, now: now)
            }
            .sorted { $0.joinOrder < $1.joinOrder }
        for worker in silent {
            counters.workersLost += 1
            let silence = (now - worker.lastHeard).shortDescription
            drop(session: worker.session, reason: "no heartbeat for \(silence)", now: now, into: &actions)
        }
        for session in workers.keys.sorted() {
            guard var worker = workers[session], now - worker.lastSent >= settings.heartbeatInterval else { continue }
            worker.lastSent = now
            workers[session] = worker
            actions.append(.send(to: worker.routingId, Envelope(session: session, .heartbeat(Heartbeat()))))
        }
        apply(leases.advance(now: now), now: now, into: &actions)
        apply(collector.onTick(now: now), now: now, into: &actions)
        dispatch(now: now, into: &actions)
        return actions
    }

    /// Whether the loop stood still since its previous tick (more than a heartbeat interval ago), noticed
    /// by whatever input comes first after it. The gap does not count as anyone's silence. A stall of a
    /// liveness window or more also gives a grace, widened by the stall (up to the workers' longest
    /// reconnect backoff): a worker that gave up on us meanwhile is backing off before it greets again, and
    /// should find its attempts still its own when it re-announces them. Until the grace
    /// ends, connections from before the stall get no new JOBs unless they prove alive (see
    /// ``mayDispatch(to:now:)``): a JOB queued on a connection its worker closed meanwhile would be lost.
    private mutating func noticeStall(now: ContinuousClock.Instant, into actions: inout [DispatchAction]) {
        guard settings.freshWindowAfterStall, let last = lastTick, now - last > settings.heartbeatInterval else {
            return
        }
        let gap = now - last
        lastTick = now
        // Silence is counted on the loop's own running time: the stalled gap is not held against anyone, the
        // silence before and after it still is. (Resetting every worker to `now` on each gap kept a frozen
        // worker alive on a loaded machine, whose late ticks made a "stall" of every few hundred ms.)
        // What counts as stalled is the gap beyond the detection threshold: ticks that merely come late on a
        // loaded machine still let silence accrue, at most a threshold per gap.
        let stalled = gap - settings.heartbeatInterval
        for session in workers.keys {
            if let heard = workers[session]?.lastHeard { workers[session]?.lastHeard = min(now, heard + stalled) }
        }
        collector.refreshProgress(now: now)
        // Only a stall long enough for the workers to give up on us needs more: they may be reconnecting.
        guard gap >= settings.deadAfter else { return }
        stallGraceUntil = now + settings.deadAfter + min(gap, settings.maxReconnectBackoff)
        stalledAt = now
        joinedBeforeStall = joinCounter
        actions.append(.notice(.loopStalled(gap: gap, workers: workers.count)))
    }

    /// During the grace after a stall, a connection from before it gets JOBs again only once it is heard a
    /// heartbeat interval after we woke (what it had sent while we stood still is read at once).
    private func mayDispatch(to worker: WorkerRecord, now: ContinuousClock.Instant) -> Bool {
        guard let until = stallGraceUntil, now < until, let stalledAt, worker.joinOrder <= joinedBeforeStall else {
            return true
        }
        return worker.lastHeard >= stalledAt + settings.heartbeatInterval
    }

    /// The artifact store carried out a command.
    mutating func onArtifactEvent(_ event: ArtifactEvent, now: ContinuousClock.Instant) -> [DispatchAction] {
        var actions: [DispatchAction] = []
        apply(collector.onEvent(event, now: now), now: now, into: &actions)
        dispatch(now: now, into: &actions)
        return actions
    }

    /// The next moment the lease manager may grant a waiting call by itself (the shell wakes up then and
    /// calls ``onLeaseTimer(now:)``), or `nil`.
    func nextLeaseDeadline(after now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        leases.nextDeadline(after: now)
    }

    /// A lease deadline came: grant what the budgets now allow, and admit episodes if that opened admission.
    mutating func onLeaseTimer(now: ContinuousClock.Instant) -> [DispatchAction] {
        var actions: [DispatchAction] = []
        apply(leases.advance(now: now), now: now, into: &actions)
        dispatch(now: now, into: &actions)
        return actions
    }

    /// Carries out the lease manager's actions: sends go to the session's connection.
    private mutating func apply(
        _ leaseActions: [LeaseManager.Action],
        now: ContinuousClock.Instant,
        into actions: inout [DispatchAction]
    ) {
        for action in leaseActions {
            switch action {
            case .send(let session, let message):
                guard var worker = workers[session] else { continue }
                worker.lastSent = now
                workers[session] = worker
                actions.append(.send(to: worker.routingId, Envelope(session: session, message)))
            case .notice(let notice):
                if case .rejected(let reason, _) = notice { counters.leaseRejected[reason, default: 0] += 1 }
                actions.append(.notice(.lease(notice)))
            }
        }
    }

    /// The positions of the next `count` episodes in the queue, in dispatch order.
    func nextQueued(_ count: Int) -> [Int] { queue.prefix(count).map(Int.init) }

    /// Hands out queued episodes to workers with credit (after ``load(batchId:specs:attemptFloors:now:)``).
    mutating func dispatchPending(now: ContinuousClock.Instant) -> [DispatchAction] {
        var actions: [DispatchAction] = []
        dispatch(now: now, into: &actions)
        return actions
    }

    /// Stops handing jobs to the workers with this id (a local worker the pool is shrinking away). Their
    /// attempts run on; the worker is stopped once ``isBusy(workerId:)`` says it is done.
    mutating func retire(workerId: String) -> [DispatchAction] {
        var actions: [DispatchAction] = []
        for (session, worker) in workers where worker.hello.workerId == workerId && !worker.draining {
            workers[session]?.draining = true
            actions.append(.notice(.workerDraining(workerId: workerId, running: worker.inflight.count)))
        }
        return actions
    }

    /// Whether a worker with this id has attempts in flight or files on their way here.
    func isBusy(workerId: String) -> Bool {
        workers.values.contains { w in
            w.hello.workerId == workerId && (!w.inflight.isEmpty || !collector.refs(of: w.session).isEmpty)
        }
    }

    /// Stop dispatching and say goodbye to every worker.
    mutating func shutdown(reason: Disconnect.Reason, detail: String) -> [DispatchAction] {
        dispatching = false
        return workers.values.sorted { $0.joinOrder < $1.joinOrder }.map {
            .send(
                to: $0.routingId,
                Envelope(session: $0.session, .disconnect(Disconnect(reason: reason, detail: detail)))
            )
        }
    }

    // MARK: - Internals

    private mutating func register(
        _ hello: Hello,
        routingId: [UInt8],
        now: ContinuousClock.Instant,
        into actions: inout [DispatchAction]
    ) {
        if let old = sessionByRoutingId[routingId] {
            drop(session: old, reason: "re-registered with HELLO", now: now, into: &actions)
        }
        if settings.spendCapMicros != nil || settings.dailySpendCapMicros != nil, hello.protocolMinor < 4 {
            // A spend cap needs JOB allowances (minor 4); a worker that ignores them could spend without limit.
            actions.append(
                .notice(
                    .rejected(
                        reason: "protocol_minor",
                        detail:
                            "worker \(hello.workerId) speaks minor \(hello.protocolMinor); a spend cap needs minor 4"
                    )
                )
            )
            actions.append(
                .send(
                    to: routingId,
                    Envelope(
                        .disconnect(
                            Disconnect(
                                reason: .protocolError,
                                detail:
                                    "this coordinator enforces a spend cap (--max-spend), which needs protocol minor 4 (spend allowances)"
                            )
                        )
                    )
                )
            )
            return
        }
        if !leases.settings.isEmpty, hello.protocolMinor < 1 {
            // Budgets need lease messages (minor 1); a worker that cannot lease would call providers freely.
            actions.append(
                .notice(
                    .rejected(
                        reason: "protocol_minor",
                        detail: "worker \(hello.workerId) speaks minor \(hello.protocolMinor); budgets need minor 1"
                    )
                )
            )
            actions.append(
                .send(
                    to: routingId,
                    Envelope(
                        .disconnect(
                            Disconnect(
                                reason: .protocolError,
                                detail:
                                    "this coordinator enforces rate-limit budgets, which need protocol minor 1 (lease messages)"
                            )
                        )
                    )
                )
            )
            return
        }
        // The same worker process on a new connection (it lost us, e.g. while this process was stopped, and
        // greeted again on a new socket): the attempts it lists move to the new session at once, so that
        // the old session, silent from now on, requeues only what the worker no longer holds.
        let previous = hello.instance.isEmpty ? [] : workers.values.filter { $0.hello.instance == hello.instance }
        let session = makeSession()
        joinCounter += 1
        workers[session] = WorkerRecord(
            session: session,
            routingId: routingId,
            hello: hello,
            joinOrder: joinCounter,
            lastHeard: now,
            lastSent: now
        )
        sessionByRoutingId[routingId] = session
        peakWorkers = max(peakWorkers, workers.count)
        peakSlots = max(peakSlots, totalSlots)
        instancesSeen.insert(hello.instance)
        actions.append(
            .notice(
                .workerJoined(
                    workerId: hello.workerId,
                    host: hello.host,
                    capacity: hello.capacity,
                    session: session
                )
            )
        )
        let welcome = Welcome(
            session: session,
            heartbeatIntervalMs: settings.heartbeatInterval.wholeMilliseconds,
            liveness: settings.liveness,
            maxMessageBytes: WireProtocol.maxMessageBytes,
            softwareVersion: settings.softwareVersion,
            budgets: leases.announcedBudgets,
            budgetMode: leases.settings.mode,
            fleetWorkers: workers.count,
            assetReuse: settings.assetReuse && hello.protocolMinor >= 5
        )
        let circuits = leases.workerJoined(
            session: session,
            recentCalls: hello.recentCalls,
            protocolMinor: hello.protocolMinor,
            now: now
        )
        actions.append(.send(to: routingId, Envelope(session: session, .welcome(welcome))))
        // Open circuits right after the WELCOME, which makes the worker forget the ones it knew.
        apply(circuits, now: now, into: &actions)
        for old in previous {
            takeOver(hello.running, from: old.session, to: session, now: now, into: &actions)
        }
        adopt(hello.running, session: session, now: now, into: &actions)
    }

    /// Moves the attempts a re-registering worker lists from its previous session to the new one. A file
    /// transfer of the old session is stopped (its progress is kept, ``ArtifactCollector``): the worker
    /// offers the files again on the new session.
    private mutating func takeOver(
        _ refs: [JobRef],
        from old: String,
        to session: String,
        now: ContinuousClock.Instant,
        into actions: inout [DispatchAction]
    ) {
        guard var oldWorker = workers[old], let newWorker = workers[session] else { return }
        let collecting = Set(collector.refs(of: old))
        var moved: [JobRef] = []
        for ref in refs where oldWorker.inflight.contains(ref) || collecting.contains(ref) {
            guard let index = episodes.position(of: ref.episodeId), episodes[index].session == old,
                episodes[index].attempts == ref.attempt
            else { continue }
            oldWorker.inflight.remove(ref)
            episodes[index].session = session
            episodes[index].workerId = newWorker.hello.workerId
            moved.append(ref)
        }
        // The old connection is closed on the worker's side: no more jobs for it.
        oldWorker.draining = true
        workers[old] = oldWorker
        if !moved.isEmpty {
            apply(collector.abort(refs: moved.filter { collecting.contains($0) }, now: now), now: now, into: &actions)
        }
        for ref in moved {
            counters.attemptsReadopted += 1
            actions.append(.notice(.readopted(ref, workerId: newWorker.hello.workerId)))
        }
    }

    /// A (re)registering worker announced attempts it still runs or holds a result of. Each takes a
    /// slot of its credit. The current attempt of an episode that was requeued and not yet handed out
    /// again is re-adopted (no work is redone); an attempt of an episode that is already finished is
    /// cancelled; any other attempt races the episode's newer one, and the first success wins.
    private mutating func adopt(
        _ refs: [JobRef],
        session: String,
        now: ContinuousClock.Instant,
        into actions: inout [DispatchAction]
    ) {
        guard var worker = workers[session] else { return }
        for ref in Set(refs).sorted(by: { ($0.episodeId, $0.attempt) < ($1.episodeId, $1.attempt) }) {
            let index = episodes.position(of: ref.episodeId).flatMap {
                episodes[$0].owns(attempt: ref.attempt) ? $0 : nil
            }
            guard let index, !episodes[index].isFinished else {
                // Never handed out by this coordinator (or another batch's), or already ended: cancelled.
                if index == nil { counters.staleResults += 1 } else { counters.finishedElsewhereCancelled += 1 }
                actions.append(
                    .send(
                        to: worker.routingId,
                        Envelope(session: session, .cancel(Cancel(episodeId: ref.episodeId, attempt: ref.attempt)))
                    )
                )
                continue
            }
            var episode = episodes[index]
            worker.inflight.insert(ref)
            if episode.status == .pending, ref.attempt == episode.attempts {
                queue.removeAll { $0 == Int32(index) }
                episode.notBefore = nil
                episode.status = .running
                episode.session = session
                episode.workerId = worker.hello.workerId
                episodes[index] = episode
                counters.attemptsReadopted += 1
                actions.append(.notice(.readopted(ref, workerId: worker.hello.workerId)))
            }
        }
        workers[session] = worker
    }

    private mutating func handleResult(
        _ result: EpisodeResult,
        session: String,
        now: ContinuousClock.Instant,
        into actions: inout [DispatchAction]
    ) {
        guard var worker = workers[session] else { return }
        let ref = result.ref
        // Money spent is counted whatever the fencing decides: a fenced attempt's calls were paid for too.
        let cost = spend.record(result)
        if cost > 0, let i = episodes.position(of: ref.episodeId), episodes[i].owns(attempt: ref.attempt) {
            episodes[i].costMicros += cost
        }
        spendCap?.finished(ref, costMicros: cost, succeeded: result.status == .succeeded)
        // Fencing. A result counts only for an attempt this session was given (or announced), and only
        // once per episode: the current attempt's result, or an older attempt's success while the
        // episode is still open (then the newer attempt is cancelled). Anything else is counted.
        let index = episodes.position(of: ref.episodeId)
        let isCurrent = index.map { episodes[$0].session == session && episodes[$0].attempts == ref.attempt } ?? false
        let lateSuccess =
            index.map {
                !episodes[$0].isFinished && episodes[$0].owns(attempt: ref.attempt)
                    && ref.attempt < episodes[$0].attempts
            }
            ?? false
            && result.status == .succeeded
        // An episode whose files are on their way from a successful attempt takes no other result.
        let collecting = index.map { collector.isCollecting(episodes[$0].id) } ?? false
        let isDuplicate =
            worker.inflight.contains(ref) && (index.map { episodes[$0].isFinished } ?? false || collecting)
            && result.status == .succeeded
        guard worker.inflight.contains(ref), let index, !episodes[index].isFinished, !collecting,
            isCurrent || lateSuccess
        else {
            if worker.inflight.remove(ref) != nil { workers[session] = worker }
            if !result.artifacts.isEmpty, result.effectiveDelivery == .transfer {
                // Its worker holds the files until told: they are not wanted.
                send(
                    .cancel(Cancel(episodeId: ref.episodeId, attempt: ref.attempt)),
                    to: session,
                    now: now,
                    into: &actions
                )
            }
            // A second success of a finished episode is a duplicate; anything else fenced is stale.
            if isDuplicate { counters.duplicateResults += 1 } else { counters.staleResults += 1 }
            actions.append(.notice(.stale(kind: .result, ref, workerId: worker.hello.workerId)))
            actions.append(
                .notice(
                    .trace(
                        workerId: worker.hello.workerId,
                        instance: worker.hello.instance,
                        ref,
                        result.trace,
                        stale: true
                    )
                )
            )
            return
        }
        worker.inflight.remove(ref)
        worker.completed += 1
        workers[session] = worker
        actions.append(
            .notice(
                .trace(
                    workerId: worker.hello.workerId,
                    instance: worker.hello.instance,
                    ref,
                    result.trace,
                    stale: false
                )
            )
        )

        var episode = episodes[index]
        if !isCurrent {
            // An older attempt finished first: the newer one is no longer wanted.
            counters.lateResultsAccepted += 1
            if let other = episode.session, var running = workers[other],
                running.inflight.remove(episode.currentRef) != nil
            {
                workers[other] = running
                counters.supersededCancelled += 1
                send(
                    .cancel(Cancel(episodeId: episode.id, attempt: episode.attempts)),
                    to: other,
                    now: now,
                    into: &actions
                )
            }
            queue.removeAll { $0 == Int32(index) }
            episode.workerId = worker.hello.workerId
        }
        episode.session = nil
        episode.apiCalls += result.apiCalls
        episodes[index] = episode
        switch result.status {
        case .succeeded where !result.artifacts.isEmpty:
            // Done only once its files are durable here: until then the episode stays in flight on this
            // session (a lost worker requeues it), and no other result of it is taken.
            episode.status = .running
            episode.session = session
            episode.workerId = worker.hello.workerId
            episodes[index] = episode
            actions.append(
                .notice(
                    .collecting(
                        ref,
                        workerId: worker.hello.workerId,
                        files: result.artifacts.count,
                        bytes: result.artifacts.reduce(0) { $0 + $1.size },
                        delivery: result.effectiveDelivery
                    )
                )
            )
            apply(collector.begin(result, session: session, now: now), now: now, into: &actions)
        case .succeeded:
            succeed(index, ref: ref, result: result, workerId: worker.hello.workerId, now: now, into: &actions)
        case .failed:
            failAttempt(
                index,
                ref: ref,
                workerId: worker.hello.workerId,
                error: result.error ?? "unknown error",
                capped: result.spendCapped && spendCap != nil,
                now: now,
                into: &actions
            )
        }
        checkComplete(into: &actions)
    }

    /// The episode succeeded with this attempt's result (its files, if any, are durable).
    private mutating func succeed(
        _ index: Int,
        ref: JobRef,
        result: EpisodeResult,
        workerId: String,
        now: ContinuousClock.Instant,
        into actions: inout [DispatchAction]
    ) {
        var episode = episodes[index]
        episode.session = nil
        episode.status = .succeeded
        episode.workerId = workerId
        episode.finishedAt = now
        episode.durationMs = result.durationMs
        episode.placeholders = result.placeholders
        episode.artifacts = result.artifacts
        episodes[index] = episode
        finishedCount += 1
        // Partly pulled files of another attempt of it are of no more use.
        apply(collector.forgetParked(episodeId: episode.id), now: now, into: &actions)
        actions.append(
            .notice(
                .episodeSucceeded(
                    episodeId: episode.id,
                    attempt: ref.attempt,
                    workerId: workerId,
                    finished: finishedCount,
                    total: episodes.count,
                    durationMs: result.durationMs,
                    placeholders: result.placeholders.count
                )
            )
        )
    }

    /// The attempt failed: retried as the next attempt, or the episode fails once out of attempts.
    private mutating func failAttempt(
        _ index: Int,
        ref: JobRef,
        workerId: String,
        error: String,
        capped: Bool = false,
        now: ContinuousClock.Instant,
        into actions: inout [DispatchAction]
    ) {
        var episode = episodes[index]
        episode.session = nil
        episode.errors.append("attempt \(ref.attempt) on \(workerId): \(error)")
        // Stopped by its spend allowance: another attempt would only pay again for the same refusal.
        let willRetry = !capped && episode.attemptsUsed < settings.maxAttempts
        actions.append(.notice(.attemptFailed(ref, workerId: workerId, error: error, willRetry: willRetry)))
        if capped {
            episode.status = .capped
            episode.finishedAt = now
            finishedCount += 1
        } else if willRetry {
            episode.status = .pending
            queue.append(Int32(index))
        } else {
            episode.status = .failed
            episode.finishedAt = now
            finishedCount += 1
            actions.append(
                .notice(
                    .episodeFailed(
                        episodeId: episode.id,
                        finished: finishedCount,
                        total: episodes.count,
                        reasons: episode.errors
                    )
                )
            )
        }
        episodes[index] = episode
    }

    /// Carries out the artifact collector's outputs.
    private mutating func apply(
        _ outputs: [ArtifactCollector.Output],
        now: ContinuousClock.Instant,
        into actions: inout [DispatchAction]
    ) {
        for output in outputs {
            switch output {
            case .fetch(let session, let fetch):
                send(.artifactFetch(fetch), to: session, now: now, into: &actions)
            case .store(let command):
                actions.append(.store(command))
            case .stored(let ref, let session, let result):
                guard let index = episodes.position(of: ref.episodeId), !episodes[index].isFinished else { continue }
                let workerId = workers[session]?.hello.workerId ?? episodes[index].workerId ?? "unknown"
                succeed(index, ref: ref, result: result, workerId: workerId, now: now, into: &actions)
                if result.effectiveDelivery == .transfer {
                    // After the journal has the episode (the shell flushes before it sends): the worker
                    // may now delete its copy.
                    send(
                        .artifactAck(ArtifactAck(episodeId: ref.episodeId, attempt: ref.attempt)),
                        to: session,
                        now: now,
                        into: &actions
                    )
                }
                checkComplete(into: &actions)
            case .failed(let ref, let session, let reason):
                guard let index = episodes.position(of: ref.episodeId), !episodes[index].isFinished,
                    episodes[index].session == session
                else { continue }
                let workerId = workers[session]?.hello.workerId ?? episodes[index].workerId ?? "unknown"
                failAttempt(index, ref: ref, workerId: workerId, error: reason, now: now, into: &actions)
                // The worker still holds the files: they are no longer wanted.
                send(
                    .cancel(Cancel(episodeId: ref.episodeId, attempt: ref.attempt)),
                    to: session,
                    now: now,
                    into: &actions
                )
                checkComplete(into: &actions)
            case .rejected(let reason, let detail):
                actions.append(.notice(.rejected(reason: reason, detail: detail)))
            case .diskFull(let error):
                actions.append(.notice(.diskFull(error: error)))
            case .diskSpaceBack(let pausedFor):
                actions.append(.notice(.diskSpaceBack(pausedFor: pausedFor)))
            }
        }
        counters.artifacts = collector.counters
    }

    /// Sends a message on a session, if it is still connected.
    private mutating func send(
        _ message: Message,
        to session: String,
        now: ContinuousClock.Instant,
        into actions: inout [DispatchAction]
    ) {
        guard var worker = workers[session] else { return }
        worker.lastSent = now
        workers[session] = worker
        actions.append(.send(to: worker.routingId, Envelope(session: session, message)))
    }

    /// Removes a worker and gives its attempts back: requeued at the front, or failed when out of attempts.
    private mutating func drop(
        session: String,
        reason: String,
        now: ContinuousClock.Instant,
        into actions: inout [DispatchAction]
    ) {
        guard let worker = workers.removeValue(forKey: session) else { return }
        if sessionByRoutingId[worker.routingId] == session {
            sessionByRoutingId.removeValue(forKey: worker.routingId)
        }
        apply(leases.workerLeft(session: session, lastHeard: worker.lastHeard, now: now), now: now, into: &actions)
        if settings.assetReuse { actions.append(.asset(.sessionEnded(session))) }
        // Attempts whose files were still coming count as lost too: they are not done until stored.
        let collecting = collector.refs(of: session)
        apply(collector.abort(session: session, now: now), now: now, into: &actions)
        let lost = worker.inflight.union(collecting).sorted { $0.episodeId < $1.episodeId }
        for ref in lost { spendCap?.lost(ref) }
        var requeued: [JobRef] = []
        for ref in lost {
            guard let index = episodes.position(of: ref.episodeId), episodes[index].session == session else { continue }
            var episode = episodes[index]
            episode.session = nil
            episode.errors.append("attempt \(ref.attempt) on \(worker.hello.workerId) lost: \(reason)")
            if episode.attemptsUsed < settings.maxAttempts {
                episode.status = .pending
                queue.prepend(Int32(index))
                requeued.append(ref)
                counters.attemptsRequeued += 1
                episodes[index] = episode
            } else {
                episode.status = .failed
                episode.finishedAt = now
                finishedCount += 1
                episodes[index] = episode
                actions.append(
                    .notice(
                        .episodeFailed(
                            episodeId: episode.id,
                            finished: finishedCount,
                            total: episodes.count,
                            reasons: episode.errors
                        )
                    )
                )
            }
        }
        actions.append(.notice(.workerLeft(workerId: worker.hello.workerId, reason: reason, requeued: requeued)))
        checkComplete(into: &actions)
    }

    /// Fills every worker's credit from the queue, most free slots first (ties: earliest joined).
    private mutating func dispatch(now: ContinuousClock.Instant, into actions: inout [DispatchAction]) {
        guard dispatching else { return }
        // The coordinator's disk is full: no new attempt until finished ones can be stored again.
        if collector.isDiskFull { return }
        while !queue.isEmpty {
            // Budget-aware admission: no new episode while the budgets already have more waiting than they
            // can serve soon (it would only queue); always admit when nothing runs.
            if runningCount > 0, !leases.admissionOpen { return }
            guard
                let target = workers.values
                    .filter({ $0.credit > 0 && mayDispatch(to: $0, now: now) })
                    .max(by: { ($0.credit, -$0.joinOrder) < ($1.credit, -$1.joinOrder) })
            else { return }
            // The first episode not held for re-adoption (after a restart), in queue order.
            guard let position = queue.firstIndex(where: { (episodes[Int($0)].notBefore ?? now) <= now }) else {
                return
            }
            // The spend cap: a new attempt only with an allowance leased from what is left.
            var allowance: Int?
            if let spendCap {
                guard let granted = spendCap.allowanceForNewAttempt() else {
                    capIfReached(now: now, into: &actions)
                    return
                }
                allowance = granted
            }
            let index = Int(queue.remove(at: position))
            var episode = episodes[index]
            guard !episode.isFinished else { continue }
            episode.attempts += 1
            episode.status = .running
            dispatchCounter += 1
            episode.dispatchOrder = dispatchCounter
            episode.firstDispatchedAt = episode.firstDispatchedAt ?? now
            episode.session = target.session
            episode.workerId = target.hello.workerId
            episodes[index] = episode
            var worker = target
            worker.inflight.insert(episode.currentRef)
            worker.lastSent = now
            workers[target.session] = worker
            let job = Job(
                batchId: batchId,
                episodeId: episode.id,
                attempt: episode.attempts,
                spec: episode.spec,
                spendAllowanceMicros: allowance
            )
            if let allowance { spendCap?.started(episode.currentRef, allowance: allowance) }
            actions.append(.send(to: worker.routingId, Envelope(session: worker.session, .job(job))))
            actions.append(.notice(.dispatched(episode.currentRef, workerId: worker.hello.workerId)))
        }
    }

    /// Once the cap lets no attempt start and none runs: every episode still queued ends `capped`.
    private mutating func capIfReached(now: ContinuousClock.Instant, into actions: inout [DispatchAction]) {
        guard let spendCap, spendCap.isReached, runningCount == 0, !queue.isEmpty else { return }
        let left = queue.count
        while let position = queue.popFirst() {
            var episode = episodes[Int(position)]
            guard !episode.isFinished else { continue }
            episode.status = .capped
            episode.finishedAt = now
            episode.errors.append(
                "not started: the spend cap was reached (\(spendCap.description); an episode is expected to cost "
                    + "\(PriceTable.dollars(spendCap.expectedMicros ?? 0)))"
            )
            episodes[Int(position)] = episode
            finishedCount += 1
        }
        actions.append(.notice(.spendCapReached(notStarted: left, detail: spendCap.description)))
        checkComplete(into: &actions)
    }

    private mutating func checkComplete(into actions: inout [DispatchAction]) {
        guard !isComplete, finishedCount == episodes.count else { return }
        isComplete = true
        actions.append(.notice(.batchComplete(succeeded: succeededCount, failed: failedCount)))
    }
}

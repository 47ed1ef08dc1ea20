import DequeModule
import Protocol
import Shared

/// The worker's side of the protocol as a pure state machine: registration (HELLO/WELCOME), the
/// coordinator's liveness, reconnect with backoff on a fresh socket (Paranoid Pirate), and the
/// bookkeeping of jobs — never more than `capacity.episodes` attempts running at once.
///
/// No I/O and no clock reads: inputs carry `now`, outputs are ``WorkerAction``s that ``WorkerAgent``
/// carries out. Unit tests drive it with stepped time.
struct WorkerCore: Sendable {
    enum State: Sendable, Equatable {
        /// HELLO sent at `since`; waiting for WELCOME.
        case greeting(since: ContinuousClock.Instant)
        case connected(session: String)
        /// Waiting before opening a new socket and greeting again.
        case backingOff(until: ContinuousClock.Instant)
        /// Shut down; nothing more is sent.
        case stopped
    }

    struct Settings: Sendable {
        var hello: Hello
        /// Heartbeat interval used until WELCOME says otherwise. The default is 1 s.
        var heartbeatInterval: Duration = .seconds(1)
        /// Silent intervals before the coordinator counts as gone. The default is 3.
        var liveness: Int = 3
        /// First reconnect delay, doubled on each failure up to `maxBackoff`. The defaults are 1 s and 32 s.
        var initialBackoff: Duration = .seconds(1)
        var maxBackoff: Duration = .seconds(32)
        /// Delay before HELLO is sent again on the same socket when libzmq could not send it
        /// (no connection yet with ZMQ_IMMEDIATE; a new socket's TCP connection takes a few milliseconds
        /// on a LAN). The default is 50 ms, the agent's tick: a worker started with `--connect` gets its
        /// first job within about a tick or two instead of a quarter second.
        var helloRetry: Duration = .milliseconds(50)
        /// The oldest coordinator minor this worker can work for: 2 when it offers files by transfer (an
        /// older coordinator would record episodes without pulling their files). The default is 0.
        var minimumCoordinatorMinor = 0
        /// While this worker answered an ARTIFACT_FETCH within this time, the coordinator counts as alive
        /// whatever its heartbeats do: on a congested link they wait behind our chunks, and the coordinator
        /// asks for more only as chunks get through. The coordinator's own stall timeout. The default is 30 s.
        var transferLiveness: Duration = .seconds(30)
        /// Whether a tick more than a heartbeat interval after the previous one means this process stood
        /// still, and gives the coordinator a fresh liveness window. The agent turns it on (it ticks every
        /// 50 ms); the default, off, takes stepped time as it comes.
        var freshWindowAfterStall = false
        /// Whether the connection uses CURVE: a coordinator that refuses the handshake (wrong server key,
        /// or this worker's key not on its allow-list) is silent, so "no WELCOME" then names the likely
        /// cause. The default is false.
        var curve = false
    }

    struct Counters: Sendable, Equatable {
        var outOfOrder = 0
        var duplicateJobs = 0
        var overCapacityJobs = 0
        var reconnects = 0
        var resultsHeld = 0
        var chunksServed = 0
        var fetchesRefused = 0
        var artifactsDelivered = 0
    }

    /// A finished attempt whose RESULT must still reach the coordinator, or whose files the coordinator
    /// has not yet acknowledged.
    struct Outgoing: Sendable, Equatable {
        var result: EpisodeResult
        /// The folder that holds the offered files (transfer delivery), kept until ARTIFACT_ACK or CANCEL.
        var folder: String?
        /// The session the RESULT last went out on; `nil` while it waits for one.
        var sentOn: String?
    }

    private(set) var state: State
    private(set) var counters = Counters()
    private(set) var running: [JobRef: Job] = [:]
    private(set) var queued: Deque<Job> = []
    /// Results not yet delivered and files not yet acknowledged, by attempt.
    private(set) var outbox: [JobRef: Outgoing] = [:]
    /// The latest stage change of each running attempt, sent on the next tick: at most one PROGRESS per
    /// attempt per tick, and none for an attempt that ends first (its RESULT says more). PROGRESS is
    /// informational (PROTOCOL §4.6); a zero-latency episode would otherwise send ten per RESULT.
    private(set) var pendingProgress: [JobRef: Progress] = [:]
    /// Set once a graceful shutdown began: no new work, finish or hand back by this deadline.
    private(set) var drainDeadline: ContinuousClock.Instant?
    private(set) var heartbeatInterval: Duration
    private(set) var liveness: Int
    private(set) var backoff: Duration
    private let settings: Settings
    private var lastHeard: ContinuousClock.Instant
    private var lastSent: ContinuousClock.Instant
    private var helloRetryAt: ContinuousClock.Instant?
    /// The latest ARTIFACT_FETCH answered.
    private var lastChunkServed: ContinuousClock.Instant?
    /// The previous tick: liveness is judged on this process's own loop time.
    private var lastTick: ContinuousClock.Instant?
    /// Jitter applied to each backoff (±25% by default); injected so tests are exact.
    private let jitter: @Sendable (Duration) -> Duration

    init(
        settings: Settings,
        now: ContinuousClock.Instant,
        jitter: @escaping @Sendable (Duration) -> Duration = Self.randomJitter
    ) {
        self.settings = settings
        self.state = .greeting(since: now)
        self.heartbeatInterval = settings.heartbeatInterval
        self.liveness = settings.liveness
        self.backoff = settings.initialBackoff
        self.lastHeard = now
        self.lastSent = now
        self.jitter = jitter
    }

    var capacity: Int { settings.hello.capacity.episodes }
    var session: String? {
        if case .connected(let s) = state { return s }
        return nil
    }
    var runningRefs: [JobRef] { running.keys.sorted { ($0.episodeId, $0.attempt) < ($1.episodeId, $1.attempt) } }
    /// Finished attempts whose RESULT waits for a session (sent after the next WELCOME).
    var heldResults: [EpisodeResult] {
        outbox.values.filter { $0.sentOn == nil }.map(\.result).sorted {
            ($0.episodeId, $0.attempt) < ($1.episodeId, $1.attempt)
        }
    }
    /// Attempts whose files wait for the coordinator's ARTIFACT_ACK.
    var awaitingAck: [JobRef] {
        outbox.filter { $0.value.folder != nil }.keys.sorted { ($0.episodeId, $0.attempt) < ($1.episodeId, $1.attempt) }
    }
    /// Nothing left to finish or deliver: a draining worker may say goodbye.
    private var idle: Bool { running.isEmpty && outbox.isEmpty }

    // MARK: - Inputs

    /// The first HELLO on the first socket.
    ///
    /// `recentCalls`: HELLO's `recent_calls` (the ``LeaseClient``'s), asked for only when a HELLO goes out;
    /// here and in ``onTick(now:recentCalls:)``. The default is none.
    mutating func start(
        now: ContinuousClock.Instant,
        recentCalls: () -> [String: [Int]] = { [:] }
    ) -> [WorkerAction] {
        state = .greeting(since: now)
        return [sendHello(now: now, recentCalls: recentCalls())]
    }

    mutating func onEnvelope(_ envelope: Envelope, now: ContinuousClock.Instant) -> [WorkerAction] {
        var actions: [WorkerAction] = []
        switch (state, envelope.message) {
        case (.greeting, .welcome(let welcome)) where welcome.protocolMinor < settings.minimumCoordinatorMinor:
            return lose(
                reason:
                    "the coordinator speaks protocol minor \(welcome.protocolMinor), and delivering episode files by transfer needs \(settings.minimumCoordinatorMinor): upgrade it, or run this worker with --artifacts shared",
                now: now,
                immediate: false
            )
        case (.greeting, .welcome(let welcome)):
            lastHeard = now
            state = .connected(session: welcome.session)
            heartbeatInterval = .milliseconds(welcome.heartbeatIntervalMs)
            liveness = welcome.liveness
            backoff = settings.initialBackoff
            helloRetryAt = nil
            actions.append(
                .log(
                    .info,
                    "connected to coordinator",
                    [
                        "session": welcome.session, "heartbeat_ms": "\(welcome.heartbeatIntervalMs)",
                        "coordinator_version": welcome.softwareVersion,
                    ]
                )
            )
            actions.append(.leases(.sessionStarted(welcome)))
            if drainDeadline != nil {
                actions.append(send(.heartbeat(Heartbeat(running: runningRefs, draining: true)), now: now))
            }
            // Results that finished without a session, and offers whose files the coordinator has not
            // acknowledged (it may have restarted): sent again on the new session.
            for ref in outbox.keys.sorted(by: { ($0.episodeId, $0.attempt) < ($1.episodeId, $1.attempt) }) {
                actions += deliver(ref, now: now)
            }
        case (.connected(let session), let message) where envelope.session == session:
            lastHeard = now
            actions += handle(message, now: now)
        case (.connected, .disconnect(let d)) where envelope.session.isEmpty,
            (.greeting, .disconnect(let d)) where envelope.session.isEmpty:
            // A DISCONNECT echoes the session it refuses; one naming an older session of ours is
            // a late answer to a stale message and must not end the current registration.
            actions += lose(
                reason: "coordinator said \(d.reason.rawValue): \(d.detail)",
                now: now,
                immediate: d.reason == .unknownSession
            )
        default:
            counters.outOfOrder += 1
            actions.append(.log(.debug, "message ignored", ["kind": "\(envelope.message.kind)", "state": "\(state)"]))
        }
        return actions
    }

    /// The lease client has a message for the coordinator; it goes out only within a session (the
    /// client asks again for waiting calls when the next session starts).
    mutating func onLeaseMessage(_ message: Message, now: ContinuousClock.Instant) -> [WorkerAction] {
        guard session != nil else { return [] }
        return [send(message, now: now)]
    }

    /// libzmq refused a send (with ZMQ_IMMEDIATE, no connection yet). HELLO is retried shortly.
    mutating func onSendFailed(now: ContinuousClock.Instant) -> [WorkerAction] {
        if case .greeting = state, helloRetryAt == nil {
            helloRetryAt = now + settings.helloRetry
        }
        return []
    }

    /// An attempt ended on this worker. Its RESULT goes out now, or after the next WELCOME. With `files`
    /// (the folder of a successful attempt's offered artifacts) the entry stays until the coordinator
    /// acknowledges the files, and the RESULT is offered again on every new session until then.
    mutating func onFinished(
        _ result: EpisodeResult,
        files: String? = nil,
        now: ContinuousClock.Instant
    )
        -> [WorkerAction]
    {
        pendingProgress[result.ref] = nil
        guard running.removeValue(forKey: result.ref) != nil else {
            // Cancelled: the coordinator no longer wants it.
            return files.map { [.deleteFiles($0)] } ?? []
        }
        var actions: [WorkerAction] = []
        let keepsFiles =
            result.status == .succeeded && !result.artifacts.isEmpty
            && result.effectiveDelivery == .transfer
        outbox[result.ref] = Outgoing(result: result, folder: keepsFiles ? files : nil)
        if session != nil {
            actions += deliver(result.ref, now: now)
        } else {
            counters.resultsHeld += 1
        }
        if drainDeadline != nil {
            if idle { actions += shutdown(now: now, detail: "worker stopped; every attempt finished and delivered") }
            return actions
        }
        actions += startQueued()
        return actions
    }

    /// Graceful shutdown, step 1 (first SIGTERM/SIGINT): take no more work, tell the coordinator, let the
    /// running attempts finish within `grace`. Without running attempts it says goodbye at once.
    mutating func beginDrain(now: ContinuousClock.Instant, grace: Duration) -> [WorkerAction] {
        guard drainDeadline == nil, state != .stopped else { return [] }
        drainDeadline = now + grace
        var actions: [WorkerAction] = [
            .log(
                .info,
                "draining: finishing running episodes, taking no new ones",
                [
                    "running": "\(running.count)", "grace": grace.shortDescription,
                    "handed_back": "\(queued.count)",
                    "episodes": running.keys.map(\.episodeId).sorted().joined(separator: ","),
                ]
            )
        ]
        // Jobs queued beyond capacity were never started: they go back with the goodbye.
        queued = []
        if idle {
            return actions + shutdown(now: now, detail: "worker stopped")
        }
        if session != nil {
            actions.append(send(.heartbeat(Heartbeat(running: runningRefs, draining: true)), now: now))
        }
        return actions
    }

    /// A stage of a running attempt moved; kept for the next tick, and sent then only while connected.
    mutating func onProgress(_ progress: Progress, now: ContinuousClock.Instant) -> [WorkerAction] {
        let ref = JobRef(episodeId: progress.episodeId, attempt: progress.attempt)
        guard session != nil, running[ref] != nil else { return [] }
        pendingProgress[ref] = progress
        return []
    }

    /// The stage changes kept since the last tick, for attempts still running, in a stable order.
    private mutating func flushProgress(now: ContinuousClock.Instant) -> [WorkerAction] {
        guard !pendingProgress.isEmpty else { return [] }
        defer { pendingProgress = [:] }
        guard session != nil else { return [] }
        return pendingProgress.filter { running[$0.key] != nil }
            .sorted { ($0.key.episodeId, $0.key.attempt) < ($1.key.episodeId, $1.key.attempt) }
            .map { send(.progress($0.value), now: now) }
    }

    /// Time passed: heartbeats, liveness, HELLO retries and reconnects, PROGRESS kept since the last tick.
    /// `recentCalls` as in ``start(now:recentCalls:)``.
    mutating func onTick(
        now: ContinuousClock.Instant,
        recentCalls: () -> [String: [Int]] = { [:] }
    ) -> [WorkerAction] {
        let progress = flushProgress(now: now)
        return progress + tick(now: now, recentCalls: recentCalls)
    }

    private mutating func tick(
        now: ContinuousClock.Instant,
        recentCalls: () -> [String: [Int]]
    ) -> [WorkerAction] {
        if let drain = drainDeadline, now >= drain, state != .stopped {
            let count = running.count
            return [
                .log(.warning, "grace period over: handing running attempts back", ["handed_back": "\(count)"])
            ] + shutdown(now: now, detail: "grace period over; \(count) attempts handed back")
        }
        let deadline = heartbeatInterval * liveness
        if settings.freshWindowAfterStall, let last = lastTick, now - last > heartbeatInterval {
            // This process stood still (stopped, swapped out): the coordinator's messages of that time may
            // still sit unread. Silence is counted on our own running time: the stalled gap is not held
            // against the coordinator, but the silence before and after it still is (a reset to `now` on
            // every gap would keep a dead coordinator alive on a loaded machine whose ticks come late).
            // The gap beyond the detection threshold: ticks that merely come late still let silence accrue.
            let stalled = now - last - heartbeatInterval
            lastHeard = min(now, lastHeard + stalled)
            if case .greeting(let since) = state { state = .greeting(since: min(now, since + stalled)) }
        }
        lastTick = now
        let serving = lastChunkServed.map { now - $0 < settings.transferLiveness } ?? false
        switch state {
        case .greeting(let since):
            if now - since >= deadline {
                let hint =
                    settings.curve
                    ? " — the coordinator is unreachable or refused the CURVE handshake (check --curve-server-key and that this worker's public key is on its --allow-workers list)"
                    : ""
                return lose(
                    reason: "no WELCOME within \(deadline.shortDescription)\(hint)",
                    now: now,
                    immediate: false
                )
            }
            if let retry = helloRetryAt, now >= retry {
                helloRetryAt = nil
                return [sendHello(now: now, recentCalls: recentCalls())]
            }
        case .connected:
            if now - lastHeard >= deadline, !serving {
                return lose(
                    reason: "coordinator silent for \((now - lastHeard).shortDescription)",
                    now: now,
                    immediate: false
                )
            }
            if now - lastSent >= heartbeatInterval {
                return [send(.heartbeat(Heartbeat(running: runningRefs, draining: drainDeadline != nil)), now: now)]
            }
        case .backingOff(let until):
            if now >= until {
                counters.reconnects += 1
                state = .greeting(since: now)
                return [.renewSocket, sendHello(now: now, recentCalls: recentCalls())]
            }
        case .stopped:
            break
        }
        return []
    }

    /// The end of a shutdown: say goodbye when connected (the coordinator requeues whatever is still in
    /// flight), stop every running attempt, and tell the agent to exit.
    mutating func shutdown(now: ContinuousClock.Instant, detail: String) -> [WorkerAction] {
        var actions: [WorkerAction] = []
        if session != nil {
            actions.append(send(.disconnect(Disconnect(reason: .shutdown, detail: detail)), now: now))
        }
        for ref in runningRefs { actions.append(.cancel(ref)) }
        // Files not acknowledged are of no use once we are gone: the coordinator runs the attempt again.
        for ref in awaitingAck { if let folder = outbox[ref]?.folder { actions.append(.deleteFiles(folder)) } }
        running = [:]
        queued = []
        outbox = [:]
        state = .stopped
        actions.append(.leases(.sessionLost))
        actions.append(.exit)
        return actions
    }

    // MARK: - Internals

    private mutating func handle(_ message: Message, now: ContinuousClock.Instant) -> [WorkerAction] {
        switch message {
        case .job(let job) where drainDeadline != nil:
            // Sent before the coordinator saw `draining`: not started; it goes back with the goodbye.
            return [.log(.info, "JOB while draining: handed back", ["episode": job.episodeId])]
        case .job(let job):
            let ref = job.ref
            if running[ref] != nil || queued.contains(where: { $0.ref == ref }) {
                counters.duplicateJobs += 1
                return [
                    .log(.warning, "duplicate JOB ignored", ["episode": ref.episodeId, "attempt": "\(ref.attempt)"])
                ]
            }
            if running.count < capacity {
                running[ref] = job
                return [.start(job)]
            }
            counters.overCapacityJobs += 1
            queued.append(job)
            return [
                .log(
                    .warning,
                    "JOB beyond announced capacity queued locally",
                    [
                        "episode": ref.episodeId, "capacity": "\(capacity)", "queued": "\(queued.count)",
                    ]
                )
            ]
        case .cancel(let cancel):
            let ref = JobRef(episodeId: cancel.episodeId, attempt: cancel.attempt)
            if running.removeValue(forKey: ref) != nil {
                return [.cancel(ref)] + startQueued() + drainedIfIdle(now: now)
            }
            queued.removeAll { $0.ref == ref }
            if let gone = outbox.removeValue(forKey: ref) {
                // The episode ended elsewhere, or the coordinator gave up on these files.
                return (gone.folder.map { [.deleteFiles($0)] } ?? []) + drainedIfIdle(now: now)
            }
            return []
        case .artifactFetch(let fetch):
            guard let entry = outbox[fetch.ref], let folder = entry.folder,
                let file = entry.result.artifacts.first(where: { $0.name == fetch.name }),
                fetch.offset <= file.size
            else {
                counters.fetchesRefused += 1
                let chunk = ArtifactChunk(
                    episodeId: fetch.episodeId,
                    attempt: fetch.attempt,
                    name: fetch.name,
                    offset: fetch.offset,
                    error:
                        "this worker does not hold \(fetch.name) of \(fetch.episodeId) attempt \(fetch.attempt) at that offset",
                    data: []
                )
                return [
                    .log(
                        .warning,
                        "ARTIFACT_FETCH for files not held",
                        ["episode": fetch.episodeId, "file": fetch.name]
                    ),
                    send(.artifactChunk(chunk), now: now),
                ]
            }
            counters.chunksServed += 1
            lastSent = now
            lastChunkServed = now
            return [.serveChunk(fetch, folder: folder, session: session ?? "")]
        case .artifactAck(let ack):
            guard let gone = outbox.removeValue(forKey: ack.ref) else { return [] }
            counters.artifactsDelivered += 1
            // Deleted first, then logged: a log line saying "delivered" means the copy is gone.
            var actions: [WorkerAction] = gone.folder.map { [.deleteFiles($0)] } ?? []
            actions.append(
                .log(
                    .info,
                    "episode files delivered",
                    ["episode": ack.episodeId, "attempt": "\(ack.attempt)", "files": "\(gone.result.artifacts.count)"]
                )
            )
            return actions + drainedIfIdle(now: now)
        case .heartbeat:
            return []
        case .leaseGrant, .providerPause, .assetData:
            return [.leases(.receive(message))]
        case .disconnect(let d):
            return lose(
                reason: "coordinator said \(d.reason.rawValue): \(d.detail)",
                now: now,
                immediate: d.reason == .unknownSession
            )
        case .hello, .welcome, .progress, .result, .leaseRequest, .leaseStarted, .leaseRelease, .leaseCancel,
            .providerSignal, .artifactChunk, .assetGet, .assetPut:
            counters.outOfOrder += 1
            return [.log(.debug, "unexpected message ignored", ["kind": "\(message.kind)"])]
        }
    }

    /// The session is gone: keep running attempts (their results are held), wait, then greet on a new socket.
    private mutating func lose(reason: String, now: ContinuousClock.Instant, immediate: Bool) -> [WorkerAction] {
        let delay = immediate ? .zero : jitter(backoff)
        if !immediate { backoff = min(backoff * 2, settings.maxBackoff) }
        state = .backingOff(until: now + delay)
        helloRetryAt = nil
        return [
            .leases(.sessionLost),
            .log(
                .warning,
                "lost coordinator; reconnecting",
                [
                    "reason": reason, "retry_in": delay.shortDescription, "running": "\(running.count)",
                ]
            ),
        ]
    }

    /// Sends an outbox entry's RESULT on the current session; entries without files leave the outbox.
    private mutating func deliver(_ ref: JobRef, now: ContinuousClock.Instant) -> [WorkerAction] {
        guard let session, var entry = outbox[ref], entry.sentOn != session else { return [] }
        if entry.folder == nil {
            outbox.removeValue(forKey: ref)
        } else {
            entry.sentOn = session
            outbox[ref] = entry
        }
        return [send(.result(entry.result), now: now)]
    }

    /// A draining worker whose last attempt ended, or whose last files were acknowledged, says goodbye.
    private mutating func drainedIfIdle(now: ContinuousClock.Instant) -> [WorkerAction] {
        guard drainDeadline != nil, idle, state != .stopped else { return [] }
        return shutdown(now: now, detail: "worker stopped; every attempt finished and delivered")
    }

    private mutating func startQueued() -> [WorkerAction] {
        var actions: [WorkerAction] = []
        while running.count < capacity, let job = queued.popFirst() {
            running[job.ref] = job
            actions.append(.start(job))
        }
        return actions
    }

    private mutating func sendHello(now: ContinuousClock.Instant, recentCalls: [String: [Int]]) -> WorkerAction {
        // Attempts still running and finished ones whose RESULT waits for delivery: the coordinator
        // re-adopts them instead of running them again.
        let hello = WorkerHello.hello(settings.hello, running: runningRefs + outbox.keys, recentCalls: recentCalls)
        lastSent = now
        return .send(Envelope(.hello(hello)))
    }

    private mutating func send(_ message: Message, now: ContinuousClock.Instant) -> WorkerAction {
        lastSent = now
        return .send(Envelope(session: session ?? "", message))
    }

    /// ±25 % uniform jitter, so that many workers do not reconnect in lockstep.
    static func randomJitter(_ d: Duration) -> Duration {
        d * Double.random(in: 0.75...1.25)
    }
}

/// What ``WorkerCore`` asks ``WorkerAgent`` to do.
enum WorkerAction: Sendable, Equatable {
    case send(Envelope)
    /// Close the DEALER socket and open a new one (before a new HELLO).
    case renewSocket
    case start(Job)
    case cancel(JobRef)
    case log(LogLevel, String, [String: String])
    /// Tell the ``LeaseClient``.
    case leases(LeaseEvent)
    /// The graceful shutdown is complete: the agent stops.
    case exit
    /// Answer an ARTIFACT_FETCH with the bytes of `folder/fetch.name` (an ARTIFACT_CHUNK on `session`).
    case serveChunk(ArtifactFetch, folder: String, session: String)
    /// Delete a folder of offered files (acknowledged, or no longer wanted).
    case deleteFiles(String)

    enum LogLevel: Sendable, Equatable { case debug, info, warning }

    enum LeaseEvent: Sendable, Equatable {
        case sessionStarted(Welcome)
        case sessionLost
        /// LEASE_GRANT, PROVIDER_PAUSE or ASSET_DATA from the coordinator.
        case receive(Message)
    }
}

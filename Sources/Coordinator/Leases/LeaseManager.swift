import DequeModule
import Protocol
import Shared

/// The coordinator's lease manager: one ``RateLedger`` per budgeted provider, the queue of calls waiting
/// for permits, and which worker session holds which lease. A pure state machine like the
/// ``Dispatcher`` that owns it: inputs are decoded messages and the time, outputs are messages to send
/// and notices to log.
///
/// - **Priority.** Waiting calls are served by the dispatch order of their episode, then by arrival, so
///   the oldest episode finishes first and results come out steadily; no request is ever overtaken by a
///   later episode's, so none starves.
/// - **Expiry.** A permit counts against its provider's windows until it is started (then from the start)
///   or returned; a dropped worker's slots come back only `slotTTL` after it was last heard.
/// - **Signals.** A worker's report of a 429, `retry-after` or exhausted window changes the budget for the
///   whole fleet at once (AIMD or pause), and pauses are broadcast.
/// - **Learning** (``LeaseSettings/learnLimits``). Every provider kind is leased, budget or not; what the
///   providers answer (their rate-limit headers, the calls they accepted before a 429) sets the limits,
///   never above a configured budget (``LimitLearner``). Until a provider told its limits, its permits are
///   paced (``LeaseSettings/probeInterval``).
/// - **Circuits.** A billing, quota or auth error (`quota_exceeded`, `auth_failed`) opens the provider's
///   circuit whether or not it has a budget: every session is told at once, and every session that joins
///   later right after its WELCOME; waiting and later requests are refused. A circuit stays open for as
///   long as this manager lives (across the batches of `coordinator serve`): it is about the provider's
///   account, not the batch.
struct LeaseManager: Sendable {
    typealias Instant = ContinuousClock.Instant

    enum Action: Sendable, Equatable {
        case send(session: String, Message)
        case notice(LeaseNotice)
    }

    let settings: LeaseSettings
    private(set) var ledgers: [String: RateLedger] = [:]
    /// The calls waiting for permits, per provider (mutated in place: a queue is never copied).
    private var queues: [String: LeaseQueue] = [:]
    private var leases: [String: Lease] = [:]
    private var sessions: [String: SessionLeases] = [:]
    private var nextLease = 1
    private var nextSeq = 0
    private(set) var stats: [String: ProviderStats] = [:]
    /// Open circuits by provider, budgeted or not.
    private(set) var circuits: [String: Circuit] = [:]
    /// Start times heard per provider within the last request window, to measure the busiest window.
    private var recentStarts: [String: Deque<Instant>] = [:]
    /// What each provider said about its limits (only with ``LeaseSettings/learnLimits``).
    private(set) var learners: [String: LimitLearner] = [:]
    /// Start and rate-429 times per provider within the learner's measuring window.
    private var startLog: [String: Deque<Instant>] = [:]
    private var rejectLog: [String: Deque<Instant>] = [:]
    /// The pacing of providers whose limits are not known yet: first and last grant.
    private var probes: [String: (first: Instant, last: Instant)] = [:]

    /// Why a provider's circuit is open: the signal that opened it.
    struct Circuit: Sendable, Equatable {
        /// `quota_exceeded` or `auth_failed`.
        var signal: ProviderSignal.Kind
        /// The worker's detail (the provider's message, redacted, with the setting to fix when known).
        var detail: String

        /// `auth_failed: …`: PROVIDER_PAUSE's `reason` and a refusal's `detail` (workers read the cause from
        /// the prefix), cut to the protocol's longest text.
        var reason: String {
            var bytes = 0
            return String(
                "\(signal.rawValue): \(detail)".prefix {
                    bytes += $0.utf8.count
                    return bytes <= WireProtocol.maxTextBytes
                }
            )
        }
    }

    /// One provider's budget right now, for the progress line and the status API. A provider without a
    /// budget appears only while its circuit is open.
    struct Usage: Sendable, Equatable {
        var provider: String
        /// Calls counted in the current request window, and the window's (effective) limit.
        var inWindow: Int
        var limit: Int?
        var inFlight: Int
        var maxConcurrent: Int?
        /// Calls waiting for a permit.
        var waiting: Int
        var held: Bool
        /// Refused for good after a billing, quota or auth error.
        var circuitOpen = false
        /// The configured budget in words (`--budget`), `nil` when none.
        var configured: String?
        /// What the provider told of its limits, in words, `nil` when nothing (or not learning).
        var learned: String?
    }

    /// Every budget's use at `now`, by provider name.
    func usage(now: Instant) -> [Usage] {
        Set(ledgers.keys).union(circuits.keys).sorted().map { provider in
            guard let ledger = ledgers[provider] else {
                return Usage(
                    provider: provider,
                    inWindow: 0,
                    limit: nil,
                    inFlight: 0,
                    maxConcurrent: nil,
                    waiting: 0,
                    held: true,
                    circuitOpen: true
                )
            }
            return Usage(
                provider: provider,
                inWindow: ledger.callsInWindow(now: now),
                limit: ledger.effectiveRequests,
                inFlight: ledger.inFlight,
                maxConcurrent: ledger.effectiveConcurrency,
                waiting: backlog(provider),
                held: ledger.isHeld(now: now) || circuits[provider] != nil,
                circuitOpen: circuits[provider] != nil,
                configured: settings.budgets.first { $0.provider == provider }.map(Self.describeLimits),
                learned: learners[provider]?.learnedDescription
            )
        }
    }

    private struct Lease: Sendable {
        var session: String
        var provider: String
        var unstarted: [RateLedger.PermitID]
        var running: [RateLedger.PermitID] = []
    }

    private struct SessionLeases: Sendable {
        var leases: Set<String> = []
        var requests: Set<String> = []
        /// The worker's protocol minor: PROVIDER_PAUSE needs 1.
        var minor = WireProtocol.minorVersion
    }

    /// What happened to one provider's budget during the batch (summary.json, logs).
    struct ProviderStats: Sendable, Equatable, Codable {
        var requested = 0
        var granted = 0
        var started = 0
        var finished = 0
        var returned = 0
        var refused = 0
        var signals: [String: Int] = [:]
        var pauses = 0
        var decreases = 0
        var slotsReclaimed = 0
        var maxWaitMs = 0
        var totalWaitMs = 0
        /// The most calls heard started within any one request window.
        var maxStartedInWindow = 0
        var circuitOpen = false
        /// Times what a provider said changed the effective budget (learning).
        var learned = 0

        var meanWaitMs: Double { granted == 0 ? 0 : Double(totalWaitMs) / Double(granted) }
    }

    init(settings: LeaseSettings) {
        self.settings = settings
        if settings.mode == .leased {
            for budget in settings.budgets {
                ledgers[budget.provider] = RateLedger(settings.ledgerSettings(for: budget))
                stats[budget.provider] = ProviderStats()
                if settings.learnLimits {
                    learners[budget.provider] = LimitLearner(provider: budget.provider, configured: budget)
                }
            }
            if settings.learnLimits {
                for provider in BudgetConfiguration.providers where ledgers[provider] == nil {
                    ledgers[provider] = RateLedger(settings.ledgerSettings(for: ProviderBudget(provider: provider)))
                    stats[provider] = ProviderStats()
                    learners[provider] = LimitLearner(provider: provider, configured: nil)
                }
            }
        }
    }

    /// The budgets a WELCOME announces: in `leased` mode every leased provider with its limits as they are
    /// now (learned or configured; none yet for a provider still being learned), else the configured ones.
    var announcedBudgets: [ProviderBudget] {
        guard settings.mode == .leased, !learners.isEmpty else { return settings.budgets }
        return ledgers.keys.sorted().compactMap { ledgers[$0]?.settings.budget }
    }

    /// `llm: 5 per 1s, 10 concurrent`, `llm: no limit`.
    static func describe(_ budget: ProviderBudget) -> String {
        "\(budget.provider): \(describeLimits(budget))"
    }

    /// `5 per 1s, 10 concurrent`, `no limit`.
    static func describeLimits(_ budget: ProviderBudget) -> String {
        var parts: [String] = []
        if let r = budget.requests {
            parts.append("\(r) per \(Duration.milliseconds(budget.requestWindowMs).shortDescription)")
        }
        if let b = budget.burst { parts.append("burst \(b)") }
        if let c = budget.maxConcurrent { parts.append("\(c) concurrent") }
        if let u = budget.units {
            parts.append("\(u) units per \(Duration.milliseconds(budget.unitWindowMs).shortDescription)")
        }
        return parts.isEmpty ? "no limit" : parts.joined(separator: ", ")
    }

    /// Whether workers must lease permits (budgets set, leased mode).
    var isLeasing: Bool { !ledgers.isEmpty }

    /// Starts the figures of a new batch (`coordinator serve`): counts and the call-rate timeline begin
    /// again; the windows, the permits held and an open circuit carry on, since they are about the
    /// provider, not the batch.
    mutating func resetStatistics() {
        for provider in stats.keys {
            let open = stats[provider]?.circuitOpen ?? false
            stats[provider] = ProviderStats()
            stats[provider]?.circuitOpen = open
        }
        startsPerSecond = [:]
        timelineOrigin = nil
    }

    /// Calls waiting for a permit of `provider` (counted as they change).
    func backlog(_ provider: String) -> Int {
        queues[provider]?.calls ?? 0
    }

    /// Budget-aware admission: false while some provider already has more calls waiting than
    /// `admissionWindows` windows of its budget can serve, so a new episode would only queue behind them.
    var admissionOpen: Bool {
        guard settings.admissionWindows > 0 else { return true }
        for (provider, ledger) in ledgers {
            let perWindow = ledger.effectiveRequests ?? ledger.effectiveConcurrency
            guard let perWindow else { continue }
            if Double(backlog(provider)) > Double(perWindow) * settings.admissionWindows { return false }
        }
        return true
    }

    // MARK: - Sessions

    /// Counts calls started before this coordinator existed (`ages` in milliseconds before `now`), read
    /// from the journal after a restart.
    mutating func seed(recentCalls: [String: [Int]], now: Instant) {
        for (provider, ages) in recentCalls {
            ledgers[provider]?.seed(startedAt: ages.map { now - .milliseconds($0) }, now: now)
        }
    }

    /// A worker joined; `recentCalls` (from its HELLO) are calls it started shortly before, which may have
    /// been granted by a previous coordinator: they count in the windows. Returns a PROVIDER_PAUSE
    /// `circuit_open` for every open circuit, to send right after the session's WELCOME (which makes a worker
    /// forget its circuits).
    @discardableResult
    mutating func workerJoined(
        session: String,
        recentCalls: [String: [Int]],
        protocolMinor: Int = WireProtocol.minorVersion,
        now: Instant
    ) -> [Action] {
        sessions[session] = SessionLeases(minor: protocolMinor)
        seed(recentCalls: recentCalls, now: now)
        guard protocolMinor >= 1 else { return [] }
        return circuits.keys.sorted().compactMap { provider in
            circuits[provider].map { .send(session: session, .providerPause(Self.pause(provider, $0))) }
        }
    }

    /// A worker is gone (said goodbye, or went silent): its waiting requests are dropped, its unused
    /// permits count until their deadline, and its slots come back `slotTTL` after `lastHeard`.
    mutating func workerLeft(session: String, lastHeard: Instant, now: Instant) -> [Action] {
        guard let state = sessions.removeValue(forKey: session) else { return [] }
        // The keys copied first: iterating the dictionary's own keys would share its storage, and every
        // queue would then be copied when changed.
        for provider in Array(queues.keys) {
            queues[provider]?.removeAll(session: session)
        }
        for leaseId in state.leases {
            guard let lease = leases.removeValue(forKey: leaseId), ledgers[lease.provider] != nil else { continue }
            for id in lease.unstarted + lease.running {
                ledgers[lease.provider]?.abandoned(id, lastVouched: lastHeard, now: now)
            }
        }
        return grantAll(now: now)
    }

    // MARK: - Messages

    /// A lease message from a registered worker session. `priority` ranks the request's episode (its
    /// dispatch order; lower is served first).
    mutating func onMessage(_ message: Message, session: String, priority: Int, now: Instant) -> [Action] {
        switch message {
        case .leaseRequest(let request):
            return onRequest(request, session: session, priority: priority, now: now)
        case .leaseStarted(let started):
            return onStarted(started, session: session, now: now)
        case .leaseRelease(let release):
            return onRelease(release, session: session, now: now)
        case .leaseCancel(let cancel):
            for provider in Array(queues.keys) {
                queues[provider]?.remove(session: session, requestId: cancel.requestId)
            }
            sessions[session]?.requests.remove(cancel.requestId)
            return grantAll(now: now)
        case .providerSignal(let signal):
            return onSignal(signal, now: now)
        default:
            return []
        }
    }

    private mutating func onRequest(
        _ request: LeaseRequest,
        session: String,
        priority: Int,
        now: Instant
    ) -> [Action] {
        if let circuit = circuits[request.provider] {
            stats[request.provider, default: ProviderStats()].requested += request.calls
            stats[request.provider, default: ProviderStats()].refused += request.calls
            return [.send(session: session, refusal(request.requestId, request.provider, circuit))]
        }
        guard ledgers[request.provider] != nil else {
            return [
                .send(
                    session: session,
                    .leaseGrant(
                        LeaseGrant(
                            requestId: request.requestId,
                            leaseId: "",
                            provider: request.provider,
                            calls: 0,
                            useWithinMs: 0,
                            refused: .unknownProvider,
                            detail:
                                "no budget named \(request.provider); budgets: \(ledgers.keys.sorted().joined(separator: ", "))"
                        )
                    )
                ),
                .notice(.rejected(reason: "unknown_provider", detail: "LEASE_REQUEST for \(request.provider)")),
            ]
        }
        stats[request.provider, default: ProviderStats()].requested += request.calls
        if sessions[session]?.requests.contains(request.requestId) == true {
            return [
                .notice(
                    .rejected(reason: "duplicate_request", detail: "request \(request.requestId) is already waiting")
                )
            ]
        }
        sessions[session, default: SessionLeases()].requests.insert(request.requestId)
        let waiting = LeaseQueue.Entry(
            session: session,
            requestId: request.requestId,
            remaining: request.calls,
            units: request.units,
            priority: priority,
            seq: nextSeq,
            arrived: now
        )
        nextSeq += 1
        queues[request.provider, default: LeaseQueue()].insert(waiting)
        return grant(request.provider, now: now)
    }

    private mutating func onStarted(_ started: LeaseStarted, session: String, now: Instant) -> [Action] {
        guard var lease = leases[started.leaseId], lease.session == session else {
            return [.notice(.rejected(reason: "unknown_lease", detail: "LEASE_STARTED for \(started.leaseId)"))]
        }
        guard ledgers[lease.provider] != nil else { return [] }
        var actions: [Action] = []
        let count = min(started.calls, lease.unstarted.count)
        if count < started.calls {
            actions.append(
                .notice(
                    .rejected(
                        reason: "lease_overdrawn",
                        detail:
                            "lease \(started.leaseId) started \(started.calls) calls with \(lease.unstarted.count) permits left"
                    )
                )
            )
        }
        for _ in 0..<count {
            let id = lease.unstarted.removeFirst()
            ledgers[lease.provider]?.started(id, now: now)
            lease.running.append(id)
        }
        leases[started.leaseId] = lease
        stats[lease.provider, default: ProviderStats()].started += count
        noteStarts(lease.provider, count: count, now: now)
        if let learner = learners[lease.provider] {
            for _ in 0..<count { note(&startLog, lease.provider, now: now, window: learner.measureWindowMs) }
        }
        if count > 0 { actions.append(.notice(.started(provider: lease.provider, count: count))) }
        return actions
    }

    private mutating func onRelease(_ release: LeaseRelease, session: String, now: Instant) -> [Action] {
        guard var lease = leases[release.leaseId], lease.session == session else {
            return [.notice(.rejected(reason: "unknown_lease", detail: "LEASE_RELEASE for \(release.leaseId)"))]
        }
        guard ledgers[lease.provider] != nil else { return [] }
        var actions: [Action] = []
        let finished = min(release.finished, lease.running.count)
        let returned = min(release.returned, lease.unstarted.count)
        if finished < release.finished || returned < release.returned {
            actions.append(
                .notice(
                    .rejected(reason: "lease_overdrawn", detail: "lease \(release.leaseId) released more than it holds")
                )
            )
        }
        // The units the provider reported (minor 4) replace the estimates, spread over the finished calls.
        let used = finished > 0 ? release.usedUnits : nil
        for index in 0..<finished {
            let share = used.map { $0 / finished + (index == 0 ? $0 % finished : 0) }
            ledgers[lease.provider]?.finished(lease.running.removeFirst(), usedUnits: share, now: now)
        }
        for _ in 0..<returned { ledgers[lease.provider]?.returned(lease.unstarted.removeFirst(), now: now) }
        stats[lease.provider, default: ProviderStats()].finished += finished
        stats[lease.provider, default: ProviderStats()].returned += returned
        if lease.unstarted.isEmpty, lease.running.isEmpty {
            leases[release.leaseId] = nil
            sessions[session]?.leases.remove(release.leaseId)
        } else {
            leases[release.leaseId] = lease
        }
        return actions + grant(lease.provider, now: now)
    }

    private mutating func onSignal(_ signal: ProviderSignal, now: Instant) -> [Action] {
        if signal.kind == .quotaExceeded || signal.kind == .authFailed {
            return openCircuit(signal, now: now)
        }
        guard var ledger = ledgers[signal.provider] else { return [] }
        let provider = signal.provider
        var actions: [Action] = []
        var decrease = true
        if var learner = learners[provider] {
            let before = learner.effective
            learner.observe(signal)
            if signal.kind == .rateLimited {
                note(&rejectLog, provider, now: now, window: learner.measureWindowMs)
                let window = Duration.milliseconds(learner.measureWindowMs)
                let accepted =
                    count(startLog[provider], within: window, now: now)
                    - count(rejectLog[provider], within: window, now: now)
                if learner.rateLimited(accepted: accepted, retryAfterMs: signal.retryAfterMs, now: now) != .unexplained
                {
                    decrease = false
                }
            }
            learners[provider] = learner
            let after = learner.effective
            if after != before {
                // The provider said what its limits are: no guessing on top of that.
                decrease = false
                ledger.updateBudget(after, now: now)
                stats[provider, default: ProviderStats()].learned += 1
                actions.append(.notice(.learned(provider: provider, budget: Self.describe(after))))
            }
        }
        if signal.kind == .limits {
            ledgers[provider] = ledger
            // A limit heard for the first time may allow more at once.
            return actions + grant(provider, now: now)
        }
        stats[signal.provider, default: ProviderStats()].signals[signal.kind.rawValue, default: 0] += 1
        let reaction = ledger.signal(
            signal.kind,
            retryAfter: signal.retryAfterMs.map { .milliseconds($0) },
            reset: signal.resetMs.map { .milliseconds($0) },
            detail: signal.detail,
            decrease: decrease,
            now: now
        )
        ledgers[signal.provider] = ledger
        func broadcast(_ pause: ProviderPause) { actions += self.broadcast(pause) }
        switch reaction {
        case .none:
            break
        case .decreased(let factor, let concurrency):
            stats[provider, default: ProviderStats()].decreases += 1
            actions.append(
                .notice(.decreased(provider: provider, factor: factor, concurrency: concurrency, signal: signal.kind))
            )
        case .paused(let until):
            stats[provider, default: ProviderStats()].pauses += 1
            actions.append(.notice(.paused(provider: provider, for: until - now, signal: signal.kind)))
            broadcast(
                ProviderPause(
                    provider: provider,
                    pauseMs: (until - now).wholeMilliseconds,
                    reason: signal.kind.rawValue
                )
            )
        case .decreasedAndPaused(let factor, let concurrency, let until):
            stats[provider, default: ProviderStats()].decreases += 1
            stats[provider, default: ProviderStats()].pauses += 1
            actions.append(
                .notice(.decreased(provider: provider, factor: factor, concurrency: concurrency, signal: signal.kind))
            )
            actions.append(.notice(.paused(provider: provider, for: until - now, signal: signal.kind)))
            broadcast(
                ProviderPause(
                    provider: provider,
                    pauseMs: (until - now).wholeMilliseconds,
                    reason: signal.kind.rawValue
                )
            )
        case .circuitOpened:
            break  // billing and auth signals are handled by openCircuit, before the ledger
        }
        return actions
    }

    /// A billing, quota or auth error: the provider's circuit opens for the whole fleet, budget or not.
    /// Only the first signal acts (and is logged); later ones are counted.
    private mutating func openCircuit(_ signal: ProviderSignal, now: Instant) -> [Action] {
        let provider = signal.provider
        stats[provider, default: ProviderStats()].signals[signal.kind.rawValue, default: 0] += 1
        guard circuits[provider] == nil else { return [] }
        let circuit = Circuit(signal: signal.kind, detail: signal.detail)
        circuits[provider] = circuit
        // The ledger grants nothing more either.
        _ = ledgers[provider]?.signal(signal.kind, retryAfter: nil, reset: nil, detail: signal.detail, now: now)
        stats[provider, default: ProviderStats()].circuitOpen = true
        var actions: [Action] = [
            .notice(.circuitOpened(provider: provider, signal: signal.kind, detail: signal.detail))
        ]
        actions += broadcast(Self.pause(provider, circuit))
        // Everything still waiting is refused: those calls become placeholders.
        for waiting in queues[provider]?.removeAll() ?? [] {
            stats[provider, default: ProviderStats()].refused += waiting.remaining
            actions.append(.send(session: waiting.session, refusal(waiting.requestId, provider, circuit)))
            sessions[waiting.session]?.requests.remove(waiting.requestId)
        }
        queues[provider] = LeaseQueue()
        return actions
    }

    /// `pause` for every session that understands it (minor 1), in a stable order.
    private func broadcast(_ pause: ProviderPause) -> [Action] {
        sessions.keys.sorted().compactMap { session in
            (sessions[session]?.minor ?? 0) >= 1 ? .send(session: session, .providerPause(pause)) : nil
        }
    }

    private static func pause(_ provider: String, _ circuit: Circuit) -> ProviderPause {
        ProviderPause(provider: provider, pauseMs: 0, circuitOpen: true, reason: circuit.reason)
    }

    // MARK: - Time

    /// Grants whatever the budgets allow at `now` (call on every clock tick and at ``nextDeadline(after:)``).
    mutating func advance(now: Instant) -> [Action] {
        grantAll(now: now)
    }

    /// The next moment a waiting call might get its permit without any message arriving.
    func nextDeadline(after now: Instant) -> Instant? {
        var best: Instant?
        for (provider, ledger) in ledgers {
            guard !(queues[provider]?.isEmpty ?? true) else { continue }
            if let t = ledger.nextChange(after: now), best.map({ t < $0 }) ?? true { best = t }
            if let t = nextProbe(provider, now: now), t > now, best.map({ t < $0 }) ?? true { best = t }
        }
        return best
    }

    // MARK: - Pacing while learning

    /// When the next permit of `provider` may be granted under the pacing of a provider whose limits are
    /// not known yet; `nil` when it is not paced.
    private func nextProbe(_ provider: String, now: Instant) -> Instant? {
        guard let learner = learners[provider], !learner.confirmed, settings.probeInterval > .zero,
            let probe = probes[provider]
        else { return nil }
        let halvings = min(30, Int(((now - probe.first) / .seconds(1)).rounded(.down)))
        let interval = settings.probeInterval / (1 << halvings)
        guard interval >= .milliseconds(1) else { return nil }
        return probe.last + interval
    }

    private mutating func noteProbe(_ provider: String, now: Instant) {
        guard learners[provider] != nil else { return }
        probes[provider] = (probes[provider]?.first ?? now, now)
    }

    /// Appends `now` to a per-provider log kept to `window` ms (and at most 100,000 entries).
    private func note(_ log: inout [String: Deque<Instant>], _ provider: String, now: Instant, window: Int) {
        // In place: a copy of the log (up to 100,000 entries) on every call would make it quadratic.
        func append(to entries: inout Deque<Instant>) {
            entries.append(now)
            while let first = entries.first, first + .milliseconds(window) <= now || entries.count > 100_000 {
                entries.removeFirst()
            }
        }
        append(to: &log[provider, default: []])
    }

    private func count(_ log: Deque<Instant>?, within window: Duration, now: Instant) -> Int {
        guard let log else { return 0 }
        var n = 0
        for instant in log.reversed() {
            guard instant + window > now else { break }
            n += 1
        }
        return n
    }

    private mutating func grantAll(now: Instant) -> [Action] {
        var actions: [Action] = []
        for provider in ledgers.keys.sorted() {
            actions += grant(provider, now: now)
        }
        return actions
    }

    /// Serves `provider`'s queue in priority order while its ledger allows.
    ///
    /// The ledger and the queue are changed where they are, in their dictionaries: taking either out and
    /// writing it back would copy it on every grant.
    private mutating func grant(_ provider: String, now: Instant) -> [Action] {
        guard ledgers[provider] != nil else { return [] }
        ledgers[provider]?.advance(to: now)
        let useWithin = settings.useWithin
        var actions: [Action] = []
        while let head = queues[provider]?.first() {
            var remaining = head.remaining
            var permits: [RateLedger.PermitID] = []
            // The worker's deadline runs from its request's send time plus the time queued here (rounded
            // down to whole ms); the ledger counts the permit until `now + useWithin`, which is no earlier.
            while remaining > 0, nextProbe(provider, now: now).map({ $0 <= now }) ?? true,
                let id = ledgers[provider]?.grant(units: head.units, useWithin: useWithin, now: now)
            {
                permits.append(id)
                remaining -= 1
                noteProbe(provider, now: now)
            }
            if !permits.isEmpty {
                let leaseId = "l\(nextLease)"
                nextLease += 1
                leases[leaseId] = Lease(session: head.session, provider: provider, unstarted: permits)
                sessions[head.session]?.leases.insert(leaseId)
                let wait = (now - head.arrived).wholeMilliseconds
                stats[provider, default: ProviderStats()].granted += permits.count
                stats[provider, default: ProviderStats()].totalWaitMs += wait * permits.count
                stats[provider, default: ProviderStats()].maxWaitMs = max(stats[provider]?.maxWaitMs ?? 0, wait)
                actions.append(.notice(.granted(provider: provider, count: permits.count)))
                actions.append(
                    .send(
                        session: head.session,
                        .leaseGrant(
                            LeaseGrant(
                                requestId: head.requestId,
                                leaseId: leaseId,
                                provider: provider,
                                calls: permits.count,
                                useWithinMs: settings.useWithin.wholeMilliseconds,
                                queuedMs: wait
                            )
                        )
                    )
                )
            }
            if remaining == 0 {
                queues[provider]?.removeFirst()
                sessions[head.session]?.requests.remove(head.requestId)
            } else {
                queues[provider]?.setRemaining(remaining, of: head.seq)
                break
            }
        }
        stats[provider, default: ProviderStats()].slotsReclaimed = ledgers[provider]?.stats.slotsReclaimed ?? 0
        return actions
    }

    private func refusal(_ requestId: String, _ provider: String, _ circuit: Circuit) -> Message {
        .leaseGrant(
            LeaseGrant(
                requestId: requestId,
                leaseId: "",
                provider: provider,
                calls: 0,
                useWithinMs: 0,
                refused: .circuitOpen,
                detail: circuit.reason
            )
        )
    }

    /// Calls started per provider, counted per second since ``timelineOrigin`` (for the batch report's
    /// call rate chart; bounded by the batch's length in seconds, not by its calls).
    private(set) var startsPerSecond: [String: [Int: Int]] = [:]
    /// The moment of the first call started through this manager.
    private(set) var timelineOrigin: Instant?

    private mutating func noteStarts(_ provider: String, count: Int, now: Instant) {
        guard count > 0, let ledger = ledgers[provider] else { return }
        let origin = timelineOrigin ?? now
        timelineOrigin = origin
        startsPerSecond[provider, default: [:]][Int((now - origin).secondsDouble), default: 0] += count
        let window = Duration.milliseconds(ledger.settings.budget.requestWindowMs)
        // In place, like ``note(_:_:now:window:)``.
        func slide(_ starts: inout Deque<Instant>) -> Int {
            for _ in 0..<count { starts.append(now) }
            while let first = starts.first, first + window <= now { starts.removeFirst() }
            return starts.count
        }
        let inWindow = slide(&recentStarts[provider, default: []])
        stats[provider, default: ProviderStats()].maxStartedInWindow = max(
            stats[provider]?.maxStartedInWindow ?? 0,
            inWindow
        )
    }
}

/// Budget events worth a log line.
enum LeaseNotice: Sendable, Equatable {
    case decreased(provider: String, factor: Double, concurrency: Int?, signal: ProviderSignal.Kind)
    case paused(provider: String, for: Duration, signal: ProviderSignal.Kind)
    /// A billing, quota (`quota_exceeded`) or auth (`auth_failed`) error opened the provider's circuit.
    case circuitOpened(provider: String, signal: ProviderSignal.Kind, detail: String)
    case rejected(reason: String, detail: String)
    /// Calls started (journaled, so that a restarted coordinator counts them).
    case started(provider: String, count: Int)
    /// Permits granted. Journaled *before* the grant is sent (write-ahead): a worker uses a permit at
    /// once, so a coordinator killed right after granting still finds the call in its windows on restart,
    /// even when the worker that made it died too and cannot report it.
    case granted(provider: String, count: Int)
    /// What a provider said changed the budget leased from now on (`budget` in words).
    case learned(provider: String, budget: String)
}

import DequeModule
import Protocol
import Shared

/// The worker's side of the fleet's rate-limit budget (PROTOCOL §16) as a pure state machine, the
/// counterpart of the coordinator's ``LeaseManager``.
///
/// It owns everything the lease cycle needs to remember: the calls waiting for a permit (by request id),
/// the permits in the hands of calls (and the session that granted each), the open circuits and pauses,
/// what the coordinator was told of the providers' limits, the local ledgers (budget mode `local`, or going
/// on alone after losing the coordinator), the recent starts HELLO reports, and the counts.
///
/// No clock reads, no locks, no waiting: every input carries `now` where time matters, and returns
/// ``Action``s that ``LeaseClient`` (the shell: a mutex around this core, the waiting calls'
/// continuations, the closure that hands messages to the agent) carries out. Unit tests drive it with
/// stepped time (`LeaseClientCoreTests`).
///
/// Sessions (§16.2, "Requests, leases and sessions"):
/// - A waiting request belongs to the session it was sent on. When the session ends it is not withdrawn
///   (the coordinator drops it); it is asked for again right after the next WELCOME under the same
///   `request_id`, its deadline counting from that new sending, if that WELCOME still leases its
///   provider; otherwise the call is routed again under the new rules (``Action/reroute(_:)``). With
///   ``LossPolicy/local`` it does not wait for a new session: it is routed again at once, to the local
///   share.
/// - A permit granted before the loss stays usable until its deadline, also after a new WELCOME, but is
///   never reported (LEASE_STARTED, LEASE_RELEASE) on a later session.
/// - A LEASE_GRANT for a request nobody waits for any more is returned at once.
struct LeaseClientCore: Sendable {
    typealias Instant = ContinuousClock.Instant

    /// What the worker does while it has no coordinator (`--on-coordinator-loss`).
    enum LossPolicy: String, Sendable, CaseIterable {
        /// Start no budgeted call until a coordinator grants it (pessimistic). The default.
        case wait
        /// Go on alone at every limit ÷ the fleet size the last WELCOME gave, until the next WELCOME.
        case local
    }

    struct Settings: Sendable {
        /// The default is ``LossPolicy/wait``.
        var lossPolicy: LossPolicy = .wait
        /// Added to every window of the local ledgers and of the recent starts. The default is 15 ms, the
        /// coordinator's.
        var margin: Duration = .milliseconds(15)
    }

    /// How a call of a provider goes ahead right now.
    enum Route: Sendable, Equatable {
        /// Not budgeted (or not leased for this call): it starts at once.
        case open
        /// The worker's own ledger decides (``localPermit(_:units:now:)``).
        case local
        /// It needs a permit from the coordinator (``request(_:provider:units:episodeId:teaches:now:)``).
        case leased
        /// The provider's circuit is open: the call must become a placeholder.
        case refused(GateError)
    }

    /// A granted permit in the hands of one call. The core keeps a copy until the call finishes or gives
    /// the permit back (``held``).
    struct Permit: Sendable, Equatable {
        /// Numbers the permits this process was granted, across sessions (lease ids are not unique across
        /// coordinator restarts).
        var number: Int
        var leaseId: String
        var provider: String
        /// The call must start before this: the request's sending + `queued_ms` + `use_within_ms` (§16.2 rule 4).
        var deadline: Instant
        /// The session that granted it (counted from 1); nothing about it is sent on a later one.
        var session: Int
    }

    /// What the shell does with the outputs.
    enum Action: Sendable, Equatable {
        /// A lease message for the coordinator. The agent sends it only within a session.
        case send(Message)
        /// The call waiting under this request id got its permit.
        case grant(String, Permit)
        /// The call waiting under this request id goes ahead without a permit: the coordinator has no
        /// budget for its provider (a refusal with `unknown_provider`).
        case proceed(String)
        /// The call waiting under this request id is refused: its provider's circuit is open.
        case fail(String, GateError)
        /// The rules changed under the call waiting under this request id (a WELCOME that no longer leases
        /// its provider, a lost coordinator with ``LossPolicy/local``, a circuit): it is routed again.
        case reroute(String)
        /// The call waiting under this request id was cancelled (its task was).
        case cancelled(String)
    }

    /// What a call does with its permit (``use(_:cancelled:waitingSince:now:)``).
    enum Use: Sendable, Equatable {
        /// Start the call now.
        case start
        /// A pause heard after the grant ends before the permit's deadline: wait, then ask again.
        case wait(until: Instant)
        /// The permit was given back (past its deadline, outlasted by a pause, or the call was
        /// cancelled): wait until `after` if set, then route the call again.
        case askAgain(after: Instant?)
    }

    /// What the local ledger says to a call (``localPermit(_:units:now:)``).
    enum LocalPermit: Sendable, Equatable {
        case granted(RateLedger.PermitID)
        /// Nothing free (or paused): ask again at this moment.
        case wait(until: Instant)
        /// The local ledger is gone (a WELCOME changed the rules): route the call again.
        case gone
    }

    /// A call waiting for a permit.
    struct Waiter: Sendable, Equatable {
        var provider: String
        var units: Int
        var episodeId: String?
        var teaches: Bool
        /// Orders the waiters (requests are asked for again in the order they were first made).
        var sequence: Int
        /// When the LEASE_REQUEST last went out; `nil` while not sent in the current session.
        var sentAt: Instant?
    }

    /// Why a provider's calls are refused.
    struct Circuit: Sendable, Equatable {
        var cause: CircuitCause
        var detail: String

        /// From a coordinator's circuit text (PROVIDER_PAUSE `reason`, a refusal's `detail`).
        init(coordinatorText text: String) {
            (cause, detail) = CircuitCause.parse(text)
        }

        init(cause: CircuitCause, detail: String) {
            self.cause = cause
            self.detail = detail
        }

        func error(_ provider: String) -> GateError {
            .circuitOpen(provider: provider, cause: cause, detail: detail)
        }
    }

    /// The header values a coordinator has already heard from this worker for one provider.
    struct LimitsSent: Sendable, Equatable {
        var limitRequests: Int?
        var limitUnits: Int?
        var maxConcurrent: Int?
        var longestResetMs = 0
        var longestUnitResetMs = 0

        /// Whether `signal` tells something new (another limit, or a longer reset: the coordinator takes
        /// the longest reset as the window), and what was sent with it.
        func merging(_ signal: ProviderSignal) -> LimitsSent? {
            var next = self
            if let v = signal.limitRequests { next.limitRequests = v }
            if let v = signal.limitUnits { next.limitUnits = v }
            if let v = signal.maxConcurrent { next.maxConcurrent = v }
            next.longestResetMs = max(longestResetMs, signal.resetMs ?? 0)
            next.longestUnitResetMs = max(longestUnitResetMs, signal.resetUnitsMs ?? 0)
            return next == self ? nil : next
        }
    }

    /// Counts for the worker's closing log line.
    struct Stats: Sendable, Equatable {
        var requests = 0
        var granted = 0
        var expired = 0
        var signals = 0
        var waitedMs = 0
    }

    let settings: Settings
    /// Whether a session is up (between a WELCOME and its loss).
    private(set) var connected = false
    /// Counts sessions, so a permit of an earlier one is never mentioned in a later one.
    private(set) var session = 0
    private(set) var mode: BudgetMode = .leased
    private(set) var budgets: [String: ProviderBudget] = [:]
    /// Workers in the fleet when this one joined: the local share after a loss is budget ÷ this.
    private(set) var fleetWorkers = 1
    /// The minor the coordinator announced in WELCOME (which kinds and fields it understands).
    private(set) var coordinatorMinor = 0
    private(set) var localLedgers: [String: RateLedger] = [:]
    private(set) var pausedUntil: [String: Instant] = [:]
    /// Open circuits by provider: opened here by a billing or auth error, or told by the coordinator.
    private(set) var circuits: [String: Circuit] = [:]
    /// Calls waiting for a permit, by request id.
    private(set) var waiters: [String: Waiter] = [:]
    /// Permits granted and not yet finished or given back, by ``Permit/number``.
    private(set) var held: [Int: Permit] = [:]
    /// What `limits` signals told the coordinator this session, per provider (only news is sent).
    private(set) var limitsSent: [String: LimitsSent] = [:]
    /// When this worker started calls, per provider, within the provider's request window (for HELLO).
    private var recentStarts: [String: Deque<Instant>] = [:]
    private var nextRequest = 0
    private var nextSequence = 0
    private var nextPermit = 0
    private(set) var stats = Stats()

    init(settings: Settings = Settings()) {
        self.settings = settings
    }

    // MARK: - Queries

    /// How a call of `provider` goes ahead now. `teaches`: its answer tells the provider's limits (an HTTP
    /// call); while the coordinator is still learning a provider's limits only such calls are leased.
    func route(_ provider: String, teaches: Bool) -> Route {
        // Before any budget: an open circuit refuses calls of budgeted and unbudgeted providers alike.
        if let circuit = circuits[provider] { return .refused(circuit.error(provider)) }
        guard let budget = budgets[provider] else { return .open }
        if budget.isUnlimited, !teaches { return .open }
        if localLedgers[provider] != nil { return .local }
        return mode == .leased ? .leased : .open
    }

    /// Whether calls of `provider` are leased from the coordinator (a rate 429 is then retried after a new
    /// permit without using up the call's retries).
    func isLeased(_ provider: String) -> Bool {
        mode == .leased && budgets[provider] != nil && localLedgers.isEmpty
    }

    /// Per provider, how long ago each call this worker started within the last window began: HELLO's
    /// `recent_calls` (§16.6).
    func recentCalls(now: Instant) -> [String: [Int]] {
        var out: [String: [Int]] = [:]
        for (provider, starts) in recentStarts {
            let window = self.window(provider)
            let ages = starts.filter { now - $0 < window }.map { (now - $0).wholeMilliseconds }
            if !ages.isEmpty { out[provider] = ages }
        }
        return out
    }

    // MARK: - Session events

    /// A WELCOME arrived: learn the budgets, forget circuits, pauses and what the previous coordinator was
    /// told, and ask again for every call still waiting whose provider this session leases.
    mutating func sessionStarted(_ welcome: Welcome, now: Instant) -> [Action] {
        connected = true
        session += 1
        coordinatorMinor = welcome.protocolMinor
        mode = welcome.budgetMode
        fleetWorkers = max(1, welcome.fleetWorkers)
        budgets = Dictionary(welcome.budgets.map { ($0.provider, $0) }, uniquingKeysWith: { $1 })
        // The coordinator sends its open circuits right after the WELCOME.
        circuits = [:]
        // A new coordinator may know nothing of the providers' limits yet.
        limitsSent = [:]
        pausedUntil = [:]
        let margin = settings.margin
        localLedgers = mode == .local ? budgets.mapValues { RateLedger(.init(budget: $0, margin: margin)) } : [:]
        var actions: [Action] = []
        for id in waiting() {
            guard var waiter = waiters[id] else { continue }
            guard route(waiter.provider, teaches: waiter.teaches) == .leased else {
                // No longer leased: the call goes through the new rules.
                waiters[id] = nil
                actions.append(.reroute(id))
                continue
            }
            // The same request id; its deadline counts from this sending.
            waiter.sentAt = now
            waiters[id] = waiter
            actions.append(.send(.leaseRequest(request(id, waiter))))
        }
        return actions
    }

    /// The session is gone (coordinator silent, restarted, or this worker stopping): permits in hand keep
    /// their deadlines; waiting calls wait for the next session, or with ``LossPolicy/local`` are routed
    /// again at once, to a local ledger of budget ÷ ``fleetWorkers``. A second loss without a session in
    /// between changes nothing (the local ledgers keep their windows).
    mutating func sessionLost() -> [Action] {
        guard connected else { return [] }
        connected = false
        for id in waiters.keys { waiters[id]?.sentAt = nil }
        guard settings.lossPolicy == .local, mode == .leased else { return [] }
        let (n, margin) = (fleetWorkers, settings.margin)
        localLedgers = budgets.mapValues { RateLedger(.init(budget: $0.share(of: n), margin: margin)) }
        let ids = waiting()
        for id in ids { waiters[id] = nil }
        return ids.map { .reroute($0) }
    }

    /// A lease message from the coordinator: LEASE_GRANT (a permit or a refusal) or PROVIDER_PAUSE.
    mutating func received(_ message: Message, now: Instant) -> [Action] {
        switch message {
        case .leaseGrant(let grant):
            return granted(grant)
        case .providerPause(let pause):
            if pause.circuitOpen {
                let circuit = Circuit(coordinatorText: pause.reason)
                circuits[pause.provider] = circuit
                let ids = waiting().filter { waiters[$0]?.provider == pause.provider }
                for id in ids { waiters[id] = nil }
                return ids.map { .fail($0, circuit.error(pause.provider)) }
            }
            if pause.pauseMs == 0 {
                pausedUntil[pause.provider] = nil
            } else {
                extendPause(pause.provider, until: now + .milliseconds(pause.pauseMs))
            }
            return []
        default:
            return []
        }
    }

    // MARK: - Calls

    /// Names a new request: `r1`, `r2`, … per process, never reused (§16.2).
    mutating func nextRequestId() -> String {
        nextRequest += 1
        stats.requests += 1
        return "r\(nextRequest)"
    }

    /// A call of `provider` waits for a permit under request `id`. The LEASE_REQUEST goes out now when a
    /// session is up, else right after the next WELCOME. A call whose route changed since it was routed
    /// (a circuit, a lost coordinator with ``LossPolicy/local``) is routed again instead.
    mutating func request(
        _ id: String,
        provider: String,
        units: Int,
        episodeId: String?,
        teaches: Bool,
        now: Instant
    ) -> [Action] {
        guard route(provider, teaches: teaches) == .leased else { return [.reroute(id)] }
        nextSequence += 1
        var waiter = Waiter(
            provider: provider,
            units: units,
            episodeId: episodeId,
            teaches: teaches,
            sequence: nextSequence
        )
        guard connected else {
            waiters[id] = waiter
            return []
        }
        waiter.sentAt = now
        waiters[id] = waiter
        return [.send(.leaseRequest(request(id, waiter)))]
    }

    /// The call waiting under `id` was cancelled: it stops waiting, and the coordinator is told when the
    /// request went out on this session (LEASE_CANCEL).
    mutating func cancel(_ id: String) -> [Action] {
        guard let waiter = waiters.removeValue(forKey: id) else { return [] }
        var actions: [Action] = [.cancelled(id)]
        if waiter.sentAt != nil, connected { actions.append(.send(.leaseCancel(LeaseCancel(requestId: id)))) }
        return actions
    }

    /// A call holding `permit` is about to start: it starts now (LEASE_STARTED when the permit's session is
    /// the current one), waits out a pause its deadline outlasts, or gives the permit back (LEASE_RELEASE
    /// `returned` on the permit's session) when past its deadline, outlasted by a pause, or `cancelled`.
    /// `waitingSince`: when the call first asked, for ``Stats/waitedMs``.
    mutating func use(
        _ permit: Permit,
        cancelled: Bool,
        waitingSince: Instant,
        now: Instant
    ) -> (use: Use, actions: [Action]) {
        if let until = pausedUntil[permit.provider], until > now, !cancelled {
            if until < permit.deadline { return (.wait(until: until), []) }
            return (.askAgain(after: until), giveBack(permit))
        }
        guard now < permit.deadline, !cancelled else {
            stats.expired += 1
            return (.askAgain(after: nil), giveBack(permit))
        }
        stats.waitedMs += (now - waitingSince).wholeMilliseconds
        noteStart(permit.provider, now: now)
        guard reportable(permit) else { return (.start, []) }
        return (.start, [.send(.leaseStarted(LeaseStarted(leaseId: permit.leaseId)))])
    }

    /// A call that started with `permit` ended: its concurrency slot is free (LEASE_RELEASE `finished`,
    /// with `used_units` to a coordinator of minor 4 or later, on the permit's session only).
    mutating func finished(_ permit: Permit, usedUnits: Int?) -> [Action] {
        held[permit.number] = nil
        guard reportable(permit) else { return [] }
        // `used_units` is minor 4; an older coordinator keeps the estimate.
        let used = coordinatorMinor >= 4 ? usedUnits.map { min($0, 1_000_000_000) } : nil
        return [.send(.leaseRelease(LeaseRelease(leaseId: permit.leaseId, finished: 1, usedUnits: used)))]
    }

    /// What a provider said, reported by a call (PROVIDER_SIGNAL, §16.5 and §16.8): a billing or auth error
    /// opens the provider's circuit here at once, budget or not; a rate signal of a leased provider pauses
    /// it here at once; the coordinator hears what it can understand, and of `limits` only news.
    mutating func report(_ provider: String, _ signal: ProviderSignal, now: Instant) -> [Action] {
        if let cause = CircuitCause(signal.kind) {
            // About the account, not the rate: budget or not, this worker stops calling the provider at
            // once, and the coordinator opens the circuit for the whole fleet.
            stats.signals += 1
            if circuits[provider] == nil { circuits[provider] = Circuit(cause: cause, detail: signal.detail) }
            guard connected, coordinatorMinor >= 1 else { return [] }
            var sent = signal
            // A coordinator before minor 3 does not know `auth_failed`; it reacts the same to this.
            if sent.kind == .authFailed, coordinatorMinor < 3 { sent.kind = .quotaExceeded }
            return [.send(.providerSignal(sent))]
        }
        guard budgets[provider] != nil else { return [] }
        if signal.kind == .limits {
            // Minor 4: only what the coordinator has not heard yet.
            guard mode == .leased, connected, coordinatorMinor >= 4,
                let sent = (limitsSent[provider] ?? LimitsSent()).merging(signal)
            else { return [] }
            limitsSent[provider] = sent
            return [.send(.providerSignal(signal))]
        }
        stats.signals += 1
        // Local mode is the predecessor's design: each call backs off on its own, nothing is shared.
        guard mode == .leased else { return [] }
        // React here at once; the coordinator tells everyone else.
        if let wait = signal.retryAfterMs ?? (signal.kind == .exhausted ? signal.resetMs : nil), wait > 0 {
            extendPause(provider, until: now + .milliseconds(wait))
        }
        guard connected else { return [] }
        return [.send(.providerSignal(signal))]
    }

    // MARK: - Local ledgers

    /// A permit of `provider`'s local ledger for a call costing `units`, if it grants one now.
    mutating func localPermit(_ provider: String, units: Int, now: Instant) -> LocalPermit {
        guard var ledger = localLedgers[provider] else { return .gone }
        if let until = pausedUntil[provider], until > now { return .wait(until: until) }
        // The permit is started at once: `useWithin` only bounds a call that never reports.
        if let id = ledger.grant(units: units, useWithin: .seconds(60), now: now) {
            localLedgers[provider] = ledger
            return .granted(id)
        }
        let next = ledger.nextChange(after: now)
        localLedgers[provider] = ledger
        return .wait(until: next ?? now + .milliseconds(5))
    }

    /// The call holding local permit `id` starts now.
    mutating func localStarted(_ provider: String, _ id: RateLedger.PermitID, waitingSince: Instant, now: Instant) {
        stats.waitedMs += (now - waitingSince).wholeMilliseconds
        localLedgers[provider]?.started(id, now: now)
        noteStart(provider, now: now)
    }

    /// The call holding local permit `id` ended (a ledger replaced since has forgotten it).
    mutating func localFinished(_ provider: String, _ id: RateLedger.PermitID, now: Instant) {
        localLedgers[provider]?.finished(id, now: now)
    }

    // MARK: - Internals

    private mutating func granted(_ grant: LeaseGrant) -> [Action] {
        guard let waiter = waiters[grant.requestId], let sentAt = waiter.sentAt else {
            // Nobody waits for it any more (cancelled, or asked for in an older session): give it back.
            guard grant.refused == nil, grant.calls > 0 else { return [] }
            return [.send(.leaseRelease(LeaseRelease(leaseId: grant.leaseId, returned: grant.calls)))]
        }
        waiters[grant.requestId] = nil
        switch grant.refused {
        case .circuitOpen:
            let circuit = Circuit(coordinatorText: grant.detail)
            circuits[grant.provider] = circuit
            return [.fail(grant.requestId, circuit.error(grant.provider))]
        case .unknownProvider:
            // The coordinator has no such budget: nothing to lease.
            budgets[grant.provider] = nil
            return [.proceed(grant.requestId)]
        case nil:
            stats.granted += 1
            nextPermit += 1
            let permit = Permit(
                number: nextPermit,
                leaseId: grant.leaseId,
                provider: waiter.provider,
                deadline: sentAt + .milliseconds(grant.queuedMs + grant.useWithinMs),
                session: session
            )
            held[permit.number] = permit
            var actions: [Action] = [.grant(grant.requestId, permit)]
            // This worker asks for one call per request; any extra goes back.
            if grant.calls > 1 {
                actions.append(.send(.leaseRelease(LeaseRelease(leaseId: grant.leaseId, returned: grant.calls - 1))))
            }
            return actions
        }
    }

    /// Gives a permit back unused: told to the coordinator on the session that granted it only (an ended
    /// session's leases are forgotten by the coordinator on its own).
    private mutating func giveBack(_ permit: Permit) -> [Action] {
        held[permit.number] = nil
        guard reportable(permit) else { return [] }
        return [.send(.leaseRelease(LeaseRelease(leaseId: permit.leaseId, returned: 1)))]
    }

    /// Whether messages about `permit` may be sent: its session is the current one.
    private func reportable(_ permit: Permit) -> Bool {
        connected && permit.session == session
    }

    /// Pauses `provider` until `until`, unless it is already paused for longer.
    private mutating func extendPause(_ provider: String, until: Instant) {
        if (pausedUntil[provider] ?? until) <= until { pausedUntil[provider] = until }
    }

    /// The waiting request ids in the order they were first asked for.
    private func waiting() -> [String] {
        waiters.sorted { $0.value.sequence < $1.value.sequence }.map(\.key)
    }

    private func request(_ id: String, _ waiter: Waiter) -> LeaseRequest {
        LeaseRequest(
            requestId: id,
            provider: waiter.provider,
            calls: 1,
            units: waiter.units,
            episodeId: waiter.episodeId
        )
    }

    /// The window recent starts are kept for: the provider's request window (1 s without a budget) plus
    /// the margin.
    private func window(_ provider: String) -> Duration {
        .milliseconds(budgets[provider]?.requestWindowMs ?? 1000) + settings.margin
    }

    private mutating func noteStart(_ provider: String, now: Instant) {
        var starts = recentStarts[provider] ?? []
        starts.append(now)
        let window = self.window(provider)
        while let first = starts.first, now - first >= window { starts.removeFirst() }
        // Bounded: nobody needs more than the last 100,000 starts.
        while starts.count > 100_000 { starts.removeFirst() }
        recentStarts[provider] = starts
    }
}

import DequeModule
import Logging
import Protocol
import Shared
import Synchronization

/// The worker's side of the fleet's rate-limit budget: the ``ProviderGate`` every external call goes
/// through once a coordinator announced budgets in its WELCOME.
///
/// - **Leased** (the default): a call sends LEASE_REQUEST and waits for its LEASE_GRANT, sends
///   LEASE_STARTED right before the request leaves, and LEASE_RELEASE when it ends. A permit not started
///   within `use_within_ms` of the request's *sending* is returned unused and asked for again. Calls
///   waiting while the coordinator is unreachable are asked for again on the next session.
/// - **Local** (a benchmark mode): the worker enforces the announced budgets on its own calls with its own
///   ``RateLedger``, as the single-machine predecessor did.
/// - **Coordinator lost**: with ``LossPolicy/wait`` (pessimistic, the default) no call starts until a
///   coordinator grants it; with ``LossPolicy/local`` the worker goes on alone at budget ÷ the fleet size it
///   last heard, until it reconnects.
///
/// Messages go out through the closure given to ``attach(send:)`` (the worker agent, which owns the
/// socket); grants and pauses come in through ``receive(_:)``. State sits behind a mutex; nothing here
/// touches a socket.
final class LeaseClient: ProviderGate {
    typealias Instant = ContinuousClock.Instant

    enum LossPolicy: String, Sendable, CaseIterable {
        case wait
        case local
    }

    private struct Waiter {
        var provider: String
        var units: Int
        var episodeId: String?
        /// When the request was last handed to the socket; `nil` while not sent in the current session.
        var sentAt: Instant?
        var continuation: CheckedContinuation<Permit?, any Error>
    }

    /// Why a provider's calls are refused.
    private struct Circuit {
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

    /// A granted permit in the hands of one call.
    private struct Permit {
        var leaseId: String
        var deadline: Instant
        /// The session it was granted in; its messages are not sent in a later one.
        var generation: Int
    }

    private struct State {
        var send: (@Sendable (Message) -> Void)?
        var connected = false
        /// Counts sessions, so a permit of an earlier one is never mentioned in a later one.
        var generation = 0
        var mode: BudgetMode = .leased
        var budgets: [String: ProviderBudget] = [:]
        var fleetWorkers = 1
        var localLedgers: [String: RateLedger] = [:]
        var pausedUntil: [String: Instant] = [:]
        /// Open circuits by provider: opened here by a billing or auth error, or told by the coordinator.
        var circuits: [String: Circuit] = [:]
        /// The minor the coordinator announced in WELCOME (which kinds it understands).
        var coordinatorMinor = 0
        var waiters: [String: Waiter] = [:]
        var nextRequest = 0
        var recentStarts: [String: Deque<Instant>] = [:]
        /// What `limits` signals told the coordinator this session, per provider (only news is sent).
        var limitsSent: [String: LimitsSent] = [:]
        var stats = Stats()
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

    private let state = Mutex(State())
    private let clock = ContinuousClock()
    private let lossPolicy: LossPolicy
    private let margin: Duration
    /// One waiting line per provider for the local ledgers, so calls are served in order.
    private let turnstiles: [String: AsyncSemaphore]

    init(lossPolicy: LossPolicy = .wait, margin: Duration = .milliseconds(15)) {
        self.lossPolicy = lossPolicy
        self.margin = margin
        var turnstiles: [String: AsyncSemaphore] = [:]
        for kind in [ProviderKind.llm, .tts, .image] { turnstiles[kind.rawValue] = AsyncSemaphore(permits: 1) }
        self.turnstiles = turnstiles
    }

    var stats: Stats { state.withLock { $0.stats } }

    /// Where lease messages go; the agent stamps them with the session and sends them.
    func attach(send: @escaping @Sendable (Message) -> Void) {
        state.withLock { $0.send = send }
    }

    // MARK: - Session events (from the agent)

    /// A WELCOME arrived: learn the budgets and ask again for every call still waiting.
    func sessionStarted(_ welcome: Welcome) {
        let outbox: [Message] = state.withLock { s in
            s.connected = true
            s.generation += 1
            s.coordinatorMinor = welcome.protocolMinor
            s.mode = welcome.budgetMode
            s.fleetWorkers = max(1, welcome.fleetWorkers)
            s.budgets = Dictionary(welcome.budgets.map { ($0.provider, $0) }, uniquingKeysWith: { $1 })
            // The coordinator sends its open circuits right after the WELCOME.
            s.circuits = [:]
            // A new coordinator may know nothing of the providers' limits yet.
            s.limitsSent = [:]
            s.pausedUntil = [:]
            if welcome.budgetMode == .local {
                s.localLedgers = s.budgets.mapValues { RateLedger(.init(budget: $0, margin: margin)) }
            } else {
                s.localLedgers = [:]
            }
            let now = clock.now
            var outbox: [Message] = []
            for (id, var waiter) in s.waiters {
                guard s.mode == .leased, s.budgets[waiter.provider] != nil else {
                    // No longer leased: let the call go through the new rules.
                    s.waiters[id] = nil
                    waiter.continuation.resume(throwing: Retry())
                    continue
                }
                waiter.sentAt = now
                s.waiters[id] = waiter
                outbox.append(.leaseRequest(request(id, waiter)))
            }
            return outbox
        }
        flush(outbox)
    }

    /// The session is gone (coordinator silent or restarted): permits in hand keep their deadlines, waiting
    /// calls wait for the next session (or, with ``LossPolicy/local``, go on under a local budget).
    func sessionLost() {
        state.withLock { s in
            s.connected = false
            for id in s.waiters.keys { s.waiters[id]?.sentAt = nil }
            if lossPolicy == .local, s.mode == .leased {
                let n = s.fleetWorkers
                s.localLedgers = s.budgets.mapValues { budget in
                    RateLedger(.init(budget: budget.share(of: n), margin: margin))
                }
                // Waiting calls switch to the local budget.
                for (id, waiter) in s.waiters {
                    s.waiters[id] = nil
                    waiter.continuation.resume(throwing: Retry())
                }
            }
        }
    }

    /// A lease message from the coordinator.
    func receive(_ message: Message) {
        switch message {
        case .leaseGrant(let grant):
            onGrant(grant)
        case .providerPause(let pause):
            state.withLock { s in
                if pause.circuitOpen {
                    let circuit = Circuit(coordinatorText: pause.reason)
                    s.circuits[pause.provider] = circuit
                    for (id, waiter) in s.waiters where waiter.provider == pause.provider {
                        s.waiters[id] = nil
                        waiter.continuation.resume(throwing: circuit.error(pause.provider))
                    }
                } else if pause.pauseMs == 0 {
                    s.pausedUntil[pause.provider] = nil
                } else {
                    let until = clock.now + .milliseconds(pause.pauseMs)
                    if (s.pausedUntil[pause.provider] ?? until) <= until { s.pausedUntil[pause.provider] = until }
                }
            }
        default:
            break
        }
    }

    /// Per provider, how long ago each call this worker started within the last window began (for HELLO).
    func recentCalls() -> [String: [Int]] {
        state.withLock { s in
            let now = clock.now
            var out: [String: [Int]] = [:]
            for (provider, starts) in s.recentStarts {
                let window = Duration.milliseconds(s.budgets[provider]?.requestWindowMs ?? 1000) + margin
                let ages = starts.filter { now - $0 < window }.map { (now - $0).wholeMilliseconds }
                if !ages.isEmpty { out[provider] = ages }
            }
            return out
        }
    }

    // MARK: - ProviderGate

    func isLeased(_ kind: ProviderKind) -> Bool {
        state.withLock { $0.mode == .leased && $0.budgets[kind.rawValue] != nil && $0.localLedgers.isEmpty }
    }

    func report(_ kind: ProviderKind, _ signal: ProviderSignal) {
        let provider = kind.rawValue
        let message: Message? = state.withLock { s in
            if let cause = CircuitCause(signal.kind) {
                // About the account, not the rate: budget or not, this worker stops calling the provider at
                // once, and the coordinator opens the circuit for the whole fleet.
                s.stats.signals += 1
                if s.circuits[provider] == nil { s.circuits[provider] = Circuit(cause: cause, detail: signal.detail) }
                guard s.connected, s.coordinatorMinor >= 1 else { return nil }
                var sent = signal
                // A coordinator before minor 3 does not know `auth_failed`; it reacts the same to this.
                if sent.kind == .authFailed, s.coordinatorMinor < 3 { sent.kind = .quotaExceeded }
                return .providerSignal(sent)
            }
            guard s.budgets[provider] != nil else { return nil }
            if signal.kind == .limits {
                // Minor 4: only what the coordinator has not heard yet.
                guard s.mode == .leased, s.connected, s.coordinatorMinor >= 4,
                    let sent = (s.limitsSent[provider] ?? LimitsSent()).merging(signal)
                else { return nil }
                s.limitsSent[provider] = sent
                return .providerSignal(signal)
            }
            s.stats.signals += 1
            let now = clock.now
            // Local mode is the predecessor's design: each call backs off on its own, nothing is shared.
            guard s.mode == .leased else { return nil }
            // React here at once; the coordinator tells everyone else.
            let wait = signal.retryAfterMs ?? (signal.kind == .exhausted ? signal.resetMs : nil)
            if let wait, wait > 0 {
                let until = now + .milliseconds(wait)
                if (s.pausedUntil[provider] ?? until) <= until { s.pausedUntil[provider] = until }
            }
            guard s.connected else { return nil }
            return .providerSignal(signal)
        }
        if let message { flush([message]) }
    }

    func withPermit<T: Sendable>(
        _ kind: ProviderKind,
        units: Int,
        episodeId: String?,
        teaches: Bool = true,
        logger: Logger,
        _ body: () async throws -> T
    ) async throws -> T {
        let provider = kind.rawValue
        let waitStarted = clock.now
        var loggedWait = false
        while true {
            try Task.checkCancellation()
            let route: Route = state.withLock { s in
                // Before any budget: an open circuit refuses calls of budgeted and unbudgeted providers alike.
                if let circuit = s.circuits[provider] { return .refused(circuit.error(provider)) }
                guard let budget = s.budgets[provider] else { return .open }
                // Limits still being learned: only a call whose answer can teach them is leased.
                if budget.isUnlimited, !teaches { return .open }
                if s.localLedgers[provider] != nil { return .local }
                return s.mode == .leased ? .leased : .open
            }
            switch route {
            case .open:
                return try await body()
            case .refused(let error):
                throw error
            case .local:
                guard let id = try await localPermit(provider, units: units) else { continue }
                noteWait(since: waitStarted)
                return try await runLocal(provider, id: id, body)
            case .leased:
                if !loggedWait, clock.now - waitStarted > .seconds(5) {
                    loggedWait = true
                    logger.info("Waiting for a \(provider) permit (fleet budget in use)")
                }
                let permit: Permit?
                do {
                    permit = try await leasedPermit(provider, units: units, episodeId: episodeId)
                } catch is Retry {
                    continue
                }
                guard let permit else { return try await body() }
                // A pause heard after the grant: wait it out if the permit lasts, else give it back.
                if let until = state.withLock({ $0.pausedUntil[provider] }), until > clock.now {
                    if until < permit.deadline {
                        try? await Task.sleep(until: until, clock: clock)
                    } else {
                        release(permit, finished: 0, returned: 1)
                        try await Task.sleep(until: until, clock: clock)
                        continue
                    }
                }
                guard clock.now < permit.deadline, !Task.isCancelled else {
                    state.withLock { $0.stats.expired += 1 }
                    release(permit, finished: 0, returned: 1)
                    try Task.checkCancellation()
                    continue
                }
                noteWait(since: waitStarted)
                started(provider, permit)
                let meter = UsageMeter()
                defer { release(permit, finished: 1, returned: 0, usedUnits: meter.recorded) }
                return try await UsageMeter.$current.withValue(meter) { try await body() }
            }
        }
    }

    // MARK: - Leased

    private enum Route {
        case open, local, leased
        case refused(GateError)
    }

    /// Thrown to a waiting call when the rules changed under it (new session, lost coordinator): it starts over.
    private struct Retry: Error {}

    private func leasedPermit(_ provider: String, units: Int, episodeId: String?) async throws -> Permit? {
        let id = state.withLock { s -> String in
            s.nextRequest += 1
            s.stats.requests += 1
            return "r\(s.nextRequest)"
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Permit?, any Error>) in
                let outbox: Message? = state.withLock { s in
                    if Task.isCancelled {
                        continuation.resume(throwing: CancellationError())
                        return nil
                    }
                    var waiter = Waiter(
                        provider: provider,
                        units: units,
                        episodeId: episodeId,
                        continuation: continuation
                    )
                    guard s.connected else {
                        s.waiters[id] = waiter
                        return nil
                    }
                    waiter.sentAt = clock.now
                    s.waiters[id] = waiter
                    return .leaseRequest(request(id, waiter))
                }
                if let outbox { flush([outbox]) }
            }
        } onCancel: {
            let cancel: Message? = state.withLock { s in
                guard let waiter = s.waiters.removeValue(forKey: id) else { return nil }
                waiter.continuation.resume(throwing: CancellationError())
                return waiter.sentAt != nil && s.connected ? .leaseCancel(LeaseCancel(requestId: id)) : nil
            }
            if let cancel { flush([cancel]) }
        }
    }

    private func onGrant(_ grant: LeaseGrant) {
        let outbox: Message? = state.withLock { s in
            guard let waiter = s.waiters[grant.requestId], let sentAt = waiter.sentAt else {
                // Nobody waits for it any more (cancelled, or asked for in an older session): give it back.
                guard grant.refused == nil, grant.calls > 0 else { return nil }
                return .leaseRelease(LeaseRelease(leaseId: grant.leaseId, returned: grant.calls))
            }
            s.waiters[grant.requestId] = nil
            switch grant.refused {
            case .circuitOpen:
                let circuit = Circuit(coordinatorText: grant.detail)
                s.circuits[grant.provider] = circuit
                waiter.continuation.resume(throwing: circuit.error(grant.provider))
                return nil
            case .unknownProvider:
                // The coordinator has no such budget: nothing to lease.
                s.budgets[grant.provider] = nil
                waiter.continuation.resume(returning: nil)
                return nil
            case nil:
                s.stats.granted += 1
                waiter.continuation.resume(
                    returning: Permit(
                        leaseId: grant.leaseId,
                        deadline: sentAt + .milliseconds(grant.queuedMs + grant.useWithinMs),
                        generation: s.generation
                    )
                )
                // This worker asks for one call per request; return any extra.
                if grant.calls > 1 {
                    return .leaseRelease(LeaseRelease(leaseId: grant.leaseId, returned: grant.calls - 1))
                }
                return nil
            }
        }
        if let outbox { flush([outbox]) }
    }

    private func started(_ provider: String, _ permit: Permit) {
        let message: Message? = state.withLock { s in
            noteStart(&s, provider)
            guard s.connected, s.generation == permit.generation else { return nil }
            return .leaseStarted(LeaseStarted(leaseId: permit.leaseId))
        }
        if let message { flush([message]) }
    }

    /// Tells the coordinator, if it is still the session that granted the permit (an ended session's
    /// leases are reclaimed by the coordinator on its own).
    private func release(_ permit: Permit, finished: Int, returned: Int, usedUnits: Int? = nil) {
        let (current, minor) = state.withLock {
            ($0.connected && $0.generation == permit.generation, $0.coordinatorMinor)
        }
        guard current else { return }
        // `used_units` is minor 4; an older coordinator keeps the estimate.
        let used = minor >= 4 && finished > 0 ? usedUnits.map { min($0, 1_000_000_000) } : nil
        flush([
            .leaseRelease(
                LeaseRelease(leaseId: permit.leaseId, finished: finished, returned: returned, usedUnits: used)
            )
        ])
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

    private func flush(_ messages: [Message]) {
        guard let send = state.withLock({ $0.send }) else { return }
        for message in messages { send(message) }
    }

    // MARK: - Local

    /// Waits its turn on the provider's line, then until the local ledger grants a permit. `nil` when the
    /// rules changed meanwhile (the ledger is gone).
    private func localPermit(_ provider: String, units: Int) async throws -> RateLedger.PermitID? {
        guard let turnstile = turnstiles[provider] else { return nil }
        try await turnstile.acquire()
        defer { turnstile.release() }
        while true {
            try Task.checkCancellation()
            let now = clock.now
            let outcome: (RateLedger.PermitID?, Instant?)? = state.withLock { s in
                guard var ledger = s.localLedgers[provider] else { return nil }
                if let until = s.pausedUntil[provider], until > now { return (nil, until) }
                let id = ledger.grant(units: units, useWithin: .seconds(60), now: now)
                let next = id == nil ? ledger.nextChange(after: now) : nil
                s.localLedgers[provider] = ledger
                return (id, next)
            }
            guard let outcome else { return nil }
            if let id = outcome.0 { return id }
            try await Task.sleep(until: outcome.1 ?? now + .milliseconds(5), clock: clock)
        }
    }

    private func runLocal<T: Sendable>(
        _ provider: String,
        id: RateLedger.PermitID,
        _ body: () async throws -> T
    ) async throws -> T {
        state.withLock { s in
            s.localLedgers[provider]?.started(id, now: clock.now)
            noteStart(&s, provider)
        }
        defer { state.withLock { $0.localLedgers[provider]?.finished(id, now: clock.now) } }
        return try await body()
    }

    private func noteStart(_ s: inout State, _ provider: String) {
        let now = clock.now
        var starts = s.recentStarts[provider] ?? []
        starts.append(now)
        let window = Duration.milliseconds(s.budgets[provider]?.requestWindowMs ?? 1000) + margin
        while let first = starts.first, now - first >= window { starts.removeFirst() }
        // Bounded: nobody needs more than the last 100,000 starts.
        while starts.count > 100_000 { starts.removeFirst() }
        s.recentStarts[provider] = starts
    }

    private func noteWait(since: Instant) {
        let waited = (clock.now - since).wholeMilliseconds
        state.withLock { $0.stats.waitedMs += waited }
    }

}

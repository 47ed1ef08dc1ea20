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
/// This is the shell: every decision is ``LeaseClientCore``'s (a pure state machine), kept behind a mutex
/// together with the continuations of the calls waiting for a permit. The shell reads the clock, suspends
/// and wakes the calls, and hands the core's messages to the closure given to ``attach(send:)`` (the
/// worker agent, which owns the socket); grants and pauses come in through ``receive(_:)``.
final class LeaseClient: ProviderGate {
    typealias Instant = ContinuousClock.Instant
    typealias LossPolicy = LeaseClientCore.LossPolicy
    typealias Stats = LeaseClientCore.Stats
    private typealias Permit = LeaseClientCore.Permit

    /// The core and what only the shell can hold: the waiting calls' continuations and the send closure.
    private struct State {
        var core: LeaseClientCore
        var send: (@Sendable (Message) -> Void)?
        /// The suspended calls, by request id: a permit, `nil` (go ahead unleased), or an error.
        var continuations: [String: CheckedContinuation<Permit?, any Error>] = [:]
    }

    private let state: Mutex<State>
    private let clock = ContinuousClock()
    /// One waiting line per provider for the local ledgers, so calls are served in order.
    private let turnstiles: [String: AsyncSemaphore]

    init(lossPolicy: LossPolicy = .wait, margin: Duration = .milliseconds(15)) {
        state = Mutex(State(core: LeaseClientCore(settings: .init(lossPolicy: lossPolicy, margin: margin))))
        var turnstiles: [String: AsyncSemaphore] = [:]
        for kind in [ProviderKind.llm, .tts, .image] { turnstiles[kind.rawValue] = AsyncSemaphore(permits: 1) }
        self.turnstiles = turnstiles
    }

    var stats: Stats { state.withLock { $0.core.stats } }

    /// Where lease messages go; the agent stamps them with the session and sends them.
    func attach(send: @escaping @Sendable (Message) -> Void) {
        state.withLock { $0.send = send }
    }

    // MARK: - Session events (from the agent)

    /// A WELCOME arrived: learn the budgets and ask again for every call still waiting.
    func sessionStarted(_ welcome: Welcome) {
        let now = clock.now
        perform { $0.sessionStarted(welcome, now: now) }
    }

    /// The session is gone (coordinator silent or restarted): permits in hand keep their deadlines, waiting
    /// calls wait for the next session (or, with ``LossPolicy/local``, go on under a local budget).
    func sessionLost() {
        perform { $0.sessionLost() }
    }

    /// A lease message from the coordinator.
    func receive(_ message: Message) {
        let now = clock.now
        perform { $0.received(message, now: now) }
    }

    /// Per provider, how long ago each call this worker started within the last window began (for HELLO).
    func recentCalls() -> [String: [Int]] {
        let now = clock.now
        return state.withLock { $0.core.recentCalls(now: now) }
    }

    // MARK: - ProviderGate

    func isLeased(_ kind: ProviderKind) -> Bool {
        state.withLock { $0.core.isLeased(kind.rawValue) }
    }

    func report(_ kind: ProviderKind, _ signal: ProviderSignal) {
        let now = clock.now
        perform { $0.report(kind.rawValue, signal, now: now) }
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
            switch state.withLock({ $0.core.route(provider, teaches: teaches) }) {
            case .open:
                return try await body()
            case .refused(let error):
                throw error
            case .local:
                guard let id = try await localPermit(provider, units: units) else { continue }
                let now = clock.now
                state.withLock { $0.core.localStarted(provider, id, waitingSince: waitStarted, now: now) }
                defer {
                    let now = clock.now
                    state.withLock { $0.core.localFinished(provider, id, now: now) }
                }
                return try await body()
            case .leased:
                if !loggedWait, clock.now - waitStarted > .seconds(5) {
                    loggedWait = true
                    logger.info("Waiting for a \(provider) permit (fleet budget in use)")
                }
                let permit: Permit?
                do {
                    permit = try await leasedPermit(provider, units: units, episodeId: episodeId, teaches: teaches)
                } catch is Reroute {
                    continue
                }
                guard let permit else { return try await body() }
                guard try await start(permit, waitingSince: waitStarted) else { continue }
                let meter = UsageMeter()
                defer { perform { $0.finished(permit, usedUnits: meter.recorded) } }
                return try await UsageMeter.$current.withValue(meter) { try await body() }
            }
        }
    }

    // MARK: - Leased

    /// Thrown to a waiting call when the rules changed under it (new session, lost coordinator): it starts over.
    private struct Reroute: Error {}

    /// Suspends until the core wakes the call: a permit, `nil` (no budget after all), or an error.
    private func leasedPermit(
        _ provider: String,
        units: Int,
        episodeId: String?,
        teaches: Bool
    ) async throws
        -> Permit?
    {
        let id = state.withLock { $0.core.nextRequestId() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Permit?, any Error>) in
                let now = clock.now
                perform(registering: (id, continuation)) {
                    $0.request(id, provider: provider, units: units, episodeId: episodeId, teaches: teaches, now: now)
                }
            }
        } onCancel: {
            perform { $0.cancel(id) }
        }
    }

    /// Waits out a pause the permit outlasts; `true` when the call may start now (LEASE_STARTED is on its
    /// way), `false` when the permit was given back and the call asks again.
    private func start(_ permit: Permit, waitingSince: Instant) async throws -> Bool {
        while true {
            let now = clock.now
            let cancelled = Task.isCancelled
            var use = LeaseClientCore.Use.start
            perform { core in
                let (decision, actions) = core.use(permit, cancelled: cancelled, waitingSince: waitingSince, now: now)
                use = decision
                return actions
            }
            switch use {
            case .start:
                return true
            case .wait(let until):
                // Cancellation ends the wait; the next turn gives the permit back.
                try? await Task.sleep(until: until, clock: clock)
            case .askAgain(let after):
                try Task.checkCancellation()
                if let after { try await Task.sleep(until: after, clock: clock) }
                return false
            }
        }
    }

    /// Runs one input of the core under the lock, wakes the calls it names, and sends its messages (outside
    /// the lock). `registering`: a call's continuation, stored before the core's actions are carried out
    /// (a call cancelled before it got here is woken at once).
    private func perform(
        registering waiter: (String, CheckedContinuation<Permit?, any Error>)? = nil,
        _ input: (inout LeaseClientCore) -> [LeaseClientCore.Action]
    ) {
        let (messages, send) = state.withLock { s -> ([Message], (@Sendable (Message) -> Void)?) in
            if case let (id, continuation)? = waiter {
                guard !Task.isCancelled else {
                    continuation.resume(throwing: CancellationError())
                    return ([], nil)
                }
                s.continuations[id] = continuation
            }
            var messages: [Message] = []
            for action in input(&s.core) {
                switch action {
                case .send(let message):
                    messages.append(message)
                case .grant(let id, let permit):
                    s.continuations.removeValue(forKey: id)?.resume(returning: permit)
                case .proceed(let id):
                    s.continuations.removeValue(forKey: id)?.resume(returning: nil)
                case .fail(let id, let error):
                    s.continuations.removeValue(forKey: id)?.resume(throwing: error)
                case .reroute(let id):
                    s.continuations.removeValue(forKey: id)?.resume(throwing: Reroute())
                case .cancelled(let id):
                    s.continuations.removeValue(forKey: id)?.resume(throwing: CancellationError())
                }
            }
            return (messages, s.send)
        }
        guard let send else { return }
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
            switch state.withLock({ $0.core.localPermit(provider, units: units, now: now) }) {
            case .granted(let id):
                return id
            case .gone:
                return nil
            case .wait(let until):
                try await Task.sleep(until: until, clock: clock)
            }
        }
    }
}

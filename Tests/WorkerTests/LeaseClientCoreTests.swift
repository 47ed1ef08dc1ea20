import Protocol
import Shared
import Testing

@testable import Worker

/// The worker's lease state machine with stepped time (PROTOCOL §16): every output is checked exactly,
/// nothing sleeps.
@Suite struct LeaseClientCoreTests {
    typealias Core = LeaseClientCore
    let t0 = ContinuousClock.now

    func ms(_ n: Int) -> ContinuousClock.Instant { t0 + .milliseconds(n) }

    func welcome(
        _ session: String = "s1",
        budgets: [ProviderBudget] = [ProviderBudget(provider: "image", requests: 10)],
        mode: BudgetMode = .leased,
        minor: Int = WireProtocol.minorVersion,
        fleetWorkers: Int = 2
    ) -> Welcome {
        Welcome(
            session: session,
            heartbeatIntervalMs: 1000,
            liveness: 3,
            maxMessageBytes: 1 << 20,
            softwareVersion: "t",
            protocolMinor: minor,
            budgets: budgets,
            budgetMode: mode,
            fleetWorkers: fleetWorkers
        )
    }

    /// A core with a session up (at `t0`).
    func connected(
        budgets: [ProviderBudget] = [ProviderBudget(provider: "image", requests: 10)],
        mode: BudgetMode = .leased,
        loss: Core.LossPolicy = .wait,
        minor: Int = WireProtocol.minorVersion
    ) -> Core {
        var core = Core(settings: .init(lossPolicy: loss))
        #expect(core.sessionStarted(welcome(budgets: budgets, mode: mode, minor: minor), now: t0).isEmpty)
        return core
    }

    /// Asks for a permit of `provider` at `now`: the request id and what the core did.
    func ask(
        _ core: inout Core,
        _ provider: String = "image",
        units: Int = 1,
        episodeId: String? = nil,
        now: ContinuousClock.Instant
    ) -> (String, [Core.Action]) {
        let id = core.nextRequestId()
        return (id, core.request(id, provider: provider, units: units, episodeId: episodeId, teaches: true, now: now))
    }

    func request(_ id: String, _ provider: String = "image", units: Int = 1, episodeId: String? = nil) -> Core.Action {
        .send(
            .leaseRequest(LeaseRequest(requestId: id, provider: provider, calls: 1, units: units, episodeId: episodeId))
        )
    }

    func grant(_ id: String, lease: String, calls: Int = 1, useWithinMs: Int = 2000, queuedMs: Int = 0) -> Message {
        .leaseGrant(
            LeaseGrant(
                requestId: id,
                leaseId: lease,
                provider: "image",
                calls: calls,
                useWithinMs: useWithinMs,
                queuedMs: queuedMs
            )
        )
    }

    /// The permit a grant woke, if any.
    func woken(_ actions: [Core.Action]) -> Core.Permit? {
        for case .grant(_, let permit) in actions { return permit }
        return nil
    }

    // MARK: - The lease cycle

    @Test func aGrantIsUsedWithinItsDeadlineThenReleased() throws {
        var core = connected()
        let (id, asked) = ask(&core, episodeId: "e1", now: ms(0))
        #expect(id == "r1")
        #expect(asked == [request("r1", episodeId: "e1")])
        // The deadline counts from the request's sending: 100 ms queued + 2000 ms to use it.
        let granted = core.received(grant("r1", lease: "l1", queuedMs: 100), now: ms(150))
        let permit = try #require(woken(granted))
        #expect(granted == [.grant("r1", permit)])
        #expect(permit.deadline == ms(2100) && permit.leaseId == "l1" && permit.session == 1)
        #expect(core.waiters.isEmpty && core.held[permit.number] == permit)
        // Just before the deadline: it starts, and the coordinator hears it.
        let (use, started) = core.use(permit, cancelled: false, waitingSince: ms(0), now: ms(2099))
        #expect(use == .start)
        #expect(started == [.send(.leaseStarted(LeaseStarted(leaseId: "l1")))])
        #expect(core.stats.waitedMs == 2099)
        #expect(
            core.finished(permit, usedUnits: 42) == [
                .send(.leaseRelease(LeaseRelease(leaseId: "l1", finished: 1, usedUnits: 42)))
            ]
        )
        #expect(core.held.isEmpty)
        #expect(core.stats == .init(requests: 1, granted: 1, expired: 0, signals: 0, waitedMs: 2099))
        #expect(core.recentCalls(now: ms(2599)) == ["image": [500]])
        // The image budget's window is 1 s (+ 15 ms margin): the start has aged out.
        #expect(core.recentCalls(now: ms(2099 + 1015)).isEmpty)
    }

    @Test func aPermitPastItsDeadlineIsGivenBackAndTheCallAsksAgain() throws {
        var core = connected()
        _ = ask(&core, now: ms(0))
        let permit = try #require(woken(core.received(grant("r1", lease: "l1", useWithinMs: 50), now: ms(10))))
        let (use, actions) = core.use(permit, cancelled: false, waitingSince: ms(0), now: ms(50))
        #expect(use == .askAgain(after: nil))
        #expect(actions == [.send(.leaseRelease(LeaseRelease(leaseId: "l1", returned: 1)))])
        #expect(core.stats.expired == 1 && core.held.isEmpty)
        // The call asks again under a new name.
        #expect(ask(&core, now: ms(51)) == ("r2", [request("r2")]))
    }

    @Test func aCancelledCallGivesItsPermitBack() throws {
        var core = connected()
        _ = ask(&core, now: ms(0))
        let permit = try #require(woken(core.received(grant("r1", lease: "l1"), now: ms(10))))
        let (use, actions) = core.use(permit, cancelled: true, waitingSince: ms(0), now: ms(20))
        #expect(use == .askAgain(after: nil))
        #expect(actions == [.send(.leaseRelease(LeaseRelease(leaseId: "l1", returned: 1)))])
    }

    @Test func extraCallsOfAGrantAndGrantsForNobodyAreReturned() throws {
        var core = connected()
        _ = ask(&core, now: ms(0))
        let granted = core.received(grant("r1", lease: "l1", calls: 3), now: ms(5))
        let permit = try #require(woken(granted))
        #expect(granted == [.grant("r1", permit), .send(.leaseRelease(LeaseRelease(leaseId: "l1", returned: 2)))])
        // A cancelled waiter withdraws its request; a grant that crossed the cancel goes straight back.
        _ = ask(&core, now: ms(10))
        #expect(core.cancel("r2") == [.cancelled("r2"), .send(.leaseCancel(LeaseCancel(requestId: "r2")))])
        #expect(
            core.received(grant("r2", lease: "l2"), now: ms(11)) == [
                .send(.leaseRelease(LeaseRelease(leaseId: "l2", returned: 1)))
            ]
        )
        // Cancelling twice does nothing.
        #expect(core.cancel("r2").isEmpty)
    }

    @Test func aPauseHeardAfterTheGrantIsWaitedOutOrOutlastsThePermit() throws {
        var core = connected()
        _ = ask(&core, now: ms(0))
        _ = ask(&core, now: ms(0))
        let first = try #require(woken(core.received(grant("r1", lease: "l1"), now: ms(10))))
        let second = try #require(woken(core.received(grant("r2", lease: "l2"), now: ms(10))))
        #expect(core.received(.providerPause(ProviderPause(provider: "image", pauseMs: 500)), now: ms(20)).isEmpty)
        // Deadline 2000, pause until 520: wait, then start.
        #expect(core.use(first, cancelled: false, waitingSince: ms(0), now: ms(30)) == (.wait(until: ms(520)), []))
        #expect(core.use(first, cancelled: false, waitingSince: ms(0), now: ms(520)).use == .start)
        // A longer pause outlasts the second permit: it goes back, and the call asks after the pause.
        _ = core.received(.providerPause(ProviderPause(provider: "image", pauseMs: 5000)), now: ms(600))
        #expect(
            core.use(second, cancelled: false, waitingSince: ms(0), now: ms(600))
                == (.askAgain(after: ms(5600)), [.send(.leaseRelease(LeaseRelease(leaseId: "l2", returned: 1)))])
        )
        // A pause of 0 lifts it.
        _ = core.received(.providerPause(ProviderPause(provider: "image", pauseMs: 0)), now: ms(700))
        #expect(core.pausedUntil.isEmpty)
    }

    // MARK: - Refusals

    @Test func aCircuitOpenRefusalFailsTheCallAndLaterOnes() {
        var core = connected()
        _ = ask(&core, now: ms(0))
        // A refusal as the coordinator sends it: lease_id "", calls 0, use_within_ms 0.
        let refusal = Message.leaseGrant(
            LeaseGrant(
                requestId: "r1",
                leaseId: "",
                provider: "image",
                calls: 0,
                useWithinMs: 0,
                refused: .circuitOpen,
                detail: "auth_failed: bad key"
            )
        )
        let error = GateError.circuitOpen(provider: "image", cause: .auth, detail: "bad key")
        #expect(core.received(refusal, now: ms(5)) == [.fail("r1", error)])
        #expect(core.stats.granted == 0 && core.held.isEmpty && core.waiters.isEmpty)
        #expect(core.route("image", teaches: true) == .refused(error))
        // A refusal for a request nobody waits for is not "returned": it granted nothing.
        #expect(core.received(refusal, now: ms(6)).isEmpty)
    }

    @Test func anUnknownProviderRefusalLetsTheCallGoAheadUnleased() {
        var core = connected()
        _ = ask(&core, now: ms(0))
        let refusal = Message.leaseGrant(
            LeaseGrant(
                requestId: "r1",
                leaseId: "",
                provider: "image",
                calls: 0,
                useWithinMs: 0,
                refused: .unknownProvider
            )
        )
        #expect(core.received(refusal, now: ms(5)) == [.proceed("r1")])
        #expect(core.route("image", teaches: true) == .open)
        #expect(!core.isLeased("image"))
    }

    // MARK: - Sessions (§16.2)

    @Test func aLostSessionKeepsRequestsAndPermitsAndTheNextWelcomeAsksAgainUnderTheSameId() throws {
        var core = connected()
        _ = ask(&core, now: ms(0))
        _ = ask(&core, episodeId: "e2", now: ms(0))
        let permit = try #require(woken(core.received(grant("r1", lease: "l1"), now: ms(10))))
        #expect(core.sessionLost().isEmpty)
        // Lost twice (the agent stopping after a loss): nothing changes.
        #expect(core.sessionLost().isEmpty)
        // The request waits, not sent on any session; the permit is still held.
        #expect(core.waiters["r2"]?.sentAt == nil)
        #expect(core.held[permit.number] == permit)
        // With the default policy nothing budgeted starts meanwhile: a new call waits too, unsent.
        #expect(core.route("image", teaches: true) == .leased)
        #expect(ask(&core, now: ms(100)) == ("r3", []))
        // A cancelled waiter is not withdrawn from a coordinator that never heard of it.
        #expect(core.cancel("r3") == [.cancelled("r3")])
        // The next WELCOME: the waiting call asks again under its id, its deadline from this sending.
        #expect(core.sessionStarted(welcome("s2"), now: ms(1000)) == [request("r2", episodeId: "e2")])
        #expect(core.waiters["r2"]?.sentAt == ms(1000))
        let second = try #require(woken(core.received(grant("r2", lease: "l1", useWithinMs: 100), now: ms(1050))))
        #expect(second.deadline == ms(1100) && second.session == 2)
        // The old permit may still start before its deadline, but no message names it on the new session
        // (the new coordinator's `l1` is another lease).
        #expect(core.use(permit, cancelled: false, waitingSince: ms(0), now: ms(1060)) == (.start, []))
        #expect(core.finished(permit, usedUnits: nil).isEmpty)
        #expect(
            core.use(second, cancelled: false, waitingSince: ms(0), now: ms(1061)) == (
                .start, [.send(.leaseStarted(LeaseStarted(leaseId: "l1")))]
            )
        )
        // Both count in HELLO's recent calls.
        #expect(core.recentCalls(now: ms(1100)) == ["image": [40, 39]])
    }

    @Test func anOldPermitPastItsDeadlineGoesBackSilently() throws {
        var core = connected()
        _ = ask(&core, now: ms(0))
        let permit = try #require(woken(core.received(grant("r1", lease: "l1"), now: ms(10))))
        _ = core.sessionLost()
        #expect(core.use(permit, cancelled: false, waitingSince: ms(0), now: ms(2000)) == (.askAgain(after: nil), []))
        #expect(core.held.isEmpty)
    }

    @Test func aWelcomeThatNoLongerLeasesTheProviderReroutesTheWaitingCalls() {
        var core = connected(budgets: [ProviderBudget(provider: "image"), ProviderBudget(provider: "llm")])
        _ = ask(&core, "image", now: ms(0))
        _ = ask(&core, "llm", units: 800, now: ms(0))
        _ = core.sessionLost()
        // The new coordinator leases only llm.
        let actions = core.sessionStarted(welcome("s2", budgets: [ProviderBudget(provider: "llm")]), now: ms(500))
        #expect(actions == [.reroute("r1"), request("r2", "llm", units: 800)])
        #expect(core.route("image", teaches: true) == .open)
        // In `local` mode nothing is leased: every waiting call goes to the local ledger.
        _ = core.sessionLost()
        let local = core.sessionStarted(
            welcome("s3", budgets: [ProviderBudget(provider: "llm")], mode: .local),
            now: ms(900)
        )
        #expect(local == [.reroute("r2")])
        #expect(core.route("llm", teaches: true) == .local)
    }

    @Test func goingOnAloneReroutesTheWaitingCallsToTheFleetShare() {
        var core = connected(
            budgets: [ProviderBudget(provider: "image", requests: 2, requestWindowMs: 1000)],
            loss: .local
        )
        _ = ask(&core, now: ms(0))
        #expect(core.isLeased("image"))
        #expect(core.sessionLost() == [.reroute("r1")])
        #expect(core.waiters.isEmpty && !core.isLeased("image"))
        #expect(core.route("image", teaches: true) == .local)
        // Budget 2 per second ÷ 2 workers: one call per second.
        guard case .granted(let id) = core.localPermit("image", units: 1, now: ms(10)) else {
            Issue.record("the first local call starts at once")
            return
        }
        core.localStarted("image", id, waitingSince: ms(0), now: ms(10))
        core.localFinished("image", id, now: ms(20))
        // The second waits until the first start leaves the window (1 s + 15 ms margin).
        #expect(core.localPermit("image", units: 1, now: ms(30)) == .wait(until: ms(10 + 1000 + 15)))
        // A call routed before the loss whose request comes after it is routed again, not parked.
        #expect(ask(&core, now: ms(40)) == ("r2", [.reroute("r2")]))
        // The next WELCOME leases again and drops the local ledgers.
        _ = core.sessionStarted(welcome("s2"), now: ms(50))
        #expect(core.route("image", teaches: true) == .leased)
        #expect(core.localPermit("image", units: 1, now: ms(60)) == .gone)
    }

    @Test func localModeNeverLeases() {
        var core = connected(
            budgets: [ProviderBudget(provider: "image", requests: 1, requestWindowMs: 100)],
            mode: .local
        )
        #expect(core.route("image", teaches: true) == .local)
        #expect(!core.isLeased("image"))
        #expect(core.route("tts", teaches: true) == .open)
        guard case .granted(let id) = core.localPermit("image", units: 1, now: ms(0)) else {
            Issue.record("the first local call starts at once")
            return
        }
        core.localStarted("image", id, waitingSince: ms(0), now: ms(0))
        #expect(core.localPermit("image", units: 1, now: ms(1)) == .wait(until: ms(100 + 15)))
        // A 429 in local mode stays with the call: no pause, nothing sent.
        #expect(
            core.report("image", ProviderSignal(provider: "image", kind: .rateLimited, retryAfterMs: 300), now: ms(2))
                .isEmpty
        )
        #expect(core.pausedUntil.isEmpty && core.stats.signals == 1)
    }

    // MARK: - Circuits and signals (§16.5)

    @Test func theCoordinatorsCircuitFailsEveryWaiterOfTheProvider() {
        var core = connected(budgets: [ProviderBudget(provider: "image"), ProviderBudget(provider: "llm")])
        _ = ask(&core, "image", now: ms(0))
        _ = ask(&core, "llm", now: ms(0))
        _ = ask(&core, "image", now: ms(0))
        let pause = ProviderPause(
            provider: "image",
            pauseMs: 0,
            circuitOpen: true,
            reason: "quota_exceeded: no credits"
        )
        let error = GateError.circuitOpen(provider: "image", cause: .quota, detail: "no credits")
        #expect(core.received(.providerPause(pause), now: ms(5)) == [.fail("r1", error), .fail("r3", error)])
        #expect(Array(core.waiters.keys) == ["r2"])
        // A call of the provider is refused before it asks; unbudgeted providers too, once told.
        #expect(ask(&core, "image", now: ms(6)) == ("r4", [.reroute("r4")]))
        // A new session forgets circuits (the coordinator sends its open ones right after the WELCOME).
        _ = core.sessionLost()
        _ = core.sessionStarted(welcome("s2", budgets: [ProviderBudget(provider: "image")]), now: ms(10))
        #expect(core.route("image", teaches: true) == .leased)
    }

    @Test func anAuthErrorOpensTheCircuitHereAndIsSentInTheCoordinatorsTerms() {
        var core = connected(budgets: [], minor: 2)
        let signal = ProviderSignal(provider: "tts", kind: .authFailed, detail: "bad key")
        // A coordinator before minor 3 hears quota_exceeded; this worker knows it was the key.
        #expect(
            core.report("tts", signal, now: ms(0)) == [
                .send(.providerSignal(ProviderSignal(provider: "tts", kind: .quotaExceeded, detail: "bad key")))
            ]
        )
        #expect(
            core.route("tts", teaches: false)
                == .refused(.circuitOpen(provider: "tts", cause: .auth, detail: "bad key"))
        )
        // Without a session the circuit still opens, and nothing is sent.
        _ = core.sessionLost()
        #expect(core.report("llm", ProviderSignal(provider: "llm", kind: .quotaExceeded), now: ms(1)).isEmpty)
        #expect(core.route("llm", teaches: true) == .refused(.circuitOpen(provider: "llm", cause: .quota, detail: "")))
    }

    @Test func aRateSignalPausesHereAndGoesToTheCoordinator() {
        var core = connected()
        let signal = ProviderSignal(provider: "image", kind: .rateLimited, retryAfterMs: 300)
        #expect(core.report("image", signal, now: ms(100)) == [.send(.providerSignal(signal))])
        #expect(core.pausedUntil["image"] == ms(400))
        // A shorter pause heard later does not shorten it.
        _ = core.received(.providerPause(ProviderPause(provider: "image", pauseMs: 100)), now: ms(200))
        #expect(core.pausedUntil["image"] == ms(400))
        // An unbudgeted provider's 429 stays with the call.
        #expect(core.report("tts", ProviderSignal(provider: "tts", kind: .rateLimited), now: ms(0)).isEmpty)
        #expect(core.stats.signals == 1)
    }

    @Test func onlyNewsAboutLimitsIsSentAndOnlyToMinor4() {
        var core = connected(minor: 4)
        let first = ProviderSignal(provider: "image", kind: .limits, resetMs: 1000, limitRequests: 5)
        #expect(core.report("image", first, now: ms(0)) == [.send(.providerSignal(first))])
        #expect(core.report("image", first, now: ms(1)).isEmpty)
        // A new session forgets what was said.
        _ = core.sessionLost()
        _ = core.sessionStarted(welcome("s2", minor: 3), now: ms(2))
        #expect(core.report("image", first, now: ms(3)).isEmpty)
        _ = core.sessionLost()
        _ = core.sessionStarted(welcome("s3", minor: 4), now: ms(4))
        #expect(core.report("image", first, now: ms(5)) == [.send(.providerSignal(first))])
        #expect(core.stats.signals == 0)
    }

    @Test func usedUnitsGoOnlyToMinor4() throws {
        var core = connected(minor: 3)
        _ = ask(&core, now: ms(0))
        let permit = try #require(woken(core.received(grant("r1", lease: "l1"), now: ms(1))))
        _ = core.use(permit, cancelled: false, waitingSince: ms(0), now: ms(2))
        #expect(
            core.finished(permit, usedUnits: 120) == [.send(.leaseRelease(LeaseRelease(leaseId: "l1", finished: 1)))]
        )
    }

    @Test func learningProvidersLeaseOnlyCallsThatTeach() {
        let core = connected(budgets: [ProviderBudget(provider: "image")], minor: 4)
        #expect(core.route("image", teaches: false) == .open)
        #expect(core.route("image", teaches: true) == .leased)
    }
}

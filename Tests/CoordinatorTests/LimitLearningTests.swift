import Protocol
import Shared
import Testing

@testable import Coordinator

/// Learned limits (issue 16): what providers say becomes the budget, never above a configured one.
@Suite struct LimitLearnerTests {
    let t0 = ContinuousClock.now
    func at(_ ms: Int) -> ContinuousClock.Instant { t0 + .milliseconds(ms) }

    func limits(
        _ provider: String = "llm",
        requests: Int? = nil,
        remaining: Int? = nil,
        resetMs: Int? = nil,
        units: Int? = nil,
        resetUnitsMs: Int? = nil,
        maxConcurrent: Int? = nil
    ) -> ProviderSignal {
        ProviderSignal(
            provider: provider,
            kind: .limits,
            remaining: remaining,
            resetMs: resetMs,
            limitRequests: requests,
            limitUnits: units,
            resetUnitsMs: resetUnitsMs,
            maxConcurrent: maxConcurrent
        )
    }

    @Test func headersBecomeTheBudgetWithTheLongestResetAsTheWindow() {
        var learner = LimitLearner(provider: "llm", configured: nil)
        #expect(!learner.confirmed)
        #expect(learner.effective == ProviderBudget(provider: "llm"))
        // A stated limit before any reset: a minute, the meaning of OpenAI's headers.
        let r1 = learner.observe(limits(requests: 5))
        #expect(r1)
        #expect(learner.effective.requests == 5 && learner.effective.requestWindowMs == 60_000)
        #expect(learner.confirmed)
        // A reset is never longer than the window: the longest heard is the window.
        let r2 = learner.observe(limits(requests: 5, remaining: 4, resetMs: 400))
        #expect(r2)
        #expect(learner.effective.requestWindowMs == 400)
        let r3 = learner.observe(limits(requests: 5, remaining: 4, resetMs: 1000))
        #expect(r3)
        let r4 = learner.observe(limits(requests: 5, remaining: 2, resetMs: 700))
        #expect(!r4)
        #expect(
            learner.effective
                == ProviderBudget(provider: "llm", requests: 5, requestWindowMs: 1000)
        )
        let r5 = learner.observe(limits(requests: 5, units: 200_000, resetUnitsMs: 1000))
        #expect(r5)
        #expect(learner.effective.units == 200_000 && learner.effective.unitWindowMs == 1000)
        #expect(learner.learnedDescription == "5 per 1.0s, 200000 units per 1.0s")
    }

    @Test func elevenLabsConcurrencyHeaderSetsTheConcurrency() {
        var learner = LimitLearner(provider: "tts", configured: ProviderBudget(provider: "tts", maxConcurrent: 10))
        let r6 = learner.observe(limits("tts", maxConcurrent: 3))
        #expect(r6)
        #expect(learner.effective.maxConcurrent == 3)
        #expect(learner.confirmed)
        var capped = LimitLearner(provider: "tts", configured: ProviderBudget(provider: "tts", maxConcurrent: 2))
        let r7 = capped.observe(limits("tts", maxConcurrent: 5))
        #expect(!r7)
        #expect(capped.effective.maxConcurrent == 2)
    }

    @Test func aConfiguredBudgetCapsWhatIsLearned() {
        let configured = ProviderBudget(provider: "image", requests: 10, requestWindowMs: 1000, burst: 4)
        var learner = LimitLearner(provider: "image", configured: configured)
        // A provider stating more does not raise it (20 per second, then 1200 per minute: the same rate).
        let r8 = learner.observe(limits("image", requests: 20, resetMs: 1000))
        #expect(!r8)
        #expect(learner.effective == configured)
        var perMinute = LimitLearner(provider: "image", configured: configured)
        let r9 = perMinute.observe(limits("image", requests: 600, resetMs: 60_000))
        #expect(!r9)
        #expect(perMinute.effective == configured)
        // Stating less lowers it, and the configured burst goes with the configured rate.
        let r10 = learner.observe(limits("image", requests: 5, resetMs: 1000))
        #expect(r10)
        #expect(learner.effective == ProviderBudget(provider: "image", requests: 5, requestWindowMs: 1000))
    }

    @Test func aRateLimitedCallLowersTheLimitToWhatTheProviderAccepted() {
        var learner = LimitLearner(provider: "image", configured: ProviderBudget(provider: "image", requests: 20))
        #expect(learner.measureWindowMs == 1000)
        let r11 = learner.rateLimited(accepted: 10, now: at(900))
        #expect(r11 == .lowered)
        #expect(learner.effective.requests == 10 && learner.effective.requestWindowMs == 1000)
        #expect(learner.learnedDescription == "10 per 1.0s (from 429s)")
        // The rest of the same burst teaches nothing more, and asks for no decrease either.
        let r12 = learner.rateLimited(accepted: 10, now: at(905))
        #expect(r12 == .known)
        #expect(learner.effective.requests == 10)
        // A window later, a 429 the count does not explain is left to the ledger's decrease.
        let r13 = learner.rateLimited(accepted: 10, now: at(2000))
        #expect(r13 == .unexplained)
        // Fewer accepted: lower again.
        let r14 = learner.rateLimited(accepted: 4, now: at(2100))
        #expect(r14 == .lowered)
        #expect(learner.effective.requests == 4)
        // Nothing accepted, or a wait longer than the window counted over: the count explains nothing.
        let r15 = learner.rateLimited(accepted: 0, now: at(2200))
        #expect(r15 == .unexplained)
        let r16 = learner.rateLimited(accepted: 2, retryAfterMs: 2000, now: at(2300))
        #expect(r16 == .unexplained)
        #expect(learner.effective.requests == 4)
    }

    @Test func aLimitStatedInHeadersIsNotSecondGuessedByA429() {
        var learner = LimitLearner(provider: "llm", configured: nil)
        learner.observe(limits(requests: 5, resetMs: 1000))
        let r15 = learner.rateLimited(accepted: 3, now: at(0))
        #expect(r15 == .unexplained)
        #expect(learner.effective.requests == 5)
    }

    @Test func withoutAnyLimitA429MeasuresOverOneSecond() {
        var learner = LimitLearner(provider: "image", configured: nil)
        #expect(learner.measureWindowMs == 1000)
        let r16 = learner.rateLimited(accepted: 7, now: at(0))
        #expect(r16 == .lowered)
        #expect(learner.effective == ProviderBudget(provider: "image", requests: 7, requestWindowMs: 1000))
    }
}

/// The lease manager learning limits, with stepped time.
@Suite struct LeaseLearningTests {
    let t0 = ContinuousClock.now
    func at(_ ms: Int) -> ContinuousClock.Instant { t0 + .milliseconds(ms) }

    func manager(_ budgets: [ProviderBudget] = [], probe: Duration = .milliseconds(20)) -> LeaseManager {
        var settings = LeaseSettings()
        settings.budgets = budgets
        settings.learnLimits = true
        settings.probeInterval = probe
        var m = LeaseManager(settings: settings)
        for s in ["w1", "w2"] { m.workerJoined(session: s, recentCalls: [:], now: at(0)) }
        return m
    }

    func grants(_ actions: [LeaseManager.Action]) -> [LeaseGrant] {
        actions.compactMap {
            if case .send(_, .leaseGrant(let g)) = $0 { return g }
            return nil
        }
    }

    func ask(
        _ m: inout LeaseManager,
        _ id: String,
        provider: String = "image",
        units: Int = 0,
        at now: ContinuousClock.Instant
    ) -> [LeaseGrant] {
        grants(
            m.onMessage(
                .leaseRequest(LeaseRequest(requestId: id, provider: provider, units: units)),
                session: "w1",
                priority: 0,
                now: now
            )
        )
    }

    func signal(
        _ m: inout LeaseManager,
        _ signal: ProviderSignal,
        at now: ContinuousClock.Instant
    ) -> [LeaseManager.Action] {
        m.onMessage(.providerSignal(signal), session: "w1", priority: 0, now: now)
    }

    func start(_ m: inout LeaseManager, _ grant: LeaseGrant, at now: ContinuousClock.Instant) {
        _ = m.onMessage(.leaseStarted(LeaseStarted(leaseId: grant.leaseId)), session: "w1", priority: 0, now: now)
    }

    @Test func everyProviderIsLeasedAndAnnouncedWithoutLimitsUntilLearned() {
        let m = manager()
        #expect(m.isLeasing)
        #expect(m.announcedBudgets.map(\.provider) == ["image", "llm", "tts"])
        #expect(m.announcedBudgets.allSatisfy { $0 == ProviderBudget(provider: $0.provider) })
        var off = LeaseSettings()
        off.learnLimits = false
        #expect(!LeaseManager(settings: off).isLeasing)
    }

    @Test func anUnknownProviderIsPacedUntilItStatesItsLimits() {
        var m = manager()
        #expect(ask(&m, "a", provider: "llm", at: at(0)).count == 1)
        #expect(ask(&m, "b", provider: "llm", at: at(0)).isEmpty)
        #expect(ask(&m, "c", provider: "llm", at: at(5)).isEmpty)
        #expect(m.nextDeadline(after: at(5)) == at(20))
        #expect(grants(m.advance(now: at(20))).count == 1)
        // The first answer's headers: 5 per second. The pacing ends and the window decides.
        let actions = signal(
            &m,
            ProviderSignal(provider: "llm", kind: .limits, remaining: 4, resetMs: 1000, limitRequests: 5),
            at: at(21)
        )
        #expect(actions.contains(.notice(.learned(provider: "llm", budget: "llm: 5 per 1.0s"))))
        #expect(grants(actions).count == 1)
        #expect(ask(&m, "d", provider: "llm", at: at(21)).count == 1)
        #expect(ask(&m, "e", provider: "llm", at: at(21)).count == 1)
        #expect(ask(&m, "f", provider: "llm", at: at(21)).isEmpty)
        #expect(m.usage(now: at(21)).first { $0.provider == "llm" }?.learned == "5 per 1.0s")
        #expect(m.stats["llm"]?.learned == 1)
    }

    @Test func thePacingHalvesEverySecondAndThenStops() {
        var m = manager()
        var perSecond = [Int](repeating: 0, count: 6)
        // A call every 5 ms (200 a second) while nothing is known of the provider.
        for now in stride(from: 0, to: 6000, by: 5) {
            perSecond[now / 1000] += ask(&m, "r\(now)", provider: "tts", at: at(now)).count
            perSecond[now / 1000] += grants(m.advance(now: at(now))).count
        }
        // One per 20 ms, then 10, then 5: the pace doubles every second …
        #expect(Array(perSecond.prefix(3)) == [50, 100, 200])
        // … and below 1 ms it stops: the backlog is served and nothing waits.
        #expect(perSecond.reduce(0, +) == 1200)
        #expect(m.backlog("tts") == 0)
    }

    @Test func anOverstatedBudgetDropsToWhatTheProviderAcceptedWithoutADecrease() {
        var m = manager([ProviderBudget(provider: "image", requests: 20)], probe: .zero)
        var granted: [LeaseGrant] = []
        for i in 0..<12 { granted += ask(&m, "r\(i)", at: at(i)) }
        #expect(granted.count == 12)
        for g in granted { start(&m, g, at: at(20)) }
        // The provider takes 10 a second: two of the twelve come back 429. At the first, 11 may have been
        // accepted; at the second, 10.
        let first = signal(&m, ProviderSignal(provider: "image", kind: .rateLimited, retryAfterMs: 980), at: at(25))
        #expect(first.contains(.notice(.learned(provider: "image", budget: "image: 11 per 1.0s"))))
        let second = signal(&m, ProviderSignal(provider: "image", kind: .rateLimited, retryAfterMs: 975), at: at(26))
        #expect(second.contains(.notice(.learned(provider: "image", budget: "image: 10 per 1.0s"))))
        #expect(m.ledgers["image"]?.settings.budget.requests == 10)
        // What the provider said is the limit: no multiplicative decrease on top, only the pause.
        #expect(m.ledgers["image"]?.rateFactor == 1)
        #expect(m.stats["image"]?.decreases == 0)
        #expect(m.stats["image"]?.pauses == 1)
        #expect(m.stats["image"]?.learned == 2)
        let usage = m.usage(now: at(30)).first { $0.provider == "image" }
        #expect(usage?.configured == "20 per 1.0s")
        #expect(usage?.learned == "10 per 1.0s (from 429s)")
        #expect(usage?.limit == 10)
        // Paused, and the twelve started at 20 ms count until 1035 ms; then ten a second and no more.
        var later = 0
        for i in 0..<12 { later += ask(&m, "s\(i)", at: at(1000)).count }
        #expect(later == 0)
        #expect(grants(m.advance(now: at(1036))).count == 10)
    }

    @Test func aLearnedLimitNeverRaisesTheConfiguredOne() {
        var m = manager([ProviderBudget(provider: "llm", requests: 3)], probe: .zero)
        let actions = signal(
            &m,
            ProviderSignal(provider: "llm", kind: .limits, resetMs: 1000, limitRequests: 50),
            at: at(0)
        )
        #expect(!actions.contains { if case .notice(.learned) = $0 { true } else { false } })
        #expect(m.ledgers["llm"]?.settings.budget.requests == 3)
        #expect((0..<4).map { ask(&m, "r\($0)", provider: "llm", at: at(1)).count } == [1, 1, 1, 0])
    }

    @Test func theTokensAReplyReallyUsedReplaceTheEstimate() {
        var m = manager([ProviderBudget(provider: "llm", units: 1000, unitWindowMs: 60_000)], probe: .zero)
        let first = ask(&m, "a", provider: "llm", units: 800, at: at(0))
        #expect(first.count == 1)
        start(&m, first[0], at: at(1))
        // The estimate (800) leaves no room for another 800 …
        #expect(ask(&m, "b", provider: "llm", units: 800, at: at(2)).isEmpty)
        // … the reply said it used 150: the waiting call fits now.
        let after = m.onMessage(
            .leaseRelease(LeaseRelease(leaseId: first[0].leaseId, finished: 1, usedUnits: 150)),
            session: "w1",
            priority: 0,
            now: at(400)
        )
        #expect(grants(after).count == 1)
        #expect(m.ledgers["llm"]?.unitsInWindow(now: at(401)) == 950)
    }

    @Test func statedLimitsOnA429AreLearnedToo() {
        var m = manager(probe: .zero)
        _ = signal(
            &m,
            ProviderSignal(
                provider: "llm",
                kind: .rateLimited,
                retryAfterMs: 500,
                remaining: 0,
                resetMs: 1000,
                limitRequests: 5
            ),
            at: at(0)
        )
        #expect(m.ledgers["llm"]?.settings.budget.requests == 5)
        #expect(m.ledgers["llm"]?.settings.budget.requestWindowMs == 1000)
        #expect(m.stats["llm"]?.decreases == 0)
        #expect(m.stats["llm"]?.signals["rate_limited"] == 1)
    }
}

import Protocol
import Testing

@testable import Shared

/// The rate ledger driven with stepped time: grants, windows, slots, AIMD. No sleeps.
@Suite struct RateLedgerTests {
    let t0 = ContinuousClock.now
    func at(_ ms: Int) -> ContinuousClock.Instant { t0 + .milliseconds(ms) }

    func ledger(
        requests: Int? = 10,
        windowMs: Int = 1000,
        burst: Int? = nil,
        concurrent: Int? = nil,
        units: Int? = nil,
        margin: Duration = .milliseconds(15),
        slotTTL: Duration = .seconds(5)
    ) -> RateLedger {
        RateLedger(
            .init(
                budget: ProviderBudget(
                    provider: "image",
                    requests: requests,
                    requestWindowMs: windowMs,
                    burst: burst,
                    maxConcurrent: concurrent,
                    units: units,
                    unitWindowMs: 60_000
                ),
                margin: margin,
                slotTTL: slotTTL
            )
        )
    }

    /// Replays start times against a strict sliding window, as the mock provider counts them.
    static func maxInAnyWindow(_ starts: [ContinuousClock.Instant], window: Duration) -> Int {
        let sorted = starts.sorted()
        var best = 0
        var lo = 0
        for hi in sorted.indices {
            while sorted[hi] - sorted[lo] >= window { lo += 1 }
            best = max(best, hi - lo + 1)
        }
        return best
    }

    @Test func grantsTheWholeWindowAtOnceThenNothingUntilItSlides() {
        var l = ledger()
        var ids: [RateLedger.PermitID] = []
        for _ in 0..<10 {
            guard let id = l.grant(units: 0, useWithin: .seconds(2), now: at(0)) else { break }
            ids.append(id)
        }
        #expect(ids.count == 10)
        #expect(l.grant(units: 0, useWithin: .seconds(2), now: at(0)) == nil)
        #expect(l.check(units: 0, now: at(0)) == .requests)
        for id in ids { l.started(id, now: at(1)) }
        // Counted from the start report plus the margin: 1 ms + 1000 ms + 15 ms.
        #expect(l.grant(units: 0, useWithin: .seconds(2), now: at(1015)) == nil)
        #expect(l.nextChange(after: at(1015)) == at(1016))
        #expect(l.grant(units: 0, useWithin: .seconds(2), now: at(1016)) != nil)
    }

    @Test func anUnstartedPermitCountsUntilItsDeadline() {
        var l = ledger(requests: 1)
        let id = l.grant(units: 0, useWithin: .seconds(2), now: at(0))
        #expect(id != nil)
        // Never reported started: it might still be used at 2 s, so it counts until 3.015 s.
        #expect(l.grant(units: 0, useWithin: .seconds(2), now: at(2500)) == nil)
        #expect(l.grant(units: 0, useWithin: .seconds(2), now: at(3014)) == nil)
        #expect(l.grant(units: 0, useWithin: .seconds(2), now: at(3015)) != nil)
    }

    @Test func aReturnedPermitLeavesTheWindowAtOnce() {
        var l = ledger(requests: 1)
        let id = l.grant(units: 0, useWithin: .seconds(2), now: at(0))!
        l.returned(id, now: at(5))
        #expect(l.grant(units: 0, useWithin: .seconds(2), now: at(5)) != nil)
    }

    /// Random workload: permits granted to whoever asks whenever allowed, started after a random delay
    /// (some never), reported late; the starts as the provider sees them (within the margin of the
    /// report) never exceed the limit in any sliding window.
    @Test(arguments: [1, 2, 3, 4, 5])
    func noSlidingWindowEverSeesMoreThanTheLimit(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var l = ledger(requests: 7, burst: nil)
        var arrivals: [ContinuousClock.Instant] = []
        var pending: [(id: RateLedger.PermitID, at: Int, used: Bool)] = []
        for ms in stride(from: 0, to: 20_000, by: 3) {
            let now = at(ms)
            // Due calls start now (the provider sees them up to 14 ms after the coordinator hears it), or
            // their permit comes back unused (one in ten).
            pending.removeAll { p in
                guard p.at <= ms else { return false }
                if p.used {
                    l.started(p.id, now: now)
                    arrivals.append(now + .milliseconds(Int(rng.next() % 15)))
                } else {
                    l.returned(p.id, now: now)
                }
                return true
            }
            l.advance(to: now)
            for _ in 0..<Int(rng.next() % 4) {
                guard let id = l.grant(units: 0, useWithin: .seconds(2), now: now) else { break }
                pending.append((id, ms + Int(rng.next() % 60), rng.next() % 10 != 0))
            }
        }
        #expect(Self.maxInAnyWindow(arrivals, window: .seconds(1)) <= 7)
        #expect(arrivals.count > 100)
    }

    @Test func burstSpreadsAPerMinuteLimit() {
        // 60 per minute with burst 5: at most 5 in any 5 s.
        var l = ledger(requests: 60, windowMs: 60_000, burst: 5, margin: .zero)
        var granted: [ContinuousClock.Instant] = []
        for ms in stride(from: 0, to: 60_000, by: 100) {
            while let id = l.grant(units: 0, useWithin: .seconds(1), now: at(ms)) {
                l.started(id, now: at(ms))
                granted.append(at(ms))
            }
        }
        #expect(Self.maxInAnyWindow(granted, window: .seconds(5)) <= 5)
        #expect(Self.maxInAnyWindow(granted, window: .seconds(60)) <= 60)
        #expect(granted.count >= 55)
    }

    @Test func unitsAreAWeightedSecondDimension() {
        var l = ledger(requests: nil, units: 1000)
        let a = l.grant(units: 600, useWithin: .seconds(1), now: at(0))
        #expect(a != nil)
        #expect(l.check(units: 500, now: at(1)) == .units)
        #expect(l.grant(units: 400, useWithin: .seconds(1), now: at(1)) != nil)
        // A call dearer than the whole budget may start alone once the window is empty.
        var big = ledger(requests: nil, units: 100)
        #expect(big.grant(units: 500, useWithin: .seconds(1), now: at(0)) != nil)
        #expect(big.grant(units: 1, useWithin: .seconds(1), now: at(1)) == nil)
    }

    @Test func concurrencySlotsAreHeldUntilFinished() {
        var l = ledger(requests: nil, concurrent: 2)
        let a = l.grant(units: 0, useWithin: .seconds(1), now: at(0))!
        let b = l.grant(units: 0, useWithin: .seconds(1), now: at(0))!
        l.started(a, now: at(1))
        l.started(b, now: at(1))
        #expect(l.check(units: 0, now: at(2)) == .concurrency)
        l.finished(a, now: at(500))
        #expect(l.grant(units: 0, useWithin: .seconds(1), now: at(500)) != nil)
        #expect(l.inFlight == 2)
    }

    @Test func aDeadWorkersSlotComesBackOnlyAfterTheTTL() {
        var l = ledger(requests: nil, concurrent: 1, slotTTL: .seconds(5))
        let a = l.grant(units: 0, useWithin: .seconds(1), now: at(0))!
        l.started(a, now: at(10))
        // The worker was last heard at 3 s and declared dead at 6 s.
        l.abandoned(a, lastVouched: at(3000), now: at(6000))
        #expect(l.grant(units: 0, useWithin: .seconds(1), now: at(7999)) == nil)
        #expect(l.nextChange(after: at(7999)) == at(8000))
        #expect(l.grant(units: 0, useWithin: .seconds(1), now: at(8000)) != nil)
        #expect(l.stats.slotsReclaimed == 1)
    }

    @Test func aPermitNeverReportedStartedFreesItsSlotEventually() {
        var l = ledger(requests: nil, concurrent: 1, slotTTL: .seconds(5))
        _ = l.grant(units: 0, useWithin: .seconds(1), now: at(0))!
        #expect(l.grant(units: 0, useWithin: .seconds(1), now: at(5999)) == nil)
        #expect(l.grant(units: 0, useWithin: .seconds(1), now: at(6000)) != nil)
    }

    @Test func aimdDecreasesOncePerWindowAndRecoversOverCleanWindows() {
        var l = ledger(requests: 10)
        #expect(l.effectiveRequests == 10)
        let r1 = l.signal(.rateLimited, retryAfter: nil, reset: nil, now: at(0))
        #expect(r1 == .decreased(factor: 0.7, concurrency: nil))
        #expect(l.effectiveRequests == 7)
        // A burst of 429s in the same window is one signal.
        #expect(l.signal(.rateLimited, retryAfter: nil, reset: nil, now: at(300)) == .none)
        #expect(l.effectiveRequests == 7)
        // Clean windows add 5% of the configured rate each, back up to 100%.
        l.advance(to: at(1000))
        #expect(l.effectiveRequests == 7)  // 0.75 → 7
        l.advance(to: at(3000))
        #expect(l.effectiveRequests == 8)  // 0.85
        l.advance(to: at(6000))
        #expect(l.effectiveRequests == 10)
        #expect(l.rateFactor == 1)
    }

    @Test func retryAfterPausesEveryGrant() {
        var l = ledger(requests: 100)
        let reaction = l.signal(.rateLimited, retryAfter: .seconds(2), reset: nil, now: at(0))
        #expect(reaction == .decreasedAndPaused(factor: 0.7, concurrency: nil, until: at(2000)))
        #expect(l.check(units: 0, now: at(1999)) == .paused(until: at(2000)))
        #expect(l.nextChange(after: at(10)) == at(1000) || l.nextChange(after: at(10)) == at(2000))
        #expect(l.grant(units: 0, useWithin: .seconds(1), now: at(2000)) != nil)
    }

    @Test func anExhaustedWindowPausesWithoutLoweringTheRate() {
        var l = ledger(requests: 10)
        #expect(l.signal(.exhausted, retryAfter: nil, reset: .milliseconds(300), now: at(0)) == .paused(until: at(300)))
        #expect(l.rateFactor == 1)
    }

    @Test func concurrency429LearnsALowerCeiling() {
        var l = ledger(requests: nil, concurrent: 10)
        for _ in 0..<10 { _ = l.grant(units: 0, useWithin: .seconds(1), now: at(0)) }
        #expect(
            l.signal(.concurrencyLimited, retryAfter: nil, reset: nil, now: at(1))
                == .decreased(factor: 1, concurrency: 7)
        )
        #expect(l.effectiveConcurrency == 7)
        l.advance(to: at(4001))
        #expect(l.effectiveConcurrency == nil || l.effectiveConcurrency! >= 9)
    }

    @Test func billingOpensTheCircuitForGood() {
        var l = ledger()
        #expect(
            l.signal(.quotaExceeded, retryAfter: nil, reset: nil, detail: "insufficient_quota", now: at(0))
                == .circuitOpened
        )
        #expect(l.check(units: 0, now: at(100_000)) == .circuitOpen)
        #expect(l.nextChange(after: at(0)) == nil)
        #expect(l.circuitReason == "insufficient_quota")
    }

    @Test func seededCallsFromARestartCountInTheWindow() {
        var l = ledger(requests: 3, margin: .zero)
        l.seed(startedAt: [at(0), at(100), at(200)], now: at(500))
        #expect(l.grant(units: 0, useWithin: .seconds(1), now: at(500)) == nil)
        #expect(l.grant(units: 0, useWithin: .seconds(1), now: at(1001)) != nil)
    }
}

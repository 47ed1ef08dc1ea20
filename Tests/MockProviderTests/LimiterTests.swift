import Testing

@testable import MockProvider

@Suite struct SlidingWindowLimiterTests {
    @Test func acceptsExactlyTheLimitInAnyWindow() {
        var limiter = SlidingWindowLimiter(limit: 3, window: .seconds(10))
        #expect(limiter.acquire(now: .seconds(0)) == .accepted)
        #expect(limiter.acquire(now: .seconds(1)) == .accepted)
        #expect(limiter.acquire(now: .seconds(2)) == .accepted)
        // The oldest (t=0) leaves the window at t=10.
        #expect(limiter.acquire(now: .seconds(2)) == .rejected(retryAfter: .seconds(8)))
        #expect(limiter.acquire(now: .milliseconds(9_999)) == .rejected(retryAfter: .milliseconds(1)))
        #expect(limiter.acquire(now: .seconds(10)) == .accepted)
        #expect(limiter.acquire(now: .seconds(10)) == .rejected(retryAfter: .seconds(1)))
        #expect(limiter.acquire(now: .seconds(11)) == .accepted)
    }

    @Test func neverMoreThanTheLimitInAnySteppedWindow() {
        let limit = 5
        let window = Duration.milliseconds(1_000)
        var limiter = SlidingWindowLimiter(limit: limit, window: window)
        var accepted: [Duration] = []
        // One attempt every 37 ms for 20 s.
        var now = Duration.zero
        while now < .seconds(20) {
            if limiter.acquire(now: now) == .accepted {
                accepted.append(now)
            }
            now += .milliseconds(37)
        }
        var busiest = 0
        for end in accepted {
            busiest = max(busiest, accepted.filter { $0 > end - window && $0 <= end }.count)
        }
        #expect(busiest == limit)
        // Saturated: close to limit per window over 20 windows.
        #expect(accepted.count >= 5 * 19)
    }

    @Test func retryAfterIsExactlyWhenTheNextRequestIsAccepted() {
        var limiter = SlidingWindowLimiter(limit: 2, window: .seconds(60))
        _ = limiter.acquire(now: .milliseconds(100))
        _ = limiter.acquire(now: .milliseconds(200))
        guard case .rejected(let retryAfter) = limiter.acquire(now: .milliseconds(1_000)) else {
            Issue.record("expected a rejection")
            return
        }
        #expect(retryAfter == .milliseconds(59_100))
        #expect(limiter.acquire(now: .milliseconds(1_000) + retryAfter - .milliseconds(1)) != .accepted)
        #expect(limiter.acquire(now: .milliseconds(1_000) + retryAfter) == .accepted)
    }

    @Test func remainingAndResetReportTheWindow() {
        var limiter = SlidingWindowLimiter(limit: 4, window: .seconds(60))
        #expect(limiter.remaining(now: .zero) == 4)
        #expect(limiter.timeUntilReset(now: .zero) == .zero)
        _ = limiter.acquire(now: .seconds(1))
        _ = limiter.acquire(now: .seconds(5))
        #expect(limiter.remaining(now: .seconds(6)) == 2)
        // Fully refilled when the newest (t=5) leaves: at t=65.
        #expect(limiter.timeUntilReset(now: .seconds(6)) == .seconds(59))
        #expect(limiter.remaining(now: .seconds(61)) == 3)
        #expect(limiter.remaining(now: .seconds(65)) == 4)
    }

    @Test func timeGoingBackwardsIsTreatedAsTheLatest() {
        var limiter = SlidingWindowLimiter(limit: 1, window: .seconds(1))
        #expect(limiter.acquire(now: .seconds(5)) == .accepted)
        #expect(limiter.acquire(now: .seconds(4)) == .rejected(retryAfter: .seconds(1)))
    }
}

@Suite struct ConcurrencyAndWindowTests {
    @Test func concurrencyLimiterCountsSlots() {
        var limiter = ConcurrencyLimiter(limit: 2)
        #expect(limiter.acquire() == true)
        #expect(limiter.acquire() == true)
        #expect(limiter.acquire() == false)
        #expect(limiter.inFlight == 2)
        limiter.release()
        #expect(limiter.acquire() == true)
        var unlimited = ConcurrencyLimiter(limit: nil)
        for _ in 0..<1_000 {
            #expect(unlimited.acquire() == true)
        }
    }

    @Test func busiestWindowIsExact() {
        var busiest = BusiestWindow(window: .seconds(1))
        // 3 events in (0, 1], then 4 in (2.0, 2.9], then 2 spread out.
        for ms in [100, 500, 1_000, 2_000, 2_100, 2_500, 2_900, 5_000, 7_000] {
            busiest.record(now: .milliseconds(ms))
        }
        // (1.9, 2.9] holds 2.0, 2.1, 2.5, 2.9.
        #expect(busiest.maximum == 4)
        // The window is half-open: 1.0 and 2.0 are never together with 0.5 … just check the boundary.
        var boundary = BusiestWindow(window: .seconds(1))
        boundary.record(now: .seconds(1))
        boundary.record(now: .seconds(2))
        #expect(boundary.maximum == 1)
    }

    @Test func slidingSumForgetsOldEvents() {
        var sum = SlidingSum(window: .seconds(10))
        sum.add(100, now: .seconds(0))
        sum.add(50, now: .seconds(5))
        #expect(sum.sum(now: .seconds(6)) == 150)
        #expect(sum.timeUntilEmpty(now: .seconds(6)) == .seconds(9))
        #expect(sum.sum(now: .seconds(10)) == 50)
        #expect(sum.sum(now: .seconds(15)) == 0)
    }

    @Test func ringBufferWrapsAndGrows() {
        var ring = RingBuffer<Int>()
        for value in 0..<10 { ring.append(value) }
        for value in 0..<7 { #expect(ring.removeFirst() == value) }
        for value in 10..<40 { ring.append(value) }
        #expect(ring.count == 33)
        #expect(ring.first == 7)
        #expect(ring.last == 39)
        var drained: [Int] = []
        while !ring.isEmpty { drained.append(ring.removeFirst()) }
        #expect(drained == Array(7..<40))
    }

    @Test(arguments: [
        (Duration.zero, "0s"), (.milliseconds(12), "12ms"), (.seconds(1), "1s"), (.milliseconds(1_500), "1.5s"),
        (.seconds(360), "6m0s"), (.milliseconds(90_250), "1m30.25s"), (.seconds(3_723), "1h2m3s"),
        (.microseconds(1), "1ms"), (.milliseconds(59_999), "59.999s"),
    ])
    func goStyleDurations(duration: Duration, expected: String) {
        #expect(duration.goStyle == expected)
    }

    @Test func roundingUp() {
        #expect(Duration.milliseconds(1_001).secondsRoundedUp == 2)
        #expect(Duration.seconds(1).secondsRoundedUp == 1)
        #expect(Duration.microseconds(1_500).millisecondsRoundedUp == 2)
        #expect(Duration.milliseconds(3).millisecondsRoundedUp == 3)
    }
}

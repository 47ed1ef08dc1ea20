import Protocol
import Testing

@testable import Coordinator

/// `--max-spend` leased to attempts (issue 16 part 2): the ledger alone, then through the dispatcher.
@Suite struct SpendCapTests {
    private let a = JobRef(episodeId: "a", attempt: 1)
    private let b = JobRef(episodeId: "b", attempt: 1)
    private let c = JobRef(episodeId: "c", attempt: 1)

    @Test func withNothingKnownOneAttemptRunsAloneWithAllThatIsLeft() {
        var cap = SpendCap(capMicros: 1_000_000)
        #expect(cap.allowanceForNewAttempt() == 1_000_000)
        cap.started(a, allowance: 1_000_000)
        #expect(cap.allowanceForNewAttempt() == nil, "a second attempt waits for the first one's cost")
        #expect(!cap.isReached)
        cap.finished(a, costMicros: 200_000, succeeded: true)
        #expect(cap.expectedMicros == 200_000)
        #expect(cap.spentMicros == 200_000)
        // 1.5 × the expected cost each while 800,000 are free.
        #expect(cap.allowanceForNewAttempt() == 300_000)
    }

    @Test func allowancesAndSpendNeverPassTheCap() {
        var cap = SpendCap(capMicros: 1_000_000, expectedEpisodeMicros: 250_000)
        var started: [JobRef] = []
        for ref in [a, b, c, JobRef(episodeId: "d", attempt: 1)] {
            guard let allowance = cap.allowanceForNewAttempt() else { break }
            cap.started(ref, allowance: allowance)
            started.append(ref)
            #expect(cap.spentMicros + cap.reservedMicros <= cap.capMicros)
        }
        // 375,000 + 375,000 + 250,000 (what was left) = the cap; the fourth waits.
        #expect(started == [a, b, c])
        #expect(cap.reservedMicros == 1_000_000)
        cap.finished(a, costMicros: 260_000, succeeded: true)
        #expect(cap.expectedMicros == 260_000, "the most an attempt cost")
        #expect(cap.freeMicros == 115_000)
        #expect(cap.allowanceForNewAttempt() == nil, "115,000 left cannot cover an expected 260,000")
        cap.finished(b, costMicros: 240_000, succeeded: true)
        cap.finished(c, costMicros: 250_000, succeeded: true)
        #expect(cap.spentMicros == 750_000)
        #expect(cap.allowanceForNewAttempt() == nil)
        #expect(cap.isReached)
    }

    @Test func aLostAttemptCountsItsWholeAllowanceUntilItsResultSaysOtherwise() {
        var cap = SpendCap(capMicros: 1_000_000, expectedEpisodeMicros: 100_000)
        cap.started(a, allowance: 150_000)
        cap.lost(a)
        #expect(cap.spentMicros == 150_000 && cap.reservedMicros == 0)
        cap.finished(a, costMicros: 90_000, succeeded: false)
        #expect(cap.spentMicros == 90_000)
        // A RESULT counted already (cost 0 the second time) changes nothing.
        cap.finished(a, costMicros: 0, succeeded: false)
        #expect(cap.spentMicros == 90_000)
    }

    // MARK: - Through the dispatcher

    private func dispatcher(_ n: Int, cap: Int, expected: Int? = nil) -> Dispatcher {
        var settings = DispatchSettings()
        settings.spendCapMicros = cap
        settings.expectedEpisodeCostMicros = expected
        let counter = Counter()
        return Dispatcher(
            batchId: "b",
            specs: DispatcherTests().specs(n),
            settings: settings,
            makeSession: { counter.next() }
        )
    }

    private func result(_ job: Job, session: String, cost: Int, spendCapped: Bool = false) -> Envelope {
        Envelope(
            session: session,
            .result(
                EpisodeResult(
                    episodeId: job.episodeId,
                    attempt: job.attempt,
                    status: spendCapped ? .failed : .succeeded,
                    error: spendCapped ? "script: spend cap: this attempt's allowance cannot cover it" : nil,
                    durationMs: 10,
                    apiCalls: 1,
                    trace: [TraceEvent(seq: 1, event: .callEnd, name: "llm:script", costMicros: cost)],
                    spendCapped: spendCapped
                )
            )
        )
    }

    @Test func jobsCarryAllowancesAndTheBatchEndsCappedWhenNothingMoreFits() {
        let h = DispatcherTests()
        var d = dispatcher(10, cap: 1_000_000)
        let (s, joined) = h.join(&d, [1], "w1", episodes: 4, at: h.t0)
        // Nothing known: one job, with the whole cap.
        var jobs = h.jobs(joined)
        #expect(jobs.map(\.spendAllowanceMicros) == [1_000_000])
        var now = h.t0
        var actions = d.onMessage(from: [1], result(jobs[0], session: s, cost: 300_000), now: now)
        // 700,000 left, 300,000 expected: one allowance of 450,000 (250,000 would be left: not enough).
        jobs = h.jobs(actions)
        #expect(jobs.map(\.spendAllowanceMicros) == [450_000])
        now += .seconds(1)
        actions = d.onMessage(from: [1], result(jobs[0], session: s, cost: 290_000), now: now)
        // 410,000 left: all of it to the next attempt.
        jobs = h.jobs(actions)
        #expect(jobs.map(\.spendAllowanceMicros) == [410_000])
        now += .seconds(1)
        actions = d.onMessage(from: [1], result(jobs[0], session: s, cost: 290_000), now: now)
        #expect(h.jobs(actions).isEmpty, "120,000 left never covers another episode")
        #expect(d.isComplete)
        #expect(d.succeededCount == 3)
        #expect(d.episodes.counts.capped == 7)
        #expect(d.spend.totalMicros == 880_000)
        #expect(d.episode("episode_10")?.errors.last?.contains("the spend cap was reached") == true)
        #expect(actions.contains { if case .notice(.spendCapReached(7, _)) = $0 { true } else { false } })
    }

    /// `serve --max-spend-per-day`: each batch is capped at what is left of the day's when it starts.
    @Test func aDailyCapLeavesEachBatchWhatEarlierBatchesOfTheDayDidNotSpend() {
        let h = DispatcherTests()
        var settings = DispatchSettings()
        settings.dailySpendCapMicros = 1_000_000
        let counter = Counter()
        var d = Dispatcher(batchId: "", specs: h.specs(0), settings: settings, makeSession: { counter.next() })
        let (s, _) = h.join(&d, [1], "w1", episodes: 1, at: h.t0)

        d.spentEarlierToday = 700_000
        var actions = d.load(batchId: "second", specs: h.specs(3), now: h.t0)
        // Nothing known yet: one attempt with all that is left of the day.
        let jobs = h.jobs(actions)
        #expect(jobs.map(\.spendAllowanceMicros) == [300_000])
        #expect(d.spendCap?.capMicros == 300_000)
        #expect(d.spendCap?.description.contains("daily $1.00") == true, "\(d.spendCap?.description ?? "")")
        actions = d.onMessage(from: [1], result(jobs[0], session: s, cost: 200_000), now: h.t0 + .seconds(1))
        #expect(h.jobs(actions).isEmpty, "100,000 left of the day never covers another 200,000 episode")
        #expect(d.episodes.counts.capped == 2)
        #expect(d.episode("episode_3")?.errors.last?.contains("what is left of the daily $1.00") == true)

        // The day is spent: the next batch starts nothing and ends capped at once.
        d.spentEarlierToday = 1_000_000
        actions = d.load(batchId: "third", specs: h.specs(2), now: h.t0 + .seconds(2))
        #expect(h.jobs(actions).isEmpty)
        #expect(d.isComplete && d.episodes.counts.capped == 2)
    }

    @Test func aBatchCapBelowWhatIsLeftOfTheDayWins() {
        let h = DispatcherTests()
        var settings = DispatchSettings()
        settings.dailySpendCapMicros = 1_000_000
        settings.spendCapMicros = 250_000
        let counter = Counter()
        var d = Dispatcher(batchId: "", specs: h.specs(0), settings: settings, makeSession: { counter.next() })
        _ = h.join(&d, [1], "w1", episodes: 1, at: h.t0)
        d.spentEarlierToday = 100_000
        let actions = d.load(batchId: "b", specs: h.specs(2), now: h.t0)
        #expect(h.jobs(actions).map(\.spendAllowanceMicros) == [250_000])
        #expect(d.spendCap?.origin == nil)
    }

    @Test func anAttemptStoppedByItsAllowanceIsNotRetried() {
        let h = DispatcherTests()
        var d = dispatcher(2, cap: 1_000_000, expected: 100_000)
        let (s, joined) = h.join(&d, [1], "w1", episodes: 1, at: h.t0)
        let job = h.jobs(joined)[0]
        let actions = d.onMessage(from: [1], result(job, session: s, cost: 150_000, spendCapped: true), now: h.t0)
        #expect(d.episode("episode_1")?.status == .capped)
        #expect(d.episode("episode_1")?.attempts == 1)
        // The other episode still gets its turn.
        #expect(h.jobs(actions).map(\.episodeId) == ["episode_2"])
    }

    @Test func aWorkerThatCannotHonourAllowancesIsRefused() {
        let h = DispatcherTests()
        var d = dispatcher(2, cap: 1_000_000)
        var hello = h.hello("old")
        hello.protocolMinor = 3
        let actions = d.onMessage(from: [9], Envelope(.hello(hello)), now: h.t0)
        let refused = actions.contains {
            if case .send(_, let env) = $0, case .disconnect(let d) = env.message {
                return d.reason == .protocolError && d.detail.contains("--max-spend")
            }
            return false
        }
        #expect(refused)
        #expect(h.jobs(actions).isEmpty)
    }

    @Test func aResumedBatchStartsCappedEpisodesAgainWithWhatWasSpentCounted() {
        var settings = DispatchSettings()
        settings.spendCapMicros = 1_000_000
        settings.expectedEpisodeCostMicros = 100_000
        let specs = DispatcherTests().specs(2)
        var done = EpisodeRecord(index: 0, id: "episode_1", specs: specs)
        done.status = .succeeded
        done.costMicros = 950_000
        var capped = EpisodeRecord(index: 1, id: "episode_2", specs: specs)
        capped.status = .capped
        let counter = Counter()
        let d = Dispatcher(
            batchId: "b",
            restored: [done, capped],
            counters: DispatchCounters(),
            settings: settings,
            holdUntil: ContinuousClock.now,
            makeSession: { counter.next() }
        )
        #expect(d.episode("episode_2")?.status == .pending)
        #expect(d.spendCap?.spentMicros == 950_000)
        #expect(d.spendCap?.allowanceForNewAttempt() == nil, "50,000 left for an expected 100,000")
    }
}

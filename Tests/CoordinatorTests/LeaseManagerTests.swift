import Protocol
import Shared
import Testing

@testable import Coordinator

/// The lease manager driven with stepped time: several worker sessions asking at once.
@Suite struct LeaseManagerTests {
    let t0 = ContinuousClock.now
    func at(_ ms: Int) -> ContinuousClock.Instant { t0 + .milliseconds(ms) }

    func manager(_ budgets: [ProviderBudget], admission: Double = 2) -> LeaseManager {
        var settings = LeaseSettings()
        settings.budgets = budgets
        settings.admissionWindows = admission
        var m = LeaseManager(settings: settings)
        for s in ["w1", "w2", "w3", "w4"] { m.workerJoined(session: s, recentCalls: [:], now: at(0)) }
        return m
    }

    func grants(_ actions: [LeaseManager.Action]) -> [(String, LeaseGrant)] {
        actions.compactMap {
            if case .send(let session, .leaseGrant(let g)) = $0 { return (session, g) }
            return nil
        }
    }

    func request(
        _ m: inout LeaseManager,
        _ session: String,
        _ id: String,
        provider: String = "image",
        priority: Int = 0,
        at now: ContinuousClock.Instant
    ) -> [LeaseManager.Action] {
        m.onMessage(
            .leaseRequest(LeaseRequest(requestId: id, provider: provider)),
            session: session,
            priority: priority,
            now: now
        )
    }

    @Test func grantsUpToTheBudgetThenQueuesAndGrantsWhenTheWindowSlides() {
        var m = manager([ProviderBudget(provider: "image", requests: 2)])
        #expect(grants(request(&m, "w1", "a", at: at(0))).count == 1)
        #expect(grants(request(&m, "w2", "b", at: at(0))).count == 1)
        #expect(grants(request(&m, "w3", "c", at: at(0))).isEmpty)
        #expect(m.backlog("image") == 1)
        let leaseA = "l1"
        _ = m.onMessage(.leaseStarted(LeaseStarted(leaseId: leaseA)), session: "w1", priority: 0, now: at(2))
        // a counts from 2 ms; b is not reported started, so it counts until its 2 s deadline.
        #expect(m.nextDeadline(after: at(2)) == at(1017))
        let later = grants(m.advance(now: at(1017)))
        #expect(later.count == 1 && later[0].0 == "w3")
        #expect(later[0].1.queuedMs == 1017)
        #expect(m.backlog("image") == 0)
    }

    @Test func earlierEpisodesAreServedFirstThenArrivalOrder() {
        var m = manager([ProviderBudget(provider: "image", requests: 1)])
        _ = request(&m, "w1", "first", priority: 5, at: at(0))  // takes the only permit
        _ = request(&m, "w2", "late-episode", priority: 9, at: at(1))
        _ = request(&m, "w3", "early-episode", priority: 2, at: at(2))
        _ = request(&m, "w4", "early-episode-2", priority: 2, at: at(3))
        _ = m.onMessage(.leaseStarted(LeaseStarted(leaseId: "l1")), session: "w1", priority: 0, now: at(4))
        var order: [String] = []
        for now in 5...4000 {
            for (session, grant) in grants(m.advance(now: at(now))) {
                order.append(grant.requestId)
                _ = m.onMessage(
                    .leaseStarted(LeaseStarted(leaseId: grant.leaseId)),
                    session: session,
                    priority: 0,
                    now: at(now)
                )
            }
        }
        #expect(order == ["early-episode", "early-episode-2", "late-episode"])
    }

    /// Four workers asking all the time, with random start delays and report lags: the starts never
    /// exceed the budget in any window, and every worker gets its share.
    @Test func fourWorkersNeverOvershootAndNoneStarves() {
        var m = manager([ProviderBudget(provider: "image", requests: 10)], admission: 0)
        var rng = SplitMix64(seed: 42)
        var starts: [ContinuousClock.Instant] = []
        var startsBy: [String: Int] = [:]
        var waiting: [(session: String, lease: String, at: Int)] = []
        var next = 0
        let sessions = ["w1", "w2", "w3", "w4"]
        for ms in stride(from: 0, to: 20_000, by: 2) {
            let now = at(ms)
            var actions = m.advance(now: now)
            // Each worker keeps about 5 calls asking.
            for s in sessions where rng.next() % 4 == 0 {
                next += 1
                actions += request(&m, s, "r\(next)", priority: next, at: now)
            }
            for (session, grant) in grants(actions) {
                waiting.append((session, grant.leaseId, ms + Int(rng.next() % 8)))
            }
            waiting.removeAll { w in
                guard w.at <= ms else { return false }
                _ = m.onMessage(
                    .leaseStarted(LeaseStarted(leaseId: w.lease)),
                    session: w.session,
                    priority: 0,
                    now: now
                )
                starts.append(now + .milliseconds(Int(rng.next() % 14)))
                startsBy[w.session, default: 0] += 1
                _ = m.onMessage(
                    .leaseRelease(LeaseRelease(leaseId: w.lease, finished: 1)),
                    session: w.session,
                    priority: 0,
                    now: now
                )
                return true
            }
        }
        #expect(RateLedgerTestsC.maxInAnyWindow(starts, window: .seconds(1)) <= 10)
        // Full use: about 10 per second for 20 s (less the margin each window).
        #expect(starts.count >= 180)
        for s in sessions { #expect((startsBy[s] ?? 0) >= 30, "\(s) got \(startsBy[s] ?? 0)") }
    }

    @Test func aDeadWorkersSlotsComeBackOnlyAfterTheTTL() {
        var m = manager([ProviderBudget(provider: "tts", maxConcurrent: 2)])
        #expect(grants(request(&m, "w1", "a", provider: "tts", at: at(0))).count == 1)
        #expect(grants(request(&m, "w1", "b", provider: "tts", at: at(0))).count == 1)
        _ = m.onMessage(.leaseStarted(LeaseStarted(leaseId: "l1")), session: "w1", priority: 0, now: at(1))
        _ = m.onMessage(.leaseStarted(LeaseStarted(leaseId: "l2")), session: "w1", priority: 0, now: at(1))
        #expect(grants(request(&m, "w2", "c", provider: "tts", at: at(10))).isEmpty)
        // w1 was last heard at 1 s and is declared dead at 4 s: its two calls may still run.
        #expect(grants(m.workerLeft(session: "w1", lastHeard: at(1000), now: at(4000))).isEmpty)
        #expect(grants(m.advance(now: at(5999))).isEmpty)
        #expect(m.nextDeadline(after: at(5999)) == at(6000))
        let back = grants(m.advance(now: at(6000)))
        #expect(back.count == 1 && back[0].0 == "w2")
    }

    @Test func aRetryAfterPausesTheProviderForEveryWorker() {
        var m = manager([ProviderBudget(provider: "image", requests: 100)])
        let actions = m.onMessage(
            .providerSignal(ProviderSignal(provider: "image", kind: .rateLimited, retryAfterMs: 2000)),
            session: "w1",
            priority: 0,
            now: at(0)
        )
        let pauses = actions.compactMap { a -> (String, ProviderPause)? in
            if case .send(let s, .providerPause(let p)) = a { return (s, p) }
            return nil
        }
        #expect(pauses.map(\.0).sorted() == ["w1", "w2", "w3", "w4"])
        #expect(pauses.allSatisfy { $0.1.pauseMs == 2000 && !$0.1.circuitOpen })
        #expect(grants(request(&m, "w2", "x", at: at(100))).isEmpty)
        #expect(grants(m.advance(now: at(1999))).isEmpty)
        #expect(grants(m.advance(now: at(2000))).count == 1)
        #expect(m.stats["image"]?.pauses == 1)
        #expect(m.stats["image"]?.decreases == 1)
    }

    @Test func billingRefusesEverythingWaitingAndEverythingAfter() {
        var m = manager([ProviderBudget(provider: "image", requests: 1)])
        _ = request(&m, "w1", "a", at: at(0))
        _ = request(&m, "w2", "b", at: at(0))  // waits
        let actions = m.onMessage(
            .providerSignal(ProviderSignal(provider: "image", kind: .quotaExceeded, detail: "insufficient_quota")),
            session: "w1",
            priority: 0,
            now: at(1)
        )
        let refused = grants(actions)
        #expect(refused.count == 1 && refused[0].0 == "w2" && refused[0].1.refused == .circuitOpen)
        #expect(
            actions.contains(
                .notice(.circuitOpened(provider: "image", signal: .quotaExceeded, detail: "insufficient_quota"))
            )
        )
        let later = grants(request(&m, "w3", "c", at: at(50_000)))
        #expect(later.count == 1 && later[0].1.refused == .circuitOpen)
    }

    @Test func unknownProvidersAndBadLeaseMessagesAreRefusedAndCounted() {
        var m = manager([ProviderBudget(provider: "image", requests: 1)])
        let unknown = request(&m, "w1", "a", provider: "llm", at: at(0))
        #expect(grants(unknown).first?.1.refused == .unknownProvider)
        let bogus = m.onMessage(.leaseStarted(LeaseStarted(leaseId: "l99")), session: "w1", priority: 0, now: at(0))
        #expect(bogus == [.notice(.rejected(reason: "unknown_lease", detail: "LEASE_STARTED for l99"))])
        _ = request(&m, "w1", "b", at: at(0))
        // Another session cannot start w1's lease.
        let foreign = m.onMessage(.leaseStarted(LeaseStarted(leaseId: "l1")), session: "w2", priority: 0, now: at(1))
        #expect(foreign.count == 1)
        let over = m.onMessage(
            .leaseStarted(LeaseStarted(leaseId: "l1", calls: 3)),
            session: "w1",
            priority: 0,
            now: at(1)
        )
        #expect(over.contains { if case .notice(.rejected("lease_overdrawn", _)) = $0 { true } else { false } })
    }

    @Test func admissionClosesWhileTheBacklogExceedsTwoWindows() {
        var m = manager([ProviderBudget(provider: "image", requests: 2)])
        #expect(m.admissionOpen)
        for i in 0..<6 { _ = request(&m, "w1", "r\(i)", at: at(0)) }
        // 2 granted, 4 waiting = 2 windows' worth: still open; one more closes it.
        #expect(m.backlog("image") == 4)
        #expect(m.admissionOpen)
        _ = request(&m, "w1", "r7", at: at(0))
        #expect(!m.admissionOpen)
    }

    @Test func callsAWorkerReportsInItsHelloCountAfterACoordinatorRestart() {
        var settings = LeaseSettings()
        settings.budgets = [ProviderBudget(provider: "image", requests: 3)]
        settings.margin = .zero
        var m = LeaseManager(settings: settings)
        // The worker started three image calls 100, 300 and 900 ms before this coordinator heard of it.
        m.workerJoined(session: "w1", recentCalls: ["image": [100, 300, 900]], now: at(1000))
        #expect(grants(request(&m, "w1", "a", at: at(1000))).isEmpty)
        // The oldest (at 100 ms) leaves the window at 1100 ms.
        #expect(grants(m.advance(now: at(1099))).isEmpty)
        #expect(grants(m.advance(now: at(1100))).count == 1)
    }

    @Test func cancelledRequestsLeaveTheQueue() {
        var m = manager([ProviderBudget(provider: "image", requests: 1)])
        _ = request(&m, "w1", "a", at: at(0))
        _ = request(&m, "w2", "b", at: at(0))
        _ = m.onMessage(.leaseCancel(LeaseCancel(requestId: "b")), session: "w2", priority: 0, now: at(1))
        #expect(m.backlog("image") == 0)
    }

    func pauses(_ actions: [LeaseManager.Action]) -> [(String, ProviderPause)] {
        actions.compactMap {
            if case .send(let session, .providerPause(let p)) = $0 { return (session, p) }
            return nil
        }
    }

    func signal(
        _ m: inout LeaseManager,
        _ provider: String,
        _ kind: ProviderSignal.Kind,
        _ detail: String,
        from session: String = "w1",
        at now: ContinuousClock.Instant
    ) -> [LeaseManager.Action] {
        m.onMessage(
            .providerSignal(ProviderSignal(provider: provider, kind: kind, detail: detail)),
            session: session,
            priority: 0,
            now: now
        )
    }

    @Test func aQuotaErrorWithoutAnyBudgetOpensTheCircuitForTheWholeFleet() {
        var m = manager([])
        #expect(!m.isLeasing)
        let actions = signal(&m, "tts", .quotaExceeded, "insufficient_quota", at: at(5))
        let sent = pauses(actions)
        #expect(sent.map(\.0) == ["w1", "w2", "w3", "w4"])
        #expect(
            sent.allSatisfy {
                $0.1
                    == ProviderPause(
                        provider: "tts",
                        pauseMs: 0,
                        circuitOpen: true,
                        reason: "quota_exceeded: insufficient_quota"
                    )
            }
        )
        #expect(
            actions.contains(
                .notice(.circuitOpened(provider: "tts", signal: .quotaExceeded, detail: "insufficient_quota"))
            )
        )
        #expect(m.stats["tts"]?.circuitOpen == true)
        #expect(m.usage(now: at(5)).map(\.provider) == ["tts"])
        #expect(m.usage(now: at(5)).first?.circuitOpen == true)
        // Counted, but acted on (and logged) only once.
        #expect(signal(&m, "tts", .quotaExceeded, "again", from: "w2", at: at(6)).isEmpty)
        #expect(m.stats["tts"]?.signals["quota_exceeded"] == 2)
        #expect(m.circuits["tts"]?.detail == "insufficient_quota")
        // A request for it (a worker that leases it anyway) is refused with the reason, not "unknown provider".
        let refused = grants(request(&m, "w3", "r", provider: "tts", at: at(7)))
        #expect(refused.first?.1.refused == .circuitOpen)
        #expect(refused.first?.1.detail == "quota_exceeded: insufficient_quota")
    }

    @Test func anAuthErrorSaysSoInTheReasonAndTheNotice() {
        var m = manager([ProviderBudget(provider: "image", requests: 5)])
        let detail = "elevenlabs: the key was refused (HTTP 401 invalid_api_key); fix: set ELEVENLABS_API_KEY"
        let actions = signal(&m, "tts", .authFailed, detail, at: at(1))
        #expect(pauses(actions).count == 4)
        #expect(pauses(actions).allSatisfy { $0.1.circuitOpen && $0.1.reason == "auth_failed: \(detail)" })
        #expect(actions.contains(.notice(.circuitOpened(provider: "tts", signal: .authFailed, detail: detail))))
        // The budgeted provider is untouched.
        #expect(grants(request(&m, "w1", "a", at: at(2))).first?.1.refused == nil)
        let line = CoordinatorLog.circuitLine(provider: "tts", signal: .authFailed, detail: detail)
        #expect(
            line
                == "🔴 tts: authentication failed (elevenlabs: the key was refused (HTTP 401 invalid_api_key)), "
                + "circuit OPEN for the whole fleet: every remaining tts call uses a placeholder. "
                + "Fix: set ELEVENLABS_API_KEY, then rerun."
        )
        #expect(
            CoordinatorLog.circuitLine(provider: "image", signal: .quotaExceeded, detail: "")
                == "🔴 image: billing or quota error, circuit OPEN for the whole fleet: every remaining image call "
                + "uses a placeholder. Add credits or raise the quota, then rerun."
        )
    }

    @Test func aSessionThatJoinsLaterIsToldEveryOpenCircuit() {
        var m = manager([ProviderBudget(provider: "image", requests: 5)])
        _ = signal(&m, "tts", .authFailed, "bad key", at: at(1))
        _ = signal(&m, "image", .quotaExceeded, "no credits", at: at(2))
        let joined = pauses(m.workerJoined(session: "w5", recentCalls: [:], now: at(3)))
        #expect(joined.map(\.0) == ["w5", "w5"])
        #expect(joined.map(\.1.provider) == ["image", "tts"])
        #expect(joined.map(\.1.reason) == ["quota_exceeded: no credits", "auth_failed: bad key"])
        #expect(joined.allSatisfy { $0.1.circuitOpen })
        // A minor-0 worker cannot read PROVIDER_PAUSE: it is neither told now nor in a broadcast.
        #expect(m.workerJoined(session: "old", recentCalls: [:], protocolMinor: 0, now: at(4)).isEmpty)
        #expect(!pauses(signal(&m, "llm", .quotaExceeded, "x", at: at(5))).contains { $0.0 == "old" })
        // A new batch (serve) keeps the circuits: they are about the provider.
        m.resetStatistics()
        #expect(pauses(m.workerJoined(session: "w6", recentCalls: [:], now: at(6))).count == 3)
        #expect(m.stats["tts"]?.circuitOpen == true)
    }

    @Test func theDispatcherSendsOpenCircuitsRightAfterTheWelcome() {
        let counter = Counter()
        var d = Dispatcher(
            batchId: "b",
            specs: [EpisodeSpec(topic: "t", id: "e1")],
            settings: DispatchSettings(),
            makeSession: { counter.next() }
        )
        func hello(_ id: String) -> Envelope {
            Envelope(
                .hello(
                    Hello(
                        workerId: id,
                        instance: id,
                        host: "h",
                        pid: 1,
                        capacity: Capacity(episodes: 1, apiCalls: 5),
                        softwareVersion: "t"
                    )
                )
            )
        }
        _ = d.onMessage(from: [1], hello("a"), now: at(0))
        let opened = d.onMessage(
            from: [1],
            Envelope(session: "s1", .providerSignal(ProviderSignal(provider: "tts", kind: .authFailed, detail: "k"))),
            now: at(1)
        )
        #expect(
            opened.contains { if case .send([1], let e) = $0, case .providerPause = e.message { true } else { false } }
        )
        let joined = d.onMessage(from: [2], hello("b"), now: at(2))
        let kinds = joined.compactMap { a -> MessageKind? in
            if case .send([2], let e) = a { return e.message.kind }
            return nil
        }
        #expect(kinds.prefix(2) == [.welcome, .providerPause])
    }

    @Test func theDispatcherAnnouncesBudgetsAndRoutesLeases() {
        var settings = LeaseSettings()
        settings.budgets = [ProviderBudget(provider: "image", requests: 10)]
        var d = Dispatcher(
            batchId: "b",
            specs: [EpisodeSpec(topic: "t", id: "e1")],
            settings: DispatchSettings(),
            leases: settings,
            makeSession: { "s1" }
        )
        let hello = Hello(
            workerId: "w",
            instance: "i",
            host: "h",
            pid: 1,
            capacity: Capacity(episodes: 1, apiCalls: 5),
            softwareVersion: "t"
        )
        let joined = d.onMessage(from: [1], Envelope(.hello(hello)), now: at(0))
        let welcome = joined.compactMap { a -> Welcome? in
            if case .send(_, let e) = a, case .welcome(let w) = e.message { return w }
            return nil
        }.first
        #expect(welcome?.budgets == settings.budgets)
        #expect(welcome?.budgetMode == .leased)
        let actions = d.onMessage(
            from: [1],
            Envelope(session: "s1", .leaseRequest(LeaseRequest(requestId: "r1", provider: "image", episodeId: "e1"))),
            now: at(1)
        )
        #expect(
            actions.contains { if case .send([1], let e) = $0, case .leaseGrant = e.message { true } else { false } }
        )
        // A worker must never send a grant.
        let wrong = d.onMessage(
            from: [1],
            Envelope(
                session: "s1",
                .leaseGrant(LeaseGrant(requestId: "x", leaseId: "l", provider: "image", calls: 1, useWithinMs: 1))
            ),
            now: at(2)
        )
        #expect(wrong.contains { if case .notice(.rejected("out_of_order", _)) = $0 { true } else { false } })
    }

    /// The calls waiting are counted as they change (partial grants, cancels, a worker leaving): the
    /// backlog, the status page's figure and admission agree with what waits.
    @Test func theBacklogIsCountedThroughPartialGrantsCancelsAndDepartures() {
        var m = manager([ProviderBudget(provider: "image", requests: 2)])
        func ask(_ session: String, _ id: String, calls: Int) -> [(String, LeaseGrant)] {
            grants(
                m.onMessage(
                    .leaseRequest(LeaseRequest(requestId: id, provider: "image", calls: calls)),
                    session: session,
                    priority: 0,
                    now: at(0)
                )
            )
        }
        let first = ask("w1", "a", calls: 3)
        #expect(first.count == 1 && first[0].1.calls == 2)
        #expect(m.backlog("image") == 1)
        #expect(ask("w2", "b", calls: 4).isEmpty)
        #expect(ask("w3", "c", calls: 2).isEmpty)
        #expect(m.backlog("image") == 7)
        #expect(m.usage(now: at(0)).first?.waiting == 7)
        #expect(!m.admissionOpen)  // 7 > 2 windows of 2
        // Only the session that asked can cancel its request.
        _ = m.onMessage(.leaseCancel(LeaseCancel(requestId: "b")), session: "w1", priority: 0, now: at(1))
        #expect(m.backlog("image") == 7)
        _ = m.onMessage(.leaseCancel(LeaseCancel(requestId: "b")), session: "w2", priority: 0, now: at(1))
        #expect(m.backlog("image") == 3)
        #expect(m.admissionOpen)
        _ = m.workerLeft(session: "w3", lastHeard: at(1), now: at(2))
        #expect(m.backlog("image") == 1)
        // What is left of a is granted once the window has room.
        let deadline = m.nextDeadline(after: at(2))
        #expect(deadline != nil)
        let rest = grants(m.advance(now: deadline ?? at(2)))
        #expect(rest.count == 1 && rest[0].0 == "w1" && rest[0].1.requestId == "a" && rest[0].1.calls == 1)
        #expect(m.backlog("image") == 0)
        #expect(m.usage(now: deadline ?? at(2)).first?.waiting == 0)
    }
}

enum RateLedgerTestsC {
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
}

import Protocol
import Synchronization
import Testing

@testable import Coordinator

/// The dispatcher driven with stepped time: no sockets, no sleeps.
@Suite struct DispatcherTests {
    let t0 = ContinuousClock.now

    func specs(_ n: Int) -> EpisodeSpecs {
        EpisodeSpecs((0..<n).map { EpisodeSpec(topic: "topic \($0 + 1)", id: "episode_\($0 + 1)") })
    }

    func hello(_ id: String, episodes: Int = 3) -> Hello {
        Hello(
            workerId: id,
            instance: "inst-\(id)",
            host: "h",
            pid: 1,
            capacity: Capacity(episodes: episodes, apiCalls: 5),
            softwareVersion: "test"
        )
    }

    func makeDispatcher(_ n: Int, maxAttempts: Int = 3) -> Dispatcher {
        var settings = DispatchSettings()
        settings.maxAttempts = maxAttempts
        let counter = Counter()
        return Dispatcher(batchId: "b", specs: specs(n), settings: settings, makeSession: { counter.next() })
    }

    /// Registers a worker and returns its session.
    func join(
        _ d: inout Dispatcher,
        _ routing: [UInt8],
        _ id: String,
        episodes: Int = 3,
        at now: ContinuousClock.Instant
    ) -> (String, [DispatchAction]) {
        let actions = d.onMessage(from: routing, Envelope(.hello(hello(id, episodes: episodes))), now: now)
        let welcome = actions.compactMap { a -> Welcome? in
            if case .send(_, let env) = a, case .welcome(let w) = env.message { return w }
            return nil
        }
        return (welcome.first!.session, actions)
    }

    func jobs(_ actions: [DispatchAction], to routing: [UInt8]? = nil) -> [Job] {
        actions.compactMap {
            if case .send(let r, let env) = $0, case .job(let j) = env.message, routing == nil || r == routing! {
                return j
            }
            return nil
        }
    }

    func result(_ job: Job, _ status: EpisodeResult.Status = .succeeded, session: String) -> Envelope {
        Envelope(
            session: session,
            .result(
                EpisodeResult(
                    episodeId: job.episodeId,
                    attempt: job.attempt,
                    status: status,
                    error: status == .failed ? "script: boom" : nil,
                    durationMs: 1200
                )
            )
        )
    }

    @Test func welcomeThenJobsUpToCredit() {
        var d = makeDispatcher(10)
        let (session, actions) = join(&d, [1], "w1", episodes: 3, at: t0)
        #expect(session == "s1")
        #expect(jobs(actions).map(\.episodeId) == ["episode_1", "episode_2", "episode_3"])
        #expect(jobs(actions).allSatisfy { $0.attempt == 1 })
        #expect(d.runningCount == 3)
        #expect(d.pendingCount == 7)
        _ = join(&d, [2], "w2", episodes: 4, at: t0)
        #expect(d.peakWorkers == 2 && d.peakSlots == 7 && d.instancesSeen == ["inst-w1", "inst-w2"])
    }

    @Test func neverMoreInFlightThanCredit() {
        var d = makeDispatcher(50)
        var inflight: [[UInt8]: [Job]] = [:]
        var sessions: [[UInt8]: String] = [:]
        func record(_ actions: [DispatchAction]) {
            for case .send(let routing, let env) in actions {
                if case .job(let j) = env.message { inflight[routing, default: []].append(j) }
                if case .welcome(let w) = env.message { sessions[routing] = w.session }
            }
        }
        record(d.onMessage(from: [1], Envelope(.hello(hello("w1", episodes: 2))), now: t0))
        record(d.onMessage(from: [2], Envelope(.hello(hello("w2", episodes: 4))), now: t0))
        var now = t0
        var finished = 0
        var maxSeen: [[UInt8]: Int] = [:]
        while finished < 50 {
            now += .milliseconds(100)
            for routing in [[UInt8(1)], [UInt8(2)]] {
                maxSeen[routing] = max(maxSeen[routing] ?? 0, inflight[routing]?.count ?? 0)
                guard let job = inflight[routing]?.first else { continue }
                inflight[routing]!.removeFirst()
                finished += 1
                record(d.onMessage(from: routing, result(job, session: sessions[routing]!), now: now))
            }
        }
        #expect(maxSeen[[1]] == 2)
        #expect(maxSeen[[2]] == 4)
        #expect(d.isComplete)
        #expect(d.succeededCount == 50)
        #expect(d.episodes.allSatisfy { $0.attempts == 1 })
    }

    @Test func failedAttemptIsRetriedThenFailed() {
        var d = makeDispatcher(1, maxAttempts: 3)
        let (s, a) = join(&d, [1], "w1", at: t0)
        var job = jobs(a)[0]
        for attempt in 1...3 {
            #expect(job.attempt == attempt)
            let actions = d.onMessage(from: [1], result(job, .failed, session: s), now: t0)
            if attempt < 3 {
                job = jobs(actions)[0]
            } else {
                #expect(jobs(actions).isEmpty)
                #expect(
                    actions.contains {
                        if case .notice(.episodeFailed("episode_1", 1, 1, let reasons)) = $0 {
                            return reasons.count == 3
                        }
                        return false
                    }
                )
            }
        }
        #expect(d.isComplete)
        #expect(d.failedCount == 1)
        #expect(d.episodes[0].errors.count == 3)
    }

    @Test func silentWorkerIsDeclaredDeadAndItsJobsGoElsewhere() {
        var d = makeDispatcher(4)
        let (s1, a1) = join(&d, [1], "w1", episodes: 2, at: t0)
        let (s2, a2) = join(&d, [2], "w2", episodes: 2, at: t0)
        #expect(jobs(a1).count == 2 && jobs(a2).count == 2)
        // w2 keeps heartbeating; w1 goes silent.
        var now = t0
        for _ in 0..<5 {
            now += .milliseconds(500)
            _ = d.onMessage(from: [2], Envelope(session: s2, .heartbeat(Heartbeat())), now: now)
            let tick = d.onTick(now: now)
            #expect(
                !tick.contains {
                    if case .notice(.workerLeft) = $0 { return true }
                    return false
                }
            )
        }
        // 2.5 s of silence: alive. At 3 s: dead.
        now = t0 + .seconds(3)
        let actions = d.onTick(now: now)
        #expect(
            actions.contains {
                if case .notice(.workerLeft("w1", _, let requeued)) = $0 { return requeued.count == 2 }
                return false
            }
        )
        #expect(d.workers[s1] == nil)
        // w2 is full, so nothing moves until it finishes one.
        let next = d.onMessage(from: [2], result(jobs(a2)[0], session: s2), now: now)
        let moved = jobs(next)
        #expect(moved.count == 1)
        #expect(moved[0].attempt == 2)
        #expect(jobs(a1).map(\.episodeId).contains(moved[0].episodeId))
    }

    @Test func lateResultFromADeadWorkerIsStale() {
        var d = makeDispatcher(1)
        let (s1, a1) = join(&d, [1], "w1", episodes: 1, at: t0)
        let job = jobs(a1)[0]
        _ = d.onTick(now: t0 + .seconds(4))  // w1 dead, episode requeued
        let (s2, a2) = join(&d, [2], "w2", episodes: 1, at: t0 + .seconds(4))
        #expect(jobs(a2)[0].attempt == 2)
        // w1's result arrives with its old session: refused as unknown session.
        let late = d.onMessage(from: [1], result(job, session: s1), now: t0 + .seconds(5))
        #expect(
            late.contains {
                if case .send([1], let e) = $0, case .disconnect(let x) = e.message {
                    return x.reason == .unknownSession
                }
                return false
            }
        )
        #expect(d.counters.unknownSession == 1)
        #expect(d.succeededCount == 0)
        _ = d.onMessage(from: [2], result(jobs(a2)[0], session: s2), now: t0 + .seconds(5))
        #expect(d.succeededCount == 1)
        #expect(d.episodes[0].attempts == 2)
    }

    @Test func resultForAnAttemptNotInFlightIsCountedStale() {
        var d = makeDispatcher(2)
        let (s, a) = join(&d, [1], "w1", episodes: 2, at: t0)
        var job = jobs(a)[0]
        job.attempt = 7
        let actions = d.onMessage(from: [1], result(job, session: s), now: t0)
        #expect(d.counters.staleResults == 1)
        #expect(
            actions.contains {
                if case .notice(.stale(.result, _, "w1")) = $0 { return true }
                return false
            }
        )
        #expect(d.succeededCount == 0)
        // Same result twice: recorded once.
        let real = jobs(a)[1]
        _ = d.onMessage(from: [1], result(real, session: s), now: t0)
        _ = d.onMessage(from: [1], result(real, session: s), now: t0)
        #expect(d.succeededCount == 1)
        #expect(d.counters.staleResults == 2)
    }

    @Test func heartbeatsGoOutOnlyWhenIdle() {
        var d = makeDispatcher(0)
        let (s, _) = join(&d, [1], "w1", at: t0)
        #expect(d.onTick(now: t0 + .milliseconds(999)).isEmpty)
        let beat = d.onTick(now: t0 + .seconds(1))
        #expect(beat == [.send(to: [1], Envelope(session: s, .heartbeat(Heartbeat())))])
        #expect(d.onTick(now: t0 + .milliseconds(1500)).isEmpty)
    }

    @Test func unknownSessionGetsDisconnect() {
        var d = makeDispatcher(1)
        let actions = d.onMessage(from: [9], Envelope(session: "nope", .heartbeat(Heartbeat())), now: t0)
        #expect(
            actions.contains {
                if case .send([9], let e) = $0, case .disconnect(let x) = e.message {
                    return x.reason == .unknownSession && e.session == "nope"
                }
                return false
            }
        )
        #expect(d.counters.unknownSession == 1)
        // A session of another connection is refused as well.
        let (s, _) = join(&d, [1], "w1", at: t0)
        _ = d.onMessage(from: [2], Envelope(session: s, .heartbeat(Heartbeat())), now: t0)
        #expect(d.counters.unknownSession == 2)
    }

    @Test func outOfOrderAndUndecodableMessagesAreCountedNotFatal() {
        var d = makeDispatcher(1)
        let (s, _) = join(&d, [1], "w1", at: t0)
        _ = d.onMessage(from: [1], Envelope(session: s, .cancel(Cancel(episodeId: "episode_1", attempt: 1))), now: t0)
        #expect(d.counters.outOfOrder == 1)
        let reply = d.onDecodeError(
            from: [1],
            DecodeError(.unsupportedVersion, "peer speaks reelfarm/2"),
            kindByte: nil,
            now: t0
        )
        #expect(
            reply.contains {
                if case .send([1], let e) = $0, case .disconnect(let x) = e.message {
                    return x.reason == .protocolError
                }
                return false
            }
        )
        #expect(d.onDecodeError(from: [1], DecodeError(.malformedBody, "x"), kindByte: 0x05, now: t0).count == 1)
        #expect(d.counters.decodeErrors == ["unsupported_version": 1, "malformed_body": 1])
        // A refused HELLO is answered, so a misconfigured worker learns why.
        let refused = d.onDecodeError(
            from: [3],
            DecodeError(.invalidField, "capacity.episodes 0 is outside 1…1024"),
            kindByte: 0x01,
            now: t0
        )
        #expect(
            refused.contains {
                if case .send([3], let e) = $0, case .disconnect(let x) = e.message {
                    return x.reason == .protocolError && x.detail.contains("capacity.episodes")
                }
                return false
            }
        )
        #expect(d.workers.count == 1)
    }

    @Test func reHelloOnTheSameConnectionRequeues() {
        var d = makeDispatcher(2)
        let (s1, a1) = join(&d, [1], "w1", episodes: 2, at: t0)
        #expect(jobs(a1).count == 2)
        let (s2, a2) = join(&d, [1], "w1", episodes: 2, at: t0)
        #expect(s1 != s2)
        #expect(jobs(a2).map(\.attempt) == [2, 2])
        #expect(d.workers.count == 1)
    }

    @Test func sendFailureDropsTheWorker() {
        var d = makeDispatcher(1)
        let (_, a) = join(&d, [1], "w1", at: t0)
        #expect(jobs(a).count == 1)
        let actions = d.onSendFailed(to: [1], now: t0)
        #expect(
            actions.contains {
                if case .notice(.workerLeft("w1", _, _)) = $0 { return true }
                return false
            }
        )
        #expect(d.pendingCount == 1)
    }

    @Test func workerDeathOnTheLastAttemptFailsTheEpisode() {
        var d = makeDispatcher(1, maxAttempts: 1)
        _ = join(&d, [1], "w1", at: t0)
        let actions = d.onTick(now: t0 + .seconds(10))
        #expect(
            actions.contains {
                if case .notice(.episodeFailed("episode_1", 1, 1, _)) = $0 { return true }
                return false
            }
        )
        #expect(d.isComplete)
    }

    @Test func shutdownStopsDispatchAndSaysGoodbye() {
        var d = makeDispatcher(5)
        let (s, _) = join(&d, [1], "w1", episodes: 1, at: t0)
        let bye = d.shutdown(reason: .batchComplete, detail: "done")
        #expect(
            bye == [
                .send(to: [1], Envelope(session: s, .disconnect(Disconnect(reason: .batchComplete, detail: "done"))))
            ]
        )
        let after = d.onMessage(
            from: [1],
            result(Job(batchId: "b", episodeId: "episode_1", attempt: 1, spec: specs(1)[0]), session: s),
            now: t0
        )
        #expect(jobs(after).isEmpty)
    }
}

/// Deterministic session tokens s1, s2, …
final class Counter: Sendable {
    private let value = Mutex(0)
    func next() -> String {
        value.withLock {
            $0 += 1
            return "s\($0)"
        }
    }
}

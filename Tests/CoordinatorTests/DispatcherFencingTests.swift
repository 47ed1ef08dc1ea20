import Protocol
import Testing

@testable import Coordinator

/// Exactly-once results across worker loss and reconnection, with stepped time.
extension DispatcherTests {
    func helloRunning(_ id: String, instance: String, running: [JobRef], episodes: Int = 1) -> Envelope {
        var h = hello(id, episodes: episodes)
        h.instance = instance
        h.running = running
        return Envelope(.hello(h))
    }

    func cancels(_ actions: [DispatchAction], to routing: [UInt8]) -> [Cancel] {
        actions.compactMap {
            if case .send(let r, let env) = $0, r == routing, case .cancel(let c) = env.message { return c }
            return nil
        }
    }

    @Test func aReconnectingWorkerReadoptsItsRequeuedAttempt() {
        var d = makeDispatcher(1)
        let (_, a1) = join(&d, [1], "w1", episodes: 1, at: t0)
        let job = jobs(a1)[0]
        _ = d.onTick(now: t0 + .seconds(4))  // w1 silent: declared dead, episode requeued
        #expect(d.pendingCount == 1)
        // w1 comes back on a new connection, still running attempt 1: it is taken back, not redone.
        let back = d.onMessage(
            from: [9],
            helloRunning("w1", instance: "inst-w1", running: [job.ref]),
            now: t0 + .seconds(5)
        )
        #expect(jobs(back).isEmpty)
        #expect(d.pendingCount == 0)
        #expect(d.counters.attemptsReadopted == 1)
        let session = d.workers.values.first!.session
        _ = d.onMessage(from: [9], result(job, session: session), now: t0 + .seconds(6))
        #expect(d.succeededCount == 1)
        #expect(d.episodes[0].attempts == 1)
    }

    @Test func anOlderAttemptThatFinishesFirstWinsAndTheNewerIsCancelled() {
        var d = makeDispatcher(1)
        let (_, a1) = join(&d, [1], "w1", episodes: 1, at: t0)
        let old = jobs(a1)[0]
        _ = d.onTick(now: t0 + .seconds(4))  // w1 dead
        let (s2, a2) = join(&d, [2], "w2", episodes: 1, at: t0 + .seconds(4))
        let newer = jobs(a2)[0]
        #expect(newer.attempt == 2)
        // w1 was only frozen: it reconnects announcing attempt 1, then delivers its success first.
        _ = d.onMessage(from: [9], helloRunning("w1", instance: "inst-w1", running: [old.ref]), now: t0 + .seconds(5))
        let s1b = d.workers.values.first { $0.routingId == [9] }!.session
        let won = d.onMessage(from: [9], result(old, session: s1b), now: t0 + .seconds(6))
        #expect(d.succeededCount == 1)
        #expect(cancels(won, to: [2]) == [Cancel(episodeId: newer.episodeId, attempt: 2)])
        #expect(d.counters.lateResultsAccepted == 1)
        #expect(d.counters.supersededCancelled == 1)
        #expect(d.workers[s2]?.inflight.isEmpty == true)
        // The cancelled attempt's result, if it still comes, is not recorded again.
        _ = d.onMessage(from: [2], result(newer, session: s2), now: t0 + .seconds(7))
        #expect(d.succeededCount == 1)
        #expect(d.counters.staleResults == 1)
        #expect(d.isComplete)
    }

    @Test func aSecondSuccessIsCountedAsADuplicateNeverRecorded() {
        var d = makeDispatcher(1)
        let (_, a1) = join(&d, [1], "w1", episodes: 1, at: t0)
        let old = jobs(a1)[0]
        _ = d.onTick(now: t0 + .seconds(4))
        let (s2, a2) = join(&d, [2], "w2", episodes: 1, at: t0 + .seconds(4))
        _ = d.onMessage(from: [9], helloRunning("w1", instance: "inst-w1", running: [old.ref]), now: t0 + .seconds(5))
        // The newer attempt wins this time; the old one's success arrives later.
        _ = d.onMessage(from: [2], result(jobs(a2)[0], session: s2), now: t0 + .seconds(6))
        let s1b = d.workers.values.first { $0.routingId == [9] }!.session
        _ = d.onMessage(from: [9], result(old, session: s1b), now: t0 + .seconds(7))
        #expect(d.succeededCount == 1)
        #expect(d.episodes[0].workerId == "w2")
        #expect(d.counters.duplicateResults == 1)
    }

    @Test func announcedAttemptsOfFinishedEpisodesAreCancelled() {
        var d = makeDispatcher(1)
        let (s1, a1) = join(&d, [1], "w1", episodes: 1, at: t0)
        _ = d.onMessage(from: [1], result(jobs(a1)[0], session: s1), now: t0 + .seconds(1))
        let back = d.onMessage(
            from: [9],
            helloRunning("w9", instance: "i9", running: [JobRef(episodeId: "episode_1", attempt: 1)]),
            now: t0 + .seconds(2)
        )
        #expect(cancels(back, to: [9]) == [Cancel(episodeId: "episode_1", attempt: 1)])
        #expect(d.counters.finishedElsewhereCancelled == 1)
    }

    @Test func aFailureOfAnOlderAttemptDoesNotDisturbTheNewerOne() {
        var d = makeDispatcher(1)
        let (_, a1) = join(&d, [1], "w1", episodes: 1, at: t0)
        let old = jobs(a1)[0]
        _ = d.onTick(now: t0 + .seconds(4))
        let (s2, a2) = join(&d, [2], "w2", episodes: 1, at: t0 + .seconds(4))
        _ = d.onMessage(from: [9], helloRunning("w1", instance: "inst-w1", running: [old.ref]), now: t0 + .seconds(5))
        let s1b = d.workers.values.first { $0.routingId == [9] }!.session
        let failed = d.onMessage(from: [9], result(old, .failed, session: s1b), now: t0 + .seconds(6))
        #expect(cancels(failed, to: [2]).isEmpty)
        #expect(d.counters.staleResults == 1)
        #expect(d.episodes[0].errors.count == 1)  // only the lost-attempt line
        _ = d.onMessage(from: [2], result(jobs(a2)[0], session: s2), now: t0 + .seconds(7))
        #expect(d.succeededCount == 1)
    }
}

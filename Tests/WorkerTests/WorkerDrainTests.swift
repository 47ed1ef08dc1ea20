import Protocol
import Testing

@testable import Worker

/// Graceful shutdown of the worker's core, with stepped time.
extension WorkerCoreTests {
    func result(_ n: Int) -> EpisodeResult {
        EpisodeResult(episodeId: "episode_\(n)", attempt: 1, status: .succeeded, durationMs: 10)
    }

    @Test func drainingTellsTheCoordinatorAndFinishesRunningWork() {
        var c = core(episodes: 2)
        _ = c.start(now: t0)
        _ = c.onEnvelope(welcome(), now: t0)
        _ = c.onEnvelope(job(1), now: t0)
        _ = c.onEnvelope(job(2), now: t0)
        let drain = c.beginDrain(now: t0 + .seconds(1), grace: .seconds(30))
        #expect(sent(drain) == [.heartbeat(Heartbeat(running: c.runningRefs, draining: true))])
        // The drain line names what is still running (the integration test relies on it).
        let line = drain.compactMap { if case .log(_, let text, let meta) = $0 { (text, meta) } else { nil } }.first
        #expect(line?.0.hasPrefix("draining:") == true)
        #expect(line?.1["episodes"] == "episode_1,episode_2")
        #expect(line?.1["running"] == "2")
        // A JOB sent before the coordinator saw it is not started.
        #expect(started(c.onEnvelope(job(3), now: t0 + .seconds(1))).isEmpty)
        let first = c.onFinished(result(1), now: t0 + .seconds(2))
        #expect(sent(first).map(\.kind) == [.result])
        #expect(!first.contains(.exit))
        let last = c.onFinished(result(2), now: t0 + .seconds(3))
        #expect(sent(last).map(\.kind) == [.result, .disconnect])
        #expect(last.contains(.exit))
        #expect(c.state == .stopped)
    }

    @Test func theGracePeriodHandsRunningWorkBack() {
        var c = core(episodes: 2)
        _ = c.start(now: t0)
        _ = c.onEnvelope(welcome(), now: t0)
        _ = c.onEnvelope(job(1), now: t0)
        _ = c.beginDrain(now: t0, grace: .seconds(2))
        #expect(!c.onTick(now: t0 + .milliseconds(1999)).contains(.exit))
        let over = c.onTick(now: t0 + .seconds(2))
        #expect(over.contains(.cancel(JobRef(episodeId: "episode_1", attempt: 1))))
        #expect(sent(over).map(\.kind) == [.disconnect])
        #expect(over.contains(.exit))
    }

    @Test func drainingWithNothingRunningSaysGoodbyeAtOnce() {
        var c = core()
        _ = c.start(now: t0)
        _ = c.onEnvelope(welcome(), now: t0)
        let drain = c.beginDrain(now: t0, grace: .seconds(30))
        #expect(sent(drain).map(\.kind) == [.disconnect])
        #expect(drain.contains(.exit))
    }

    @Test func heartbeatsWhileDrainingSayDraining() {
        var c = core()
        _ = c.start(now: t0)
        _ = c.onEnvelope(welcome(), now: t0)
        _ = c.onEnvelope(job(1), now: t0)
        _ = c.beginDrain(now: t0, grace: .seconds(30))
        let tick = c.onTick(now: t0 + .seconds(2))
        guard case .heartbeat(let hb) = sent(tick).first else {
            Issue.record("no heartbeat")
            return
        }
        #expect(hb.draining)
    }
}

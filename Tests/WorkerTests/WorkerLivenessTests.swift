import Protocol
import Testing

@testable import Worker

/// Issue 15, items 6 and 7, the worker's side: the coordinator's liveness is judged on this process's own
/// loop time, and a coordinator that keeps asking for chunks is alive whatever its heartbeats do.
@Suite("Worker core: liveness after a stall, over a congested link")
struct WorkerLivenessTests {
    let h = WorkerCoreTests()
    var t0: ContinuousClock.Instant { h.t0 }

    func core(freshWindowAfterStall: Bool = false) -> WorkerCore {
        var settings = WorkerCore.Settings(
            hello: Hello(
                workerId: "w1",
                instance: "i1",
                host: "h",
                pid: 1,
                capacity: Capacity(episodes: 2, apiCalls: 5),
                softwareVersion: "test"
            )
        )
        settings.freshWindowAfterStall = freshWindowAfterStall
        return WorkerCore(settings: settings, now: t0, jitter: { $0 })
    }

    func lost(_ actions: [WorkerAction]) -> Bool {
        actions.contains { if case .log(.warning, "lost coordinator; reconnecting", _) = $0 { true } else { false } }
    }

    @Test func item6AStalledWorkerGivesTheCoordinatorAFreshWindow() {
        var c = core(freshWindowAfterStall: true)
        _ = c.start(now: t0)
        _ = c.onEnvelope(h.welcome(), now: t0)
        _ = c.onTick(now: t0 + .milliseconds(50))
        // This process was stopped for 10 s: the coordinator is not blamed for that time.
        #expect(!lost(c.onTick(now: t0 + .milliseconds(10_050))))
        #expect(c.session == "s1")
        // The stall beyond the 1 s detection threshold (9 s) does not count; the silence before, a threshold's
        // worth of the gap, and the time after do: 3 s in all.
        var now = t0 + .milliseconds(10_050)
        var gone = false
        while !gone, now < t0 + .seconds(20) {
            now += .milliseconds(50)
            gone = lost(c.onTick(now: now))
        }
        #expect(gone && now == t0 + .milliseconds(12_000))
    }

    @Test func item7AWorkerServingChunksCountsTheCoordinatorAlive() {
        var c = core()
        _ = c.start(now: t0)
        _ = c.onEnvelope(h.welcome(), now: t0)
        _ = c.onEnvelope(h.job(1), now: t0)
        let file = ArtifactFile(name: "episode.mp4", size: 1 << 24, sha256: String(repeating: "cd", count: 32))
        let result = EpisodeResult(
            episodeId: "episode_1",
            attempt: 1,
            status: .succeeded,
            durationMs: 5,
            artifacts: [file],
            delivery: .transfer
        )
        _ = c.onFinished(result, files: "/spool/episode_1-attempt-1", now: t0)
        // A congested link: a fetch gets through every 5 s (the coordinator asks for one more chunk each
        // time one of ours arrives), its heartbeats queue behind our chunks.
        var now = t0
        for i in 0..<6 {
            if i > 0 {
                for step in 1...4 {
                    #expect(!lost(c.onTick(now: now + .seconds(step))), "round \(i) at +\(step) s")
                }
                now += .seconds(5)
            }
            let fetch = ArtifactFetch(
                episodeId: "episode_1",
                attempt: 1,
                name: "episode.mp4",
                offset: i * 262_144,
                length: 262_144
            )
            let served = c.onEnvelope(Envelope(session: "s1", .artifactFetch(fetch)), now: now)
            #expect(served.contains { if case .serveChunk = $0 { true } else { false } })
        }
        #expect(c.session == "s1")
        // No fetch and no message for the coordinator's own stall timeout (30 s): it is gone.
        var gone = false
        while !gone, now < t0 + .seconds(120) {
            now += .seconds(1)
            gone = lost(c.onTick(now: now))
        }
        #expect(gone && now == t0 + .seconds(55))
    }
}

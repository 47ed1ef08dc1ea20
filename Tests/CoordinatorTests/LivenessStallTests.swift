import Protocol
import Testing

@testable import Coordinator

/// Issue 15, items 6 and 7, the coordinator's side: liveness judged on the coordinator's own loop time,
/// a worker that reconnects takes its attempts along, chunks keep a worker alive, and a transfer cut short
/// resumes where its bytes stopped.
@Suite("Dispatcher: liveness after a stall, over a congested link")
struct LivenessStallTests {
    let h = DispatcherTests()
    var t0: ContinuousClock.Instant { h.t0 }

    func makeDispatcher(_ n: Int) -> Dispatcher {
        var settings = DispatchSettings()
        settings.freshWindowAfterStall = true
        let counter = Counter()
        return Dispatcher(batchId: "b", specs: h.specs(n), settings: settings, makeSession: { counter.next() })
    }

    func left(_ actions: [DispatchAction]) -> [String] {
        actions.compactMap { if case .notice(.workerLeft(let id, _, _)) = $0 { return id } else { return nil } }
    }

    func stalled(_ actions: [DispatchAction]) -> Bool {
        actions.contains { if case .notice(.loopStalled) = $0 { true } else { false } }
    }

    @Test func item6AStalledCoordinatorGivesEveryWorkerAFreshWindow() {
        var d = makeDispatcher(3)
        let (s, a) = h.join(&d, [1], "w1", at: t0)
        let jobs = h.jobs(a)
        _ = d.onTick(now: t0 + .milliseconds(50))
        // The process is stopped for 10 s (SIGSTOP, a long pause): the worker was silent all along, for us.
        let woke = d.onTick(now: t0 + .milliseconds(10_050))
        #expect(left(woke).isEmpty, "declared dead for the coordinator's own silence")
        #expect(stalled(woke))
        #expect(d.workers.count == 1)
        // Its results, sent while we were stopped, are read now and count: nothing runs twice.
        for job in jobs {
            _ = d.onMessage(from: [1], h.result(job, session: s), now: t0 + .milliseconds(10_100))
        }
        #expect(d.succeededCount == 3 && d.isComplete)
        #expect(d.episodes.allSatisfy { $0.attemptsUsed == 1 })
        // The fresh window is one liveness window (3 s) plus the stall (10 s), which covers the reconnect
        // backoff of a worker that gave up on us meanwhile; a worker silent after it is dead as usual.
        var now = t0 + .milliseconds(10_050)
        var gone: [String] = []
        while gone.isEmpty, now < t0 + .seconds(40) {
            now += .milliseconds(50)
            gone = left(d.onTick(now: now))
        }
        #expect(gone == ["w1"])
        #expect(now == t0 + .milliseconds(23_050))
    }

    @Test func item6LateTicksOnALoadedMachineDoNotKeepAFrozenWorkerAlive() {
        var d = makeDispatcher(3)
        _ = h.join(&d, [1], "w1", at: t0)
        // Every tick comes 1.1 s after the last (over the 1 s heartbeat interval: a "stall" each time), and
        // the worker is silent: its silence still accrues, 1 s a tick, and it is declared dead on time.
        var now = t0
        var gone: [String] = []
        while gone.isEmpty, now < t0 + .seconds(30) {
            now += .milliseconds(1_100)
            gone = left(d.onTick(now: now))
        }
        #expect(gone == ["w1"])
        #expect(now == t0 + .milliseconds(3_300), "declared dead after three late ticks, not kept alive by them")
    }

    @Test func item6AReconnectedWorkerTakesItsRunningAttemptsAlong() {
        var d = makeDispatcher(3)
        let (s1, a) = h.join(&d, [1], "w1", at: t0)
        let jobs = h.jobs(a)
        #expect(jobs.count == 3)
        // The worker lost us (we were stopped) and greets again on a new socket, still running two attempts;
        // the third one's RESULT went out on the old connection and is read after the new HELLO.
        var hello = h.hello("w1")
        hello.running = [jobs[0].ref, jobs[1].ref]
        let back = d.onMessage(from: [2], Envelope(.hello(hello)), now: t0 + .seconds(1))
        let s2 = back.compactMap { a -> String? in
            if case .send([2], let e) = a, case .welcome(let w) = e.message { return w.session }
            return nil
        }[0]
        #expect(d.counters.attemptsReadopted == 2)
        _ = d.onMessage(from: [1], h.result(jobs[2], session: s1), now: t0 + .seconds(1))
        // The old connection falls silent and is declared dead: nothing of it is requeued.
        var now = t0 + .seconds(1)
        while now < t0 + .seconds(5) {
            now += .milliseconds(50)
            if (now - t0).components.attoseconds == 0 {
                // The new connection is alive: the worker heartbeats on it.
                let beat = Heartbeat(running: [jobs[0].ref, jobs[1].ref])
                _ = d.onMessage(from: [2], Envelope(session: s2, .heartbeat(beat)), now: now)
            }
            _ = d.onTick(now: now)
        }
        #expect(d.workers[s1] == nil)
        #expect(d.counters.attemptsRequeued == 0)
        for job in jobs.prefix(2) { _ = d.onMessage(from: [2], h.result(job, session: s2), now: now) }
        #expect(d.succeededCount == 3 && d.isComplete)
        #expect(d.episodes.allSatisfy { $0.attemptsUsed == 1 })
    }

    @Test func item7AWorkerSendingChunksIsAliveWhateverItsHeartbeats() {
        var d = h.makeDispatcher(1)
        let (s, a) = h.join(&d, [1], "w1", episodes: 1, at: t0)
        let job = h.jobs(a)[0]
        let big = ArtifactFile(name: "episode.mp4", size: 40 * 256 * 1024, sha256: String(repeating: "ab", count: 32))
        let offered = d.onMessage(
            from: [1],
            Envelope(
                session: s,
                .result(
                    EpisodeResult(
                        episodeId: job.episodeId,
                        attempt: job.attempt,
                        status: .succeeded,
                        durationMs: 9,
                        artifacts: [big],
                        delivery: .transfer
                    )
                )
            ),
            now: t0
        )
        var due = offered.compactMap { a -> ArtifactFetch? in
            if case .send([1], let e) = a, case .artifactFetch(let f) = e.message { return f }
            return nil
        }
        // A congested link: one chunk gets through every 5 s, heartbeats queue behind them.
        var now = t0
        for _ in 0..<4 {
            now += .seconds(5)
            let f = due.removeFirst()
            let chunk = ArtifactChunk(
                episodeId: f.episodeId,
                attempt: f.attempt,
                name: f.name,
                offset: f.offset,
                data: Array(repeating: 1, count: f.length)
            )
            _ = d.onMessage(from: [1], Envelope(session: s, .artifactChunk(chunk)), now: now)
            let written = d.onArtifactEvent(.written(id: 1), now: now)
            due += written.compactMap { a -> ArtifactFetch? in
                if case .send([1], let e) = a, case .artifactFetch(let f) = e.message { return f }
                return nil
            }
            #expect(left(d.onTick(now: now + .seconds(4))).isEmpty, "a worker whose chunks arrive is alive")
        }
        #expect(d.workers[s] != nil && d.counters.attemptsRequeued == 0)
    }
}

@Suite("Artifact collector: resume")
struct ArtifactResumeTests {
    let h = ArtifactCollectorTests()
    var t0: ContinuousClock.Instant { h.t0 }
    let chunkBytes = 256 * 1024

    @Test func item7ATransferResumesFromTheLastVerifiedOffset() {
        var c = ArtifactCollector(settings: h.settings(credit: 4))
        let big = ArtifactFile(name: "episode.mp4", size: 10 * chunkBytes + 5, sha256: digest([]))
        let result = h.offer(files: [big])
        var due = h.fetches(c.begin(result, session: "s1", now: t0))
        #expect(due.map(\.offset) == [0, 1, 2, 3].map { $0 * chunkBytes })
        // Three chunks arrive and are written; then the connection is lost (dead, or a new session).
        for _ in 0..<3 {
            _ = c.onChunk(h.chunk(due.removeFirst()), session: "s1", now: t0)
            due += h.fetches(c.onEvent(.written(id: 1), now: t0))
        }
        let aborted = c.abort(session: "s1", now: t0)
        #expect(!aborted.contains(.store(.discard(id: 1))), "what arrived is kept")
        #expect(c.parkedRefs == [result.ref])
        // The worker offers the same attempt again on its new session: the pull goes on at byte 3 × 256 KiB,
        // into the same incoming file (no new folder), and the file's digest is still checked whole.
        let resumed = c.begin(result, session: "s2", now: t0 + .seconds(5))
        #expect(!resumed.contains { if case .store(.begin) = $0 { true } else { false } })
        var again = h.fetches(resumed)
        #expect(again.first?.offset == 3 * chunkBytes)
        #expect(c.counters.transfersResumed == 1 && c.parkedRefs.isEmpty)
        var last: [ArtifactCollector.Output] = []
        while let f = again.first {
            again.removeFirst()
            let out = c.onChunk(h.chunk(f), session: "s2", now: t0 + .seconds(5))
            let w = h.writes(out)
            #expect(w.first?.id == 1)
            let event: ArtifactEvent = w.first!.last ? .fileStored(id: 1, name: big.name) : .written(id: 1)
            last = c.onEvent(event, now: t0 + .seconds(5))
            again += h.fetches(last)
        }
        #expect(last == [.store(.publish(id: 1, ref: result.ref))])
        #expect(c.counters.bytesReceived == big.size)
    }

    @Test("a parked transfer of an episode that ended otherwise is discarded")
    func parkedTransferIsForgotten() {
        var c = ArtifactCollector(settings: h.settings())
        let file = ArtifactFile(name: "a.wav", size: 3, sha256: digest([1, 1, 1]))
        _ = c.begin(h.offer(files: [file]), session: "s", now: t0)
        _ = c.abort(session: "s", now: t0)
        #expect(c.forgetParked(episodeId: "e1") == [.store(.discard(id: 1))])
        #expect(c.parkedRefs.isEmpty)
    }
}

import Protocol
import Testing

@testable import Worker

/// The worker's protocol core with stepped time: registration, liveness, reconnect and credit.
@Suite struct WorkerCoreTests {
    let t0 = ContinuousClock.now

    func core(episodes: Int = 2) -> WorkerCore {
        let hello = Hello(
            workerId: "w1",
            instance: "i1",
            host: "h",
            pid: 1,
            capacity: Capacity(episodes: episodes, apiCalls: 5),
            softwareVersion: "test"
        )
        // No jitter: backoff delays are exact.
        return WorkerCore(settings: .init(hello: hello), now: t0, jitter: { $0 })
    }

    func welcome(_ session: String = "s1", heartbeatMs: Int = 1000) -> Envelope {
        Envelope(
            session: session,
            .welcome(
                Welcome(
                    session: session,
                    heartbeatIntervalMs: heartbeatMs,
                    liveness: 3,
                    maxMessageBytes: 1 << 20,
                    softwareVersion: "test"
                )
            )
        )
    }

    func job(_ n: Int, attempt: Int = 1, session: String = "s1") -> Envelope {
        Envelope(
            session: session,
            .job(
                Job(
                    batchId: "b",
                    episodeId: "episode_\(n)",
                    attempt: attempt,
                    spec: EpisodeSpec(topic: "t")
                )
            )
        )
    }

    func sent(_ actions: [WorkerAction]) -> [Message] {
        actions.compactMap {
            if case .send(let e) = $0 { return e.message }
            return nil
        }
    }

    func started(_ actions: [WorkerAction]) -> [JobRef] {
        actions.compactMap {
            if case .start(let j) = $0 { return j.ref }
            return nil
        }
    }

    @Test func helloThenWelcomeConnects() {
        var c = core()
        let first = c.start(now: t0)
        guard case .hello(let hello) = sent(first).first else {
            Issue.record("first message must be HELLO")
            return
        }
        #expect(hello.running.isEmpty)
        _ = c.onEnvelope(welcome(), now: t0 + .milliseconds(10))
        #expect(c.session == "s1")
    }

    @Test func neverRunsMoreThanCapacity() {
        var c = core(episodes: 2)
        _ = c.start(now: t0)
        _ = c.onEnvelope(welcome(), now: t0)
        #expect(started(c.onEnvelope(job(1), now: t0)).count == 1)
        #expect(started(c.onEnvelope(job(2), now: t0)).count == 1)
        // A third JOB beyond the announced capacity waits locally.
        #expect(started(c.onEnvelope(job(3), now: t0)).isEmpty)
        #expect(c.running.count == 2 && c.queued.count == 1)
        #expect(c.counters.overCapacityJobs == 1)
        // A duplicate is ignored.
        _ = c.onEnvelope(job(1), now: t0)
        #expect(c.counters.duplicateJobs == 1)
        // When one finishes, its RESULT goes out and the queued one starts.
        let done = c.onFinished(
            EpisodeResult(episodeId: "episode_1", attempt: 1, status: .succeeded, durationMs: 5),
            now: t0
        )
        #expect(sent(done).count == 1)
        #expect(started(done) == [JobRef(episodeId: "episode_3", attempt: 1)])
        #expect(c.running.count == 2)
    }

    @Test func heartbeatWhenIdleListsRunningAttempts() {
        var c = core()
        _ = c.start(now: t0)
        _ = c.onEnvelope(welcome(), now: t0)
        _ = c.onEnvelope(job(1), now: t0)
        #expect(c.onTick(now: t0 + .milliseconds(999)).isEmpty)
        let beat = sent(c.onTick(now: t0 + .seconds(1)))
        #expect(beat == [.heartbeat(Heartbeat(running: [JobRef(episodeId: "episode_1", attempt: 1)]))])
    }

    @Test func item12NoWelcomeOverCurveNamesARefusedHandshake() {
        func reason(curve: Bool) -> String? {
            var settings = WorkerCore.Settings(
                hello: Hello(
                    workerId: "w1",
                    instance: "i1",
                    host: "h",
                    pid: 1,
                    capacity: Capacity(episodes: 1, apiCalls: 1),
                    softwareVersion: "test"
                )
            )
            settings.curve = curve
            var c = WorkerCore(settings: settings, now: t0, jitter: { $0 })
            _ = c.start(now: t0)
            for action in c.onTick(now: t0 + .seconds(3)) {
                if case .log(.warning, _, let metadata) = action { return metadata["reason"] }
            }
            return nil
        }
        let curve = reason(curve: true) ?? ""
        #expect(curve.hasPrefix("no WELCOME within 3"))
        #expect(curve.contains("refused the CURVE handshake") && curve.contains("--allow-workers"), "\(curve)")
        #expect(reason(curve: false)?.contains("CURVE") == false)
    }

    @Test func silentCoordinatorTriggersReconnectOnANewSocketWithBackoff() {
        var c = core()
        _ = c.start(now: t0)
        _ = c.onEnvelope(welcome(), now: t0)
        _ = c.onEnvelope(job(1), now: t0)
        // Heartbeats keep going out while the coordinator is silent; at 3 s it is declared gone.
        _ = c.onTick(now: t0 + .seconds(2))
        let lost = c.onTick(now: t0 + .seconds(3))
        #expect(
            lost.contains {
                if case .log(.warning, _, _) = $0 { return true }
                return false
            }
        )
        #expect(c.session == nil)
        // Backoff 1 s: nothing before, then a new socket and HELLO listing the running attempt.
        #expect(c.onTick(now: t0 + .milliseconds(3999)).isEmpty)
        let again = c.onTick(now: t0 + .seconds(4))
        #expect(again.first == .renewSocket)
        guard case .hello(let hello) = sent(again).first else {
            Issue.record("expected HELLO after renewing the socket")
            return
        }
        #expect(hello.running == [JobRef(episodeId: "episode_1", attempt: 1)])
        // No WELCOME: the backoff doubles (2 s) after the 3 s greeting deadline.
        _ = c.onTick(now: t0 + .seconds(7))
        #expect(c.onTick(now: t0 + .milliseconds(8999)).isEmpty)
        #expect(c.onTick(now: t0 + .seconds(9)).first == .renewSocket)
        #expect(c.counters.reconnects == 2)
    }

    @Test func resultsFinishedWhileDisconnectedAreSentAfterWelcome() {
        var c = core()
        _ = c.start(now: t0)
        _ = c.onEnvelope(welcome(), now: t0)
        _ = c.onEnvelope(job(1), now: t0)
        _ = c.onTick(now: t0 + .seconds(3))  // coordinator lost
        let r = EpisodeResult(episodeId: "episode_1", attempt: 1, status: .succeeded, durationMs: 5)
        #expect(sent(c.onFinished(r, now: t0 + .seconds(3))).isEmpty)
        #expect(c.heldResults == [r])
        _ = c.onTick(now: t0 + .seconds(4))
        let after = c.onEnvelope(welcome("s2"), now: t0 + .seconds(4))
        #expect(sent(after) == [.result(r)])
        #expect(c.heldResults.isEmpty)
    }

    @Test func unknownSessionDisconnectReconnectsAtOnce() {
        var c = core()
        _ = c.start(now: t0)
        _ = c.onEnvelope(welcome(), now: t0)
        _ = c.onEnvelope(Envelope(session: "s1", .disconnect(Disconnect(reason: .unknownSession))), now: t0)
        #expect(c.onTick(now: t0).first == .renewSocket)
    }

    @Test func staleDisconnectForAnOldSessionIsIgnored() {
        var c = core()
        _ = c.start(now: t0)
        _ = c.onEnvelope(welcome("s2"), now: t0)
        _ = c.onEnvelope(Envelope(session: "s1", .disconnect(Disconnect(reason: .unknownSession))), now: t0)
        #expect(c.session == "s2")
        #expect(c.counters.outOfOrder == 1)
    }

    @Test func messagesBeforeWelcomeAreDropped() {
        var c = core()
        _ = c.start(now: t0)
        #expect(started(c.onEnvelope(job(1), now: t0)).isEmpty)
        #expect(c.counters.outOfOrder == 1)
        // A JOB with another session than ours is dropped too.
        _ = c.onEnvelope(welcome(), now: t0)
        #expect(started(c.onEnvelope(job(2, session: "other"), now: t0)).isEmpty)
    }

    @Test func cancelStopsTheAttemptAndDropsItsResult() {
        var c = core(episodes: 1)
        _ = c.start(now: t0)
        _ = c.onEnvelope(welcome(), now: t0)
        _ = c.onEnvelope(job(1), now: t0)
        _ = c.onEnvelope(job(2), now: t0)  // queued
        let cancel = c.onEnvelope(Envelope(session: "s1", .cancel(Cancel(episodeId: "episode_1", attempt: 1))), now: t0)
        #expect(cancel.contains(.cancel(JobRef(episodeId: "episode_1", attempt: 1))))
        #expect(started(cancel) == [JobRef(episodeId: "episode_2", attempt: 1)])
        let late = c.onFinished(
            EpisodeResult(episodeId: "episode_1", attempt: 1, status: .failed, error: "cancelled", durationMs: 1),
            now: t0
        )
        #expect(late.isEmpty)
    }

    @Test func helloIsRetriedWhenItCouldNotBeSent() {
        var c = core()
        _ = c.start(now: t0)
        _ = c.onSendFailed(now: t0)
        #expect(c.onTick(now: t0 + .milliseconds(40)).isEmpty)
        #expect(sent(c.onTick(now: t0 + .milliseconds(50))).count == 1)
    }

    @Test func shutdownSaysGoodbyeAndCancelsEverything() {
        var c = core()
        _ = c.start(now: t0)
        _ = c.onEnvelope(welcome(), now: t0)
        _ = c.onEnvelope(job(1), now: t0)
        let bye = c.shutdown(now: t0, detail: "stop")
        #expect(sent(bye) == [.disconnect(Disconnect(reason: .shutdown, detail: "stop"))])
        #expect(bye.contains(.cancel(JobRef(episodeId: "episode_1", attempt: 1))))
        #expect(c.onTick(now: t0 + .seconds(100)).isEmpty)
    }
}

/// PROGRESS is coalesced per tick: the latest stage change of each running attempt, none for one that ended.
extension WorkerCoreTests {
    func progress(_ n: Int, _ stage: Stage, _ state: StageState) -> Progress {
        Progress(episodeId: "episode_\(n)", attempt: 1, stage: stage, state: state)
    }

    @Test func progressGoesOutOncePerTickAndNotAfterTheResult() {
        var c = core(episodes: 2)
        _ = c.start(now: t0)
        _ = c.onEnvelope(welcome(), now: t0)
        _ = c.onEnvelope(job(1), now: t0)
        _ = c.onEnvelope(job(2), now: t0)
        #expect(c.onProgress(progress(1, .script, .started), now: t0).isEmpty)
        _ = c.onProgress(progress(1, .script, .finished), now: t0)
        _ = c.onProgress(progress(2, .script, .started), now: t0)
        let tick = sent(c.onTick(now: t0 + .milliseconds(50)))
        #expect(tick == [.progress(progress(1, .script, .finished)), .progress(progress(2, .script, .started))])
        #expect(sent(c.onTick(now: t0 + .milliseconds(100))).isEmpty)
        // Episode 2 moves, then ends before the tick: its RESULT goes out, its stale PROGRESS never does.
        _ = c.onProgress(progress(2, .render, .started), now: t0 + .milliseconds(110))
        let finished = c.onFinished(
            EpisodeResult(episodeId: "episode_2", attempt: 1, status: .succeeded, durationMs: 10),
            now: t0 + .milliseconds(120)
        )
        #expect(sent(finished).map(\.kind) == [.result])
        #expect(!sent(c.onTick(now: t0 + .milliseconds(150))).contains { $0.kind == .progress })
    }
}

import Protocol
import Testing

@testable import Worker

/// A worker keeps an attempt's offered files until the coordinator acknowledges them (PROTOCOL §17).
@Suite("Worker core: offered files are kept until acknowledged")
struct WorkerOutboxTests {
    let h = WorkerCoreTests()
    var t0: ContinuousClock.Instant { h.t0 }
    let file = ArtifactFile(name: "episode.mp4", size: 10, sha256: String(repeating: "cd", count: 32))

    func offer(_ n: Int = 1) -> EpisodeResult {
        EpisodeResult(
            episodeId: "episode_\(n)",
            attempt: 1,
            status: .succeeded,
            durationMs: 5,
            artifacts: [file],
            delivery: .transfer
        )
    }

    func connected() -> WorkerCore {
        var c = h.core()
        _ = c.start(now: t0)
        _ = c.onEnvelope(h.welcome(), now: t0)
        _ = c.onEnvelope(h.job(1), now: t0)
        return c
    }

    func fetch(_ name: String = "episode.mp4", offset: Int = 0, session: String = "s1") -> Envelope {
        Envelope(
            session: session,
            .artifactFetch(ArtifactFetch(episodeId: "episode_1", attempt: 1, name: name, offset: offset, length: 4))
        )
    }

    @Test("fetches are served from the kept folder; the ACK deletes it")
    func servedUntilAcknowledged() {
        var c = connected()
        let r = offer()
        #expect(h.sent(c.onFinished(r, files: "/spool/episode_1-attempt-1", now: t0)) == [.result(r)])
        #expect(c.awaitingAck == [r.ref])
        let served = c.onEnvelope(fetch(), now: t0)
        #expect(
            served == [
                .serveChunk(
                    ArtifactFetch(episodeId: "episode_1", attempt: 1, name: "episode.mp4", offset: 0, length: 4),
                    folder: "/spool/episode_1-attempt-1",
                    session: "s1"
                )
            ]
        )
        let acked = c.onEnvelope(
            Envelope(session: "s1", .artifactAck(ArtifactAck(episodeId: "episode_1", attempt: 1))),
            now: t0
        )
        #expect(acked.contains(.deleteFiles("/spool/episode_1-attempt-1")))
        #expect(c.awaitingAck.isEmpty && c.counters.artifactsDelivered == 1)
    }

    @Test("a fetch for a file not held is answered with an error chunk at once, not ignored")
    func unknownFetch() {
        var c = connected()
        _ = c.onFinished(offer(), files: "/spool/x", now: t0)
        for bad in [fetch("other.wav"), fetch(offset: 11)] {
            guard case .artifactChunk(let chunk) = h.sent(c.onEnvelope(bad, now: t0)).first else {
                Issue.record("expected an error chunk")
                continue
            }
            #expect(chunk.error != nil && chunk.data.isEmpty)
        }
        #expect(c.counters.fetchesRefused == 2)
    }

    @Test("unacknowledged offers survive a reconnect: listed in HELLO and offered again after WELCOME")
    func offeredAgainAfterReconnect() {
        var c = connected()
        let r = offer()
        _ = c.onFinished(r, files: "/spool/x", now: t0)
        _ = c.onTick(now: t0 + .seconds(3))  // coordinator silent: lost
        let again = c.onTick(now: t0 + .seconds(4))
        guard case .hello(let hello) = h.sent(again).first else {
            Issue.record("expected HELLO")
            return
        }
        #expect(hello.running == [r.ref])
        let welcome = c.onEnvelope(h.welcome("s2"), now: t0 + .seconds(4))
        #expect(h.sent(welcome) == [.result(r)])
        #expect(c.awaitingAck == [r.ref], "still kept until the ACK")
    }

    @Test("a CANCEL of an offered attempt deletes its files")
    func cancelDeletes() {
        var c = connected()
        _ = c.onFinished(offer(), files: "/spool/x", now: t0)
        let out = c.onEnvelope(Envelope(session: "s1", .cancel(Cancel(episodeId: "episode_1", attempt: 1))), now: t0)
        #expect(out.contains(.deleteFiles("/spool/x")))
        #expect(c.awaitingAck.isEmpty)
    }

    @Test("a draining worker waits for its files to be acknowledged before it says goodbye")
    func drainWaitsForTheAck() {
        var c = connected()
        _ = c.beginDrain(now: t0, grace: .seconds(30))
        let finished = c.onFinished(offer(), files: "/spool/x", now: t0)
        #expect(!finished.contains(.exit))
        let acked = c.onEnvelope(
            Envelope(session: "s1", .artifactAck(ArtifactAck(episodeId: "episode_1", attempt: 1))),
            now: t0
        )
        #expect(acked.contains(.deleteFiles("/spool/x")))
        #expect(acked.contains(.exit))
        #expect(h.sent(acked).contains { if case .disconnect = $0 { true } else { false } })
    }

    @Test("results without files leave the outbox once sent")
    func resultsWithoutFilesAreNotKept() {
        var c = connected()
        let r = EpisodeResult(episodeId: "episode_1", attempt: 1, status: .succeeded, durationMs: 5)
        #expect(h.sent(c.onFinished(r, files: nil, now: t0)) == [.result(r)])
        #expect(c.outbox.isEmpty)
    }
}

@Suite("Worker core: a transfer worker needs a minor-2 coordinator")
struct WorkerMinorTests {
    @Test("a WELCOME of minor 1 is not a registration for a worker that delivers by transfer")
    func oldCoordinatorIsRefused() {
        let h = WorkerCoreTests()
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
        settings.minimumCoordinatorMinor = 2
        var c = WorkerCore(settings: settings, now: h.t0, jitter: { $0 })
        _ = c.start(now: h.t0)
        let old = Welcome(
            session: "s1",
            heartbeatIntervalMs: 1000,
            liveness: 3,
            maxMessageBytes: 1 << 20,
            softwareVersion: "old",
            protocolMinor: 1
        )
        let out = c.onEnvelope(Envelope(session: "s1", .welcome(old)), now: h.t0)
        #expect(c.session == nil)
        #expect(
            out.contains {
                if case .log(.warning, _, let meta) = $0 {
                    return meta["reason"]?.contains("--artifacts shared") == true
                }
                return false
            }
        )
        #expect(c.onEnvelope(h.welcome(), now: h.t0).isEmpty || c.session == nil, "still backing off")
    }
}

import Protocol
import Testing

@testable import Coordinator

/// An episode whose attempt offers files is done only once they are stored (PROTOCOL §17).
@Suite("Dispatcher: episodes are done when their files are durable")
struct DispatcherArtifactTests {
    let h = DispatcherTests()
    var t0: ContinuousClock.Instant { h.t0 }
    let file = ArtifactFile(name: "episode.mp4", size: 3, sha256: String(repeating: "ab", count: 32))

    func offer(_ job: Job, session: String) -> Envelope {
        Envelope(
            session: session,
            .result(
                EpisodeResult(
                    episodeId: job.episodeId,
                    attempt: job.attempt,
                    status: .succeeded,
                    durationMs: 900,
                    artifacts: [file],
                    delivery: .transfer
                )
            )
        )
    }

    func sent(_ actions: [DispatchAction], to routing: [UInt8]) -> [Message] {
        actions.compactMap { if case .send(routing, let e) = $0 { return e.message } else { return nil } }
    }

    func storeId(_ actions: [DispatchAction]) -> Int? {
        actions.compactMap { if case .store(.begin(let id, _)) = $0 { return id } else { return nil } }.first
    }

    /// Delivers the one chunk and stores it; returns the publish's actions.
    func deliver(
        _ d: inout Dispatcher,
        _ actions: [DispatchAction],
        routing: [UInt8],
        session: String
    ) -> [DispatchAction] {
        let id = storeId(actions)!
        guard
            case .artifactFetch(let fetch) = sent(actions, to: routing).first(where: {
                if case .artifactFetch = $0 { true } else { false }
            })
        else {
            Issue.record("no fetch")
            return []
        }
        let chunk = ArtifactChunk(
            episodeId: fetch.episodeId,
            attempt: fetch.attempt,
            name: fetch.name,
            offset: 0,
            data: [1, 2, 3]
        )
        let write = d.onMessage(from: routing, Envelope(session: session, .artifactChunk(chunk)), now: t0)
        #expect(write.contains { if case .store(.write(id, _, 0, _, true)) = $0 { true } else { false } })
        let publish = d.onArtifactEvent(.fileStored(id: id, name: fetch.name), now: t0)
        #expect(publish.contains(.store(.publish(id: id, ref: fetch.ref))))
        return d.onArtifactEvent(.published(id: id), now: t0)
    }

    @Test("the episode succeeds at the publish, the ACK follows, and the files are recorded")
    func succeedsWhenStored() {
        var d = h.makeDispatcher(1)
        let (s, a) = h.join(&d, [1], "w1", at: t0)
        let job = h.jobs(a)[0]
        let offered = d.onMessage(from: [1], offer(job, session: s), now: t0)
        #expect(d.succeededCount == 0 && !d.isComplete)
        #expect(d.episodes[0].status == .running)
        #expect(d.workers[s]?.credit == 3, "a worker delivering files has its slot back")
        let done = deliver(&d, offered, routing: [1], session: s)
        #expect(d.succeededCount == 1 && d.isComplete)
        #expect(d.episodes[0].artifacts == [file])
        let succeededAt = done.firstIndex { if case .notice(.episodeSucceeded) = $0 { true } else { false } }
        let ackAt = done.firstIndex {
            if case .send([1], let e) = $0, case .artifactAck(let ack) = e.message { return ack.ref == job.ref }
            return false
        }
        #expect(succeededAt != nil && ackAt != nil && succeededAt! < ackAt!)
    }

    @Test(
        "a worker lost while its files travel: the episode is requeued, the incoming folder kept until it ends otherwise"
    )
    func lostDuringTransferIsRequeued() {
        var d = h.makeDispatcher(1)
        let (s1, a1) = h.join(&d, [1], "w1", episodes: 1, at: t0)
        let offered = d.onMessage(from: [1], offer(h.jobs(a1)[0], session: s1), now: t0)
        let id = storeId(offered)!
        let tick = d.onTick(now: t0 + .seconds(4))
        #expect(!tick.contains(.store(.discard(id: id))), "kept: the worker may come back and resume")
        #expect(d.succeededCount == 0 && d.counters.attemptsRequeued == 1)
        let (s2, a2) = h.join(&d, [2], "w2", episodes: 1, at: t0 + .seconds(4))
        #expect(h.jobs(a2).map(\.attempt) == [2])
        #expect(d.counters.artifacts.transfersAborted == 1)
        // Attempt 2 offers its files: the parked folder of attempt 1 is discarded.
        let second = d.onMessage(from: [2], offer(h.jobs(a2)[0], session: s2), now: t0 + .seconds(5))
        #expect(second.contains(.store(.discard(id: id))))
    }

    @Test("a second success while the first one's files travel is a duplicate, and its holder is told to drop them")
    func duplicateWhileCollecting() {
        var d = h.makeDispatcher(1)
        let (s1, a1) = h.join(&d, [1], "w1", episodes: 1, at: t0)
        let job1 = h.jobs(a1)[0]
        // w1 falls silent; the episode goes to w2; w1 comes back as a new session and offers attempt 1.
        _ = d.onTick(now: t0 + .seconds(4))
        let (s2, a2) = h.join(&d, [2], "w2", episodes: 1, at: t0 + .seconds(4))
        let job2 = h.jobs(a2)[0]
        let first = d.onMessage(from: [2], offer(job2, session: s2), now: t0 + .seconds(4))
        #expect(storeId(first) != nil)
        let back = d.onMessage(
            from: [3],
            Envelope(
                .hello(
                    {
                        var hello = h.hello("w1")
                        hello.running = [job1.ref]
                        return hello
                    }()
                )
            ),
            now: t0 + .seconds(4)
        )
        let s3 = back.compactMap { a -> String? in
            if case .send([3], let e) = a, case .welcome(let w) = e.message { return w.session }
            return nil
        }[0]
        let late = d.onMessage(from: [3], offer(job1, session: s3), now: t0 + .seconds(4))
        #expect(d.counters.duplicateResults == 1)
        #expect(sent(late, to: [3]).contains(.cancel(Cancel(episodeId: job1.episodeId, attempt: job1.attempt))))
        #expect(storeId(late) == nil, "nothing more is collected")
        _ = deliver(&d, first, routing: [2], session: s2)
        #expect(d.succeededCount == 1)
        _ = s1
    }

    @Test("a transfer given up fails the attempt (retried), and the worker is told to drop its files")
    func givenUpTransferFailsTheAttempt() {
        var d = h.makeDispatcher(1)
        let (s, a) = h.join(&d, [1], "w1", episodes: 1, at: t0)
        let job = h.jobs(a)[0]
        let offered = d.onMessage(from: [1], offer(job, session: s), now: t0)
        let id = storeId(offered)!
        let failed = d.onArtifactEvent(.failed(id: id, error: "disk full"), now: t0)
        #expect(sent(failed, to: [1]).contains(.cancel(Cancel(episodeId: job.episodeId, attempt: job.attempt))))
        #expect(h.jobs(failed).map(\.attempt) == [2], "retried as the next attempt")
        #expect(d.episodes[0].errors.last?.contains("artifacts: disk full") == true)
        #expect(d.counters.artifacts.transfersFailed == 1)
    }
}

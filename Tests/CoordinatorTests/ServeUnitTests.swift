import Foundation
import Logging
import Protocol
import Testing

@testable import Coordinator

/// The pieces of `coordinator serve` without sockets: batches loaded one after another into the same
/// dispatcher, attempt numbers fenced across batches, retiring workers, the journal's queue, the
/// control channel and the local pool's resizing.
@Suite struct ServeUnitTests {
    let t0 = ContinuousClock.now
    let base = DispatcherTests()

    func cancels(_ actions: [DispatchAction]) -> [Cancel] {
        actions.compactMap {
            if case .send(_, let env) = $0, case .cancel(let c) = env.message { return c }
            return nil
        }
    }

    @Test func aSecondBatchGoesToTheWorkersAlreadyConnected() {
        var d = base.makeDispatcher(2)
        let (session, joined) = base.join(&d, [1], "w1", episodes: 3, at: t0)
        for job in base.jobs(joined) { _ = d.onMessage(from: [1], base.result(job, session: session), now: t0) }
        #expect(d.isComplete)

        _ = d.load(batchId: "second", specs: base.specs(4), now: nil)
        #expect(!d.isComplete && d.batchId == "second" && d.pendingCount == 4)
        let jobs = base.jobs(d.dispatchPending(now: t0))
        #expect(jobs.map(\.batchId) == ["second", "second", "second"])
        #expect(jobs.allSatisfy { $0.attempt == 1 })
        #expect(d.workers.count == 1 && d.peakWorkers == 1)
    }

    @Test func anOldBatchsAttemptIsFencedOffTheNewBatchsEpisodeOfTheSameId() {
        var d = base.makeDispatcher(1)
        // Batch 1: episode_1 attempt 1 on w1, which then goes silent; the episode succeeds on w2 as attempt 2.
        let (s1, a1) = base.join(&d, [1], "w1", episodes: 1, at: t0)
        let stale = base.jobs(a1)[0]
        let later = t0 + d.settings.deadAfter + .seconds(1)
        _ = d.onTick(now: later)
        let (s2, a2) = base.join(&d, [2], "w2", episodes: 1, at: later)
        let retry = base.jobs(a2)[0]
        #expect(retry.attempt == 2)
        _ = d.onMessage(from: [2], base.result(retry, session: s2), now: later)
        #expect(d.isComplete)
        _ = s1

        // Batch 2 has an episode_1 too; its attempts are numbered above batch 1's.
        _ = d.load(batchId: "second", specs: base.specs(1), attemptFloors: ["episode_1": 2], now: nil)
        let fresh = base.jobs(d.dispatchPending(now: later))[0]
        #expect(fresh.attempt == 3)
        // w1 comes back announcing batch 1's attempt 1: cancelled, not taken for batch 2's episode.
        let hello = Hello(
            workerId: "w1",
            instance: "inst-w1",
            host: "h",
            pid: 1,
            capacity: Capacity(episodes: 1, apiCalls: 5),
            softwareVersion: "test",
            running: [JobRef(episodeId: "episode_1", attempt: stale.attempt)]
        )
        let back = d.onMessage(from: [3], Envelope(.hello(hello)), now: later)
        #expect(cancels(back).map(\.attempt) == [1])
        let s3 = d.workers.values.first { $0.hello.workerId == "w1" }!.session
        _ = d.onMessage(from: [3], base.result(stale, session: s3), now: later)
        #expect(!d.isComplete && d.episode("episode_1")?.status == .running)
        // The batch's own attempt decides; the episode took one attempt of this batch.
        _ = d.onMessage(from: [2], base.result(fresh, session: s2), now: later)
        #expect(d.isComplete && d.episode("episode_1")?.attemptsUsed == 1)
    }

    @Test func maxAttemptsCountsOnlyThisBatchsAttempts() {
        var d = base.makeDispatcher(0, maxAttempts: 2)
        _ = d.load(batchId: "b2", specs: base.specs(1), attemptFloors: ["episode_1": 7], now: nil)
        let (session, joined) = base.join(&d, [1], "w1", episodes: 1, at: t0)
        let first = base.jobs(joined)[0]
        #expect(first.attempt == 8)
        let retry = base.jobs(d.onMessage(from: [1], base.result(first, .failed, session: session), now: t0))[0]
        #expect(retry.attempt == 9 && d.episode("episode_1")?.status == .running)
        _ = d.onMessage(from: [1], base.result(retry, .failed, session: session), now: t0)
        #expect(d.episode("episode_1")?.status == .failed && d.episode("episode_1")?.attemptsUsed == 2)
    }

    @Test func aRetiringWorkerGetsNoJobsAndIsBusyUntilItsAttemptsEnd() {
        var d = base.makeDispatcher(6)
        let (session, joined) = base.join(&d, [1], "local-2", episodes: 2, at: t0)
        let running = base.jobs(joined)
        #expect(running.count == 2)
        let notices = d.retire(workerId: "local-2")
        #expect(notices.count == 1 && d.retire(workerId: "local-2").isEmpty)
        #expect(d.isBusy(workerId: "local-2"))
        let after = d.onMessage(from: [1], base.result(running[0], session: session), now: t0)
        #expect(base.jobs(after).isEmpty, "a retiring worker is given nothing new")
        _ = d.onMessage(from: [1], base.result(running[1], session: session), now: t0)
        #expect(!d.isBusy(workerId: "local-2") && !d.isBusy(workerId: "nobody"))
        #expect(d.succeededCount == 2 && d.pendingCount == 4)
    }

    @Test func theJournalKeepsTheQueueInOrderAndTheAttemptFloors() throws {
        let dir = try JournalUnitTests().tempDir()
        let journal = try Journal(directory: dir)
        let specs = DispatcherTests().specs(2)
        try journal.enqueue(Batch(id: "q1", episodes: specs))
        try journal.enqueue(Batch(id: "q2", episodes: specs + DispatcherTests().specs(3).suffix(1)))
        #expect(try journal.queuedBatches().map(\.id) == ["q1", "q2"])
        #expect(try journal.queuedBatches()[1].episodes.count == 3)
        #expect(try journal.unfinishedBatch() == nil, "queued is not running")

        // q1 starts and ends with episode_1 at attempt 3.
        var episodes = specs.enumerated().map { EpisodeRecord(index: $0, id: $1.id!, spec: $1) }
        try journal.begin(batchId: "q1", episodes: episodes)
        #expect(try journal.queuedBatches().map(\.id) == ["q2"])
        #expect(try journal.unfinishedBatch()?.id == "q1")
        episodes[0].attempts = 3
        episodes[0].status = .succeeded
        episodes[1].attempts = 1
        episodes[1].status = .failed
        for e in episodes { journal.record(e) }
        try journal.flush(counters: DispatchCounters(), status: .completed)

        #expect(try journal.attemptFloors(excluding: "q2") == ["episode_1": 3, "episode_2": 1])
        let finished = try journal.finishedBatches()
        #expect(finished.map(\.id) == ["q1"])
        #expect(finished.first?.succeeded == 1 && finished.first?.failed == 1 && finished.first?.episodes == 2)

        // A reopened journal reads the same, and keeps the attempt base of a restored episode.
        var q2 = episodes.map { EpisodeRecord(index: $0.index, id: $0.id, spec: $0.spec) }
        q2[0].attempts = 4
        q2[0].attemptBase = 3
        try journal.begin(batchId: "q2", episodes: q2)
        let reopened = try Journal(directory: dir)
        #expect(try reopened.unfinishedBatch()?.episodes.first?.attemptBase == 3)
    }

    @Test func theControlChannelAnswersEveryRequestOnce() async {
        let control = ControlChannel()
        let loop = Task {
            for await request in control.requests {
                if case .submit(_, let episodes, let reply) = request {
                    reply(.success(BatchListing(id: "x", state: .queued, episodes: episodes.count)))
                    reply(.failure(.conflict("a second answer is ignored")))
                    return
                }
            }
        }
        let answer = await control.submit(id: nil, episodes: DispatcherTests().specs(2))
        #expect(answer == .success(BatchListing(id: "x", state: .queued, episodes: 2)))
        await loop.value
        // Nobody reads any more: closing answers the waiting request, and later ones at once.
        async let waiting = control.scale(workers: 3)
        try? await Task.sleep(for: .milliseconds(50))
        control.close()
        #expect(await waiting == .failure(.unavailable("the coordinator is stopping")))
        #expect(await control.scale(workers: 1) == .failure(.unavailable("the coordinator is stopping")))
    }

    @Test func theLocalPoolGrowsAtOnceAndRetiresTheHighestSlots() async throws {
        let dir = try JournalUnitTests().tempDir()
        let script = dir.appendingPathComponent("fake-worker")
        try "#!/bin/sh\nexec sleep 600\n".write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        let pool = LocalWorkerPool(
            settings: .init(count: 2, executable: script.path, endpoint: "tcp://127.0.0.1:1", arguments: []),
            logger: Logger(label: "test")
        )
        let running = Task { await pool.run() }
        for _ in 0..<100 where pool.snapshot.active < 2 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(pool.snapshot == .init(target: 2, active: 2, retiring: 0))
        #expect(pool.resize(to: 4).isEmpty)
        #expect(pool.snapshot == .init(target: 4, active: 4, retiring: 0))
        #expect(pool.resize(to: 1) == [2, 3, 4])
        #expect(pool.snapshot == .init(target: 1, active: 1, retiring: 3))
        // Retired slots are not reused while they drain: growing again takes fresh numbers.
        #expect(pool.resize(to: 2).isEmpty)
        #expect(pool.snapshot == .init(target: 2, active: 2, retiring: 3))
        for slot in [2, 3, 4] { pool.stop(slot: slot) }
        for _ in 0..<500 where pool.snapshot.retiring > 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(pool.snapshot == .init(target: 2, active: 2, retiring: 0))
        #expect(pool.workerId(slot: 5).hasSuffix("-local-5"))
        running.cancel()
        await running.value
        #expect(pool.snapshot.active == 0, "every worker stopped with the pool")
    }
}

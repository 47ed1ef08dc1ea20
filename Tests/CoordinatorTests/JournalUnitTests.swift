import Foundation
import Protocol
import Shared
import Testing

@testable import Coordinator

/// The journal on a real SQLite file in a temporary folder.
@Suite struct JournalUnitTests {
    func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "reelfarm-journal-\(UUID().uuidString.prefix(8))"
        )
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    func episodes(_ n: Int) -> [EpisodeRecord] {
        (0..<n).map {
            EpisodeRecord(index: $0, id: "episode_\($0 + 1)", spec: EpisodeSpec(topic: "topic \($0 + 1)", scenes: 3))
        }
    }

    @Test func aBatchSurvivesReopeningWithEveryEpisodesState() throws {
        let dir = try tempDir()
        var counters = DispatchCounters()
        counters.attemptsRequeued = 2
        do {
            let journal = try Journal(directory: dir)
            var eps = episodes(3)
            try journal.begin(batchId: "b1", episodes: eps)
            eps[0].status = .succeeded
            eps[0].attempts = 2
            eps[0].workerId = "w1"
            eps[0].durationMs = 1234
            eps[0].errors = ["attempt 1 on w2 lost: no heartbeat"]
            eps[0].placeholders = [Placeholder(stage: .scenes, item: "scene_2", reason: "HTTP 503")]
            eps[1].status = .running
            eps[1].attempts = 1
            journal.record(eps[0])
            journal.record(eps[1])
            journal.event(.succeeded, episode: "episode_1", attempt: 2, worker: "w1")
            try journal.flush(counters: counters)
            #expect(journal.stats.flushes == 1 && journal.stats.episodeWrites == 2 && journal.stats.events == 1)
        }
        let reopened = try Journal(directory: dir)
        let stored = try #require(try reopened.unfinishedBatch())
        #expect(stored.id == "b1")
        #expect(stored.counters.attemptsRequeued == 2)
        #expect(stored.episodes.map(\.status) == [.succeeded, .running, .pending])
        #expect(stored.episodes[0].attempts == 2)
        #expect(stored.episodes[0].workerId == "w1")
        #expect(stored.episodes[0].durationMs == 1234)
        #expect(stored.episodes[0].errors.count == 1)
        #expect(stored.episodes[0].placeholders.first?.item == "scene_2")
        #expect(stored.episodes[2].spec == EpisodeSpec(topic: "topic 3", scenes: 3))
    }

    @Test func recentBudgetedCallsAreReadBackForARestartedCoordinator() throws {
        let dir = try tempDir()
        let journal = try Journal(directory: dir)
        try journal.begin(batchId: "b1", episodes: episodes(1))
        let now = Date()
        journal.leaseStarted(provider: "image", count: 2, at: now.addingTimeInterval(-0.3))
        journal.leaseStarted(provider: "llm", count: 1, at: now.addingTimeInterval(-5))
        try journal.flush(counters: DispatchCounters())
        let recent = try Journal(directory: dir).recentStarts(within: .seconds(1), now: now)
        #expect(recent["image"]?.count == 2)
        #expect(recent["image"]?.allSatisfy { (290...310).contains($0) } == true, "\(recent)")
        #expect(recent["llm"] == nil)
        // Seeded into a fresh lease manager, they fill the window.
        var settings = LeaseSettings()
        settings.budgets = [ProviderBudget(provider: "image", requests: 2)]
        var leases = LeaseManager(settings: settings)
        leases.workerJoined(session: "w1", recentCalls: [:], now: ContinuousClock.now)
        leases.seed(recentCalls: recent, now: ContinuousClock.now)
        let actions = leases.onMessage(
            .leaseRequest(LeaseRequest(requestId: "r", provider: "image")),
            session: "w1",
            priority: 0,
            now: ContinuousClock.now
        )
        #expect(!actions.contains { if case .send(_, .leaseGrant) = $0 { true } else { false } })
    }

    /// `serve --max-spend-per-day` after a restart: what the batches completed today cost, and only those.
    @Test func whatTheBatchesCompletedTodayCostIsReadBack() throws {
        let dir = try tempDir()
        let journal = try Journal(directory: dir)
        for (batch, cost, status) in [
            ("done-1", 120_000, BatchState.completed), ("done-2", 30_000, .completed), ("open", 500_000, nil),
        ] {
            var eps = episodes(2)
            try journal.begin(batchId: batch, episodes: eps)
            for i in eps.indices {
                eps[i].status = .succeeded
                eps[i].costMicros = cost / 2
                journal.record(eps[i])
            }
            try journal.flush(counters: DispatchCounters(), status: status)
        }
        let today = String(Timestamp.now().prefix(10))
        #expect(try journal.spentByBatchesCompleted(on: today) == 150_000)
        #expect(try journal.spentByBatchesCompleted(on: "2001-01-01") == 0)
    }

    @Test func aCompletedBatchIsNotResumed() throws {
        let dir = try tempDir()
        let journal = try Journal(directory: dir)
        try journal.begin(batchId: "b1", episodes: episodes(1))
        try journal.flush(counters: DispatchCounters(), status: .completed)
        #expect(try journal.unfinishedBatch() == nil)
        #expect(try journal.batches().map(\.status) == ["completed"])
    }

    @Test func theRestoredDispatcherKeepsFinishedEpisodesAndHoldsInFlightOnes() {
        var restored = episodes(3)
        restored[0].status = .succeeded
        restored[0].attempts = 1
        restored[1].status = .running
        restored[1].attempts = 2
        let t0 = ContinuousClock.now
        var d = Dispatcher(
            batchId: "b1",
            restored: restored,
            counters: DispatchCounters(),
            settings: DispatchSettings(),
            holdUntil: t0 + .seconds(3),
            makeSession: { "s1" }
        )
        #expect(d.succeededCount == 1)
        #expect(d.pendingCount == 2)
        let hello = Hello(
            workerId: "w",
            instance: "i",
            host: "h",
            pid: 1,
            capacity: Capacity(episodes: 3, apiCalls: 5),
            softwareVersion: "t"
        )
        let joined = d.onMessage(from: [1], Envelope(.hello(hello)), now: t0)
        let sent = joined.compactMap { a -> Job? in
            if case .send(_, let e) = a, case .job(let j) = e.message { return j }
            return nil
        }
        // Only the never-started episode goes out; the one in flight waits for its worker.
        #expect(sent.map(\.episodeId) == ["episode_3"])
        _ = d.onMessage(from: [1], Envelope(session: "s1", .heartbeat(Heartbeat())), now: t0 + .milliseconds(2900))
        let later = d.onTick(now: t0 + .seconds(3))
        let resent = later.compactMap { a -> Job? in
            if case .send(_, let e) = a, case .job(let j) = e.message { return j }
            return nil
        }
        // Nobody re-announced it: it goes out again as attempt 3 (its old attempt 2 stays fenced).
        #expect(resent.map(\.episodeId) == ["episode_2"])
        #expect(resent.first?.attempt == 3)
    }

    @Test func aReconnectingWorkerReadoptsItsAttemptAfterARestart() {
        var restored = episodes(1)
        restored[0].status = .running
        restored[0].attempts = 1
        let t0 = ContinuousClock.now
        var d = Dispatcher(
            batchId: "b1",
            restored: restored,
            counters: DispatchCounters(),
            settings: DispatchSettings(),
            holdUntil: t0 + .seconds(3),
            makeSession: { "s1" }
        )
        var hello = Hello(
            workerId: "w",
            instance: "i",
            host: "h",
            pid: 1,
            capacity: Capacity(episodes: 1, apiCalls: 5),
            softwareVersion: "t"
        )
        hello.running = [JobRef(episodeId: "episode_1", attempt: 1)]
        _ = d.onMessage(from: [1], Envelope(.hello(hello)), now: t0 + .seconds(1))
        #expect(d.counters.attemptsReadopted == 1)
        let result = EpisodeResult(episodeId: "episode_1", attempt: 1, status: .succeeded, durationMs: 5)
        _ = d.onMessage(from: [1], Envelope(session: "s1", .result(result)), now: t0 + .seconds(2))
        #expect(d.succeededCount == 1)
        #expect(d.isComplete)
    }
}

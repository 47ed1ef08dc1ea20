import Foundation
import Protocol
import Shared
import Testing

@testable import Coordinator

/// Journal write throughput, printed, not asserted (real timings belong in benchmarks):
/// `REELFARM_JOURNAL_BENCHMARK=1 swift test --filter JournalBenchmark`.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["REELFARM_JOURNAL_BENCHMARK"] == "1"))
struct JournalBenchmark {
    @Test(arguments: [1, 100])
    func stateChangesPerSecond(changesPerFlush: Int) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "reelfarm-journal-bench-\(UUID().uuidString.prefix(8))"
        )
        defer { try? FileManager.default.removeItem(at: dir) }
        let journal = try Journal(directory: dir)
        let count = 20_000
        var episodes = (0..<count).map {
            EpisodeRecord(index: $0, id: "episode_\($0 + 1)", spec: EpisodeSpec(topic: "t"))
        }
        try journal.begin(batchId: "bench", episodes: episodes)
        let started = ContinuousClock.now
        for i in 0..<count {
            episodes[i].status = .succeeded
            episodes[i].attempts = 1
            episodes[i].workerId = "w\(i % 4)"
            journal.record(episodes[i])
            journal.event(.succeeded, episode: episodes[i].id, attempt: 1, worker: episodes[i].workerId)
            if (i + 1) % changesPerFlush == 0 { try journal.flush(counters: DispatchCounters()) }
        }
        try journal.flush(counters: DispatchCounters())
        let elapsed = ContinuousClock.now - started
        let rate = Double(count) / elapsed.secondsDouble
        print(
            "journal: \(count) episode state changes, \(changesPerFlush) per transaction: \(elapsed.secondsText), \(Int(rate)) changes/s"
        )
    }
}

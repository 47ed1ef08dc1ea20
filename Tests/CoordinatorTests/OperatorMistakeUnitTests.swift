import Crypto
import Foundation
import Protocol
import Shared
import Testing

@testable import Coordinator

#if canImport(Glibc)
import Glibc
#endif

/// Issue 15 ("nothing lost, nothing done twice — also under operator mistakes"): the pure parts of the
/// state lock, the summary rewrite, the output cross-check and the disk check.
@Suite struct OperatorMistakeUnitTests {
    func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "reelfarm-mistakes-\(UUID().uuidString.prefix(8))"
        )
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    func episodes(_ n: Int) -> [EpisodeRecord] {
        (0..<n).map {
            EpisodeRecord(index: $0, id: "episode_\($0 + 1)", spec: EpisodeSpec(topic: "topic \($0 + 1)", scenes: 3))
        }
    }

    static func sha256(_ data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// Writes a finished episode folder the way a worker publishes one: files and a manifest with their digests.
    static func writeEpisode(_ folder: URL, id: String, attempt: Int = 1, corrupt: Bool = false) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let video = Data("video of \(id)".utf8)
        try video.write(to: folder.appendingPathComponent("episode.mp4"))
        let digest = corrupt ? String(repeating: "0", count: 64) : sha256(video)
        let manifest = """
            {"batch_id": "b", "episode_id": "\(id)", "attempt": \(attempt), "title": "t", "created_at": "2026-01-01T00:00:00.000Z",
             "render": {"provider": "ffmpeg"},
             "assets": [{"item": "episode", "kind": "video", "file": "episode.mp4", "provider": "ffmpeg",
                         "placeholder": false, "sha256": "\(digest)"}]}
            """
        try Data(manifest.utf8).write(to: folder.appendingPathComponent("manifest.json"))
    }

    // MARK: - Item 1

    @Test func item1TwoCoordinatorsOnOneStateFolderTheSecondLockFailsNamingTheHoldersPID() throws {
        let dir = try tempDir()
        do {
            let first = try StateLock(directory: dir)
            // flock belongs to the open file: a second open in the same process conflicts like another process.
            do {
                _ = try StateLock(directory: dir)
                Issue.record("a second lock on the same --state was granted")
            } catch let held as StateLock.Held {
                #expect(held.pid == getpid())
                #expect(held.description.contains("PID \(getpid())"))
            }
            #expect(
                try String(contentsOf: dir.appendingPathComponent(StateLock.fileName), encoding: .utf8)
                    .trimmingCharacters(in: .whitespacesAndNewlines) == "\(getpid())"
            )
            withExtendedLifetime(first) {}
        }
        // Released with its holder (the kernel does the same when a process dies).
        #expect(throws: Never.self) { _ = try StateLock(directory: dir) }
    }

    // MARK: - Item 3

    @Test func item3SigkillAfterTheJournalSaysCompletedSummaryAndReportAreRewrittenFromTheJournal() throws {
        let state = try tempDir()
        let output = try tempDir()
        let journal = try Journal(directory: state)
        var eps = episodes(3)
        try journal.begin(batchId: "b", episodes: eps)
        eps[0].status = .succeeded
        eps[1].status = .succeeded
        eps[2].status = .failed
        eps[2].errors = ["boom"]
        for e in eps { journal.record(e) }
        try journal.flush(counters: DispatchCounters(), status: .completed)
        // The coordinator died here: nothing in the output folder.
        #expect(SummaryRewrite.isMissing(batchId: "b", output: output))
        let summary = try #require(try SummaryRewrite.rewrite(journal: journal, batchId: "b", output: output))
        #expect(summary.totals.succeeded == 2 && summary.totals.failed == 1 && summary.totals.episodes == 3)
        #expect(summary.status == "completed_with_failures")
        #expect(!SummaryRewrite.isMissing(batchId: "b", output: output))
        let json =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: output.appendingPathComponent("b/summary.json"))
            ) as? [String: Any]
        #expect(json?["batch_id"] as? String == "b")
        #expect(try SummaryRewrite.rewrite(journal: journal, batchId: "nope", output: output) == nil)
    }

    // MARK: - Item 4

    @Test func item4JournalDamageFinishedEpisodesOnDiskThatTheJournalLostAreFound() throws {
        let output = try tempDir()
        let tag = "/var/lib/reelfarm/state"
        let batch = output.appendingPathComponent("b")
        try Self.writeEpisode(batch.appendingPathComponent("episode_1"), id: "episode_1", attempt: 2)
        try Self.writeEpisode(batch.appendingPathComponent("episode_2"), id: "episode_2")
        try Self.writeEpisode(batch.appendingPathComponent("episode_3"), id: "episode_3", corrupt: true)
        try Self.writeEpisode(batch.appendingPathComponent("episode_4"), id: "episode_4")
        // Not a batch of this journal: never looked at.
        try Self.writeEpisode(output.appendingPathComponent("other/episode_1"), id: "episode_1")
        try OutputCheck.writeMarker(batchDir: output.appendingPathComponent("other"), stateTag: "/elsewhere")
        try OutputCheck.writeMarker(batchDir: batch, stateTag: tag)

        // A zero-length or replaced journal: it knows no batch at all.
        var findings = OutputCheck.findings(output: output, stateTag: tag, statuses: [:]) { _ in [:] }
        #expect(findings.count == 1)
        #expect(findings.first?.journalStatus == nil)
        #expect(findings.first?.lost.map(\.id) == ["episode_1", "episode_2", "episode_4"])
        #expect(findings.first?.lost.first?.attempt == 2)
        #expect(findings.first?.lost.first?.files.map(\.name) == ["episode.mp4", "manifest.json"])
        let message = try #require(
            OutputCheck.refusal(findings, stateDir: "state", output: output, runningBatch: nil)
        )
        #expect(message.contains("episode_1, episode_2, episode_4"))
        #expect(message.contains("--batch-id b --rebuild-journal"))

        // A truncated WAL: the batch is there, with episodes back to pending or running.
        findings = OutputCheck.findings(output: output, stateTag: tag, statuses: ["b": "running"]) { _ in
            ["episode_1": "succeeded", "episode_2": "pending", "episode_4": "running"]
        }
        #expect(findings.first?.lost.map(\.id) == ["episode_2"])
        #expect(findings.first?.running.map(\.id) == ["episode_4"])
        #expect(
            OutputCheck.refusal(findings, stateDir: "state", output: output, runningBatch: "b")?
                .contains("same command again with --rebuild-journal") == true
        )
        // Finished batches are not checked.
        #expect(OutputCheck.findings(output: output, stateTag: tag, statuses: ["b": "completed"]) { _ in [:] }.isEmpty)
    }

    @Test func item4AdoptedEpisodesAreRecordedAsSucceededWithTheirFiles() throws {
        let state = try tempDir()
        let journal = try Journal(directory: state)
        var eps = episodes(2)
        try journal.begin(batchId: "b", episodes: eps)
        eps[0].status = .succeeded
        eps[0].attempts = 1
        eps[0].artifacts = [ArtifactFile(name: "episode.mp4", size: 3, sha256: String(repeating: "a", count: 64))]
        try journal.adopt(batchId: "b", episodes: [eps[0]])
        let stored = try #require(try Journal(directory: state).unfinishedBatch())
        #expect(stored.episodes.map(\.status) == [.succeeded, .pending])
        #expect(stored.episodes[0].artifacts.map(\.name) == ["episode.mp4"])
        #expect(try journal.eventCounts(batchId: "b", event: "adopted") == ["episode_1": 1])
    }

    // MARK: - Item 5

    @Test func item5UnwritableOrFullOutputFolderDecision() throws {
        #expect(DiskSpace.decide(path: "/o", writeError: nil, free: 2 << 30, minimum: 1 << 30) == .ok)
        #expect(
            DiskSpace.decide(path: "/o", writeError: nil, free: 100 << 20, minimum: 1 << 30)
                == .tooLittle(path: "/o", free: 100 << 20, minimum: 1 << 30)
        )
        // 0 turns the free-space check off; a write error always wins.
        #expect(DiskSpace.decide(path: "/o", writeError: nil, free: 0, minimum: 0) == .ok)
        #expect(
            DiskSpace.decide(path: "/o", writeError: "Read-only file system", free: 5 << 30, minimum: 0)
                == .unwritable(path: "/o", reason: "Read-only file system")
        )
        let message = try #require(
            DiskSpace.decide(path: "/o", writeError: nil, free: 100 << 20, minimum: 1 << 30).message
        )
        #expect(
            message.contains("100.0 MiB free") && message.contains("1.0 GiB") && message.contains("--min-free-space")
        )
        #expect(try DiskSpace.parse("1GiB") == 1 << 30)
        #expect(try DiskSpace.parse("500MiB") == 500 << 20)
        #expect(try DiskSpace.parse("2G") == 2 << 30)
        #expect(try DiskSpace.parse("1GB") == 1_000_000_000)
        #expect(try DiskSpace.parse("0") == 0)
        #expect(try DiskSpace.parse("4096") == 4096)
        #expect(throws: ConfigurationError.self) { try DiskSpace.parse("lots") }
        #expect(throws: ConfigurationError.self) { try DiskSpace.parse("-1G") }
        // A real folder: writable, some space.
        let dir = try tempDir()
        #expect(DiskSpace.check(dir, minimum: 1) == .ok)
        #expect((try FileManager.default.contentsOfDirectory(atPath: dir.path)).isEmpty)
    }

    @Test func item5DiskFullMidBatchPausesStoringAndRetriesWithoutFailingTheAttempt() throws {
        let t0 = ContinuousClock.now
        var settings = ArtifactSettings()
        settings.diskFullRetry = .seconds(5)
        var collector = ArtifactCollector(settings: settings)
        func offer(_ episode: String) -> EpisodeResult {
            EpisodeResult(
                episodeId: episode,
                attempt: 1,
                status: .succeeded,
                durationMs: 10,
                artifacts: [ArtifactFile(name: "episode.mp4", size: 4, sha256: String(repeating: "a", count: 64))],
                delivery: .transfer
            )
        }
        func begins(_ outputs: [ArtifactCollector.Output]) -> [Int] {
            outputs.compactMap { if case .store(.begin(let id, _)) = $0 { return id } else { return nil } }
        }
        var out = collector.begin(offer("e1"), session: "s", now: t0)
        let first = try #require(begins(out).first)
        let fetch = try #require(
            out.compactMap { if case .fetch(_, let f) = $0 { return f } else { return nil } }.first
        )
        out = collector.onChunk(
            ArtifactChunk(episodeId: "e1", attempt: 1, name: fetch.name, offset: 0, data: [1, 2, 3, 4]),
            session: "s",
            now: t0
        )
        // The disk is full while writing: the partial files go, the attempt is NOT failed, storing pauses.
        out = collector.onEvent(.noSpace(id: first, error: "No space left on device"), now: t0)
        #expect(out.contains(.store(.discard(id: first))))
        #expect(out.contains(.diskFull(error: "No space left on device")))
        #expect(!out.contains { if case .failed = $0 { return true } else { return false } })
        #expect(collector.isDiskFull)
        #expect(collector.counters.transfersFailed == 0)
        // Another finished episode waits; nothing starts before the retry.
        #expect(begins(collector.begin(offer("e2"), session: "s", now: t0 + .seconds(1))).isEmpty)
        #expect(begins(collector.onTick(now: t0 + .seconds(2))).isEmpty)
        // A late chunk of the paused transfer is dropped quietly.
        #expect(
            collector.onChunk(
                ArtifactChunk(episodeId: "e1", attempt: 1, name: "episode.mp4", offset: 0, data: [1, 2, 3, 4]),
                session: "s",
                now: t0 + .seconds(2)
            ).isEmpty
        )
        // The retry: one transfer (the paused one, first in line) tries again.
        out = collector.onTick(now: t0 + .seconds(6))
        let retry = try #require(begins(out).first)
        #expect(begins(out).count == 1 && retry != first)
        // Still full: said once, retried later.
        out = collector.onEvent(.noSpace(id: retry, error: "No space left on device"), now: t0 + .seconds(6))
        #expect(!out.contains(.diskFull(error: "No space left on device")))
        out = collector.onTick(now: t0 + .seconds(12))
        let again = try #require(begins(out).first)
        // Space is back: the file is stored, storing resumes for the rest.
        out = collector.onChunk(
            ArtifactChunk(episodeId: "e1", attempt: 1, name: "episode.mp4", offset: 0, data: [1, 2, 3, 4]),
            session: "s",
            now: t0 + .seconds(12)
        )
        out = collector.onEvent(.fileStored(id: again, name: "episode.mp4"), now: t0 + .seconds(13))
        #expect(out.contains(.diskSpaceBack(pausedFor: .seconds(13))))
        #expect(begins(out).count == 1, "the waiting transfer of e2 starts")
        #expect(!collector.isDiskFull)
    }
}

import Crypto
import Foundation
import Protocol
import Shared
import Testing

@testable import Coordinator

#if canImport(Glibc)
import Glibc
#endif

/// Issue 15 ("nothing lost, nothing done twice — also under operator mistakes"): the pure parts.
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

import Foundation
import Protocol

/// `OUTPUT/<batch>/summary.json`: the batch's outcome, one entry per episode in submission order.
struct BatchSummary: Codable, Sendable, Equatable {
    struct Episode: Codable, Sendable, Equatable {
        var id: String
        var topic: String
        var status: String
        var attempts: Int
        var worker: String?
        /// Worker-side duration of the successful attempt, in seconds.
        var durationSeconds: Double?
        var apiCalls: Int
        var placeholders: [Placeholder]
        var errors: [String]
        /// The episode's video relative to the batch folder, when it is in this coordinator's output
        /// folder (local workers, or a shared filesystem).
        var video: String?
    }

    struct Totals: Codable, Sendable, Equatable {
        var episodes: Int
        var succeeded: Int
        var failed: Int
        /// Episodes that never finished (the coordinator was stopped).
        var unfinished: Int
        var attempts: Int
        var placeholders: Int
        var apiCalls: Int
    }

    var batchId: String
    var status: String
    var startedAt: String
    var finishedAt: String
    var wallSeconds: Double
    var workersSeen: Int
    var slotsAtEnd: Int
    var totals: Totals
    var counters: DispatchCounters
    var episodes: [Episode]

    init(
        dispatcher: Dispatcher,
        batchDir: URL,
        startedAt: Date,
        finishedAt: Date,
        wallSeconds: Double,
        workersSeen: Int,
        slots: Int
    ) {
        let episodes = dispatcher.episodes.map { e in
            let video = "\(e.id)/episode.mp4"
            let hasVideo =
                e.status == .succeeded
                && FileManager.default.fileExists(atPath: batchDir.appendingPathComponent(video).path)
            return Episode(
                id: e.id,
                topic: e.spec.topic,
                status: e.isFinished ? e.status.rawValue : "unfinished",
                attempts: e.attempts,
                worker: e.workerId,
                durationSeconds: e.durationMs.map { Double($0) / 1000 },
                apiCalls: e.apiCalls,
                placeholders: e.placeholders,
                errors: e.errors,
                video: hasVideo ? video : nil
            )
        }
        let succeeded = episodes.count { $0.status == "succeeded" }
        let failed = episodes.count { $0.status == "failed" }
        self.batchId = dispatcher.batchId
        self.status =
            succeeded == episodes.count
            ? "succeeded" : (dispatcher.isComplete ? "completed_with_failures" : "interrupted")
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        self.startedAt = iso.string(from: startedAt)
        self.finishedAt = iso.string(from: finishedAt)
        self.wallSeconds = (wallSeconds * 1000).rounded() / 1000
        self.workersSeen = workersSeen
        self.slotsAtEnd = slots
        self.totals = Totals(
            episodes: episodes.count,
            succeeded: succeeded,
            failed: failed,
            unfinished: episodes.count - succeeded - failed,
            attempts: episodes.reduce(0) { $0 + $1.attempts },
            placeholders: episodes.reduce(0) { $0 + $1.placeholders.count },
            apiCalls: episodes.reduce(0) { $0 + $1.apiCalls }
        )
        self.counters = dispatcher.counters
        self.episodes = episodes
    }

    /// Writes the summary atomically (temporary file, then rename) as pretty, snake_case JSON.
    func write(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(self)
        try data.write(to: directory.appendingPathComponent("summary.json"), options: .atomic)
    }
}

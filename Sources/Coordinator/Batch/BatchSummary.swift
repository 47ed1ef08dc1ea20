import Foundation
import Protocol
import Shared

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
        /// Files of the episode stored in its folder (0 for simulated episodes, which keep none).
        var files: Int = 0
        /// Seconds from the batch's first dispatch to this episode's first dispatch, and to its end.
        var dispatchedAfterSeconds: Double?
        var finishedAfterSeconds: Double?
    }

    /// One provider's budget over the batch (leased mode), or a provider without a budget whose circuit is
    /// open (`limit` "no budget").
    struct Budget: Codable, Sendable, Equatable {
        var limit: String
        var requested: Int
        var granted: Int
        var started: Int
        var returned: Int
        var refused: Int
        /// Provider signals reported by workers, by kind (`rate_limited`, `concurrency_limited`, …).
        var signals: [String: Int]
        var pauses: Int
        var decreases: Int
        var slotsReclaimed: Int
        var meanWaitMs: Double
        var maxWaitMs: Int
        /// The most calls the coordinator heard started within any one window of the budget.
        var maxStartedInWindow: Int
        var circuitOpen: Bool
        /// Why the circuit is open (`auth_failed: …`, `quota_exceeded: …`); absent while it is closed.
        var circuitReason: String?
    }

    /// Figures derived from the episodes' times.
    struct Timing: Codable, Sendable, Equatable {
        /// First dispatch to the last episode's end.
        var makespanSeconds: Double
        /// First dispatch to the first successful episode.
        var firstFinishedSeconds: Double?
        /// Mean of (end − first dispatch) over succeeded episodes.
        var meanEpisodeLatencySeconds: Double?
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
    var budgetMode: String?
    var budgets: [String: Budget]
    var timing: Timing?
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
        let origin = dispatcher.episodes.compactMap(\.firstDispatchedAt).min()
        func seconds(_ t: ContinuousClock.Instant?) -> Double? {
            guard let t, let origin else { return nil }
            return ((t - origin).secondsDouble * 1000).rounded() / 1000
        }
        let episodes = dispatcher.episodes.map { e in
            let video = "\(e.id)/episode.mp4"
            let hasVideo =
                e.status == .succeeded
                && FileManager.default.fileExists(atPath: batchDir.appendingPathComponent(video).path)
            return Episode(
                id: e.id,
                topic: e.spec.topic,
                status: e.isFinished ? e.status.rawValue : "unfinished",
                attempts: e.attemptsUsed,
                worker: e.workerId,
                durationSeconds: e.durationMs.map { Double($0) / 1000 },
                apiCalls: e.apiCalls,
                placeholders: e.placeholders,
                errors: e.errors,
                video: hasVideo ? video : nil,
                files: e.status == .succeeded ? e.artifacts.count : 0,
                dispatchedAfterSeconds: seconds(e.firstDispatchedAt),
                finishedAfterSeconds: seconds(e.finishedAt)
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
        let leases = dispatcher.leases
        self.budgetMode = leases.settings.isEmpty ? nil : leases.settings.mode.rawValue
        var budgets: [String: Budget] = [:]
        // In local mode the workers keep their own counts; the coordinator has none to report.
        for budget in leases.settings.budgets where leases.settings.mode == .leased {
            let stats = leases.stats[budget.provider] ?? LeaseManager.ProviderStats()
            budgets[budget.provider] = Budget(
                limit: CoordinatorService.describe(budget),
                requested: stats.requested,
                granted: stats.granted,
                started: stats.started,
                returned: stats.returned,
                refused: stats.refused,
                signals: stats.signals,
                pauses: stats.pauses,
                decreases: stats.decreases,
                slotsReclaimed: stats.slotsReclaimed,
                meanWaitMs: (stats.meanWaitMs * 10).rounded() / 10,
                maxWaitMs: stats.maxWaitMs,
                maxStartedInWindow: stats.maxStartedInWindow,
                circuitOpen: stats.circuitOpen,
                circuitReason: leases.circuits[budget.provider]?.reason
            )
        }
        // A billing, quota or auth error opens a provider's circuit with or without a budget.
        for (provider, circuit) in leases.circuits where budgets[provider] == nil {
            let stats = leases.stats[provider] ?? LeaseManager.ProviderStats()
            budgets[provider] = Budget(
                limit: leases.settings.budgets.first { $0.provider == provider }.map(CoordinatorService.describe)
                    ?? "no budget",
                requested: stats.requested,
                granted: 0,
                started: 0,
                returned: 0,
                refused: stats.refused,
                signals: stats.signals,
                pauses: 0,
                decreases: 0,
                slotsReclaimed: 0,
                meanWaitMs: 0,
                maxWaitMs: 0,
                maxStartedInWindow: 0,
                circuitOpen: true,
                circuitReason: circuit.reason
            )
        }
        self.budgets = budgets
        let ends = episodes.compactMap(\.finishedAfterSeconds)
        let succeededEnds = episodes.filter { $0.status == "succeeded" }.compactMap(\.finishedAfterSeconds)
        self.timing =
            ends.isEmpty
            ? nil
            : Timing(
                makespanSeconds: ends.max() ?? 0,
                firstFinishedSeconds: succeededEnds.min(),
                meanEpisodeLatencySeconds: succeededEnds.isEmpty
                    ? nil
                    : ((episodes.filter { $0.status == "succeeded" }.compactMap { e in
                        e.finishedAfterSeconds.map { $0 - (e.dispatchedAfterSeconds ?? 0) }
                    }.reduce(0, +) / Double(succeededEnds.count)) * 1000).rounded() / 1000
            )
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

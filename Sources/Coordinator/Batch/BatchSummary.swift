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
        /// What the episode's reported calls cost, every attempt's, in micro-dollars (US$ × 10⁶).
        var costMicros: Int? = nil
    }

    /// One provider's budget over the batch (leased mode), or a provider without a budget whose circuit is
    /// open (`limit` "no budget").
    struct Budget: Codable, Sendable, Equatable {
        /// The limits leased at the end of the batch: the configured ones, lowered by what was learned.
        var limit: String
        /// The configured budget (`--budget`), `nil` when none.
        var configured: String?
        /// What the provider told of its limits (headers, 429s), `nil` when nothing or not learning.
        var learned: String?
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
    /// Set when more than 10 % of the batch's assets are placeholders (absent otherwise).
    var placeholderWarning: PlaceholderWarning?
    /// What the batch's calls cost (issue 16): absent in summaries written before it was counted.
    var spend: Spend?
    var episodes: [Episode]

    /// What the batch's reported calls cost, at the workers' price tables.
    struct Spend: Codable, Sendable, Equatable {
        /// Micro-dollars (US$ × 10⁶).
        var totalMicros: Int
        /// The same for people, e.g. `$0.1342`.
        var total: String
        /// Micro-dollars by provider kind (`llm`, `tts`, `image`), for this run of the coordinator.
        var byProviderMicros: [String: Int]
        /// Calls whose cost is known (offline calls count, at $0).
        var pricedCalls: Int
        /// Calls of models without a price in the worker's table: their cost is not in the total.
        var unpricedCalls: Int
        /// `--max-spend` in micro-dollars, and for people; absent without a cap.
        var capMicros: Int? = nil
        var cap: String? = nil
        /// Episodes the cap stopped (not started, or whose script call their allowance could not cover).
        var cappedEpisodes: Int? = nil
        /// Calls answered from the asset store instead of a provider (this run of the coordinator), and
        /// what they would have cost; absent when the store answered none.
        var reusedCalls: Int? = nil
        var savedMicros: Int? = nil
        var saved: String? = nil
        /// `serve --max-spend-per-day`, and what batches completed earlier the same UTC day spent.
        var dailyCap: String? = nil
        var spentEarlierToday: String? = nil
    }

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
                finishedAfterSeconds: seconds(e.finishedAt),
                costMicros: e.costMicros
            )
        }
        let succeeded = episodes.count { $0.status == "succeeded" }
        let failed = episodes.count { $0.status == "failed" }
        let capped = episodes.count { $0.status == "capped" }
        self.batchId = dispatcher.batchId
        self.status =
            succeeded == episodes.count
            ? "succeeded"
            : (!dispatcher.isComplete ? "interrupted" : capped > 0 ? "capped" : "completed_with_failures")
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
            unfinished: episodes.count - succeeded - failed - capped,
            attempts: episodes.reduce(0) { $0 + $1.attempts },
            placeholders: episodes.reduce(0) { $0 + $1.placeholders.count },
            apiCalls: episodes.reduce(0) { $0 + $1.apiCalls }
        )
        self.counters = dispatcher.counters
        // Episodes keep their costs across a resume (journal); the split by provider is this run's.
        let totalMicros = episodes.reduce(0) { $0 + ($1.costMicros ?? 0) }
        self.spend = Spend(
            totalMicros: totalMicros,
            total: PriceTable.dollars(totalMicros),
            byProviderMicros: dispatcher.spend.byProvider,
            pricedCalls: dispatcher.spend.pricedCalls,
            unpricedCalls: dispatcher.spend.unpricedCalls,
            capMicros: dispatcher.spendCap?.capMicros,
            cap: dispatcher.spendCap.map { PriceTable.dollars($0.capMicros) },
            cappedEpisodes: dispatcher.spendCap == nil ? nil : capped,
            reusedCalls: dispatcher.spend.reusedCalls > 0 ? dispatcher.spend.reusedCalls : nil,
            savedMicros: dispatcher.spend.reusedCalls > 0 ? dispatcher.spend.savedMicros : nil,
            saved: dispatcher.spend.reusedCalls > 0 ? PriceTable.dollars(dispatcher.spend.savedMicros) : nil,
            dailyCap: dispatcher.settings.dailySpendCapMicros.map(PriceTable.dollars),
            spentEarlierToday: dispatcher.settings.dailySpendCapMicros == nil
                ? nil : PriceTable.dollars(dispatcher.spentEarlierToday)
        )
        let leases = dispatcher.leases
        self.budgetMode = leases.settings.isEmpty && leases.learners.isEmpty ? nil : leases.settings.mode.rawValue
        var budgets: [String: Budget] = [:]
        // In local mode the workers keep their own counts; the coordinator has none to report.
        for (provider, ledger) in leases.ledgers where leases.settings.mode == .leased {
            let stats = leases.stats[provider] ?? LeaseManager.ProviderStats()
            let budget = ledger.settings.budget
            budgets[budget.provider] = Budget(
                limit: LeaseManager.describe(budget),
                configured: leases.settings.budgets.first { $0.provider == provider }.map(LeaseManager.describe),
                learned: leases.learners[provider]?.learnedDescription,
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
                limit: leases.settings.budgets.first { $0.provider == provider }.map(LeaseManager.describe)
                    ?? "no budget",
                configured: nil,
                learned: nil,
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
        self.placeholderWarning = PlaceholderWarning(episodes: episodes)
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

/// `placeholder_warning` in summary.json, the batch's closing warning and the banner of report.html: the
/// batch is largely made of stand-ins (offline cards, espeak voices), and why.
///
/// **Assets** are the voice clips, scene images and B-roll images of the episodes that succeeded (a failed
/// episode delivers none). RESULT carries no count of them, so each succeeded episode counts its API calls
/// minus one script call per attempt: every voice line and image is one call of the pipeline (a
/// placeholder's too, whatever the HTTP retries), and the script is one call per attempt. An episode that
/// needed several attempts may count a few more or fewer (calls of a failed attempt, an attempt lost with
/// its worker); never fewer than its placeholders.
struct PlaceholderWarning: Codable, Sendable, Equatable {
    /// Placeholders of one stage with the same reason (its first ``reasonLength`` characters, so request
    /// ids and the like further on do not split a cause).
    struct Cause: Codable, Sendable, Equatable {
        /// `voices`, `scenes` or `broll`.
        var stage: String
        var reason: String
        var count: Int
    }

    /// Placeholders ÷ assets, 0…1, to three decimals.
    var share: Double
    var placeholders: Int
    var assets: Int
    /// The most common causes first, at most ``maxCauses``.
    var causes: [Cause]

    /// More than this share of placeholders warns.
    static let threshold = 0.10
    static let reasonLength = 80
    static let maxCauses = 5

    /// The warning for these episodes, or `nil` when at most `threshold` of their assets are placeholders.
    init?(episodes: [BatchSummary.Episode], threshold: Double = Self.threshold) {
        let delivered = episodes.filter { $0.status == EpisodeRecord.Status.succeeded.rawValue }
        let placeholders = delivered.reduce(0) { $0 + $1.placeholders.count }
        let assets = delivered.reduce(0) { $0 + max($1.placeholders.count, $1.apiCalls - $1.attempts) }
        guard assets > 0, Double(placeholders) > Double(assets) * threshold else { return nil }
        struct Key: Hashable {
            var stage: String
            var reason: String
        }
        var counts: [Key: Int] = [:]
        var order: [Key] = []
        for placeholder in delivered.flatMap(\.placeholders) {
            var reason = String(placeholder.reason.prefix(Self.reasonLength))
            if placeholder.reason.count > Self.reasonLength { reason += "…" }
            let key = Key(stage: placeholder.stage.rawValue, reason: reason)
            if counts[key] == nil { order.append(key) }
            counts[key, default: 0] += 1
        }
        // Most common first; ties in the order they first appeared (pipeline order within an episode).
        let ranked = order.enumerated().sorted { a, b in
            let (ca, cb) = (counts[a.element] ?? 0, counts[b.element] ?? 0)
            return ca != cb ? ca > cb : a.offset < b.offset
        }
        self.share = (Double(placeholders) / Double(assets) * 1000).rounded() / 1000
        self.placeholders = placeholders
        self.assets = assets
        self.causes = ranked.prefix(Self.maxCauses).map {
            Cause(stage: $0.element.stage, reason: $0.element.reason, count: counts[$0.element] ?? 0)
        }
    }

    /// `⚠ 37 of 120 assets (31%) are placeholders — most common cause: voices "quota exceeded …" (30), …`
    var line: String {
        let percent = Int((Double(placeholders) / Double(max(1, assets)) * 100).rounded())
        let top = causes.prefix(3).map { "\($0.stage) \"\($0.reason)\" (\($0.count))" }
        return "⚠ \(placeholders) of \(assets) assets (\(percent)%) are placeholders"
            + (top.isEmpty ? "" : " — most common cause: " + top.joined(separator: ", "))
    }
}

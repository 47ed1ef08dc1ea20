import Foundation
import Protocol
import Testing

@testable import Coordinator

/// When a batch is largely placeholders the coordinator says so: the closing warning line,
/// `placeholder_warning` in summary.json and the banner of report.html.
@Suite struct PlaceholderWarningTests {
    func episode(
        _ id: String,
        status: String = "succeeded",
        attempts: Int = 1,
        apiCalls: Int,
        placeholders: [Placeholder] = []
    ) -> BatchSummary.Episode {
        BatchSummary.Episode(
            id: id,
            topic: "t",
            status: status,
            attempts: attempts,
            worker: "w",
            durationSeconds: 1,
            apiCalls: apiCalls,
            placeholders: placeholders,
            errors: []
        )
    }

    func voices(_ n: Int, _ reason: String) -> [Placeholder] {
        (1...n).map { Placeholder(stage: .voices, item: "line_\($0)", reason: reason) }
    }

    @Test func upToTenPercentIsQuietAndMoreWarns() {
        // 1 script call + 10 assets per episode.
        #expect(PlaceholderWarning(episodes: [episode("a", apiCalls: 11, placeholders: voices(1, "x"))]) == nil)
        #expect(PlaceholderWarning(episodes: [episode("a", apiCalls: 11)]) == nil)
        #expect(PlaceholderWarning(episodes: []) == nil)
        let warning = PlaceholderWarning(episodes: [episode("a", apiCalls: 11, placeholders: voices(2, "x"))])
        #expect(warning?.placeholders == 2)
        #expect(warning?.assets == 10)
        #expect(warning?.share == 0.2)
    }

    @Test func assetsAreTheCallsOfSucceededEpisodesLessOneScriptCallPerAttempt() {
        let warning = PlaceholderWarning(episodes: [
            episode("a", apiCalls: 11, placeholders: voices(3, "quota")),
            // Two attempts: two script calls.
            episode("b", attempts: 2, apiCalls: 12),
            // A failed episode delivers no assets (and keeps no placeholders).
            episode("c", status: "failed", attempts: 3, apiCalls: 30),
            episode("d", status: "unfinished", apiCalls: 0),
            // Never fewer assets than placeholders.
            episode("e", apiCalls: 1, placeholders: voices(2, "quota")),
        ])
        #expect(warning?.assets == 10 + 10 + 2)
        #expect(warning?.placeholders == 5)
        #expect(warning?.share == 0.227)
    }

    @Test func causesAreGroupedByStageAndTheStartOfTheReasonMostCommonFirst() throws {
        let long = String(repeating: "quota exceeded (HTTP 429 insufficient_quota) ", count: 2)
        let tts = [
            Placeholder(stage: .voices, item: "line_1", reason: long + "request req_1"),
            Placeholder(stage: .voices, item: "line_2", reason: long + "request req_2"),
            Placeholder(stage: .voices, item: "line_3", reason: long + "request req_3"),
        ]
        let images = [
            Placeholder(stage: .scenes, item: "scene_1", reason: "model_not_found"),
            Placeholder(stage: .broll, item: "broll_1", reason: "model_not_found"),
            Placeholder(stage: .scenes, item: "scene_2", reason: "model_not_found"),
        ]
        let warning = try #require(
            PlaceholderWarning(episodes: [
                episode("a", apiCalls: 21, placeholders: images + tts),
                episode("b", apiCalls: 21),
            ])
        )
        let trimmed = String(long.prefix(80)) + "…"
        #expect(
            warning.causes == [
                PlaceholderWarning.Cause(stage: "voices", reason: trimmed, count: 3),
                PlaceholderWarning.Cause(stage: "scenes", reason: "model_not_found", count: 2),
                PlaceholderWarning.Cause(stage: "broll", reason: "model_not_found", count: 1),
            ]
        )
        #expect(
            warning.line
                == "⚠ 6 of 40 assets (15%) are placeholders — most common cause: voices \"\(trimmed)\" (3), "
                + "scenes \"model_not_found\" (2), broll \"model_not_found\" (1)"
        )
    }

    @Test func theSummaryAndTheReportCarryTheWarning() throws {
        let counter = Counter()
        var d = Dispatcher(
            batchId: "b",
            specs: EpisodeSpecs([EpisodeSpec(topic: "t1", id: "e1"), EpisodeSpec(topic: "t2", id: "e2")]),
            settings: DispatchSettings(),
            makeSession: { counter.next() }
        )
        let hello = Hello(
            workerId: "w",
            instance: "i",
            host: "h",
            pid: 1,
            capacity: Capacity(episodes: 2, apiCalls: 5),
            softwareVersion: "t"
        )
        let now = ContinuousClock.now
        _ = d.onMessage(from: [1], Envelope(.hello(hello)), now: now)
        let reason = "tts: quota exceeded <b>(HTTP 429 insufficient_quota)</b>"
        for (id, placeholders) in [("e1", voices(4, reason)), ("e2", [Placeholder]())] {
            let result = EpisodeResult(
                episodeId: id,
                attempt: 1,
                status: .succeeded,
                durationMs: 10,
                placeholders: placeholders,
                apiCalls: 9
            )
            _ = d.onMessage(from: [1], Envelope(session: "s1", .result(result)), now: now)
        }
        #expect(d.isComplete)
        let summary = BatchSummary(
            dispatcher: d,
            batchDir: FileManager.default.temporaryDirectory,
            startedAt: Date(),
            finishedAt: Date(),
            wallSeconds: 1,
            workersSeen: 1,
            slots: 2
        )
        let warning = try #require(summary.placeholderWarning)
        #expect(warning.placeholders == 4 && warning.assets == 16)

        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let json = try #require(
            try JSONSerialization.jsonObject(with: encoder.encode(summary)) as? [String: Any]
        )
        let object = try #require(json["placeholder_warning"] as? [String: Any])
        #expect(object["share"] as? Double == 0.25)
        #expect(object["placeholders"] as? Int == 4 && object["assets"] as? Int == 16)
        let causes = try #require(object["causes"] as? [[String: Any]])
        #expect(causes.first?["stage"] as? String == "voices" && causes.first?["count"] as? Int == 4)

        let html = BatchReport.html(summary: summary, rates: [])
        let section = try #require(html.range(of: "id=\"placeholder-warning\""))
        // At the top: before the timeline.
        let timeline = try #require(html.range(of: "<h2>Timeline"))
        #expect(section.lowerBound < timeline.lowerBound)
        #expect(html.contains("4 of 16 assets (25%) are placeholders"))
        // The reason as text, never as markup.
        #expect(html.contains("quota exceeded &lt;b&gt;(HTTP 429 insufficient&#95;quota)&lt;/b&gt;"))
        #expect(!html.contains("__WARNING__"))

        var quiet = summary
        quiet.placeholderWarning = nil
        #expect(!BatchReport.html(summary: quiet, rates: []).contains("placeholder-warning"))
    }
}

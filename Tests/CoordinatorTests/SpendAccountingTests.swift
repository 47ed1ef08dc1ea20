import Foundation
import Protocol
import Testing

@testable import Coordinator

/// What the workers report their calls cost reaches the episode, the batch's totals, the status API and
/// `/metrics` (issue 16 part 2), once per attempt.
@Suite struct SpendAccountingTests {
    private func result(_ job: Job, session: String, costs: [(String, Int?)]) -> Envelope {
        var seq: UInt64 = 0
        let trace = costs.flatMap { name, cost -> [TraceEvent] in
            seq += 2
            return [
                TraceEvent(seq: seq - 1, event: .callStart, name: name),
                TraceEvent(seq: seq, event: .callEnd, name: name, costMicros: cost),
            ]
        }
        return Envelope(
            session: session,
            .result(
                EpisodeResult(
                    episodeId: job.episodeId,
                    attempt: job.attempt,
                    status: .succeeded,
                    durationMs: 1000,
                    apiCalls: costs.count,
                    trace: trace
                )
            )
        )
    }

    @Test func costsAddUpByEpisodeAndProviderAndAResentResultCountsOnce() throws {
        let h = DispatcherTests()
        var d = h.makeDispatcher(3)
        let (s, a) = h.join(&d, [1], "w1", episodes: 3, at: h.t0)
        let jobs = h.jobs(a)
        let first = result(
            jobs[0],
            session: s,
            costs: [("llm:script", 1820), ("tts:line_1", 3000), ("image:scene_1", 11426)]
        )
        _ = d.onMessage(from: [1], first, now: h.t0 + .seconds(1))
        // The same RESULT again (a worker that reconnected sends what it holds): fenced, not paid twice.
        _ = d.onMessage(from: [1], first, now: h.t0 + .seconds(1))
        _ = d.onMessage(
            from: [1],
            result(jobs[1], session: s, costs: [("llm:script", 2000), ("image:scene_1", nil)]),
            now: h.t0 + .seconds(2)
        )

        #expect(d.episode("episode_1")?.costMicros == 16246)
        #expect(d.episode("episode_2")?.costMicros == 2000)
        #expect(d.episode("episode_3")?.costMicros == 0)
        #expect(d.spend.totalMicros == 18246)
        #expect(d.spend.byProvider == ["llm": 3820, "tts": 3000, "image": 11426])
        #expect(d.spend.unpricedCalls == 1)
        #expect(d.spend.pricedCalls == 4)

        let status = d.fleetStatus(state: .running, now: h.t0 + .seconds(2))
        #expect(status.spend?.totalMicros == 18246)
        #expect(status.spend?.total == "$0.0182")
        #expect(status.episodes.map(\.costMicros) == [16246, 2000, nil])

        let m = FleetMetrics()
        m.update(status)
        m.update(status)
        let text = String(decoding: m.exposition(), as: UTF8.self)
        #expect(text.contains(#"reelfarm_spend_total{provider="image"} 0.011426"#), "\(text)")
        #expect(text.contains(#"reelfarm_spend_total{provider="llm"} 0.00382"#), "\(text)")

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("spend-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let summary = BatchSummary(
            dispatcher: d,
            batchDir: dir,
            startedAt: Date(),
            finishedAt: Date(),
            wallSeconds: 2,
            workersSeen: 1,
            slots: 3
        )
        #expect(summary.spend?.totalMicros == 18246)
        #expect(summary.spend?.unpricedCalls == 1)
        #expect(summary.episodes.map(\.costMicros) == [16246, 2000, 0])
    }
}

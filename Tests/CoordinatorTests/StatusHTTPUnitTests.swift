import Protocol
import Shared
import Testing

@testable import Coordinator

@Suite("HTTP side: --http parsing, metrics from the published status")
struct StatusHTTPUnitTests {
    @Test("--http takes off, PORT or HOST:PORT and names itself when wrong")
    func parse() throws {
        #expect(try StatusServer.parse("off") == nil)
        #expect(try StatusServer.parse("9000")! == ("127.0.0.1", 9000))
        #expect(try StatusServer.parse("0.0.0.0:8090")! == ("0.0.0.0", 8090))
        for bad in ["", "x", "host:", ":80", "1:2:3", "70000"] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try StatusServer.parse(bad) }
        }
    }

    @Test("metrics follow the status: gauges set, counters advance by what changed")
    func metrics() {
        let h = DispatcherTests()
        var d = h.makeDispatcher(3)
        let (s, a) = h.join(&d, [1], "w1", episodes: 2, at: h.t0)
        let m = FleetMetrics()
        m.update(d.fleetStatus(state: .running, now: h.t0))
        _ = d.onMessage(from: [1], h.result(h.jobs(a)[0], session: s), now: h.t0 + .seconds(3))
        m.episodeFinished(after: .seconds(3))
        m.update(d.fleetStatus(state: .running, now: h.t0 + .seconds(3)))
        m.update(d.fleetStatus(state: .running, now: h.t0 + .seconds(3)))
        let text = String(decoding: m.exposition(), as: UTF8.self)
        #expect(text.contains(#"reelfarm_episodes{state="succeeded"} 1.0"#), "\(text)")
        #expect(text.contains(#"reelfarm_episodes{state="running"} 2.0"#))
        #expect(text.contains("reelfarm_workers 1.0") && text.contains("reelfarm_slots 2.0"))
        #expect(text.contains("reelfarm_episode_duration_seconds_count 1"), "recorded once, when it succeeded")
        let status = d.fleetStatus(state: .running, now: h.t0 + .seconds(3))
        #expect(status.episodes.map(\.status) == ["succeeded", "running", "running"])
        #expect(status.workers.first?.heartbeatAgeMs == 0)
    }

    @Test("a big batch's status lists in flight, latest finished and next queued, not every episode")
    func recentEpisodes() {
        let h = DispatcherTests()
        var d = h.makeDispatcher(500)
        let (s, a) = h.join(&d, [1], "w1", episodes: 3, at: h.t0)
        for job in h.jobs(a).prefix(2) {
            _ = d.onMessage(from: [1], h.result(job, session: s), now: h.t0 + .seconds(1))
        }
        let now = h.t0 + .seconds(2)
        // Running 2, 3, 4 (refilled after 0 and 1 succeeded); then 1, the latest to finish.
        var status = d.fleetStatus(state: .running, now: now, episodes: .recent(limit: 4))
        #expect(status.episodes.map(\.id) == ["episode_2", "episode_3", "episode_4", "episode_5"])
        #expect(status.episodes.map(\.status) == ["succeeded", "running", "running", "running"])
        #expect(status.episodeList == .init(view: "recent", listed: 4, total: 500, limit: 4))
        #expect(status.progress.succeeded == 2 && status.progress.running == 3 && status.progress.pending == 495)
        #expect(status.progress.elapsedSeconds == 2)
        // The default: then the next in the queue, up to 100, in batch order.
        status = d.fleetStatus(state: .running, now: now)
        #expect(status.episodes.map(\.id) == (1...100).map { "episode_\($0)" })
        status = d.fleetStatus(state: .running, now: now, episodes: .page(offset: 490, limit: 20))
        #expect(status.episodes.map(\.id) == (491...500).map { "episode_\($0)" })
        #expect(status.episodeList?.offset == 490 && status.episodeList?.nextOffset == nil)
        status = d.fleetStatus(state: .running, now: now, episodes: .page(offset: 0, limit: 50))
        #expect(status.episodes.count == 50 && status.episodeList?.nextOffset == 50)
        status = d.fleetStatus(state: .running, now: now, episodes: .page(offset: .max, limit: 1000))
        #expect(status.episodes.isEmpty && status.episodeList?.nextOffset == nil, "past the end, no overflow")
        #expect(d.fleetStatus(state: .running, now: now, episodes: .all).episodes.count == 500)
        #expect(d.fleetStatus(state: .running, now: now, episodes: .none).episodes.isEmpty)
    }

    @Test("GET /api/status selects its episodes with episodes=, offset= and limit=")
    func selectionQuery() throws {
        typealias S = EpisodeSelection
        #expect(try S.parse(episodes: nil, offset: nil, limit: nil) == .standard)
        #expect(try S.parse(episodes: "recent", offset: nil, limit: "7") == .recent(limit: 7))
        #expect(try S.parse(episodes: nil, offset: nil, limit: "7") == .recent(limit: 7))
        #expect(try S.parse(episodes: nil, offset: "5", limit: nil) == .page(offset: 5, limit: 100))
        #expect(try S.parse(episodes: nil, offset: "5", limit: "1000") == .page(offset: 5, limit: 1000))
        #expect(try S.parse(episodes: "all", offset: nil, limit: nil) == .all)
        #expect(try S.parse(episodes: "none", offset: nil, limit: nil) == .none)
        for (episodes, offset, limit) in [
            ("every", nil, nil), ("all", "0", nil), ("none", nil, "3"), ("recent", "2", nil), (nil, nil, "0"),
            (nil, nil, "1001"), (nil, "-1", nil), (nil, "x", nil),
        ] as [(String?, String?, String?)] {
            #expect(throws: ControlError.self, "\(episodes ?? "-") \(offset ?? "-") \(limit ?? "-")") {
                try S.parse(episodes: episodes, offset: offset, limit: limit)
            }
        }
    }

    @Test("the episode table finds ids and keeps its counts as records change")
    func episodeTable() {
        let specs = DispatcherTests().specs(1000)
        var records = specs.enumerated().map { EpisodeRecord(index: $0, id: $1.id!, spec: $1) }
        records.append(EpisodeRecord(index: 1000, id: "episode_7", spec: specs[6]))
        var table = EpisodeTable(records)
        #expect(table.position(of: "episode_1") == 0 && table.position(of: "episode_1000") == 999)
        #expect(table.position(of: "episode_7") == 1000, "a later record of the same id wins")
        #expect(table.position(of: "episode_1001") == nil && table.position(of: "") == nil)
        #expect(table.counts == .init(pending: 1001))
        table[3].status = .running
        table[4].status = .running
        table[4].status = .failed
        table[5].status = .succeeded
        #expect(table.counts == .init(pending: 998, running: 1, succeeded: 1, failed: 1))
        #expect(table.running == [3] && Array(table.recentlyFinished) == [4, 5])
    }
}

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
        m.update(d.fleetStatus(state: "running", now: h.t0))
        _ = d.onMessage(from: [1], h.result(h.jobs(a)[0], session: s), now: h.t0 + .seconds(3))
        m.update(d.fleetStatus(state: "running", now: h.t0 + .seconds(3)))
        m.update(d.fleetStatus(state: "running", now: h.t0 + .seconds(3)))
        let text = String(decoding: m.exposition(), as: UTF8.self)
        #expect(text.contains(#"reelfarm_episodes{state="succeeded"} 1.0"#), "\(text)")
        #expect(text.contains(#"reelfarm_episodes{state="running"} 2.0"#))
        #expect(text.contains("reelfarm_workers 1.0") && text.contains("reelfarm_slots 2.0"))
        #expect(text.contains("reelfarm_episode_duration_seconds_count 1"), "recorded once, not per update")
        let status = d.fleetStatus(state: "running", now: h.t0 + .seconds(3))
        #expect(status.episodes.map(\.status) == ["succeeded", "running", "running"])
        #expect(status.workers.first?.heartbeatAgeMs == 0)
    }
}

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 14 item 5 with the real binaries: an authentication error opens the stage's circuit for the whole
/// fleet without any budget configured, so a bad key costs the calls already in flight, not one per line.
@Suite(.serialized) struct CircuitTests {
    @Test func aBadKeyWithoutABudgetOpensTheCircuitForEveryWorkerAtOnce() async throws {
        let dir = try Harness.tempDir("circuit")
        let out = dir.appendingPathComponent("output")
        // 6 speech lines per episode, 36 in the batch; every one would be a 401.
        let config = """
            {"script_lines": 6, "script_broll": 1, "script_narration": false,
             "elevenlabs": {"api_keys": ["xi-the-real-key"], "latency_ms": 200, "max_concurrent": null}}
            """
        guard let (mock, base) = try await EpisodeFileTests.startMock(in: dir, config: config) else { return }
        defer { mock.signal(SIGTERM) }
        var environment = BudgetTests.environment(base)
        environment["MAX_PARALLEL_EPISODES"] = "2"
        environment["MAX_PARALLEL_API_CALLS"] = "2"
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--workers", "2", "--episodes", "6", "--bind", "tcp://127.0.0.1:*", "--output", out.path,
                "--batch-id", "circuit",
            ],
            environment: environment,
            cwd: dir
        )
        #expect(await coordinator.wait(timeout: .seconds(180)) == 0, "log:\n\(coordinator.log.suffix(6000))")
        let log = coordinator.log
        let lines = log.split(separator: "\n").filter { $0.contains("circuit OPEN for the whole fleet") }
        #expect(lines.count == 1, "log:\n\(log.suffix(6000))")
        #expect(lines.first?.contains("tts: authentication failed") == true)
        #expect(lines.first?.contains("ELEVENLABS_API_KEY") == true)

        // At most the calls in flight when the first 401 came back (2 workers × 2 episodes × 2 calls).
        let stats = try await EpisodeFileTests.http("GET", "\(base)/stats")
        let requests = (stats["elevenlabs"] as? [String: Any])?["requests"] as? Int ?? -1
        print("circuit: ElevenLabs saw \(requests) requests for 36 lines")
        #expect((1...8).contains(requests), "ElevenLabs saw \(requests) requests for 36 lines")

        let data = try Data(contentsOf: out.appendingPathComponent("circuit/summary.json"))
        let summary = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let budgets = summary["budgets"] as? [String: Any] ?? [:]
        let tts = budgets["tts"] as? [String: Any] ?? [:]
        #expect(tts["circuit_open"] as? Bool == true, "\(budgets)")
        // Every voice is a placeholder: the batch says so, naming the cause.
        let warning = summary["placeholder_warning"] as? [String: Any]
        #expect(warning != nil, "\(summary.keys.sorted())")
    }
}

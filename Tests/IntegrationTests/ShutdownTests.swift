import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Graceful worker shutdown with the real binaries: SIGTERM drains, the grace period hands work back,
/// a second signal exits at once.
@Suite(.serialized) struct ShutdownTests {
    /// A coordinator waiting for remote workers, and one worker `w1` with two slots.
    func start(
        _ name: String,
        latency: String,
        workerArgs: [String] = []
    ) async throws -> (URL, Child, Child, String)? {
        let dir = try Harness.tempDir(name)
        let out = dir.appendingPathComponent("output")
        let env = ["REELFARM_SIM_LATENCY": latency]
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--workers", "0", "--episodes", "4", "--bind", "tcp://127.0.0.1:*", "--output", out.path,
                "--batch-id", name, "--heartbeat-ms", "250",
            ],
            environment: env,
            cwd: dir
        )
        guard let endpoint = await coordinator.boundEndpoint() else { return nil }
        let worker = try Child(
            name: "worker-1",
            executable: Harness.workerPath,
            arguments: ["--connect", endpoint, "--worker-id", "w1", "--max-parallel-episodes", "2"] + workerArgs,
            environment: env,
            cwd: dir
        )
        guard await worker.waitForLog(within: .seconds(60), "w1 running episodes", { $0.contains("Writing script") })
        else { return nil }
        return (out, coordinator, worker, endpoint)
    }

    func second(_ endpoint: String, in out: URL, latency: String) throws -> Child {
        try Child(
            name: "worker-2",
            executable: Harness.workerPath,
            arguments: ["--connect", endpoint, "--worker-id", "w2", "--max-parallel-episodes", "2"],
            environment: ["REELFARM_SIM_LATENCY": latency],
            cwd: out.deletingLastPathComponent()
        )
    }

    func counters(_ out: URL, _ batch: String) throws -> [String: Any] {
        let data = try Data(contentsOf: out.appendingPathComponent("\(batch)/summary.json"))
        return (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["counters"] as? [String: Any] ?? [:]
    }

    @Test func sigtermLetsRunningEpisodesFinishThenTheWorkerLeaves() async throws {
        // A slow script call: the signal must land while w1's first episodes run, also when a loaded CI
        // machine takes seconds between the "Writing script" line and the signal (a 300 ms script call
        // let all four episodes finish before SIGTERM once).
        let latency = "llm=5000,tts=200,image=400,render=200"
        guard let (out, coordinator, w1, endpoint) = try await start("drain", latency: latency) else { return }
        w1.signal(SIGTERM)
        #expect(await w1.wait(timeout: .seconds(60)) == 0, "w1 log:\n\(w1.log.suffix(4000))")
        #expect(w1.log.contains("draining"))
        #expect(coordinator.log.contains("worker draining"))
        let w2 = try second(endpoint, in: out, latency: latency)
        defer { w2.signal(SIGKILL) }
        #expect(await coordinator.wait(timeout: .seconds(120)) == 0, "log:\n\(coordinator.log.suffix(6000))")
        let summary = try Summary.load(out, batch: "drain")
        #expect(summary.totals.succeeded == 4)
        // w1 finished what it had started (how many depends on when the signal landed), started nothing
        // after it began draining, and nothing was handed back or run twice.
        let byW1 = summary.episodes.filter { $0.worker == "w1" }
        #expect(
            !byW1.isEmpty && byW1.allSatisfy { $0.attempts == 1 },
            "\(summary.episodes.map { ($0.id, $0.worker ?? "-", $0.attempts) })"
        )
        // An episode the worker had started just before the signal may log its first line after the
        // drain line; the drain line names the running episodes, and only those may appear after it.
        let drainLine = w1.log.split(separator: "\n").first { $0.contains("draining:") }.map(String.init) ?? ""
        let runningAtDrain = Set(
            (drainLine.firstMatch(of: /episodes=([A-Za-z0-9_,.-]*)/)?.1).map {
                $0.split(separator: ",").map(String.init)
            }
                ?? []
        )
        let afterDrain = w1.log.components(separatedBy: "draining:").dropFirst().joined()
        let startedAfter = Set(
            afterDrain.split(separator: "\n").filter { $0.contains("Writing script") }.compactMap {
                $0.firstMatch(of: /\[([^\]]+)\] Writing script/).map { String($0.1) }
            }
        )
        #expect(!runningAtDrain.isEmpty, "drain line: \(drainLine)")
        #expect(startedAfter.isSubset(of: runningAtDrain), "w1 started an episode while draining: \(drainLine)")
        #expect(try counters(out, "drain")["attempts_requeued"] as? Int == 0)
    }

    @Test func theGracePeriodHandsUnfinishedEpisodesBack() async throws {
        let latency = "llm=300,tts=200,image=4000,render=200"
        guard
            let (out, coordinator, w1, endpoint) = try await start(
                "grace",
                latency: latency,
                workerArgs: ["--shutdown-grace", "1"]
            )
        else { return }
        let signalled = ContinuousClock.now
        w1.signal(SIGTERM)
        #expect(await w1.wait(timeout: .seconds(30)) == 0, "w1 log:\n\(w1.log.suffix(4000))")
        #expect(ContinuousClock.now - signalled < .seconds(15))
        #expect(w1.log.contains("grace period over"))
        let w2 = try second(endpoint, in: out, latency: "llm=30,tts=20,image=40,render=20")
        defer { w2.signal(SIGKILL) }
        #expect(await coordinator.wait(timeout: .seconds(120)) == 0, "log:\n\(coordinator.log.suffix(6000))")
        #expect(try Summary.load(out, batch: "grace").totals.succeeded == 4)
        #expect(try counters(out, "grace")["attempts_requeued"] as? Int == 2)
    }

    @Test func aSecondSignalExitsAtOnce() async throws {
        let latency = "llm=300,tts=200,image=8000,render=200"
        guard let (_, coordinator, w1, _) = try await start("twice", latency: latency) else { return }
        defer { coordinator.signal(SIGKILL) }
        w1.signal(SIGTERM)
        _ = await w1.waitForLog(within: .seconds(30), "draining", { $0.contains("draining") })
        let second = ContinuousClock.now
        w1.signal(SIGINT)
        #expect(await w1.wait(timeout: .seconds(20)) == 130, "w1 log:\n\(w1.log.suffix(4000))")
        #expect(ContinuousClock.now - second < .seconds(10))
        #expect(w1.log.contains("exiting now"))
    }
}

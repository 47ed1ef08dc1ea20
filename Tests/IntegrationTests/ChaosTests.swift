import Foundation
import Testing

@testable import Coordinator

#if canImport(Glibc)
import Glibc
#endif

/// 60 episodes while a random worker is killed with SIGKILL every couple of seconds (a new one takes its
/// place), and the coordinator is killed with SIGKILL once and started again on the same state: every
/// episode ends exactly once, in the summary and in the journal.
@Suite(.serialized) struct ChaosTests {
    @Test func sixtyEpisodesSurviveKilledWorkersAndAKilledCoordinator() async throws {
        let dir = try Harness.tempDir("chaos")
        let out = dir.appendingPathComponent("output")
        let state = dir.appendingPathComponent("state")
        let endpoint = "tcp://127.0.0.1:\(try ReconnectTests.freePort())"
        // About 3 s an episode, so 60 on 12 slots take long enough for the chaos, also on a busy machine.
        let env = ["REELFARM_SIM_LATENCY": "llm=600,tts=300,image=800,render=300"]
        let command = [
            "--workers", "0", "--episodes", "60", "--bind", endpoint, "--output", out.path, "--state", state.path,
            "--batch-id", "chaos", "--heartbeat-ms", "250", "--liveness", "3", "--max-attempts", "10",
        ]
        var coordinator = try Child(
            name: "coordinator-1",
            executable: Harness.coordinatorPath,
            arguments: command,
            environment: env,
            cwd: dir
        )
        var workers: [Child] = []
        var started = 0
        func startWorker() throws {
            started += 1
            workers.append(
                try Child(
                    name: "worker-\(started)",
                    executable: Harness.workerPath,
                    arguments: ["--connect", endpoint, "--worker-id", "w\(started)", "--max-parallel-episodes", "3"],
                    environment: env,
                    cwd: dir
                )
            )
        }
        for _ in 0..<4 { try startWorker() }
        defer { for w in workers { w.signal(SIGKILL) } }

        var rng = SystemRandomNumberGenerator()
        var workerKills = 0
        var coordinatorKilled = false
        let deadline = ContinuousClock.now + .seconds(240)
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(1500))
            // The batch is over (or the coordinator died by itself): stop the chaos.
            if !coordinator.process.isRunning { break }
            // A random live worker dies; a fresh one joins.
            let live = workers.filter { $0.process.isRunning }
            if let victim = live.randomElement(using: &rng), live.count > 1 {
                victim.signal(SIGKILL)
                workerKills += 1
                try startWorker()
            }
            // Once, when a sixth of the batch is done: the coordinator dies and the same command starts it again.
            if !coordinatorKilled, coordinator.log.components(separatedBy: "completed (").count > 10 {
                coordinator.signal(SIGKILL)
                _ = await coordinator.wait(timeout: .seconds(10))
                coordinatorKilled = true
                coordinator = try Child(
                    name: "coordinator-2",
                    executable: Harness.coordinatorPath,
                    arguments: command,
                    environment: env,
                    cwd: dir
                )
            }
        }
        #expect(coordinatorKilled, "the batch ended before the coordinator could be killed")
        #expect(await coordinator.wait(timeout: .seconds(60)) == 0, "log:\n\(coordinator.log.suffix(6000))")
        #expect(coordinator.log.contains("resuming batch chaos"))
        #expect(workerKills >= 3, "only \(workerKills) workers were killed")

        let summary = try Summary.load(out, batch: "chaos")
        #expect(summary.totals.succeeded == 60)
        #expect(Set(summary.episodes.map(\.id)).count == 60)
        #expect(summary.episodes.allSatisfy { $0.status == "succeeded" })
        // The journal agrees, episode by episode.
        let statuses = try Journal(directory: state).episodeStatuses(batchId: "chaos")
        #expect(statuses.count == 60 && statuses.values.allSatisfy { $0 == "succeeded" }, "\(statuses)")
        let json =
            try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("chaos/summary.json")))
            as? [String: Any] ?? [:]
        let counters = json["counters"] as? [String: Any] ?? [:]
        #expect((counters["attempts_requeued"] as? Int ?? 0) >= 1, "\(counters)")
        print(
            "chaos: \(workerKills) workers killed, coordinator killed once; counters: "
                + counters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        )
    }
}

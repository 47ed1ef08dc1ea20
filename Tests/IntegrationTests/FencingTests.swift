import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A worker frozen past the liveness window and then resumed: its episodes are redone elsewhere, what it
/// finishes late is fenced, and nothing is recorded twice.
@Suite(.serialized) struct FencingTests {
    @Test func aFrozenWorkersLateResultsAreFencedAndNothingIsRecordedTwice() async throws {
        let dir = try Harness.tempDir("sigstop")
        let out = dir.appendingPathComponent("output")
        let env = ["REELFARM_SIM_LATENCY": "llm=300,tts=200,image=400,render=200"]
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--workers", "0", "--episodes", "48", "--bind", "tcp://127.0.0.1:*", "--output", out.path,
                "--batch-id", "sigstop", "--heartbeat-ms", "250", "--liveness", "3",
            ],
            environment: env,
            cwd: dir
        )
        guard let endpoint = await coordinator.boundEndpoint() else { return }
        var workers: [Child] = []
        for i in 1...3 {
            workers.append(
                try Child(
                    name: "worker-\(i)",
                    executable: Harness.workerPath,
                    arguments: ["--connect", endpoint, "--worker-id", "w\(i)", "--max-parallel-episodes", "2"],
                    environment: env,
                    cwd: dir
                )
            )
        }
        defer { for w in workers { w.signal(SIGKILL) } }
        // 48 episodes on 6 slots (4 once w1 is lost) outlast w1's freeze, its reconnect backoff and the rest of
        // its attempts with room to spare on a loaded machine, so what it finished while frozen reaches the
        // coordinator during the batch (with 24, a run on the loaded CI machine once ended with none of w1's results counted).
        // Freeze w1 while it runs episodes, for longer than the 0.75 s liveness window, then resume it.
        guard await workers[0].waitForLog(within: .seconds(60), "an episode on w1", { $0.contains("Writing script") })
        else { return }
        workers[0].signal(SIGSTOP)
        try await Task.sleep(for: .milliseconds(2500))
        workers[0].signal(SIGCONT)

        #expect(await coordinator.wait(timeout: .seconds(120)) == 0, "log:\n\(coordinator.log.suffix(6000))")
        let log = coordinator.log
        #expect(log.contains("worker left") && log.contains("worker=w1"), "w1 was not declared dead")

        let summary = try Summary.load(out, batch: "sigstop")
        #expect(summary.totals.succeeded == 48)
        #expect(Set(summary.episodes.map(\.id)).count == 48)
        #expect(summary.episodes.allSatisfy { $0.status == "succeeded" })
        let json =
            try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("sigstop/summary.json")))
            as? [String: Any] ?? [:]
        let counters = json["counters"] as? [String: Any] ?? [:]
        let requeued = counters["attempts_requeued"] as? Int ?? 0
        #expect(requeued >= 1, "\(counters)")
        // What w1 ran while frozen came back as a stale or duplicate result, as an announced attempt of an
        // episode already finished elsewhere (cancelled), as a re-adopted attempt, or as the winner of a
        // race (the newer attempt then cancelled): in every case counted.
        let fenced = [
            "stale_results", "duplicate_results", "late_results_accepted", "attempts_readopted",
            "finished_elsewhere_cancelled",
        ]
        .map { counters[$0] as? Int ?? 0 }.reduce(0, +)
        #expect(
            fenced >= 1,
            "\(counters)\ncoordinator:\n\(log.suffix(8000))\nw1:\n\(workers[0].log.suffix(8000))"
        )

        // trace.jsonl: exactly one recorded (non-stale) end per episode.
        let lines = try TraceLine.load(out, batch: "sigstop")
        let ends = Dictionary(grouping: lines.filter { !$0.stale && $0.event == "episode_end" }, by: \.episode)
        #expect(ends.count == 48)
        #expect(
            ends.values.allSatisfy { $0.count == 1 },
            "\(ends.mapValues { $0.map { "\($0.worker)#\($0.attempt)" } })"
        )
    }
}

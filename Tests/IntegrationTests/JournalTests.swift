import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The coordinator killed with SIGKILL mid-batch and started again with the same command and `--state`:
/// the batch finishes, and no episode that had finished is run again.
@Suite(.serialized) struct JournalTests {
    @Test func aKilledCoordinatorRestartedOnTheSameStateFinishesWithoutRedoingFinishedEpisodes() async throws {
        let dir = try Harness.tempDir("journal")
        let out = dir.appendingPathComponent("output")
        let state = dir.appendingPathComponent("state")
        let endpoint = "tcp://127.0.0.1:\(try ReconnectTests.freePort())"
        // About 1.5 s an episode, 30 of them on 4 slots: the batch is far from done when it is killed.
        let env = ["REELFARM_SIM_LATENCY": "llm=400,tts=300,image=500,render=200"]
        let command = [
            "--workers", "0", "--episodes", "30", "--bind", endpoint, "--output", out.path, "--state", state.path,
            "--heartbeat-ms", "250",
        ]
        let first = try Child(
            name: "coordinator-1",
            executable: Harness.coordinatorPath,
            arguments: command,
            environment: env,
            cwd: dir
        )
        var workers: [Child] = []
        for i in 1...2 {
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
        // Kill the coordinator outright once a few episodes are done.
        guard
            await first.waitForLog(
                within: .seconds(90),
                "four finished episodes",
                { $0.components(separatedBy: "completed (").count > 4 }
            )
        else { return }
        #expect(first.process.isRunning, "the first coordinator ended the batch before it could be killed")
        first.signal(SIGKILL)
        _ = await first.wait(timeout: .seconds(10))
        let finishedBefore = Set(
            first.log.split(separator: "\n").compactMap { line -> String? in
                guard line.contains("completed ("), let r = line.range(of: "✅ ") else { return nil }
                return line[r.upperBound...].split(separator: " ").first.map(String.init)
            }
        )
        #expect(finishedBefore.count >= 3)

        // The same command again.
        let second = try Child(
            name: "coordinator-2",
            executable: Harness.coordinatorPath,
            arguments: command,
            environment: env,
            cwd: dir
        )
        #expect(await second.wait(timeout: .seconds(120)) == 0, "log:\n\(second.log.suffix(6000))")
        #expect(second.log.contains("resuming batch"))

        let batches = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { !$0.hasPrefix(".") }
        #expect(batches.count == 1, "\(batches)")
        guard let batch = batches.first else { return }
        let summary = try Summary.load(out, batch: batch)
        #expect(summary.totals.succeeded == 30)
        #expect(Set(summary.episodes.map(\.id)).count == 30)

        // The workers' own record: every attempt start is a "Writing script" line in their logs. An episode
        // that had finished before the kill was started exactly once.
        var starts: [String: Int] = [:]
        for w in workers {
            for line in w.log.split(separator: "\n") where line.contains("Writing script") {
                if let id = line.split(separator: "[").dropFirst().first?.split(separator: "]").first {
                    starts[String(id), default: 0] += 1
                }
            }
        }
        for id in finishedBefore {
            #expect(starts[id] == 1, "\(id) started \(starts[id] ?? 0) times")
        }
        #expect(starts.count == 30)
    }
}

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// End-to-end runs of the real binaries on loopback, checked the way a user would check them:
/// exit status, summary.json and trace.jsonl.
@Suite(.serialized) struct BatchTests {
    @Test func fourLocalWorkersFinishTwentyFourEpisodes() async throws {
        let dir = try Harness.tempDir("demo")
        let out = dir.appendingPathComponent("output")
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--workers", "4", "--episodes", "24", "--bind", "tcp://127.0.0.1:*", "--output", out.path, "--batch-id",
                "demo",
            ],
            environment: Harness.fastSimulation,
            cwd: dir
        )
        let status = await coordinator.wait()
        #expect(status == 0, "log:\n\(coordinator.log.suffix(4000))")
        let summary = try Summary.load(out, batch: "demo")
        #expect(summary.totals.episodes == 24)
        #expect(summary.totals.succeeded == 24)
        #expect(summary.episodes.map(\.id) == (1...24).map { "episode_\($0)" })
        #expect(
            summary.episodes.allSatisfy {
                $0.status == "succeeded" && $0.attempts == 1 && $0.worker != nil && $0.durationSeconds != nil
            }
        )
        #expect(Set(summary.episodes.compactMap(\.worker)).count == 4, "all four local workers got work")
        #expect(coordinator.log.contains("Batch complete: 24/24 successful in"))
        #expect(coordinator.log.contains("(4 workers, 12 slots)"))
        #expect(coordinator.log.contains("completed (24/24) in"))
        // Every line about an episode carries its id.
        #expect(coordinator.log.contains("[episode_7] ✅ episode_7 completed ("))
        #expect(coordinator.log.contains("API batch complete:"))
    }

    @Test("without a terminal, progress is a log line every --progress-interval; JSON logs parse")
    func progressLinesAndJSONLogs() async throws {
        let dir = try Harness.tempDir("progress")
        let out = dir.appendingPathComponent("output")
        var env = Harness.fastSimulation
        env["REELFARM_SIM_LATENCY"] = "llm=300,tts=200,image=400,render=200"
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--workers", "1", "--episodes", "6", "--max-parallel-episodes", "2", "--bind", "tcp://127.0.0.1:*",
                "--output", out.path, "--batch-id", "progress", "--progress-interval", "1", "--log-format", "json",
            ],
            environment: env,
            cwd: dir
        )
        #expect(await coordinator.wait() == 0, "log:\n\(coordinator.log.suffix(4000))")
        let lines = coordinator.log.split(separator: "\n").filter { $0.hasPrefix("{") }
        var progress: [String] = []
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
            #expect(object["ts"] is String && object["level"] is String && object["message"] is String, "\(line)")
            if let message = object["message"] as? String, message.hasPrefix("progress: ") { progress.append(message) }
        }
        #expect(lines.count > 10)
        #expect(!progress.isEmpty, "no progress line in:\n\(coordinator.log.suffix(3000))")
        #expect(progress.allSatisfy { $0.contains("/6 done") && $0.contains("1 workers") }, "\(progress)")
        #expect(!coordinator.log.contains("\u{1B}["), "no terminal escapes without a terminal")
    }

    @Test func twoEpisodesWhoseScriptAlwaysFailsFailAlone() async throws {
        let dir = try Harness.tempDir("failing")
        let out = dir.appendingPathComponent("output")
        var env = Harness.fastSimulation
        env["REELFARM_SIM_FAIL"] = "llm:episode_5,episode_17"
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--workers", "4", "--episodes", "24", "--bind", "tcp://127.0.0.1:*", "--output", out.path, "--batch-id",
                "failing",
            ],
            environment: env,
            cwd: dir
        )
        let status = await coordinator.wait()
        #expect(status == 1)
        let summary = try Summary.load(out, batch: "failing")
        #expect(summary.totals.succeeded == 22)
        #expect(summary.totals.failed == 2)
        for e in summary.episodes {
            if ["episode_5", "episode_17"].contains(e.id) {
                #expect(e.status == "failed")
                #expect(e.attempts == 3)
                #expect(e.errors.count == 3 && e.errors.allSatisfy { $0.contains("script") })
            } else {
                #expect(e.status == "succeeded" && e.attempts == 1 && e.errors.isEmpty, "\(e.id) unaffected")
            }
        }
        #expect(coordinator.log.contains("Batch complete: 22/24 successful"))
    }

    @Test(arguments: [(3, 5), (1, 1)])
    func limitsHoldInEveryWorker(episodes: Int, calls: Int) async throws {
        let dir = try Harness.tempDir("limits-\(episodes)-\(calls)")
        let out = dir.appendingPathComponent("output")
        var env = Harness.fastSimulation
        env["MAX_PARALLEL_EPISODES"] = "\(episodes)"
        env["MAX_PARALLEL_API_CALLS"] = "\(calls)"
        let count = episodes == 1 ? 6 : 18
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--workers", "2", "--episodes", "\(count)", "--bind", "tcp://127.0.0.1:*", "--output", out.path,
                "--batch-id", "limits",
            ],
            environment: env,
            cwd: dir
        )
        #expect(await coordinator.wait() == 0, "log:\n\(coordinator.log.suffix(4000))")
        let trace = try TraceLine.load(out, batch: "limits")
        #expect(Set(trace.map(\.episode)).count == count)
        var peakEpisodes = 0
        var peakCalls = 0
        for (_, lines) in Dictionary(grouping: trace, by: \.instance) {
            let e = TraceLine.maxInFlight(lines, start: "episode_start", end: "episode_end") {
                "\($0.episode)#\($0.attempt)"
            }
            #expect(e <= episodes)
            peakEpisodes = max(peakEpisodes, e)
            for (_, attempt) in Dictionary(grouping: lines, by: { "\($0.episode)#\($0.attempt)" }) {
                let c = TraceLine.maxInFlight(attempt, start: "call_start", end: "call_end") { $0.name }
                #expect(c <= calls)
                peakCalls = max(peakCalls, c)
            }
        }
        // The limits are used, not just respected.
        #expect(peakEpisodes == episodes)
        #expect(peakCalls == calls)
    }

    @Test func killedWorkersEpisodesFinishElsewhereExactlyOnce() async throws {
        let dir = try Harness.tempDir("kill")
        let out = dir.appendingPathComponent("output")
        // About 3 s an episode: w3 is killed long before the batch could end, even when this test process gets
        // little CPU and sees w3's first log line late (a 0.5 s episode once let the whole batch finish first).
        let env = ["REELFARM_SIM_LATENCY": "llm=1500,tts=300,image=500,render=200"]
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--episodes", "18", "--bind", "tcp://127.0.0.1:*", "--output", out.path, "--batch-id", "kill",
                "--heartbeat-ms", "250",
            ],
            environment: env,
            cwd: dir
        )
        guard let endpoint = await coordinator.boundEndpoint() else { return }
        var workers: [Child] = []
        for i in 1...3 {
            workers.append(
                try Child(
                    name: "worker\(i)",
                    executable: Harness.workerPath,
                    arguments: ["--connect", endpoint, "--worker-id", "w\(i)"],
                    environment: env,
                    cwd: dir
                )
            )
        }
        // Kill w3 once it is busy.
        await workers[2].waitForLog("w3 to start an episode") { $0.contains("Generating") }
        workers[2].signal(SIGKILL)
        let status = await coordinator.wait()
        for w in workers.prefix(2) { w.signal(SIGTERM) }
        for w in workers { await w.wait(timeout: .seconds(30)) }
        #expect(status == 0, "log:\n\(coordinator.log.suffix(4000))")
        let summary = try Summary.load(out, batch: "kill")
        #expect(summary.totals.succeeded == 18)
        #expect(Set(summary.episodes.map(\.id)).count == 18)
        #expect(summary.episodes.allSatisfy { $0.worker == "w1" || $0.worker == "w2" })
        let requeued = summary.episodes.filter { $0.attempts > 1 }
        #expect(!requeued.isEmpty)
        #expect(requeued.allSatisfy { $0.errors.contains { $0.contains("on w3 lost") } })
        #expect(coordinator.log.contains("worker left"))
    }

    @Test func workerStartedByHandJoinsARunningBatch() async throws {
        let dir = try Harness.tempDir("late")
        let out = dir.appendingPathComponent("output")
        var env = ["REELFARM_SIM_LATENCY": "llm=100,tts=50,image=100,render=50"]
        env["MAX_PARALLEL_EPISODES"] = "1"
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--workers", "1", "--episodes", "12", "--bind", "tcp://127.0.0.1:*", "--output", out.path, "--batch-id",
                "late", "--http", "127.0.0.1:0",
            ],
            environment: env,
            cwd: dir
        )
        guard let endpoint = await coordinator.boundEndpoint() else { return }
        await coordinator.waitForSucceeded(1)
        let late = try Child(
            name: "late-worker",
            executable: Harness.workerPath,
            arguments: ["--connect", endpoint, "--worker-id", "late-box"],
            environment: env,
            cwd: dir
        )
        let status = await coordinator.wait()
        late.signal(SIGTERM)
        await late.wait(timeout: .seconds(30))
        #expect(status == 0)
        let summary = try Summary.load(out, batch: "late")
        #expect(summary.totals.succeeded == 12)
        #expect(summary.episodes.contains { $0.worker == "late-box" }, "log:\n\(coordinator.log.suffix(3000))")
    }

    @Test("REELFARM_READY_FILE: the bound endpoint, no HTTP, this pid; an earlier file is replaced; gone at exit")
    func readyFile() async throws {
        let dir = try Harness.tempDir("ready")
        let out = dir.appendingPathComponent("output")
        let path = dir.appendingPathComponent("coordinator.ready").path
        // An earlier run's file (a SIGKILLed coordinator) must not be read as this one's.
        try #"{"pid":1,"mode":"batch","endpoint":"tcp://127.0.0.1:1","http":null,"output":"/","batch":"old"}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--episodes", "2", "--bind", "tcp://127.0.0.1:*", "--output", out.path, "--batch-id", "ready",
                "--http", "off",
            ],
            environment: Harness.fastSimulation.merging(["REELFARM_READY_FILE": path]) { _, new in new },
            cwd: dir
        )
        defer { coordinator.signal(SIGKILL) }
        let ready = try #require(await coordinator.ready())
        #expect(ready.pid == coordinator.pid && ready.mode == "batch" && ready.batch == "ready")
        #expect(ready.http == nil && ready.output == out.path)
        #expect(ready.endpoint.hasPrefix("tcp://127.0.0.1:") && !ready.endpoint.hasSuffix(":*"), "\(ready.endpoint)")
        let worker = try Child(
            name: "worker",
            executable: Harness.workerPath,
            arguments: ["--connect", ready.endpoint],
            environment: Harness.fastSimulation,
            cwd: dir
        )
        defer { worker.signal(SIGKILL) }
        #expect(await coordinator.wait() == 0, "log:\n\(coordinator.log.suffix(3000))")
        #expect(!FileManager.default.fileExists(atPath: path), "the ready file outlived its coordinator")
        #expect(try Summary.load(out, batch: "ready").totals.succeeded == 2)
        worker.signal(SIGTERM)
        await worker.wait(timeout: .seconds(30))
    }

    @Test func crashedLocalWorkerIsRestarted() async throws {
        let dir = try Harness.tempDir("restart")
        let out = dir.appendingPathComponent("output")
        // Slow enough that the batch outlasts the restart backoff (1 s) even on a busy machine.
        let env = ["REELFARM_SIM_LATENCY": "llm=300,tts=150,image=400,render=100"]
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--workers", "2", "--episodes", "24", "--bind", "tcp://127.0.0.1:*", "--output", out.path,
                "--batch-id", "restart", "--heartbeat-ms", "250", "--http", "127.0.0.1:0",
            ],
            environment: env,
            cwd: dir
        )
        await coordinator.waitForLog("two local workers") {
            $0.components(separatedBy: "local worker started").count == 3
        }
        await coordinator.waitForSucceeded(1)
        let line = coordinator.log.split(separator: "\n").first {
            $0.contains("local worker started") && $0.contains("slot=1")
        }
        let pid = line.flatMap { l in
            l.range(of: "pid=").flatMap { Int32(l[$0.upperBound...].prefix(while: \.isNumber)) }
        }
        #expect(pid != nil)
        if let pid { kill(pid, SIGKILL) }
        let status = await coordinator.wait()
        #expect(status == 0)
        #expect(coordinator.log.contains("local worker exited; restarting"))
        #expect(coordinator.log.components(separatedBy: "local worker started").count >= 4)
        let summary = try Summary.load(out, batch: "restart")
        #expect(summary.totals.succeeded == 24)
    }

    @Test func batchFileInYAMLKeepsOrderAndIds() async throws {
        let dir = try Harness.tempDir("yaml")
        let out = dir.appendingPathComponent("output")
        let batch = dir.appendingPathComponent("batch.yaml")
        try """
        # three episodes
        - topic: The lighthouse keepers of Brittany
          id: lighthouse
          characters: [Anne, Yann]
          scenes: 3
          style: noir
        - topic: Bees that vote
        - The bicycle's first ride
        """.write(to: batch, atomically: true, encoding: .utf8)
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--workers", "1", "--batch", batch.path, "--bind", "tcp://127.0.0.1:*", "--output", out.path,
                "--batch-id", "yaml",
            ],
            environment: Harness.fastSimulation,
            cwd: dir
        )
        #expect(await coordinator.wait() == 0, "log:\n\(coordinator.log.suffix(3000))")
        let summary = try Summary.load(out, batch: "yaml")
        #expect(summary.episodes.map(\.id) == ["lighthouse", "episode_2", "episode_3"])
    }
}

import Foundation
import Protocol
import Shared
import Testing

@testable import Coordinator

#if canImport(Glibc)
import Glibc
#endif

/// 60 episodes against the mock provider, under fleet budgets at the mock's own limits, while a random
/// worker is killed with SIGKILL every 1.5 s (a new one takes its place) and the coordinator is killed
/// with SIGKILL once and started again on the same state (and a second copy of the same command, started
/// beside the restarted one, is refused: item 1 of issue 15). Workers keep their files in their own folders
/// (as on other boxes), so every file reaches the coordinator over ZeroMQ. Checked: every episode ended
/// exactly once in the summary and in the journal, every recorded file is in the output folder with its
/// SHA-256, and the mock answered no request with a 429. `scripts/test` runs it alone, after the rest of
/// the suite: on 2 cores shared with ffmpeg renders, requests reach the mock too late for any sane margin.
@Suite(.serialized) struct ChaosTests {
    @Test func sixtyEpisodesSurviveKilledWorkersAndAKilledCoordinator() async throws {
        let dir = try Harness.tempDir("chaos")
        let out = dir.appendingPathComponent("output")
        let state = dir.appendingPathComponent("state")
        let endpoint = "tcp://127.0.0.1:\(try ReconnectTests.freePort())"
        guard let (mock, base) = try await EpisodeFileTests.startMock(in: dir) else { return }
        defer { mock.signal(SIGTERM) }
        // 1 script call, 2 voice lines and 6 images (4 scenes, 2 B-roll) an episode; the render is simulated
        // (300 ms) so that 60 episodes fit a CI budget, but every voice and image is a real file.
        _ = try await EpisodeFileTests.http(
            "POST",
            "\(base)/admin/config",
            body: """
                {"script_lines": 2, "script_broll": 2, "script_narration": false,
                 "openai": {"request_limit": 10, "window_ms": 1000, "latency_ms": 100},
                 "huggingface": {"request_limit": 20, "window_ms": 1000, "latency_ms": 200},
                 "elevenlabs": {"request_limit": 20, "window_ms": 1000, "latency_ms": 50, "max_concurrent": null}}
                """
        )
        // Without the asset store: the journal must hold a lease grant for each of the 60 × 9 calls, and a
        // call answered from the store takes none (the store under crashes is ReuseTests' and the store's
        // own tests' business).
        var env = BudgetTests.environment(base, reuse: false)
        env["REELFARM_SIM_LATENCY"] = "render=300"
        // A worker lives 6 s on average and an episode takes 3–6 s here, so an attempt is lost about half of
        // the time: with the default 3 attempts (or even 10) an unlucky episode would rightly be failed as a
        // poison episode. This test is about exactly-once, not poison, so attempts are plenty.
        let command = [
            "--workers", "0", "--episodes", "60", "--bind", endpoint, "--output", out.path, "--state", state.path,
            "--batch-id", "chaos", "--heartbeat-ms", "250", "--liveness", "3", "--max-attempts", "100",
            // The margin covers the time from a worker's LEASE_STARTED to its request reaching the mock.
            // With worker processes starting every 1.5 s beside the rest of the suite on 2 cores, 150 ms
            // was seen to fall short (5 image 429s in one run of 475 requests); 400 ms holds.
            "--config", try BudgetTests.settings(in: dir, marginMs: 400).path,
            "--budget", "llm=10/s", "--budget", "image=20/s", "--budget", "tts=20/s",
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
                    arguments: [
                        "--connect", endpoint, "--worker-id", "w\(started)", "--max-parallel-episodes", "3",
                        "--output", dir.appendingPathComponent("spool-\(started)").path,
                    ],
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
        let deadline = ContinuousClock.now + .seconds(300)
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
                // An operator's mistake on top: the same command once more while coordinator-2 resumes. It
                // must not run the batch a second time beside it: exit 2, naming coordinator-2's PID.
                _ = await coordinator.waitForLog(within: .seconds(30), "the restarted coordinator") {
                    $0.contains("resuming batch chaos")
                }
                let intruder = try Child(
                    name: "coordinator-intruder",
                    executable: Harness.coordinatorPath,
                    arguments: command,
                    environment: env,
                    cwd: dir
                )
                #expect(await intruder.wait(timeout: .seconds(30)) == 2, "log:\n\(intruder.log.suffix(3000))")
                #expect(intruder.log.contains("(PID \(coordinator.pid))"), "\(intruder.log)")
            }
        }
        #expect(coordinatorKilled, "the batch ended before the coordinator could be killed")
        #expect(await coordinator.wait(timeout: .seconds(60)) == 0, "log:\n\(coordinator.log.suffix(6000))")
        #expect(coordinator.log.contains("resuming batch chaos"))
        #expect(workerKills >= 3, "only \(workerKills) workers were killed")

        let summary = try Summary.load(out, batch: "chaos")
        let unfinished = summary.episodes.filter { $0.status != "succeeded" }
        #expect(
            summary.totals.succeeded == 60,
            "not succeeded: \(unfinished.map { "\($0.id) \($0.status): \($0.errors)" })"
        )
        #expect(Set(summary.episodes.map(\.id)).count == 60)
        #expect(summary.episodes.allSatisfy { $0.status == "succeeded" })
        // The journal agrees, episode by episode, and recorded each success exactly once.
        let journal = try Journal(directory: state)
        let statuses = try journal.episodeStatuses(batchId: "chaos")
        #expect(statuses.count == 60 && statuses.values.allSatisfy { $0 == "succeeded" }, "\(statuses)")
        // Every grant was journaled before it was sent (the restarted coordinator counts the recent ones):
        // at least one per call of the 60 episodes (9 each).
        let journaledCalls = try journal.recentStarts(within: .seconds(3600)).values.reduce(0) { $0 + $1.count }
        #expect(journaledCalls >= 60 * 9, "\(journaledCalls) lease grants and starts journaled")
        let successes = try journal.eventCounts(batchId: "chaos", event: "succeeded")
        #expect(successes.count == 60 && successes.values.allSatisfy { $0 == 1 }, "\(successes)")
        // Every recorded file is in the episode's folder with its digest, and nothing else is.
        let files = try journal.artifacts(batchId: "chaos")
        #expect(files.count == 60)
        var checked = 0
        for (episode, list) in files {
            let folder = out.appendingPathComponent("chaos/\(episode)")
            let present = Set((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
            #expect(present == Set(list.map(\.name)), "\(episode): \(present.sorted())")
            #expect(list.contains { $0.name.hasSuffix(".png") } && list.contains { $0.name.hasSuffix(".wav") })
            for file in list {
                let url = folder.appendingPathComponent(file.name)
                #expect(try DurableFiles.sha256(of: url) == file.sha256, "\(episode)/\(file.name)")
                checked += 1
            }
        }
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("chaos/.incoming").path))
        // The provider never had to say no.
        let stats = try await EpisodeFileTests.http("GET", "\(base)/stats")
        for provider in ["openai", "huggingface", "elevenlabs"] {
            let counters = BudgetTests.counters(stats, provider)
            #expect(counters["rejected_total"] as? Int == 0, "\(provider): \(counters)")
        }
        let json = try BudgetTests.summaryJSON(out, "chaos")
        let counters = json["counters"] as? [String: Any] ?? [:]
        #expect((counters["attempts_requeued"] as? Int ?? 0) >= 1, "\(counters)")
        let artifacts = counters["artifacts"] as? [String: Any] ?? [:]
        #expect((artifacts["episodes_stored"] as? Int ?? 0) >= 60, "\(artifacts)")
        print(
            "chaos: \(workerKills) workers killed, coordinator killed once, \(checked) files checked; counters: "
                + counters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        )
    }

    /// Issue 15, item 6: the coordinator is stopped (SIGSTOP) for four times the liveness window in the
    /// middle of a batch, then continued. Its workers were alive all along; many of them gave up on it
    /// meanwhile and greet again on new sockets. No attempt is lost or run again: every episode of the
    /// summary took exactly one attempt.
    @Test func item6AStalledCoordinatorRerunsNoFinishedAttempt() async throws {
        let dir = try Harness.tempDir("stall")
        let out = dir.appendingPathComponent("output")
        let endpoint = "tcp://127.0.0.1:\(try ReconnectTests.freePort())"
        var env = Harness.fastSimulation
        // About 1.5 s an episode: some finish while the coordinator is stopped, others are half-way.
        env["REELFARM_SIM_LATENCY"] = "llm=300,tts=200,image=300,render=200"
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--workers", "0", "--episodes", "24", "--bind", endpoint, "--output", out.path, "--batch-id", "stall",
                "--heartbeat-ms", "250", "--liveness", "3", "--max-attempts", "5", "--http", "off",
            ],
            environment: env,
            cwd: dir
        )
        defer { coordinator.signal(SIGKILL) }
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
        guard
            await coordinator.waitForLog(
                within: .seconds(60),
                "a few episodes done",
                {
                    $0.components(separatedBy: "completed (").count > 5
                }
            )
        else { return }
        // Stopped for 3 s: four liveness windows (3 × 250 ms).
        coordinator.signal(SIGSTOP)
        try await Task.sleep(for: .seconds(3))
        coordinator.signal(SIGCONT)
        #expect(await coordinator.wait(timeout: .seconds(120)) == 0, "log:\n\(coordinator.log.suffix(6000))")
        #expect(coordinator.log.contains("the coordinator's loop stood still"))
        let summary = try Summary.load(out, batch: "stall")
        #expect(summary.totals.succeeded == 24)
        let rerun = summary.episodes.filter { $0.attempts != 1 }
        #expect(rerun.isEmpty, "run more than once: \(rerun.map { "\($0.id) \($0.attempts) \($0.errors)" })")
        let json = try BudgetTests.summaryJSON(out, "stall")
        let counters = json["counters"] as? [String: Any] ?? [:]
        #expect(counters["attempts_requeued"] as? Int == 0, "\(counters)")
        print(
            "stall: coordinator stopped 3 s (window 0.75 s); counters: "
                + counters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        )
    }
}

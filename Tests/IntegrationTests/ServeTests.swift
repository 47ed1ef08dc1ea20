import AsyncHTTPClient
import Foundation
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `coordinator serve` with the real binaries: two batches submitted with `coordinator submit`, a worker
/// started by hand mid-batch, the local pool scaled up and down (the removed workers drain: nothing is
/// run twice), and the JSON API and `/metrics` checked against every batch's `summary.json`.
@Suite(.serialized) struct ServeTests {
    /// Runs a short-lived `coordinator` subcommand (submit, status, scale) and returns its status and output.
    static func client(_ arguments: [String], in dir: URL) async throws -> (Int32, String) {
        let child = try Child(
            name: "client-\(UUID().uuidString.prefix(8))",
            executable: Harness.coordinatorPath,
            arguments: arguments,
            cwd: dir
        )
        let status = await child.wait(timeout: .seconds(60))
        return (status, child.log)
    }

    static func metric(_ text: String, _ name: String) -> Double? { StatusHTTPTests.metric(text, name) }

    @Test("serve: submit two batches, add a worker by hand, scale the pool up and down, metrics match summaries")
    func serveSubmitScale() async throws {
        let dir = try Harness.tempDir("serve")
        let out = dir.appendingPathComponent("output")
        var env = Harness.fastSimulation
        // About 3 s an episode: the first batch outlasts the scaling below even on a loaded machine (at
        // 1.5 s a CI run once saw both batches end before the two new local workers had started).
        env["REELFARM_SIM_LATENCY"] = "llm=1500,tts=300,image=600,render=400"
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "serve", "--workers", "1", "--max-parallel-episodes", "2", "--bind", "tcp://127.0.0.1:*",
                "--output", out.path, "--state", dir.appendingPathComponent("state").path, "--http", "127.0.0.1:0",
                "--budget", "image=30/s",
            ],
            environment: env,
            cwd: dir
        )
        defer { coordinator.signal(SIGKILL) }
        guard let ready = await coordinator.ready(), let base = await coordinator.httpBase() else { return }
        #expect(ready.mode == "serve" && ready.batch == nil && ready.output == out.path)
        let endpoint = ready.endpoint
        let url = String(base.dropLast())  // no trailing slash

        // Two batches: generated topics, then a YAML file. The second waits for the first.
        var (status, output) = try await Self.client(
            ["submit", "--episodes", "16", "--id", "first", "--url", url],
            in: dir
        )
        #expect(status == 0 && output.contains("submitted first: 16 episodes, running"), "\(output)")
        let file = dir.appendingPathComponent("second.yaml")
        try (1...4).map { "- topic: harbour cranes at night, part \($0)\n" }.joined()
            .write(to: file, atomically: true, encoding: .utf8)
        (status, output) = try await Self.client(["submit", file.path, "--id", "second", "--url", url], in: dir)
        #expect(status == 0 && output.contains("submitted second: 4 episodes, queued (position 1)"), "\(output)")
        // A batch id is taken once.
        (status, output) = try await Self.client(["submit", "--episodes", "1", "--id", "first", "--url", url], in: dir)
        #expect(status == 1 && output.contains("already taken"), "\(output)")

        // A worker started by hand joins the running batch and gets work.
        let started = ContinuousClock.now
        let byHand = try Child(
            name: "by-hand",
            executable: Harness.workerPath,
            arguments: ["--connect", endpoint, "--worker-id", "by-hand", "--max-parallel-episodes", "2"],
            environment: env,
            cwd: dir
        )
        defer { byHand.signal(SIGKILL) }
        #expect(await byHand.waitForLog(within: .seconds(30), "its first job") { $0.contains("[episode_") })
        print("serve: worker --connect to its first job: \(ContinuousClock.now - started)")

        // Grow the local pool to 3, wait until all three run episodes, then shrink it to 1 mid-batch.
        (status, output) = try await Self.client(["scale", "--workers", "3", "--url", url], in: dir)
        #expect(status == 0 && output.contains("local workers: 3 running (target 3)"), "\(output)")
        var busyLocals = 0
        for _ in 0..<300 {
            let fleet = try await EpisodeFileTests.http("GET", "\(base)api/status")
            let workers = fleet["workers"] as? [[String: Any]] ?? []
            busyLocals = workers.count {
                ($0["id"] as? String ?? "").contains("-local-") && ($0["running"] as? Int ?? 0) > 0
            }
            if busyLocals == 3 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(busyLocals == 3, "three local workers never ran episodes at once")
        (status, output) = try await Self.client(["scale", "--workers", "1", "--url", url], in: dir)
        #expect(status == 0 && output.contains("2 draining before they stop"), "\(output)")

        // Both batches end; the drained workers stopped only after their episodes were done.
        var batches: [[String: Any]] = []
        for _ in 0..<1200 {
            batches = try await EpisodeFileTests.http("GET", "\(base)api/batches")["batches"] as? [[String: Any]] ?? []
            if batches.count == 2, batches.allSatisfy({ $0["state"] as? String == "completed" }) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(batches.map { $0["state"] as? String } == ["completed", "completed"], "\(batches)")
        #expect(
            await coordinator.waitForLog(within: .seconds(30), "two drained workers") {
                $0.components(separatedBy: "local worker drained; stopping it").count - 1 == 2
            }
        )

        let first = try Summary.load(out, batch: "first")
        let second = try Summary.load(out, batch: "second")
        #expect(first.totals.succeeded == 16 && second.totals.succeeded == 4)
        // Draining means finishing: no attempt was handed back or run twice.
        for episode in first.episodes + second.episodes {
            #expect(episode.status == "succeeded" && episode.attempts == 1, "\(episode)")
        }
        let firstJSON = try BudgetTests.summaryJSON(out, "first")
        let secondJSON = try BudgetTests.summaryJSON(out, "second")
        for json in [firstJSON, secondJSON] {
            #expect(
                (json["counters"] as? [String: Any])?["attempts_requeued"] as? Int == 0,
                "\(json["counters"] ?? "")"
            )
        }
        #expect(first.episodes.contains { $0.worker == "by-hand" }, "the hand-started worker got no episode")
        for listing in batches {
            let summary = listing["id"] as? String == "first" ? first : second
            #expect(listing["succeeded"] as? Int == summary.totals.succeeded)
            #expect(listing["failed"] as? Int == summary.totals.failed)
            #expect(listing["episodes"] as? Int == summary.totals.episodes)
            #expect((listing["report"] as? String)?.hasSuffix("/report.html") == true)
        }

        // The metrics count every batch this coordinator ran.
        var metrics = ""
        for _ in 0..<100 {
            metrics = try await StatusHTTPTests.text("\(base)metrics")
            if Self.metric(metrics, "reelfarm_workers") == 2 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(Self.metric(metrics, "reelfarm_workers") == 2, "1 local + by-hand:\n\(metrics)")
        #expect(Self.metric(metrics, "reelfarm_local_workers_target") == 1)
        #expect(Self.metric(metrics, #"reelfarm_batches{state="completed"}"#) == 2)
        #expect(Self.metric(metrics, #"reelfarm_batches{state="queued"}"#) == 0)
        #expect(Self.metric(metrics, "reelfarm_queue_depth") == 0)
        #expect(
            Self.metric(metrics, #"reelfarm_episodes_finished_total{outcome="succeeded"}"#)
                == Double(first.totals.succeeded + second.totals.succeeded),
            "\(metrics)"
        )
        func imageStarted(_ json: [String: Any]) -> Int {
            ((json["budgets"] as? [String: Any])?["image"] as? [String: Any])?["started"] as? Int ?? -1
        }
        #expect(
            Self.metric(metrics, #"reelfarm_calls_started_total{provider="image"}"#)
                == Double(imageStarted(firstJSON) + imageStarted(secondJSON))
        )
        // The same numbers through `coordinator status`.
        (status, output) = try await Self.client(["status", "--url", url], in: dir)
        #expect(status == 0 && output.contains("first") && output.contains("16/16 succeeded"), "\(output)")
        #expect(output.contains("local pool 1/1") && output.contains("by-hand"), "\(output)")

        coordinator.signal(SIGTERM)
        #expect(await coordinator.wait(timeout: .seconds(60)) == 0, "log:\n\(coordinator.log.suffix(3000))")
        #expect(coordinator.readyURL.map { FileManager.default.fileExists(atPath: $0.path) } == false)
        byHand.signal(SIGTERM)
        await byHand.wait(timeout: .seconds(60))
    }

    @Test("serve keeps submitted batches across a restart (--state); one-shot refuses submissions")
    func queuedBatchesSurviveARestart() async throws {
        let dir = try Harness.tempDir("serve-restart")
        let out = dir.appendingPathComponent("output")
        let state = dir.appendingPathComponent("state").path
        func serve(_ name: String) throws -> Child {
            // No workers at all: the batches stay queued until the restarted coordinator gets one.
            try Child(
                name: name,
                executable: Harness.coordinatorPath,
                arguments: [
                    "serve", "--bind", "tcp://127.0.0.1:*", "--output", out.path, "--state", state, "--http",
                    "127.0.0.1:0",
                ],
                environment: Harness.fastSimulation,
                cwd: dir
            )
        }
        func baseURL(_ child: Child) async -> String? { await child.httpBase().map { String($0.dropLast()) } }
        let before = try serve("serve-1")
        defer { before.signal(SIGKILL) }
        guard let url = await baseURL(before) else { return }
        for id in ["a", "b"] {
            let (status, output) = try await Self.client(
                ["submit", "--episodes", "3", "--id", id, "--url", url],
                in: dir
            )
            #expect(status == 0, "\(output)")
        }
        before.signal(SIGTERM)
        #expect(await before.wait(timeout: .seconds(60)) == 0)

        let after = try serve("serve-2")
        defer { after.signal(SIGKILL) }
        guard let url2 = await baseURL(after), let endpoint = await after.boundEndpoint() else { return }
        let worker = try Child(
            name: "worker",
            executable: Harness.workerPath,
            arguments: ["--connect", endpoint],
            environment: Harness.fastSimulation,
            cwd: dir
        )
        defer { worker.signal(SIGKILL) }
        let (status, output) = try await Self.client(
            ["submit", "--episodes", "2", "--id", "c", "--wait", "--url", url2],
            in: dir
        )
        #expect(status == 0 && output.contains("c: completed, 2 succeeded, 0 failed of 2"), "\(output)")
        for id in ["a", "b", "c"] {
            #expect(try Summary.load(out, batch: id).status == "succeeded", "batch \(id)")
        }
        // Batches run in submission order.
        let log = after.log
        let started = log.split(separator: "\n").filter { $0.contains("Batch processing:") }.compactMap { line in
            line.range(of: "batch=").map { String(line[$0.upperBound...].prefix { $0 != " " }) }
        }
        #expect(started == ["a", "b", "c"], "\(log.suffix(4000))")
        after.signal(SIGTERM)
        #expect(await after.wait(timeout: .seconds(60)) == 0)
        worker.signal(SIGTERM)
        await worker.wait()

        // A one-shot coordinator answers a submission with 409 and says what to do.
        let oneShot = try Child(
            name: "one-shot",
            executable: Harness.coordinatorPath,
            arguments: [
                "--episodes", "50", "--bind", "tcp://127.0.0.1:*", "--output", out.path, "--http", "127.0.0.1:0",
            ],
            environment: ["REELFARM_SIM_LATENCY": "llm=1000"],
            cwd: dir
        )
        defer { oneShot.signal(SIGKILL) }
        guard let url3 = await baseURL(oneShot) else { return }
        let (refused, message) = try await Self.client(["submit", "--episodes", "1", "--url", url3], in: dir)
        #expect(refused == 1 && message.contains("409") && message.contains("coordinator serve"), "\(message)")
    }
}

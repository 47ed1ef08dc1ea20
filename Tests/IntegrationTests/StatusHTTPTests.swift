import AsyncHTTPClient
import Foundation
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The coordinator's HTTP side with the real binary: the JSON status API and the Prometheus metrics
/// mid-batch agree with each other and with `summary.json`, and the dashboard page is served.
@Suite(.serialized) struct StatusHTTPTests {
    static func metric(_ text: String, _ name: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    @Test("mid-batch /api/status and /metrics agree; the dashboard is served")
    func statusAPIAndMetrics() async throws {
        let dir = try Harness.tempDir("http")
        let out = dir.appendingPathComponent("output")
        var env = Harness.fastSimulation
        // About 4 s an episode and 24 of them on 4 slots: the batch outlasts the polling below even when the
        // test process gets little CPU (at 2 s an episode a loaded CI run once saw the batch end first).
        env["REELFARM_SIM_LATENCY"] = "llm=1500,tts=400,image=1200,render=500"
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--workers", "2", "--episodes", "24", "--max-parallel-episodes", "2", "--bind", "tcp://127.0.0.1:*",
                "--output", out.path, "--batch-id", "http", "--http", "127.0.0.1:0", "--budget", "image=8/s",
            ],
            environment: env,
            cwd: dir
        )
        guard let base = await coordinator.httpBase() else { return }
        // Wait until a few episodes are done, then read both views of the same moment.
        var status: [String: Any] = [:]
        for _ in 0..<200 {
            status = try await EpisodeFileTests.http("GET", "\(base)api/status")
            let done = (status["progress"] as? [String: Any])?["succeeded"] as? Int ?? 0
            if done >= 2 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let progress = status["progress"] as? [String: Any] ?? [:]
        #expect(status["batch_id"] as? String == "http")
        #expect(status["state"] as? String == "running")
        #expect(progress["total"] as? Int == 24)
        #expect((progress["succeeded"] as? Int ?? 0) >= 2)
        let workers = status["workers"] as? [[String: Any]] ?? []
        #expect(workers.count == 2 && workers.allSatisfy { $0["slots"] as? Int == 2 }, "\(workers)")
        #expect((status["episodes"] as? [[String: Any]])?.count == 24, "a batch of at most 100 is listed whole")
        #expect((status["episode_list"] as? [String: Any])?["view"] as? String == "recent")
        // Any other selection of episodes is made by the coordinator's loop when asked.
        func ids(_ query: String) async throws -> ([String], [String: Any]) {
            let answer = try await EpisodeFileTests.http("GET", "\(base)api/status?\(query)")
            let episodes = answer["episodes"] as? [[String: Any]] ?? []
            return (episodes.compactMap { $0["id"] as? String }, answer)
        }
        #expect(try await ids("limit=5").0.count == 5)
        let (paged, pageAnswer) = try await ids("offset=20&limit=10")
        #expect(paged == (21...24).map { "episode_\($0)" }, "\(pageAnswer)")
        #expect((pageAnswer["episode_list"] as? [String: Any])?["total"] as? Int == 24)
        #expect(try await ids("episodes=all").0.count == 24)
        let (none, noneAnswer) = try await ids("episodes=none")
        #expect(none.isEmpty && (noneAnswer["progress"] as? [String: Any])?["total"] as? Int == 24)
        let (_, bad) = try await ids("limit=0")
        #expect((bad["error"] as? String)?.contains("limit") == true, "\(bad)")
        let budgets = status["budgets"] as? [[String: Any]] ?? []
        #expect(budgets.first?["provider"] as? String == "image" && budgets.first?["limit"] as? Int == 8)

        let metrics = try await Self.text("\(base)metrics")
        #expect(Self.metric(metrics, "reelfarm_workers") == 2)
        #expect(Self.metric(metrics, "reelfarm_slots") == 4)
        #expect(Self.metric(metrics, #"reelfarm_budget_limit{provider="image"}"#) == 8)
        let states = ["pending", "running", "saving", "succeeded", "failed"].compactMap {
            Self.metric(metrics, #"reelfarm_episodes{state="\#($0)"}"#)
        }
        #expect(states.count == 5 && states.reduce(0, +) == 24, "\(metrics)")
        #expect((Self.metric(metrics, #"reelfarm_episodes{state="succeeded"}"#) ?? 0) >= 2)

        let page = try await Self.text(base)
        #expect(page.contains("<title>Reelfarm</title>") && page.contains("api/status"))

        #expect(await coordinator.wait(timeout: .seconds(120)) == 0, "log:\n\(coordinator.log.suffix(3000))")
        let summary = try Summary.load(out, batch: "http")
        #expect(summary.totals.succeeded == 24)
        // Calls started as the metrics counted them never exceed what the summary reports in the end.
        let started = Self.metric(metrics, #"reelfarm_calls_started_total{provider="image"}"#) ?? -1
        let json = try BudgetTests.summaryJSON(out, "http")
        let image = (json["budgets"] as? [String: Any])?["image"] as? [String: Any] ?? [:]
        #expect(started >= 0 && started <= Double(image["started"] as? Int ?? 0), "\(started) vs \(image)")
    }

    /// Issue 15, item 6: 60 concurrent `?episodes=all` requests on a batch of 100,000 episodes. The loop
    /// goes on publishing the status every 250 ms meanwhile (the lists are made off the loop, and shared),
    /// and the memory of the answers is given back afterwards.
    @Test func item6BConcurrentFullListsDoNotHoldUpTheLoop() async throws {
        let dir = try Harness.tempDir("http-all")
        // No workers: the batch waits; what is measured is the loop.
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--episodes", "100000", "--bind", "tcp://127.0.0.1:*", "--output",
                dir.appendingPathComponent("out").path,
                "--batch-id", "all", "--http", "127.0.0.1:0", "--progress", "off",
            ],
            cwd: dir
        )
        defer { coordinator.signal(SIGKILL) }
        guard let base = await coordinator.httpBase() else { return }
        func rss() -> Int {
            let status = (try? String(contentsOfFile: "/proc/\(coordinator.pid)/status", encoding: .utf8)) ?? ""
            let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
            return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) / 1024
        }
        // The published document's age, as the status API shows it.
        @Sendable func lag() async throws -> Double {
            let iso = ISO8601DateFormatter()
            iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            let answer = try await EpisodeFileTests.http("GET", "\(base)api/status?episodes=none")
            guard let text = answer["updated_at"] as? String, let at = iso.date(from: text) else { return 99 }
            return Date().timeIntervalSince(at)
        }
        _ = try await lag()
        let before = rss()
        let started = ContinuousClock.now
        let (sizes, worstLag) = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<60 {
                group.addTask {
                    let response = try await HTTPClient.shared.execute(
                        HTTPClientRequest(url: "\(base)api/status?episodes=all"),
                        timeout: .seconds(120)
                    )
                    var bytes = 0
                    for try await part in response.body { bytes += part.readableBytes }
                    return bytes
                }
            }
            var worst = 0.0
            var sizes: [Int] = []
            let poller = Task {
                var worst = 0.0
                while !Task.isCancelled {
                    worst = max(worst, (try? await lag()) ?? 0)
                    try? await Task.sleep(for: .milliseconds(100))
                }
                return worst
            }
            for try await size in group { sizes.append(size) }
            poller.cancel()
            worst = await poller.value
            return (sizes, worst)
        }
        let took = ContinuousClock.now - started
        let peak = rss()
        try await Task.sleep(for: .seconds(3))
        let after = rss()
        print(
            "item6B: 60 × ?episodes=all on 100,000 episodes in \(took), \(sizes.first ?? 0) bytes each; published status at most \(String(format: "%.2f", worstLag)) s old meanwhile; RSS \(before) → \(peak) → \(after) MiB"
        )
        #expect(sizes.count == 60 && Set(sizes).count == 1 && (sizes.first ?? 0) > 100_000 * 50)
        #expect(worstLag < 1.0, "the loop stopped publishing for \(worstLag) s")
        #expect(after <= before + 100, "memory kept after the answers: \(before) → \(after) MiB")
    }

    static func text(_ url: String) async throws -> String {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 8 << 20)
        return String(buffer: body)
    }
}

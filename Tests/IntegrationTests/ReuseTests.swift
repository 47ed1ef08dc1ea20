import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 16 part 3 with the real binaries: no paid call twice. The mock provider counts every answer it
/// gave; an episode whose render fails on one worker and succeeds on another, and a re-run of the batch,
/// must not add a single paid answer to what the first attempt made.
@Suite(.serialized) struct ReuseTests {
    static let batch = """
        episodes:
          - {id: harbour, topic: the harbour at dawn, scenes: 2}
        """

    /// `accepted` (2xx answers) of each provider at the mock.
    static func paid(_ base: String) async throws -> [String: Int] {
        let stats = try await EpisodeFileTests.http("GET", "\(base)/stats")
        var paid: [String: Int] = [:]
        for provider in ["openai", "elevenlabs", "huggingface"] {
            paid[provider] = (stats[provider] as? [String: Any])?["accepted"] as? Int ?? -1
        }
        return paid
    }

    /// A coordinator on the test batch: `workers` local workers, batch `id`, output in `out`.
    static func coordinator(
        _ name: String,
        id: String,
        workers: Int,
        batch: URL,
        out: URL,
        extra: [String] = [],
        environment: [String: String],
        in dir: URL
    ) throws -> Child {
        try Child(
            name: name,
            executable: Harness.coordinatorPath,
            arguments: [
                "--workers", "\(workers)", "--batch", batch.path, "--bind", "tcp://127.0.0.1:*", "--output", out.path,
                "--batch-id", id, "--http", "off",
            ] + extra,
            environment: environment,
            cwd: dir
        )
    }

    /// A worker of one episode slot connecting to `endpoint`.
    static func worker(_ id: String, endpoint: String, environment: [String: String], in dir: URL) throws -> Child {
        try Child(
            name: "worker-\(id)",
            executable: Harness.workerPath,
            arguments: ["--connect", endpoint, "--worker-id", id, "--max-parallel-episodes", "1"],
            environment: environment,
            cwd: dir
        )
    }

    @Test func aRenderFailureOnOneWorkerThenSuccessOnAnotherPaysForEachCallOnce() async throws {
        let dir = try Harness.tempDir("reuse")
        let out = dir.appendingPathComponent("output")
        let config = #"{"script_lines": 3, "script_broll": 1}"#
        guard let (mock, base) = try await EpisodeFileTests.startMock(in: dir, config: config) else { return }
        defer { mock.signal(SIGTERM) }
        var environment = BudgetTests.environment(base)
        environment["REELFARM_PROVIDERS"] = "script=openai,voice=elevenlabs,image=huggingface,render=ffmpeg"
        environment["REELFARM_SIM_LATENCY"] = nil
        let batch = dir.appendingPathComponent("batch.yaml")
        try Self.batch.write(to: batch, atomically: true, encoding: .utf8)

        // Box A dies while rendering: its ffmpeg hangs, and the test kills A once every asset is paid for
        // and offered. The retry can only run on worker B. (An earlier version had the fake ffmpeg fail and
        // SIGTERM A so that A drained itself; in CI's parallel phase A twice went on without draining and
        // took the retries itself: a kill from the test does not depend on that timing.)
        let fake = dir.appendingPathComponent("broken-ffmpeg", isDirectory: true)
        try FileManager.default.createDirectory(at: fake, withIntermediateDirectories: true)
        let script = fake.appendingPathComponent("ffmpeg")
        try """
        #!/bin/sh
        case "$1" in -version|-h|-hide_banner) exec /usr/bin/ffmpeg "$@" ;; esac
        exec sleep 60
        """.write(to: script, atomically: true, encoding: .utf8)
        chmod(script.path, 0o755)

        let coordinator = try Self.coordinator(
            "coordinator",
            id: "first",
            workers: 0,
            batch: batch,
            out: out,
            extra: ["--max-attempts", "3"],
            environment: environment,
            in: dir
        )
        defer { coordinator.signal(SIGKILL) }
        let endpoint = try #require(await coordinator.boundEndpoint(), "log:\n\(coordinator.log.suffix(3000))")
        var workerA = environment
        workerA["PATH"] = fake.path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        let a = try Self.worker("box-a", endpoint: endpoint, environment: workerA, in: dir)
        defer { a.signal(SIGKILL) }
        #expect(
            await a.waitForLog(within: .seconds(120), "A's render") { $0.contains("Rendering...") },
            "worker A:\n\(a.log.suffix(4000))"
        )
        // Its paid answers were offered as each call ended (ASSET_PUT); a moment for the last to leave.
        try await Task.sleep(for: .seconds(2))
        a.signal(SIGKILL)
        _ = await a.wait(timeout: .seconds(30))
        let afterA = try await Self.paid(base)
        #expect(afterA["openai"] == 1, "one script call: \(afterA)")

        let b = try Self.worker("box-b", endpoint: endpoint, environment: environment, in: dir)
        defer { b.signal(SIGKILL) }
        #expect(await coordinator.wait(timeout: .seconds(180)) == 0, "log:\n\(coordinator.log.suffix(6000))")
        b.signal(SIGTERM)
        _ = await b.wait(timeout: .seconds(30))

        let summary = try Summary.load(out, batch: "first")
        #expect(summary.totals.succeeded == 1)
        #expect(summary.episodes.first?.attempts == 2)
        #expect(summary.episodes.first?.worker == "box-b")
        // Every paid call was made once: the mock answered each provider exactly as often as the episode
        // has assets from it, and nothing more after worker A's attempt.
        let manifestData = try Data(contentsOf: out.appendingPathComponent("first/harbour/manifest.json"))
        let manifest = try #require(try JSONSerialization.jsonObject(with: manifestData) as? [String: Any])
        let assets = manifest["assets"] as? [[String: Any]] ?? []
        let voices = assets.filter { $0["kind"] as? String == "voice" && $0["placeholder"] as? Bool == false }
        let images = assets.filter {
            ["scene", "broll"].contains($0["kind"] as? String ?? "") && $0["placeholder"] as? Bool == false
        }
        #expect(voices.count >= 3 && images.count == 3, "\(assets)")
        let paid = try await Self.paid(base)
        #expect(paid == ["openai": 1, "elevenlabs": voices.count, "huggingface": images.count], "\(paid)")
        #expect(paid == afterA, "worker B paid for nothing: \(afterA) then \(paid)")
        #expect((voices + images).allSatisfy { $0["reused"] as? Bool == true }, "\(assets)")
        #expect((manifest["saved_micros"] as? Int ?? 0) > 0, "\(manifest)")
        #expect(manifest["cost_micros"] as? Int == 0, "the successful attempt paid nothing: \(manifest)")

        let summaryData = try Data(contentsOf: out.appendingPathComponent("first/summary.json"))
        let summaryJSON = try #require(try JSONSerialization.jsonObject(with: summaryData) as? [String: Any])
        let spend = try #require(summaryJSON["spend"] as? [String: Any], "\(summaryJSON.keys.sorted())")
        #expect(spend["reused_calls"] as? Int == 1 + voices.count + images.count, "\(spend)")
        #expect((spend["saved_micros"] as? Int ?? 0) > 0, "\(spend)")
        #expect(coordinator.log.contains("calls reused from the asset store saved"), "\(coordinator.log.suffix(3000))")

        // The same batch again under another id: everything comes from the store, nothing is paid.
        let again = try Self.coordinator(
            "coordinator-again",
            id: "again",
            workers: 1,
            batch: batch,
            out: out,
            environment: environment,
            in: dir
        )
        defer { again.signal(SIGKILL) }
        #expect(await again.wait(timeout: .seconds(180)) == 0, "log:\n\(again.log.suffix(6000))")
        #expect(try await Self.paid(base) == paid, "a re-run pays for nothing")
        let rerun = try Data(contentsOf: out.appendingPathComponent("again/harbour/manifest.json"))
        let rerunManifest = try #require(try JSONSerialization.jsonObject(with: rerun) as? [String: Any])
        #expect(rerunManifest["cost_micros"] as? Int == 0)

        // --no-reuse: the same batch once more pays for every call afresh.
        let fresh = try Self.coordinator(
            "coordinator-fresh",
            id: "fresh",
            workers: 1,
            batch: batch,
            out: out,
            extra: ["--no-reuse"],
            environment: environment,
            in: dir
        )
        defer { fresh.signal(SIGKILL) }
        #expect(await fresh.wait(timeout: .seconds(180)) == 0, "log:\n\(fresh.log.suffix(6000))")
        let paidFresh = try await Self.paid(base)
        #expect(
            paidFresh == ["openai": 2, "elevenlabs": 2 * voices.count, "huggingface": 2 * images.count],
            "\(paidFresh)"
        )
        print("reuse: first attempt paid \(afterA); the retry on box-b, a re-run and the store added nothing")
    }
}

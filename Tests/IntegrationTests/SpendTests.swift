import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 16 part 2 with the real binaries: what the batch cost, as the workers count it at their price
/// tables, is what the mock provider billed, and it is in the summary, the trace, the manifests and the
/// report.
@Suite(.serialized) struct SpendTests {
    @Test func theSummaryAddsUpToWhatTheMockBilled() async throws {
        let dir = try Harness.tempDir("spend")
        let out = dir.appendingPathComponent("output")
        let config = #"{"script_lines": 4, "script_broll": 1}"#
        guard let (mock, base) = try await EpisodeFileTests.startMock(in: dir, config: config) else { return }
        defer { mock.signal(SIGTERM) }
        var environment = BudgetTests.environment(base)
        // The chat model's price, given by the user; the HF and ElevenLabs defaults are shipped.
        environment["REELFARM_PRICES"] = "gpt-6-luna=input:0.40/1M,output:1.60/1M"
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--workers", "2", "--episodes", "4", "--bind", "tcp://127.0.0.1:*", "--output", out.path,
                "--batch-id", "spend",
            ],
            environment: environment,
            cwd: dir
        )
        #expect(await coordinator.wait(timeout: .seconds(180)) == 0, "log:\n\(coordinator.log.suffix(6000))")

        let billed = try await EpisodeFileTests.http("GET", "\(base)/stats/billed")
        func units(_ provider: String, _ key: String) -> Double {
            Double((billed[provider] as? [String: Any])?[key] as? Int ?? -1)
        }
        let expected =
            (units("openai", "prompt_tokens") * 0.40 + units("openai", "completion_tokens") * 1.60)  // µ$ per token
            + units("elevenlabs", "characters") * 100  // $0.10 per 1k characters
            + units("huggingface", "image_pixels") * 2000 / 1_048_576  // $0.002 per 1024×1024
        #expect(units("openai", "prompt_tokens") > 0 && units("elevenlabs", "characters") > 0, "\(billed)")
        #expect(units("huggingface", "images") == 4 * 5, "4 scenes and 1 B-roll shot per episode: \(billed)")

        let data = try Data(contentsOf: out.appendingPathComponent("spend/summary.json"))
        let summary = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let spend = try #require(summary["spend"] as? [String: Any], "\(summary.keys.sorted())")
        let total = try #require(spend["total_micros"] as? Int)
        // Each call is rounded to a micro-dollar on its own: 4 × (1 + 16 + 5) calls at most ½ µ$ off each.
        #expect(abs(Double(total) - expected) <= 44, "summary \(total) µ$, mock billed \(expected) µ$: \(billed)")
        #expect(spend["unpriced_calls"] as? Int == 0)
        let byProvider = spend["by_provider_micros"] as? [String: Int] ?? [:]
        #expect(Set(byProvider.keys) == ["llm", "tts", "image"], "\(byProvider)")
        #expect(byProvider.values.reduce(0, +) == total)
        let episodes = summary["episodes"] as? [[String: Any]] ?? []
        #expect(episodes.reduce(0) { $0 + ($1["cost_micros"] as? Int ?? 0) } == total)

        // trace.jsonl carries each call's cost; every episode's manifest its own and each asset's.
        let lines = try String(contentsOf: out.appendingPathComponent("spend/trace.jsonl"), encoding: .utf8)
            .split(separator: "\n").compactMap {
                try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        #expect(lines.reduce(0) { $0 + ($1["cost_micros"] as? Int ?? 0) } == total)
        for episode in episodes {
            let id = episode["id"] as? String ?? ""
            let manifestData = try Data(contentsOf: out.appendingPathComponent("spend/\(id)/manifest.json"))
            let manifest = try #require(try JSONSerialization.jsonObject(with: manifestData) as? [String: Any])
            #expect(manifest["cost_micros"] as? Int == episode["cost_micros"] as? Int, "\(id)")
            let assets = manifest["assets"] as? [[String: Any]] ?? []
            let assetCosts = assets.reduce(0) { $0 + ($1["cost_micros"] as? Int ?? 0) }
            #expect(assetCosts + (manifest["script_cost_micros"] as? Int ?? 0) == manifest["cost_micros"] as? Int)
            // Every voice clip was paid for, or (a line two episodes share, word for word) reused from the
            // asset store at no cost.
            #expect(
                assets.filter { $0["kind"] as? String == "voice" }.allSatisfy {
                    ($0["cost_micros"] as? Int ?? 0) > 0 || $0["reused"] as? Bool == true
                },
                "\(assets)"
            )
        }
        let report = try String(contentsOf: out.appendingPathComponent("spend/report.html"), encoding: .utf8)
        #expect(report.contains("\"total_micros\":\(total)"))
        print(
            "spend: \(episodes.count) episodes cost \(spend["total"] ?? "?") (\(total) µ$); the mock billed \(expected) µ$"
        )
    }

    /// `--max-spend` with three workers: the fleet never bills more than the cap (each call is reserved at
    /// its most before it leaves), episodes start while what is left covers one, and the rest end capped.
    @Test func theFleetNeverPassesTheSpendCap() async throws {
        let dir = try Harness.tempDir("spendcap")
        let out = dir.appendingPathComponent("output")
        let config = #"{"script_lines": 4, "script_broll": 1, "openai": {"latency_ms": 50}}"#
        guard let (mock, base) = try await EpisodeFileTests.startMock(in: dir, config: config) else { return }
        defer { mock.signal(SIGTERM) }
        var environment = BudgetTests.environment(base)
        environment["REELFARM_PRICES"] = "gpt-6-luna=input:0.40/1M,output:1.60/1M"
        environment["MAX_PARALLEL_EPISODES"] = "2"
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--workers", "3", "--episodes", "12", "--bind", "tcp://127.0.0.1:*", "--output", out.path,
                "--batch-id", "capped", "--max-spend", "0.12",
            ],
            environment: environment,
            cwd: dir
        )
        // Not every episode was made: exit 1.
        #expect(await coordinator.wait(timeout: .seconds(180)) == 1, "log:\n\(coordinator.log.suffix(6000))")
        #expect(coordinator.log.contains("spend cap reached"), "log:\n\(coordinator.log.suffix(4000))")

        let billed = try await EpisodeFileTests.http("GET", "\(base)/stats/billed")
        func units(_ provider: String, _ key: String) -> Double {
            Double((billed[provider] as? [String: Any])?[key] as? Int ?? -1)
        }
        let billedMicros =
            (units("openai", "prompt_tokens") * 0.40 + units("openai", "completion_tokens") * 1.60)
            + units("elevenlabs", "characters") * 100
            + units("huggingface", "image_pixels") * 2000 / 1_048_576
        print("spend cap: the mock billed \(billedMicros) µ$ against a cap of 120000 µ$: \(billed)")
        #expect(billedMicros <= 120_000, "the fleet billed \(billedMicros) µ$ past the $0.12 cap: \(billed)")

        let data = try Data(contentsOf: out.appendingPathComponent("capped/summary.json"))
        let summary = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(summary["status"] as? String == "capped")
        let spend = summary["spend"] as? [String: Any] ?? [:]
        #expect(spend["cap_micros"] as? Int == 120_000)
        let total = spend["total_micros"] as? Int ?? -1
        #expect(
            total <= 120_000 && abs(Double(total) - billedMicros) <= 200,
            "summary \(total), billed \(billedMicros)"
        )
        let episodes = summary["episodes"] as? [[String: Any]] ?? []
        let succeeded = episodes.count { $0["status"] as? String == "succeeded" }
        let capped = episodes.count { $0["status"] as? String == "capped" }
        #expect(succeeded >= 1 && capped >= 1 && succeeded + capped == 12, "\(episodes.map { $0["status"] ?? "" })")
        #expect(spend["capped_episodes"] as? Int == capped)
        // What an episode costs here (about 3.6 ¢) times what succeeded stays within the cap.
        print("spend cap: \(succeeded) succeeded, \(capped) capped, \(spend["total"] ?? "?") of $0.12")
    }
}

import Foundation
import Protocol
import ProviderFixtures
import Testing

@testable import MockProvider

@Suite struct ConfigTests {
    @Test func defaults() throws {
        let config = MockConfig()
        #expect(config.openai.requestLimit == 500)
        #expect(config.openai.maxConcurrent == nil)
        #expect(config.huggingface.requestLimit == nil)
        #expect(config.elevenlabs.maxConcurrent == 5)
        #expect(config.maxBodyBytes == 1_048_576)
        #expect(config.scriptLines == nil)
        #expect(config.scriptBroll == nil)
        #expect(try MockConfig.decode(Data("{}".utf8)) == config)
    }

    @Test func scriptShapeDecodesEncodesAndResets() throws {
        let fixed = try config(#"{"script_lines": 2, "script_broll": 0}"#)
        #expect(fixed.scriptLines == 2)
        #expect(fixed.scriptBroll == 0)
        #expect(try MockConfig.decode(fixed.jsonData()) == fixed)
        let encoded = try JSONDecoder().decode(JSONValue.self, from: fixed.jsonData())
        #expect(encoded["script_lines"] == .integer(2))
        #expect(encoded["script_broll"] == .integer(0))
        // The defaults are written as null, and null brings them back.
        let defaults = try JSONDecoder().decode(JSONValue.self, from: MockConfig().jsonData())
        #expect(defaults["script_lines"] == .null)
        #expect(defaults["script_broll"] == .null)
        let reset = try MockConfig.decode(Data(#"{"script_lines": null, "script_broll": null}"#.utf8), over: fixed)
        #expect(reset.scriptLines == nil)
        #expect(reset.scriptBroll == nil)
        let largest = try config(#"{"script_lines": 1000, "script_broll": 1000}"#)
        #expect(largest.scriptLines == MockConfig.maxScriptItems)
        #expect(largest.scriptBroll == MockConfig.maxScriptItems)
    }

    @Test func narrationCanBeTurnedOff() throws {
        #expect(MockConfig().scriptNarration)
        let quiet = try config(#"{"script_narration": false}"#)
        #expect(!quiet.scriptNarration)
        #expect(try MockConfig.decode(quiet.jsonData()) == quiet)
        #expect(throws: ConfigError.self) { try config(#"{"script_narration": "no"}"#) }
        let script = ScriptGenerator.script(for: "Scenes: 4", lines: 2, broll: 2, narration: false)
        #expect(script.scenes.allSatisfy { $0.narration.isEmpty })
        #expect(script.scenes.map(\.lines.count) == [1, 1, 0, 0])
        #expect(ScriptGenerator.script(for: "Scenes: 4").scenes.allSatisfy { !$0.narration.isEmpty })
    }

    @Test func fullSchemaDecodes() throws {
        let decoded = try config(
            """
            {
              "seed": 42, "max_body_bytes": 2048, "image_max_side": 64,
              "openai": {
                "request_limit": 10, "window_ms": 2000, "max_concurrent": 3, "token_limit": 1000,
                "latency_ms": 25, "jitter_percent": 10, "retry_after_ms": 1500, "timeout_delay_ms": 100,
                "failure_rates": {"billing": 0.1, "malformed": 0.2},
                "force_failures": [{"kind": "rate_limit", "count": 2, "endpoint": "chat_completions",
                                    "retry_after_ms": 1000}, {"kind": "server_error"}]
              },
              "huggingface": {"cold_start_requests": 2, "estimated_time_s": 1.5},
              "elevenlabs": {"max_concurrent": null, "request_limit": 7}
            }
            """
        )
        #expect(decoded.seed == 42)
        #expect(decoded.maxBodyBytes == 2_048)
        #expect(decoded.imageMaxSide == 64)
        #expect(decoded.openai.requestLimit == 10)
        #expect(decoded.openai.window == .seconds(2))
        #expect(decoded.openai.maxConcurrent == 3)
        #expect(decoded.openai.latencyMs == 25)
        #expect(decoded.openai.jitterPercent == 10)
        #expect(decoded.openai.failureRates == [.billing: 0.1, .malformed: 0.2])
        #expect(
            decoded.openai.forceFailures == [
                ForcedFailure(kind: .rateLimit, count: 2, endpoint: .chatCompletions, retryAfterMs: 1_000),
                ForcedFailure(kind: .serverError, count: 1, endpoint: nil, retryAfterMs: nil),
            ]
        )
        #expect(decoded.huggingface.coldStartRequests == 2)
        #expect(decoded.huggingface.estimatedTimeS == 1.5)
        #expect(decoded.elevenlabs.maxConcurrent == nil)
        #expect(decoded.elevenlabs.requestLimit == 7)
        // Untouched fields keep their defaults.
        #expect(decoded.huggingface.windowMs == 60_000)
    }

    @Test func encodingRoundTrips() throws {
        let original = try config(
            """
            {"seed": 7, "openai": {"request_limit": null, "failure_rates": {"timeout": 0.5},
             "force_failures": [{"kind": "billing", "count": 3}]}}
            """
        )
        let again = try MockConfig.decode(original.jsonData())
        #expect(again == original)
        #expect(again.openai.requestLimit == nil)
    }

    @Test func mergeKeepsCurrentValues() throws {
        let base = try config(#"{"seed": 9, "openai": {"request_limit": 3, "latency_ms": 40}}"#)
        let merged = try MockConfig.decode(Data(#"{"openai": {"latency_ms": 5}}"#.utf8), over: base)
        #expect(merged.seed == 9)
        #expect(merged.openai.requestLimit == 3)
        #expect(merged.openai.latencyMs == 5)
    }

    @Test func mergeKeepsTheScriptShape() throws {
        let base = try config(#"{"script_lines": 2, "script_broll": 2}"#)
        let merged = try MockConfig.decode(Data(#"{"seed": 1, "script_broll": 5}"#.utf8), over: base)
        #expect(merged.scriptLines == 2)
        #expect(merged.scriptBroll == 5)
        #expect(merged.seed == 1)
    }

    @Test(arguments: [
        ("[1]", "configuration: expected an object"),
        ("{\"sed\": 1}", "sed: unknown key"),
        ("{\"openai\": {\"request_limits\": 1}}", "openai.request_limits: unknown key"),
        ("{\"openai\": {\"request_limit\": 0}}", "openai.request_limit: expected a positive integer"),
        ("{\"openai\": {\"window_ms\": \"60s\"}}", "openai.window_ms: expected a positive integer"),
        ("{\"openai\": {\"jitter_percent\": 101}}", "openai.jitter_percent: expected a number in 0.0...100.0"),
        ("{\"openai\": {\"failure_rates\": {\"oops\": 0.1}}}", "openai.failure_rates.oops: unknown failure kind"),
        (
            "{\"openai\": {\"failure_rates\": {\"billing\": 0.6, \"timeout\": 0.6}}}",
            "openai.failure_rates: the probabilities add up to more than 1"
        ),
        (
            "{\"openai\": {\"force_failures\": [{\"count\": 1}]}}",
            "openai.force_failures[0].kind: expected a failure kind"
        ),
        (
            "{\"openai\": {\"force_failures\": [{\"kind\": \"billing\", \"endpoint\": \"chat\"}]}}",
            "openai.force_failures[0].endpoint: expected an endpoint name"
        ),
        ("{\"seed\": -1}", "seed: expected a non-negative integer"),
        ("{\"script_lines\": 0}", "script_lines: expected a positive integer"),
        ("{\"script_lines\": -2}", "script_lines: expected a positive integer"),
        ("{\"script_lines\": 1.5}", "script_lines: expected a positive integer"),
        ("{\"script_lines\": \"2\"}", "script_lines: expected a positive integer"),
        ("{\"script_lines\": 1001}", "script_lines: expected at most 1000"),
        ("{\"script_broll\": -1}", "script_broll: expected a non-negative integer"),
        ("{\"script_broll\": true}", "script_broll: expected a non-negative integer"),
        ("{\"script_broll\": 1001}", "script_broll: expected at most 1000"),
        ("{\"script_line\": 2}", "script_line: unknown key"),
        ("{\"openai\": {\"script_lines\": 2}}", "openai.script_lines: unknown key"),
        ("not json", "not valid JSON"),
    ])
    func invalidConfigsAreRejectedWithThePath(json: String, message: String) {
        #expect(throws: ConfigError(message: message)) { try MockConfig.decode(Data(json.utf8)) }
    }
}

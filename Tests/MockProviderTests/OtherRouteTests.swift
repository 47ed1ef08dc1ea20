import Foundation
import Hummingbird
import HummingbirdTesting
import Protocol
import ProviderFixtures
import Testing

@testable import MockProvider

@Suite struct HuggingFaceRouteTests {
    @Test func textToImageReturnsRawPNG() async throws {
        try await withMockApp { client, _ in
            let response = try await client.post(
                "/hf/models/stabilityai/stable-diffusion-xl-base-1.0",
                json: #"{"inputs": "a lighthouse at dusk", "parameters": {"width": 1280, "height": 720}}"#
            )
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "image/png")
            let png = try PNGInfo(response.bytes)
            #expect(png.width == 256 && png.height == 144)
        }
    }

    @Test func coldStartIs503WithEstimatedTimePerModel() async throws {
        let cold = try config(#"{"huggingface": {"cold_start_requests": 2, "estimated_time_s": 12.5}}"#)
        try await withMockApp(cold) { client, engine in
            for _ in 0..<2 {
                let response = try await client.post("/hf/models/org/model-a", json: #"{"inputs": "x"}"#)
                #expect(response.status == .serviceUnavailable)
                #expect(
                    response.json
                        == json(#"{"error": "Model org/model-a is currently loading", "estimated_time": 12.5}"#)
                )
            }
            #expect(try await client.post("/hf/models/org/model-a", json: #"{"inputs": "x"}"#).status == .ok)
            // Model b is still cold.
            #expect(
                try await client.post("/hf/models/org/model-b", json: #"{"inputs": "x"}"#).status == .serviceUnavailable
            )
            #expect(engine.stats().huggingface.total.rejected["model_loading"] == 3)
        }
    }

    @Test func waitForModelHeaderWaitsInsteadOf503() async throws {
        let cold = try config(#"{"huggingface": {"cold_start_requests": 5, "estimated_time_s": 0.2}}"#)
        try await withMockApp(cold) { client, _ in
            let start = ContinuousClock.now
            let response = try await client.post(
                "/hf/models/org/model",
                json: #"{"inputs": "x"}"#,
                headers: [HTTPFields.Element.Name("X-Wait-For-Model")!: "true"]
            )
            #expect(response.status == .ok)
            #expect(ContinuousClock.now - start >= .milliseconds(200))
            #expect(try await client.post("/hf/models/org/model", json: #"{"inputs": "x"}"#).status == .ok)
        }
    }

    @Test func failureShapes() async throws {
        let forced = try config(
            #"{"huggingface": {"force_failures": [{"kind": "billing"}, {"kind": "rate_limit", "retry_after_ms": 2500}, {"kind": "malformed"}]}}"#
        )
        try await withMockApp(forced) { client, _ in
            let billing = try await client.post("/hf/models/o/m", json: #"{"inputs": "x"}"#)
            #expect(billing.status.code == 402)
            #expect(billing.json == (try recordedJSON("huggingface/credits_exhausted")))
            let rate = try await client.post("/hf/models/o/m", json: #"{"inputs": "x"}"#)
            #expect(rate.status == .tooManyRequests)
            #expect(rate.header("retry-after") == "3")
            #expect(rate.header("retry-after-ms") == "2500")
            let malformed = try await client.post("/hf/models/o/m", json: #"{"inputs": "x"}"#)
            #expect(malformed.status == .ok)
            #expect(throws: PNGInfo.Failure.self) { try PNGInfo(malformed.bytes) }
            let bad = try await client.post("/hf/models/o/m", json: #"{"prompt": "x"}"#)
            #expect(bad.status == .badRequest)
            #expect(bad.json?["error"]?.string != nil)
        }
    }
}

@Suite struct ElevenLabsRouteTests {
    @Test func textToSpeechReturnsWAV() async throws {
        try await withMockApp { client, _ in
            let response = try await client.post(
                "/elevenlabs/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM?output_format=pcm_22050",
                json:
                    #"{"text": "one two three four five", "model_id": "eleven_flash_v2_5", "voice_settings": {"stability": 0.5}}"#,
                headers: [HTTPFields.Element.Name("xi-api-key")!: "test"]
            )
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "audio/wav")
            #expect(response.header("current-concurrent-requests") == "1")
            #expect(response.header("maximum-concurrent-requests") == "5")
            let wav = try #require(WAVInfo(response.bytes))
            #expect(abs(wav.duration - 2.0) < 0.001)
            let stream = try await client.post("/elevenlabs/v1/text-to-speech/voice/stream", json: #"{"text": "hi"}"#)
            #expect(stream.status == .ok)
        }
    }

    @Test func concurrencyLimitGivesTheDetailStatus() async throws {
        let limited = try config(#"{"elevenlabs": {"max_concurrent": 2}}"#)
        try await withMockApp(limited) { client, engine in
            // Hold both slots by admitting two requests that have not finished.
            _ = engine.admit(AdmissionRequest(endpoint: .textToSpeech))
            _ = engine.admit(AdmissionRequest(endpoint: .textToSpeech))
            let response = try await client.post("/elevenlabs/v1/text-to-speech/v", json: #"{"text": "hi"}"#)
            #expect(response.status == .tooManyRequests)
            #expect(response.json?["detail"]?["status"] == .string("too_many_concurrent_requests"))
            // The recorded body; its ceiling (2) is the mock's here.
            #expect(response.json == (try recordedJSON("elevenlabs/too_many_concurrent_requests")))
            #expect(response.header("current-concurrent-requests") == "2")
            #expect(response.header("maximum-concurrent-requests") == "2")
            #expect(response.header("retry-after") == nil)
            engine.finish(.textToSpeech)
            #expect(try await client.post("/elevenlabs/v1/text-to-speech/v", json: #"{"text": "hi"}"#).status == .ok)
            let stats = engine.stats().elevenlabs.total
            #expect(stats.rejected["concurrency"] == 1)
            #expect(stats.maxInFlight == 2)
        }
    }

    @Test func overloadIsSystemBusyAndBillingIsQuotaExceeded() async throws {
        let forced = try config(#"{"elevenlabs": {"force_failures": [{"kind": "overload"}, {"kind": "billing"}]}}"#)
        try await withMockApp(forced) { client, _ in
            let busy = try await client.post("/elevenlabs/v1/text-to-speech/v", json: #"{"text": "hi"}"#)
            #expect(busy.status == .tooManyRequests)
            #expect(busy.json?["detail"]?["status"] == .string("system_busy"))
            #expect(busy.json == (try recordedJSON("elevenlabs/system_busy")))
            let quota = try await client.post("/elevenlabs/v1/text-to-speech/v", json: #"{"text": "hi"}"#)
            #expect(quota.status == .unauthorized)
            #expect(quota.json?["detail"]?["status"] == .string("quota_exceeded"))
            #expect(quota.json == (try recordedJSON("elevenlabs/quota_exceeded")))
            #expect(
                quota.header("x-trace-id")
                    == (try ProviderFixtures.named("elevenlabs/quota_exceeded").header("x-trace-id"))
            )
        }
    }
}

@Suite struct AdminAndStatsTests {
    @Test func healthIsOK() async throws {
        try await withMockApp { client, _ in
            let response = try await client.execute(uri: "/health", method: .get)
            #expect(response.status == .ok)
        }
    }

    @Test func statsCountEverythingAndReset() async throws {
        let clock = ManualClock()
        let limited = try config(#"{"openai": {"request_limit": 3, "window_ms": 10000}}"#)
        try await withMockApp(limited, clock: clock) { client, _ in
            // 3 accepted at t=0..2, 2 rejected, then 2 more accepted once the window slides.
            var statuses: [HTTPResponse.Status] = []
            for step in 0..<5 {
                clock.advance(by: .seconds(step == 0 ? 0 : 1))
                statuses.append(try await client.post("/v1/audio/speech", json: #"{"input": "hi"}"#).status)
            }
            clock.advance(by: .seconds(7))  // t = 11: the first two left the window
            statuses.append(try await client.post("/v1/chat/completions", json: chatJSON).status)
            statuses.append(try await client.post("/v1/chat/completions", json: chatJSON).status)
            statuses.append(try await client.post("/v1/chat/completions", json: "{bad").status)
            #expect(statuses == [.ok, .ok, .ok, .tooManyRequests, .tooManyRequests, .ok, .ok, .badRequest])

            let stats = try await client.stats()
            let openai = stats.openai.total
            #expect(openai.requests == 8)
            #expect(openai.accepted == 5)
            #expect(openai.rejected["rate_limit"] == 2)
            #expect(openai.rejectedTotal == 2)
            #expect(openai.badRequest == 1)
            #expect(openai.maxAcceptedInWindow == 3)
            #expect(openai.inFlight == 0)
            #expect(openai.windowMs == 10_000)
            #expect(stats[.audioSpeech].accepted == 3)
            #expect(stats[.chatCompletions].accepted == 2)
            #expect(stats[.chatCompletions].maxAcceptedInWindow == 2)
            #expect(Set(openai.rejected.keys) == Set(FailureKind.allCases.map(\.rawValue)))
            #expect(stats.huggingface.total.requests == 0)

            let reset = try await client.execute(uri: "/stats/reset", method: .post)
            #expect(reset.status == .ok)
            let after = try await client.stats()
            #expect(after.openai.total.requests == 0)
            #expect(after.openai.total.maxAcceptedInWindow == 0)
        }
    }

    @Test func statsJSONUsesSnakeCaseKeys() async throws {
        try await withMockApp { client, _ in
            let response = try await client.execute(uri: "/stats", method: .get)
            let body = try #require(response.json)
            #expect(body["openai"]?["max_accepted_in_window"]?.int == 0)
            #expect(body["openai"]?["endpoints"]?["chat_completions"]?["rejected"]?["rate_limit"]?.int == 0)
            #expect(body["elevenlabs"]?["endpoints"]?["text_to_speech"]?["max_in_flight"]?.int == 0)
            #expect(body["huggingface"]?["endpoints"]?["text_to_image"]?["in_flight"]?.int == 0)
        }
    }

    @Test func adminConfigReconfiguresARunningServer() async throws {
        try await withMockApp(try config(#"{"seed": 5}"#)) { client, engine in
            let posted = try await client.post(
                "/admin/config",
                json:
                    #"{"openai": {"force_failures": [{"kind": "billing", "count": 1, "endpoint": "chat_completions"}]}}"#
            )
            #expect(posted.status == .ok)
            // Applied over the startup configuration: the seed stays.
            #expect(posted.json?["seed"]?.int == 5)
            #expect(engine.config.openai.forceFailures.count == 1)
            let billed = try await client.post("/v1/chat/completions", json: chatJSON)
            #expect(billed.json?["error"]?["code"] == .string("insufficient_quota"))

            // merge=true keeps the current values and changes only what is given.
            let merged = try await client.post("/admin/config?merge=true", json: #"{"openai": {"latency_ms": 1}}"#)
            #expect(merged.status == .ok)
            #expect(engine.config.openai.latencyMs == 1)
            #expect(engine.config.openai.forceFailures.count == 1)

            let current = try await client.execute(uri: "/admin/config", method: .get)
            #expect(current.json?["openai"]?["latency_ms"]?.int == 1)

            let invalid = try await client.post("/admin/config", json: #"{"openai": {"request_limit": -1}}"#)
            #expect(invalid.status == .badRequest)
            #expect(
                invalid.json?["error"]?["message"] == .string("openai.request_limit: expected a positive integer")
            )
            #expect(engine.config.openai.latencyMs == 1)
        }
    }

    @Test func adminConfigSetsTheScriptShape() async throws {
        try await withMockApp(try config(#"{"script_lines": 3}"#)) { client, engine in
            // The lines per scene and the B-roll count of the script the chat endpoint writes now.
            func shape() async throws -> ([Int], Int) {
                let response = try await client.post("/v1/chat/completions", json: scriptChatJSON)
                let content = try #require(response.json?["choices"]?[0]?["message"]?["content"]?.string)
                let script = try JSONDecoder().decode(EpisodeScript.self, from: Data(content.utf8))
                return (script.scenes.map(\.lines.count), script.broll.count)
            }
            #expect(try await shape() == ([1, 1, 1, 0], 2))

            // Over the startup configuration: its script_lines stays.
            let posted = try await client.post("/admin/config", json: #"{"script_broll": 0}"#)
            #expect(posted.status == .ok)
            #expect(posted.json?["script_lines"]?.int == 3)
            #expect(posted.json?["script_broll"]?.int == 0)
            #expect(try await shape() == ([1, 1, 1, 0], 0))

            // merge=true keeps the current script_broll.
            let merged = try await client.post("/admin/config?merge=true", json: #"{"script_lines": 2}"#)
            #expect(merged.status == .ok)
            #expect(engine.config.scriptLines == 2)
            #expect(engine.config.scriptBroll == 0)
            #expect(try await shape() == ([1, 1, 0, 0], 0))
            let current = try await client.execute(uri: "/admin/config", method: .get)
            #expect(current.json?["script_lines"]?.int == 2)
            #expect(current.json?["script_broll"]?.int == 0)

            // Bad values are refused with the field's name and change nothing.
            let invalid = try await client.post("/admin/config?merge=true", json: #"{"script_lines": 0}"#)
            #expect(invalid.status == .badRequest)
            #expect(invalid.json?["error"]?["message"] == .string("script_lines: expected a positive integer"))
            let unknown = try await client.post("/admin/config?merge=true", json: #"{"script_brol": 1}"#)
            #expect(unknown.json?["error"]?["message"] == .string("script_brol: unknown key"))
            #expect(engine.config.scriptLines == 2)

            // null brings back the random lines and ceil(N/2) B-roll shots.
            let cleared = try await client.post(
                "/admin/config?merge=true",
                json: #"{"script_lines": null, "script_broll": null}"#
            )
            #expect(cleared.json?["script_lines"] == .null)
            #expect(cleared.json?["script_broll"] == .null)
            let (lines, broll) = try await shape()
            #expect(lines.allSatisfy { (1...2).contains($0) })
            #expect(lines.count == 4)
            #expect(broll == 2)

            // Without merge, an empty body restores the startup configuration.
            _ = try await client.post("/admin/config", json: "{}")
            #expect(engine.config.scriptLines == 3)
            #expect(engine.config.scriptBroll == nil)
        }
    }
}

private let chatJSON = #"{"messages": [{"role": "user", "content": "hi"}]}"#

private let scriptChatJSON = #"""
    {"response_format": {"type": "json_object"},
     "messages": [{"role": "user", "content": "Write an episode about owls.\nScenes: 4"}]}
    """#

import Foundation
import Hummingbird
import HummingbirdTesting
import Protocol
import ProviderFixtures
import Testing

@testable import MockProvider

private let chatBody = #"""
    {"model": "gpt-4o-mini", "response_format": {"type": "json_object"},
     "messages": [{"role": "system", "content": "Answer in JSON."},
                  {"role": "user", "content": "Write an episode about bees.\nScenes: 5"}]}
    """#

@Suite struct OpenAIRouteTests {
    @Test func chatInJSONModeReturnsAScript() async throws {
        try await withMockApp { client, _ in
            let response = try await client.post("/v1/chat/completions", json: chatBody)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            let body = try #require(response.json)
            #expect(body["object"] == .string("chat.completion"))
            #expect(body["model"] == .string("gpt-4o-mini"))
            #expect(body["choices"]?[0]?["finish_reason"] == .string("stop"))
            #expect(body["choices"]?[0]?["message"]?["role"] == .string("assistant"))
            let usage = try #require(body["usage"])
            let prompt = try #require(usage["prompt_tokens"]?.int)
            let completion = try #require(usage["completion_tokens"]?.int)
            #expect(usage["total_tokens"]?.int == prompt + completion)
            let content = try #require(body["choices"]?[0]?["message"]?["content"]?.string)
            let script = try JSONDecoder().decode(EpisodeScript.self, from: Data(content.utf8))
            #expect(script.scenes.count == 5)
            #expect(script.broll.count == 3)
            #expect(script == ScriptGenerator.script(for: "Write an episode about bees.\nScenes: 5"))
            // Rate-limit headers, Go-style durations.
            #expect(response.header("x-ratelimit-limit-requests") == "500")
            #expect(response.header("x-ratelimit-remaining-requests") == "499")
            #expect(response.header("x-ratelimit-reset-requests")?.hasSuffix("s") == true)
            #expect(response.header("x-ratelimit-limit-tokens") == "200000")
            #expect(response.header("x-ratelimit-remaining-tokens").flatMap(Int.init).map { $0 < 200_000 } == true)
            #expect(response.header("x-ratelimit-reset-tokens") != nil)
        }
    }

    @Test func chatScriptHasTheConfiguredLinesAndBroll() async throws {
        try await withMockApp(try config(#"{"script_lines": 2, "script_broll": 2}"#)) { client, _ in
            let prompt = "Write an episode about bees.\nScenes: 4"
            let body = chatBody.replacingOccurrences(of: "Scenes: 5", with: "Scenes: 4")
            let response = try await client.post("/v1/chat/completions", json: body)
            #expect(response.status == .ok)
            let content = try #require(response.json?["choices"]?[0]?["message"]?["content"]?.string)
            let script = try JSONDecoder().decode(EpisodeScript.self, from: Data(content.utf8))
            #expect(script.scenes.count == 4)
            #expect(script.scenes.map(\.lines.count) == [1, 1, 0, 0])
            #expect(script.broll.count == 2)
            #expect(script == ScriptGenerator.script(for: prompt, lines: 2, broll: 2))
            // Plain mode is not a script and ignores the shape.
            let plain = try await client.post(
                "/v1/chat/completions",
                json: #"{"messages": [{"role": "user", "content": "Hello there"}]}"#
            )
            #expect(plain.json?["choices"]?[0]?["message"]?["content"]?.string?.contains("Hello there") == true)
        }
    }

    @Test func chatAcceptsContentPartsAndPlainMode() async throws {
        try await withMockApp { client, _ in
            let response = try await client.post(
                "/v1/chat/completions",
                json: #"{"messages": [{"role": "user", "content": [{"type": "text", "text": "Hello there"}]}]}"#
            )
            #expect(response.status == .ok)
            let content = try #require(response.json?["choices"]?[0]?["message"]?["content"]?.string)
            #expect(content.contains("Hello there"))
        }
    }

    @Test func speechReturnsWAVProportionalToWords() async throws {
        try await withMockApp { client, _ in
            var durations: [Double] = []
            for words in [1, 5, 20] {
                let input = Array(repeating: "word", count: words).joined(separator: " ")
                let response = try await client.post(
                    "/v1/audio/speech",
                    json: #"{"model": "tts-1", "voice": "alloy", "response_format": "wav", "input": "\#(input)"}"#
                )
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "audio/wav")
                #expect(response.header("x-ratelimit-limit-requests") == "500")
                let wav = try #require(WAVInfo(response.bytes))
                #expect(wav.sampleRate == 22_050 && wav.channels == 1 && wav.bitsPerSample == 16)
                durations.append(wav.duration)
            }
            #expect(abs(durations[0] - 0.5) < 0.001)
            #expect(abs(durations[1] - 2.0) < 0.001)
            #expect(abs(durations[2] - 8.0) < 0.001)
            // mp3 (the default) still gets WAV bytes, labelled as such.
            let mp3 = try await client.post("/v1/audio/speech", json: #"{"input": "hello"}"#)
            #expect(mp3.headers[.contentType] == "audio/wav")
            #expect(WAVInfo(mp3.bytes) != nil)
        }
    }

    @Test func imagesReturnBase64PNGs() async throws {
        try await withMockApp { client, _ in
            let response = try await client.post(
                "/v1/images/generations",
                json:
                    #"{"model": "dall-e-3", "prompt": "a red fox", "size": "1792x1024", "response_format": "b64_json"}"#
            )
            #expect(response.status == .ok)
            let body = try #require(response.json)
            #expect(body["created"]?.int != nil)
            let b64 = try #require(body["data"]?[0]?["b64_json"]?.string)
            let png = try PNGInfo(Array(try #require(Data(base64Encoded: b64))))
            #expect(png.width == 256 && png.height == 146)

            let two = try await client.post("/v1/images/generations", json: #"{"prompt": "cats", "n": 2}"#)
            #expect(two.json?["data"]?.array?.count == 2)
        }
    }

    @Test func imagesRefuseURLResponses() async throws {
        try await withMockApp { client, engine in
            let response = try await client.post(
                "/v1/images/generations",
                json: #"{"prompt": "a fox", "response_format": "url"}"#
            )
            #expect(response.status == .badRequest)
            #expect(response.json?["error"]?["type"] == .string("invalid_request_error"))
            #expect(response.json?["error"]?["param"] == .string("response_format"))
            #expect(response.header("x-ratelimit-limit-requests") == "500")
            #expect(engine.stats()[.imagesGenerations].badRequest == 1)
        }
    }

    @Test func malformedJSONIsA400WithAnOpenAIError() async throws {
        try await withMockApp { client, engine in
            for body in ["{not json", "[]", #"{"messages": "nope"}"#, #"{"model": "x"}"#, #"{"messages": []}"#] {
                let response = try await client.post("/v1/chat/completions", json: body)
                #expect(response.status == .badRequest, "\(body)")
                #expect(response.json?["error"]?["type"] == .string("invalid_request_error"))
                #expect(response.json?["error"]?["param"] == .null)
            }
            let speech = try await client.post("/v1/audio/speech", json: #"{"input": ""}"#)
            #expect(speech.status == .badRequest)
            let stats = engine.stats()
            #expect(stats.openai.total.badRequest == 6)
            #expect(stats.openai.total.accepted == 0)
            #expect(stats.openai.total.requests == 6)
        }
    }

    @Test func oversizedBodyIsA413() async throws {
        try await withMockApp(try config(#"{"max_body_bytes": 1024}"#)) { client, engine in
            let big = #"{"input": "\#(String(repeating: "a", count: 5_000))"}"#
            let response = try await client.post("/v1/audio/speech", json: big)
            #expect(response.status == .contentTooLarge)
            #expect(response.json?["error"]?["code"] == .string("request_too_large"))
            // The server is still fine afterwards.
            let small = try await client.post("/v1/audio/speech", json: #"{"input": "ok"}"#)
            #expect(small.status == .ok)
            #expect(engine.stats()[.audioSpeech].badRequest == 1)
        }
    }
}

@Suite struct OpenAIFailureTests {
    @Test func windowRateLimitIsA429WithRetryAfter() async throws {
        let clock = ManualClock()
        try await withMockApp(try config(#"{"openai": {"request_limit": 2, "window_ms": 60000}}"#), clock: clock) {
            client,
            engine in
            for _ in 0..<2 {
                clock.advance(by: .seconds(1))
                #expect(try await client.post("/v1/audio/speech", json: #"{"input": "hi"}"#).status == .ok)
            }
            clock.advance(by: .milliseconds(500))
            let response = try await client.post("/v1/chat/completions", json: chatBody)
            #expect(response.status == .tooManyRequests)
            // The first accepted request (t=1 s) leaves the window at t=61 s; now is 2.5 s.
            #expect(response.header("retry-after") == "59")
            #expect(response.header("retry-after-ms") == "58500")
            #expect(response.header("x-ratelimit-remaining-requests") == "0")
            #expect(response.header("x-ratelimit-reset-requests") == "59.5s")
            let error = try #require(response.json?["error"])
            #expect(error["type"] == .string("requests"))
            #expect(error["code"] == .string("rate_limit_exceeded"))
            #expect(error["param"] == .null)
            // The recorded body, with the request's model, the mock's limit and its wait.
            let recorded = try recordedJSON("openai/rate_limit_requests")
            #expect(error["type"] == recorded["error"]?["type"])
            let message = try #require(error["message"]?.string)
            let expected = try #require(recorded["error"]?["message"]?.string)
                .replacingOccurrences(of: "gpt-6-luna", with: "gpt-4o-mini")
                .replacingOccurrences(of: "Limit 500, Used 500", with: "Limit 2, Used 2")
                .replacingOccurrences(of: "try again in 120ms", with: "try again in 58.5s")
            #expect(message == expected)
            #expect(
                response.header("x-request-id")
                    == (try ProviderFixtures.named("openai/rate_limit_requests").header("x-request-id"))
            )
            #expect(engine.stats().openai.total.rejected["rate_limit"] == 1)
            #expect(engine.stats().openai.total.maxAcceptedInWindow == 2)
        }
    }

    @Test func firstTwoChatCallsAreForcedRateLimits() async throws {
        let forced = try config(
            #"""
            {"openai": {"force_failures": [
              {"kind": "rate_limit", "count": 2, "endpoint": "chat_completions", "retry_after_ms": 1000}]}}
            """#
        )
        try await withMockApp(forced) { client, _ in
            // Other endpoints are not affected.
            #expect(try await client.post("/v1/audio/speech", json: #"{"input": "hi"}"#).status == .ok)
            for _ in 0..<2 {
                let response = try await client.post("/v1/chat/completions", json: chatBody)
                #expect(response.status == .tooManyRequests)
                #expect(response.header("retry-after") == "1")
                #expect(response.header("retry-after-ms") == "1000")
                #expect(response.json?["error"]?["code"] == .string("rate_limit_exceeded"))
            }
            #expect(try await client.post("/v1/chat/completions", json: chatBody).status == .ok)
        }
    }

    @Test func billingIsA429WithoutRetryAfter() async throws {
        try await withMockApp(try config(#"{"openai": {"force_failures": [{"kind": "billing"}]}}"#)) { client, _ in
            let response = try await client.post("/v1/chat/completions", json: chatBody)
            #expect(response.status == .tooManyRequests)
            #expect(response.header("retry-after") == nil)
            #expect(response.header("retry-after-ms") == nil)
            #expect(response.header("x-ratelimit-limit-requests") == "500")
            let error = try #require(response.json?["error"])
            #expect(error["type"] == .string("insufficient_quota"))
            #expect(error["code"] == .string("insufficient_quota"))
            #expect(error["param"] == .null)
            #expect(response.json == (try recordedJSON("openai/insufficient_quota")))
        }
    }

    @Test func concurrencyServerErrorAndOverloadShapes() async throws {
        let forced = try config(
            #"{"openai": {"max_concurrent": 7, "force_failures": [{"kind": "concurrency"}, {"kind": "server_error"}, {"kind": "overload"}]}}"#
        )
        try await withMockApp(forced) { client, _ in
            let concurrency = try await client.post("/v1/audio/speech", json: #"{"input": "hi"}"#)
            #expect(concurrency.status == .tooManyRequests)
            #expect(concurrency.json?["error"]?["code"] == .string("rate_limit_exceeded"))
            #expect(concurrency.json?["error"]?["message"]?.string?.contains("concurrent") == true)
            let serverError = try await client.post("/v1/audio/speech", json: #"{"input": "hi"}"#)
            #expect(serverError.status == .internalServerError)
            #expect(serverError.json?["error"]?["type"] == .string("server_error"))
            let overload = try await client.post("/v1/audio/speech", json: #"{"input": "hi"}"#)
            #expect(overload.status == .serviceUnavailable)
            #expect(overload.json?["error"]?["type"] == .string("server_error"))
        }
    }

    @Test func malformedRepliesAlternateBetweenCutJSONAndANonScript() async throws {
        try await withMockApp(try config(#"{"openai": {"failure_rates": {"malformed": 1.0}}}"#)) { client, engine in
            var cut = 0
            var notScript = 0
            for _ in 0..<4 {
                let response = try await client.post("/v1/chat/completions", json: chatBody)
                #expect(response.status == .ok)
                if let body = response.json {
                    let content = try #require(body["choices"]?[0]?["message"]?["content"]?.string)
                    #expect(throws: (any Error).self) {
                        try JSONDecoder().decode(EpisodeScript.self, from: Data(content.utf8))
                    }
                    notScript += 1
                } else {
                    cut += 1
                }
            }
            #expect(cut == 2 && notScript == 2)
            let image = try await client.post("/v1/images/generations", json: #"{"prompt": "x"}"#)
            #expect(image.status == .ok)
            #expect(engine.stats().openai.total.rejected["malformed"] == 5)
            #expect(engine.stats().openai.total.accepted == 0)
        }
    }

    @Test func timeoutAnswersOnlyAfterTheDelay() async throws {
        let timeout = try config(#"{"openai": {"timeout_delay_ms": 300, "force_failures": [{"kind": "timeout"}]}}"#)
        try await withMockApp(timeout) { client, engine in
            let start = ContinuousClock.now
            let response = try await client.post("/v1/audio/speech", json: #"{"input": "hi"}"#)
            #expect(ContinuousClock.now - start >= .milliseconds(300))
            #expect(response.status == .ok)
            #expect(engine.stats().openai.total.rejected["timeout"] == 1)
        }
    }

    @Test func latencyIsApplied() async throws {
        try await withMockApp(try config(#"{"openai": {"latency_ms": 200}}"#)) { client, _ in
            let start = ContinuousClock.now
            let response = try await client.post("/v1/audio/speech", json: #"{"input": "hi"}"#)
            #expect(response.status == .ok)
            #expect(ContinuousClock.now - start >= .milliseconds(200))
        }
    }
}

import Foundation
import Hummingbird
import HummingbirdTesting
import Protocol
import ProviderFixtures
import Testing

@testable import MockProvider

private let chatJSON = #"{"model": "gpt-6-luna", "messages": [{"role": "user", "content": "hi"}]}"#

/// `force_failures[].fixture`, and the failure kinds whose replies are recorded fixtures.
@Suite struct FixtureReplyTests {
    /// `requests == accepted + rejected_total + bad_request`, for the provider and every endpoint.
    private func expectBalanced(_ stats: StatsSnapshot.ProviderStats) {
        for counters in [stats.total] + Array(stats.endpoints.values) {
            #expect(counters.requests == counters.accepted + counters.rejectedTotal + counters.badRequest)
        }
    }

    @Test func aForcedFixtureIsSentExactly() async throws {
        let forced = try config(
            #"{"openai": {"force_failures": [{"fixture": "openai/insufficient_quota", "endpoint": "chat_completions"}]}}"#
        )
        try await withMockApp(forced) { client, engine in
            let fixture = try ProviderFixtures.named("openai/insufficient_quota")
            let response = try await client.post("/v1/chat/completions", json: chatJSON)
            #expect(Int(response.status.code) == fixture.status)
            #expect(response.json == (try recordedJSON("openai/insufficient_quota")))
            for (name, value) in fixture.headers {
                #expect(response.header(name) == value, "\(name)")
            }
            // Exactly the recorded headers: none of the rate-limit headers the mock computes.
            #expect(response.header("x-ratelimit-limit-requests") == nil)
            #expect(response.header("retry-after") == nil)
            #expect(try await client.post("/v1/chat/completions", json: chatJSON).status == .ok)

            let stats = engine.stats().openai
            #expect(stats.total.rejected["billing"] == 1)
            #expect(stats.total.accepted == 1)
            expectBalanced(stats)
            #expect(engine.requestLog().requests.map(\.outcome) == [.failed(.billing), .accepted])
        }
    }

    @Test func aForcedFixtureNamesTheRequestedModel() async throws {
        let forced = try config(#"{"openai": {"force_failures": [{"fixture": "openai/chat_model_not_found"}]}}"#)
        try await withMockApp(forced) { client, engine in
            let response = try await client.post("/v1/chat/completions", json: chatJSON)
            #expect(response.status == .notFound)
            #expect(response.json == (try recordedJSON("openai/chat_model_not_found", model: "gpt-6-luna")))
            #expect(
                response.json?["error"]?["message"]
                    == .string("The model `gpt-6-luna` does not exist or you do not have access to it.")
            )
            #expect(engine.stats().openai.total.rejected["not_found"] == 1)
        }
    }

    @Test func aForcedElevenLabsFixtureNamesTheRequestedVoice() async throws {
        let forced = try config(#"{"elevenlabs": {"force_failures": [{"fixture": "elevenlabs/voice_not_found"}]}}"#)
        try await withMockApp(forced) { client, engine in
            let response = try await client.post("/elevenlabs/v1/text-to-speech/voice42", json: #"{"text": "hi"}"#)
            #expect(response.status == .badRequest)
            #expect(response.json == (try recordedJSON("elevenlabs/voice_not_found", voiceId: "voice42")))
            // A recorded 400 counts as bad_request, outside `rejected`.
            let stats = engine.stats().elevenlabs
            #expect(stats.total.badRequest == 1 && stats.total.rejectedTotal == 0)
            expectBalanced(stats)
            #expect(engine.requestLog().requests.map(\.outcome) == [.badRequest])
        }
    }

    /// Each forced fixture is counted under the outcome its status and body imply, and the counters still add up.
    @Test func forcedFixturesCountUnderTheOutcomeOfTheirStatus() async throws {
        let names = [
            "openai/invalid_api_key", "openai/chat_model_not_found", "openai/chat_max_tokens_unsupported",
            "openai/rate_limit_requests", "openai/insufficient_quota", "openai/chat_refusal", "vllm/model_not_found",
            "ollama/model_not_found",
        ]
        let entries = names.map { #"{"fixture": "\#($0)"}"# }.joined(separator: ", ")
        let forced = try config(#"{"openai": {"force_failures": [\#(entries)]}}"#)
        try await withMockApp(forced) { client, engine in
            for name in names {
                let fixture = try ProviderFixtures.named(name)
                let response = try await client.post("/v1/chat/completions", json: chatJSON)
                #expect(Int(response.status.code) == fixture.status, "\(name)")
                #expect(response.json == (try recordedJSON(name, model: "gpt-6-luna")), "\(name)")
            }
            let outcomes = engine.requestLog().requests.map(\.outcome.name)
            #expect(
                outcomes == [
                    "auth", "not_found", "bad_request", "rate_limit", "billing", "malformed", "not_found", "not_found",
                ]
            )
            let stats = engine.stats().openai
            #expect(stats.total.badRequest == 1)
            #expect(stats.total.rejectedTotal == 7)
            expectBalanced(stats)
        }
    }

    /// The rule, applied to every recorded error.
    @Test func everyRecordedErrorHasAnOutcome() throws {
        let expected: [String: String] = [
            "openai/chat_max_tokens_unsupported": "bad_request",
            "openai/chat_model_not_found": "not_found",
            "openai/chat_temperature_unsupported": "bad_request",
            "openai/image_invalid_size": "bad_request",
            "openai/image_model_not_found": "not_found",
            "openai/image_response_format_unsupported": "bad_request",
            "openai/insufficient_quota": "billing",
            "openai/invalid_api_key": "auth",
            "openai/models_retrieve_not_found": "not_found",
            "openai/rate_limit_requests": "rate_limit",
            "openai/rate_limit_tokens": "rate_limit",
            "openai/request_too_large": "rate_limit",
            "elevenlabs/detected_unusual_activity": "auth",
            "elevenlabs/invalid_api_key": "auth",
            "elevenlabs/paid_plan_required": "billing",
            "elevenlabs/quota_exceeded": "billing",
            "elevenlabs/system_busy": "overload",
            "elevenlabs/too_many_concurrent_requests": "concurrency",
            "elevenlabs/voice_not_found": "bad_request",
            "huggingface/credits_exhausted": "billing",
            "huggingface/insufficient_permissions": "auth",
            "huggingface/invalid_token": "auth",
            "huggingface/model_loading": "model_loading",
            "huggingface/model_not_found": "not_found",
            "ollama/model_not_found": "not_found",
            "vllm/model_not_found": "not_found",
        ]
        for fixture in try ProviderFixtures.all() where fixture.status >= 400 {
            let outcome = RecordedFixtures.outcome(of: fixture).name
            if let wanted = expected[fixture.name] {
                #expect(outcome == wanted, "\(fixture.name)")
            }
        }
        #expect(RequestOutcome.ofFixture(status: 500, body: "{}") == .failed(.serverError))
        #expect(RequestOutcome.ofFixture(status: 503, body: "{}") == .failed(.overload))
        #expect(RequestOutcome.ofFixture(status: 200, body: "{}") == .failed(.malformed))
    }

    @Test(arguments: [
        (
            #"{"openai": {"force_failures": [{"fixture": "openai/nope"}]}}"#,
            "openai.force_failures[0].fixture: no fixture openai/nope"
        ),
        (
            #"{"openai": {"force_failures": [{"fixture": "elevenlabs/system_busy"}]}}"#,
            "openai.force_failures[0].fixture: elevenlabs/system_busy is not a openai fixture (services: ollama, openai, vllm)"
        ),
        (
            #"{"openai": {"force_failures": [{"fixture": "openai/speech_success"}]}}"#,
            "openai.force_failures[0].fixture: openai/speech_success has a binary body, which the mock cannot send"
        ),
        (
            #"{"openai": {"force_failures": [{"fixture": "openai/insufficient_quota", "kind": "billing"}]}}"#,
            "openai.force_failures[0]: give a kind or a fixture, not both"
        ),
        (
            #"{"openai": {"force_failures": [{"fixture": "openai/insufficient_quota", "retry_after_ms": 5}]}}"#,
            "openai.force_failures[0].retry_after_ms: a fixture sends its own headers"
        ),
        (
            #"{"openai": {"force_failures": [{"fixture": 3}]}}"#,
            "openai.force_failures[0].fixture: expected a fixture name like openai/insufficient_quota"
        ),
        (
            #"{"openai": {"force_failures": [{"fixture": "../../etc/passwd"}]}}"#,
            "openai.force_failures[0].fixture: ../../etc/passwd: expected a fixture name like openai/insufficient_quota"
        ),
    ])
    func badForcedFixturesAreRejectedWithThePath(json: String, message: String) {
        #expect(throws: ConfigError(message: message)) { try MockConfig.decode(Data(json.utf8)) }
    }

    @Test func aForcedFixtureSurvivesTheConfigurationRoundTrip() throws {
        let forced = try config(
            #"{"openai": {"force_failures": [{"fixture": "openai/insufficient_quota", "count": 2}]}}"#
        )
        let again = try MockConfig.decode(forced.jsonData())
        #expect(again == forced)
        let encoded = try JSONDecoder().decode(JSONValue.self, from: forced.jsonData())
        #expect(encoded["openai"]?["force_failures"]?[0]?["fixture"] == .string("openai/insufficient_quota"))
        #expect(encoded["openai"]?["force_failures"]?[0]?["kind"] == nil)
    }

    // MARK: - Failure kinds answered with fixtures

    @Test func elevenLabsConcurrencyNamesTheMocksCeiling() async throws {
        let limited = try config(#"{"elevenlabs": {"max_concurrent": 3}}"#)
        try await withMockApp(limited) { client, engine in
            for _ in 0..<3 { _ = engine.admit(AdmissionRequest(endpoint: .textToSpeech)) }
            let response = try await client.post("/elevenlabs/v1/text-to-speech/v", json: #"{"text": "hi"}"#)
            #expect(response.status == .tooManyRequests)
            var expected = try recordedJSON("elevenlabs/too_many_concurrent_requests")
            let message = try #require(expected["detail"]?["message"]?.string)
            expected = try setDetailMessage(
                expected,
                message.replacingOccurrences(of: "maximum of 2 concurrent", with: "maximum of 3 concurrent")
            )
            #expect(response.json == expected)
            #expect(response.header("maximum-concurrent-requests") == "3")
            #expect(engine.stats().elevenlabs.total.rejected["concurrency"] == 1)
        }
    }

    @Test func huggingFaceModelLoadingIsTheRecordedBodyWithTheConfiguredWait() async throws {
        let cold = try config(#"{"huggingface": {"cold_start_requests": 1, "estimated_time_s": 7.5}}"#)
        try await withMockApp(cold) { client, _ in
            let response = try await client.post("/hf/models/acme/painter", json: #"{"inputs": "x"}"#)
            #expect(response.status == .serviceUnavailable)
            var expected = try recordedJSON("huggingface/model_loading", model: "acme/painter")
            guard expected.members != nil else { throw FixtureTestError.notAnObject }
            expected["estimated_time"] = .double(7.5)
            #expect(response.json == expected)
            #expect(
                response.header("x-request-id")
                    == (try ProviderFixtures.named("huggingface/model_loading").header("x-request-id"))
            )
        }
    }

    @Test func injectedAuthAndNotFoundKindsUseTheProvidersFixtures() async throws {
        let forced = try config(
            #"""
            {"openai": {"force_failures": [{"kind": "auth"}, {"kind": "not_found", "endpoint": "images_generations"}]},
             "huggingface": {"force_failures": [{"kind": "auth"}, {"kind": "not_found"}]}}
            """#
        )
        try await withMockApp(forced) { client, engine in
            let auth = try await client.post("/v1/chat/completions", json: chatJSON)
            #expect(auth.status == .unauthorized)
            #expect(auth.json == (try recordedJSON("openai/invalid_api_key")))
            let image = try await client.post("/v1/images/generations", json: #"{"model": "m1", "prompt": "x"}"#)
            #expect(image.status == .notFound)
            #expect(image.json == (try recordedJSON("openai/image_model_not_found", model: "m1")))
            let token = try await client.post("/hf/models/o/m", json: #"{"inputs": "x"}"#)
            #expect(token.status == .unauthorized)
            #expect(token.json == (try recordedJSON("huggingface/invalid_token")))
            let missing = try await client.post("/hf/models/o/m", json: #"{"inputs": "x"}"#)
            #expect(missing.status == .notFound)
            #expect(missing.json == (try recordedJSON("huggingface/model_not_found", model: "o/m")))
            #expect(engine.stats().openai.total.rejected["auth"] == 1)
            #expect(engine.stats().huggingface.total.rejected["not_found"] == 1)
        }
    }
}

enum FixtureTestError: Error {
    case notAnObject
}

/// `body` with `detail.message` replaced.
private func setDetailMessage(_ body: JSONValue, _ message: String) throws -> JSONValue {
    guard var detail = body["detail"], detail.members != nil else { throw FixtureTestError.notAnObject }
    detail["message"] = .string(message)
    var body = body
    body["detail"] = detail
    return body
}

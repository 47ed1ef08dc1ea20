import Foundation
import Hummingbird
import HummingbirdTesting
import Protocol
import ProviderFixtures
import Testing

@testable import MockProvider

private func chat(_ model: String, _ extra: String = "") -> String {
    #"{"model": "\#(model)", "messages": [{"role": "user", "content": "hi"}]\#(extra)}"#
}

private let bearer = HTTPFields.Element.Name("Authorization")!

/// The checks of `known_models`, `known_voices`, `paid_voices`, `api_keys`, `reasoning_models` and of image options,
/// made before admission; the models routes; the shape of a chat reply.
@Suite struct RequestCheckTests {
    // MARK: known_models

    @Test func unknownChatModelGetsTheRecordedNotFoundAndUsesNoLimit() async throws {
        let known = try config(#"{"openai": {"known_models": ["gpt-6-luna"], "request_limit": 10}}"#)
        try await withMockApp(known) { client, engine in
            let response = try await client.post("/v1/chat/completions", json: chat("gpt-5-nano"))
            #expect(response.status == .notFound)
            #expect(response.json == (try recordedJSON("openai/chat_model_not_found", model: "gpt-5-nano")))
            #expect(response.header("x-ratelimit-remaining-requests") == "10")
            let ok = try await client.post("/v1/chat/completions", json: chat("gpt-6-luna"))
            #expect(ok.status == .ok)
            #expect(ok.header("x-ratelimit-remaining-requests") == "9")
            let stats = engine.stats().openai.total
            #expect(stats.rejected["not_found"] == 1 && stats.accepted == 1 && stats.requests == 2)
            #expect(engine.requestLog().requests.map(\.outcome) == [.failed(.notFound), .accepted])
        }
    }

    @Test func unknownImageAndSpeechModelsGetTheirNotFound() async throws {
        let known = try config(#"{"openai": {"known_models": ["gpt-image-1"]}}"#)
        try await withMockApp(known) { client, _ in
            let image = try await client.post("/v1/images/generations", json: #"{"model": "dall-e-3", "prompt": "x"}"#)
            #expect(image.status == .notFound)
            #expect(image.json == (try recordedJSON("openai/image_model_not_found", model: "dall-e-3")))
            let speech = try await client.post("/v1/audio/speech", json: #"{"model": "tts-9", "input": "hi"}"#)
            #expect(speech.status == .notFound)
            #expect(speech.json == (try recordedJSON("openai/chat_model_not_found", model: "tts-9")))
        }
    }

    @Test func unknownHuggingFaceModelGetsRepositoryNotFound() async throws {
        let known = try config(#"{"huggingface": {"known_models": ["stabilityai/sdxl"]}}"#)
        try await withMockApp(known) { client, engine in
            let response = try await client.post("/hf/models/nobody/nothing", json: #"{"inputs": "x"}"#)
            #expect(response.status == .notFound)
            #expect(response.json == (try recordedJSON("huggingface/model_not_found", model: "nobody/nothing")))
            #expect(response.header("x-error-code") == "RepoNotFound")
            #expect(try await client.post("/hf/models/stabilityai/sdxl", json: #"{"inputs": "x"}"#).status == .ok)
            #expect(engine.stats().huggingface.total.rejected["not_found"] == 1)
        }
    }

    // MARK: api_keys

    @Test func requestsWithoutAnAcceptedKeyGetEachProvidersInvalidKey() async throws {
        let keys = try config(
            #"""
            {"openai": {"api_keys": ["sk-good"]}, "huggingface": {"api_keys": ["hf_good"]},
             "elevenlabs": {"api_keys": ["xi-good"]}}
            """#
        )
        try await withMockApp(keys) { client, engine in
            let openai = try await client.post("/v1/chat/completions", json: chat("gpt-6-luna"))
            #expect(openai.status == .unauthorized)
            #expect(openai.json == (try recordedJSON("openai/invalid_api_key")))
            #expect(openai.header("www-authenticate") == #"Bearer realm="OpenAI API""#)
            let wrong = try await client.post(
                "/v1/chat/completions",
                json: chat("gpt-6-luna"),
                headers: [bearer: "Bearer sk-bad"]
            )
            #expect(wrong.status == .unauthorized)
            let good = try await client.post(
                "/v1/chat/completions",
                json: chat("gpt-6-luna"),
                headers: [bearer: "Bearer sk-good"]
            )
            #expect(good.status == .ok)

            let hf = try await client.post("/hf/models/o/m", json: #"{"inputs": "x"}"#, headers: [bearer: "Bearer x"])
            #expect(hf.status == .unauthorized)
            #expect(hf.json == (try recordedJSON("huggingface/invalid_token")))
            let hfGood = try await client.post(
                "/hf/models/o/m",
                json: #"{"inputs": "x"}"#,
                headers: [bearer: "Bearer hf_good"]
            )
            #expect(hfGood.status == .ok)

            let xi = HTTPFields.Element.Name("xi-api-key")!
            let eleven = try await client.post("/elevenlabs/v1/text-to-speech/v", json: #"{"text": "hi"}"#)
            #expect(eleven.status == .unauthorized)
            #expect(eleven.json == (try recordedJSON("elevenlabs/invalid_api_key")))
            // ElevenLabs reads xi-api-key, not Authorization.
            let bearerOnly = try await client.post(
                "/elevenlabs/v1/text-to-speech/v",
                json: #"{"text": "hi"}"#,
                headers: [bearer: "Bearer xi-good"]
            )
            #expect(bearerOnly.status == .unauthorized)
            let elevenGood = try await client.post(
                "/elevenlabs/v1/text-to-speech/v",
                json: #"{"text": "hi"}"#,
                headers: [xi: "xi-good"]
            )
            #expect(elevenGood.status == .ok)

            let stats = engine.stats()
            #expect(stats.openai.total.rejected["auth"] == 2)
            #expect(stats.huggingface.total.rejected["auth"] == 1)
            #expect(stats.elevenlabs.total.rejected["auth"] == 2)
        }
    }

    // MARK: Voices

    @Test func unknownElevenLabsVoiceGetsVoiceNotFound() async throws {
        let voices = try config(#"{"elevenlabs": {"known_voices": ["JBFqnCBsd6RMkjVDRZzb"]}}"#)
        try await withMockApp(voices) { client, engine in
            let response = try await client.post("/elevenlabs/v1/text-to-speech/nobody", json: #"{"text": "hi"}"#)
            #expect(response.status == .badRequest)
            #expect(response.json == (try recordedJSON("elevenlabs/voice_not_found", voiceId: "nobody")))
            #expect(response.header("current-concurrent-requests") == "0")
            let known = try await client.post(
                "/elevenlabs/v1/text-to-speech/JBFqnCBsd6RMkjVDRZzb/stream",
                json: #"{"text": "hi"}"#
            )
            #expect(known.status == .ok)
            #expect(engine.stats().elevenlabs.total.badRequest == 1)
        }
    }

    @Test func paidVoiceGetsPaidPlanRequired() async throws {
        let paid = try config(#"{"elevenlabs": {"paid_voices": ["21m00Tcm4TlvDq8ikWAM"]}}"#)
        try await withMockApp(paid) { client, engine in
            let response = try await client.post(
                "/elevenlabs/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM",
                json: #"{"text": "hi", "model_id": "eleven_v3"}"#
            )
            #expect(response.status.code == 402)
            #expect(
                response.json
                    == (try recordedJSON(
                        "elevenlabs/paid_plan_required",
                        model: "eleven_v3",
                        voiceId: "21m00Tcm4TlvDq8ikWAM"
                    ))
            )
            #expect(engine.stats().elevenlabs.total.rejected["billing"] == 1)
        }
    }

    @Test func unknownOpenAIVoiceIsAnInvalidValue() async throws {
        let voices = try config(#"{"openai": {"known_voices": ["alloy", "echo", "nova"]}}"#)
        try await withMockApp(voices) { client, engine in
            let response = try await client.post("/v1/audio/speech", json: #"{"voice": "george", "input": "hi"}"#)
            #expect(response.status == .badRequest)
            let error = try #require(response.json?["error"])
            // No recorded fixture: OpenAI's envelope for a bad enum value.
            #expect(
                error
                    == json(
                        #"""
                        {"message": "Invalid value: 'george'. Supported values are: 'alloy', 'echo', and 'nova'.",
                         "type": "invalid_request_error", "param": "voice", "code": "invalid_value"}
                        """#
                    )
            )
            #expect(try await client.post("/v1/audio/speech", json: #"{"voice": "nova", "input": "hi"}"#).status == .ok)
            #expect(engine.stats().openai.total.badRequest == 1)
        }
    }

    // MARK: reasoning_models

    @Test func reasoningModelsRefuseMaxTokensAndTemperature() async throws {
        let reasoning = try config(#"{"openai": {"reasoning_models": ["gpt-6-luna"]}}"#)
        try await withMockApp(reasoning) { client, engine in
            let maxTokens = try await client.post(
                "/v1/chat/completions",
                json: chat("gpt-6-luna", #", "max_tokens": 100"#)
            )
            #expect(maxTokens.status == .badRequest)
            #expect(maxTokens.json == (try recordedJSON("openai/chat_max_tokens_unsupported")))

            let temperature = try await client.post(
                "/v1/chat/completions",
                json: chat("gpt-6-luna", #", "temperature": 0.2"#)
            )
            #expect(temperature.status == .badRequest)
            #expect(temperature.json == (try recordedJSON("openai/chat_temperature_unsupported")))
            let other = try await client.post("/v1/chat/completions", json: chat("gpt-6-luna", #", "temperature": 0"#))
            #expect(
                other.json?["error"]?["message"]
                    == .string(
                        "Unsupported value: 'temperature' does not support 0 with this model. "
                            + "Only the default (1) value is supported."
                    )
            )

            let allowed = #", "temperature": 1, "max_completion_tokens": 100"#
            #expect(try await client.post("/v1/chat/completions", json: chat("gpt-6-luna", allowed)).status == .ok)
            // Other models take both.
            let classic = #", "temperature": 0.2, "max_tokens": 100"#
            #expect(try await client.post("/v1/chat/completions", json: chat("gpt-4o-mini", classic)).status == .ok)
            let stats = engine.stats().openai.total
            #expect(stats.badRequest == 3 && stats.accepted == 2)
        }
    }

    // MARK: Images

    @Test func gptImageModelsRefuseResponseFormat() async throws {
        try await withMockApp { client, engine in
            for format in ["b64_json", "url"] {
                let response = try await client.post(
                    "/v1/images/generations",
                    json: #"{"model": "gpt-image-1", "prompt": "x", "response_format": "\#(format)"}"#
                )
                #expect(response.status == .badRequest)
                #expect(response.json == (try recordedJSON("openai/image_response_format_unsupported")))
            }
            let plain = try await client.post(
                "/v1/images/generations",
                json: #"{"model": "gpt-image-1", "prompt": "x"}"#
            )
            #expect(plain.status == .ok)
            #expect(engine.stats()[.imagesGenerations].badRequest == 2)
        }
    }

    @Test(
        arguments: [
            ("gpt-image-1", "1024x1536", nil),
            ("gpt-image-1-mini", "auto", nil),
            (
                "gpt-image-1.5", "1792x1024",
                "Invalid value: '1792x1024'. Supported values are: '1024x1024', '1536x1024', '1024x1536', and 'auto'."
            ),
            ("gpt-image-2", "1040x1040", nil),
            (
                "gpt-image-2.6-flare", "1000x1000",
                "Invalid size '1000x1000'. Width and height must both be divisible by 16."
            ),
            ("dall-e-3", "1792x1024", nil),
            (
                "dall-e-3", "1536x1024",
                "Invalid value: '1536x1024'. Supported values are: '1024x1024', '1792x1024', and '1024x1792'."
            ),
            ("dall-e-2", "256x256", nil),
        ] as [(String, String, String?)]
    )
    func imageSizesAreCheckedByModelFamily(model: String, size: String, message: String?) async throws {
        try await withMockApp { client, _ in
            let response = try await client.post(
                "/v1/images/generations",
                json: #"{"model": "\#(model)", "prompt": "x", "size": "\#(size)"}"#
            )
            guard let message else {
                #expect(response.status == .ok)
                return
            }
            #expect(response.status == .badRequest)
            // The recorded envelope (param size, code invalid_value), with the message for this size.
            let recorded = try recordedJSON("openai/image_invalid_size")
            #expect(response.json?["error"]?["type"] == recorded["error"]?["type"])
            #expect(response.json?["error"]?["param"] == recorded["error"]?["param"])
            #expect(response.json?["error"]?["code"] == recorded["error"]?["code"])
            #expect(response.json?["error"]?["message"] == .string(message))
            if model.hasPrefix("gpt-image-2") {
                let recordedMessage = try #require(recorded["error"]?["message"]?.string)
                #expect(message == recordedMessage.replacingOccurrences(of: "1792x936", with: size))
            }
        }
    }

    // MARK: Chat reply

    @Test func chatRepliesHaveTheRecordedMessageAndUsageShape() async throws {
        try await withMockApp { client, _ in
            let response = try await client.post("/v1/chat/completions", json: chat("gpt-6-luna"))
            #expect(response.status == .ok)
            let body = try #require(response.json)
            let recorded = try recordedJSON("openai/chat_success")
            let message = try #require(body["choices"]?[0]?["message"])
            #expect(message["refusal"] == .null)
            #expect(keys(message) == keys(recorded["choices"]?[0]?["message"]))
            #expect(keys(body["choices"]?[0]) == keys(recorded["choices"]?[0]))
            #expect(keys(body["usage"]) == keys(recorded["usage"]))
            #expect(keys(body["usage"]?["prompt_tokens_details"]) == keys(recorded["usage"]?["prompt_tokens_details"]))
            #expect(
                keys(body["usage"]?["completion_tokens_details"])
                    == keys(recorded["usage"]?["completion_tokens_details"])
            )
            #expect(keys(body) == keys(recorded))
        }
    }

    // MARK: Models

    @Test func retrievingAModelAnswersTheRecordedObject() async throws {
        try await withMockApp { client, engine in
            let response = try await client.execute(uri: "/v1/models/gpt-6-luna", method: .get)
            #expect(response.status == .ok)
            #expect(response.json == (try recordedJSON("openai/models_retrieve_success", model: "gpt-6-luna")))
            #expect(response.json?["id"] == .string("gpt-6-luna"))
            #expect(response.header("x-ratelimit-limit-requests") == "500")
            // Ids with a slash (vLLM serves org/model) work too.
            let slashed = try await client.execute(uri: "/v1/models/acme/llama-9", method: .get)
            #expect(slashed.json?["id"] == .string("acme/llama-9"))
            #expect(engine.stats()[.models].accepted == 2)
        }
    }

    @Test func retrievingAnUnknownModelIsNotFound() async throws {
        let known = try config(#"{"openai": {"known_models": ["gpt-6-luna"]}}"#)
        try await withMockApp(known) { client, engine in
            let response = try await client.execute(uri: "/v1/models/dall-e-3", method: .get)
            #expect(response.status == .notFound)
            #expect(response.json == (try recordedJSON("openai/models_retrieve_not_found", model: "dall-e-3")))
            #expect(engine.stats()[.models].rejected["not_found"] == 1)
        }
    }

    @Test func listingModelsGivesTheKnownOnesOrTheDefaults() async throws {
        try await withMockApp { client, _ in
            let response = try await client.execute(uri: "/v1/models", method: .get)
            #expect(response.status == .ok)
            #expect(response.json?["object"] == .string("list"))
            let ids = try #require(response.json?["data"]?.array).map { $0["id"]?.string }
            #expect(ids == OpenAIRoutes.defaultModels)
        }
        let known = try config(#"{"openai": {"known_models": ["a", "b"]}}"#)
        try await withMockApp(known) { client, engine in
            let response = try await client.execute(uri: "/v1/models", method: .get)
            let data = try #require(response.json?["data"]?.array)
            #expect(data.map { $0["id"]?.string } == ["a", "b"])
            #expect(data.first == (try recordedJSON("openai/models_retrieve_success", model: "a")))
            #expect(engine.stats()[.models].accepted == 1)
        }
    }

    // MARK: Configuration

    @Test(arguments: [
        (#"{"openai": {"known_models": "gpt"}}"#, "openai.known_models: expected a list of non-empty strings or null"),
        (#"{"openai": {"known_models": [""]}}"#, "openai.known_models[0]: expected a non-empty string"),
        (#"{"openai": {"reasoning_models": null}}"#, "openai.reasoning_models: expected a list of non-empty strings"),
        (#"{"elevenlabs": {"paid_voices": [1]}}"#, "elevenlabs.paid_voices[0]: expected a non-empty string"),
        (#"{"huggingface": {"api_keys": {}}}"#, "huggingface.api_keys: expected a list of non-empty strings or null"),
        (#"{"elevenlabs": {"known_models": ["m"]}}"#, "elevenlabs.known_models: unknown key"),
        (#"{"huggingface": {"known_voices": ["v"]}}"#, "huggingface.known_voices: unknown key"),
        (#"{"openai": {"paid_voices": ["v"]}}"#, "openai.paid_voices: unknown key"),
        (#"{"elevenlabs": {"reasoning_models": ["m"]}}"#, "elevenlabs.reasoning_models: unknown key"),
    ])
    func badListFieldsAreRejectedWithThePath(json: String, message: String) {
        #expect(throws: ConfigError(message: message)) { try MockConfig.decode(Data(json.utf8)) }
    }

    @Test func listFieldsRoundTripAndNullClearsThem() throws {
        let lists = try config(
            #"""
            {"openai": {"known_models": ["a"], "known_voices": ["alloy"], "api_keys": ["k"], "reasoning_models": ["o"]},
             "huggingface": {"known_models": ["o/m"], "api_keys": null},
             "elevenlabs": {"known_voices": ["v"], "paid_voices": ["p"], "api_keys": ["x"]}}
            """#
        )
        #expect(lists.openai.knownModels == ["a"] && lists.openai.reasoningModels == ["o"])
        #expect(lists.elevenlabs.paidVoices == ["p"] && lists.huggingface.apiKeys == nil)
        #expect(try MockConfig.decode(lists.jsonData()) == lists)
        let encoded = try JSONDecoder().decode(JSONValue.self, from: lists.jsonData())
        #expect(encoded["huggingface"]?["api_keys"] == .null)
        #expect(encoded["huggingface"]?["paid_voices"] == nil)
        let cleared = try MockConfig.decode(Data(#"{"openai": {"known_models": null}}"#.utf8), over: lists)
        #expect(cleared.openai.knownModels == nil && cleared.openai.apiKeys == ["k"])
    }
}

/// The keys of a JSON object, sorted; empty for anything else.
private func keys(_ value: JSONValue?) -> [String] {
    (value?.members ?? []).map(\.key).sorted()
}

import Foundation
import Protocol
import Shared
import Testing

@testable import Worker

/// Issue 14: our clients against the services as they are today, through the recorded response shapes
/// in Sources/ProviderFixtures/Fixtures (one per service and case, each citing its source). One test per
/// numbered item of the issue, and more where an item has several cases.
@Suite("Real provider shapes")
struct RealProviderShapeTests {
    // MARK: 1. OpenAI images: a current model, sizes per family, no response_format, explicit quality

    @Test func item1DefaultImageModelIsACurrentGPTImageModel() {
        let settings = OpenAISettings()
        #expect(!settings.imageModel.hasPrefix("dall-e"))
        #expect(!["gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5"].contains(settings.imageModel))
        #expect(OpenAIModels.imageFamily(settings.imageModel) == .gptImage)
        let body = OpenAIImageProvider.generationRequest(settings, prompt: "a lighthouse")
        #expect(body.responseFormat == nil)
        #expect(body.quality == "medium")
        #expect(OpenAIModels.sizeProblem(body.size, family: .gptImage) == nil)
        #expect(body.size == "1280x720")
    }

    @Test(
        "item 1: the size suits the model family",
        arguments: [
            ("gpt-image-1", 1280, 720, "1536x1024"), ("gpt-image-1.5", 1080, 1920, "1024x1536"),
            ("gpt-image-1-mini", 1280, 720, "1536x1024"), ("dall-e-3", 1280, 720, "1792x1024"),
            ("gpt-image-2.6-flare", 1080, 1920, "864x1536"), ("gpt-image-2", 1280, 720, "1280x720"),
            ("gpt-image-2.6-sunburst", 640, 360, "1088x608"),
        ]
    )
    func item1SizePerFamily(model: String, width: Int, height: Int, size: String) {
        let settings = OpenAISettings(imageModel: model, frameWidth: width, frameHeight: height)
        let body = OpenAIImageProvider.generationRequest(settings, prompt: "x")
        #expect(body.size == size)
        #expect(OpenAIModels.sizeProblem(body.size, family: OpenAIModels.imageFamily(model)) == nil)
        #expect((body.responseFormat == nil) == model.hasPrefix("gpt-image"))
        #expect(body.quality != nil)
    }

    @Test func item1ConfiguredSizesTheModelRefusesAreCaughtBeforeAnyCall() {
        #expect(OpenAIModels.sizeProblem("1792x1024", family: .gptImage1) != nil)
        #expect(OpenAIModels.sizeProblem("1280x720", family: .gptImage1) != nil)
        #expect(OpenAIModels.sizeProblem("1000x720", family: .gptImage) != nil)
        #expect(OpenAIModels.sizeProblem("auto", family: .gptImage1) == nil)
        #expect(OpenAIModels.sizeProblem("512x512", family: .gptImage) != nil)  // under the pixel minimum
        #expect(OpenAIModels.sizeProblem("3840x816", family: .gptImage) != nil)  // wider than 3:1
    }

    @Test func item1RetiredImageModelSaysWhichSettingToChange() async throws {
        let failure = try RecordedFixture.classify("openai/image_model_not_found")
        #expect(failure.kind == .clientError)
        #expect(failure.code == "model_not_found")
        try await withWorkspace { workspace in
            let transport = FakeTransport([try RecordedFixture.answer("openai/image_model_not_found")])
            let settings = OpenAISettings(imageModel: "dall-e-3")
            let provider = OpenAIImageProvider(settings: settings, caller: makeCaller(transport))
            let error = await #expect(throws: ProviderError.self) {
                try await provider.image(
                    for: ImageRequest(item: "scene_1", purpose: .scene, prompt: "x"),
                    context: makeContext(workspace: workspace)
                )
            }
            #expect(error?.message.contains("OPENAI_IMAGE_MODEL") == true)
            #expect(transport.requests.count == 1)
        }
    }

    @Test func item1ResponseFormatAndSizeRefusalsAreClientErrors() throws {
        for name in ["openai/image_response_format_unsupported", "openai/image_invalid_size"] {
            let failure = try RecordedFixture.classify(name)
            #expect(failure.kind == .clientError, "\(name)")
            #expect(!failure.kind.isRetryable)
        }
    }

    // MARK: 2. ElevenLabs: current voices, `code` before `status`, blocked accounts

    @Test func item2DefaultVoicesAreNotTheRetiredLegacyVoices() {
        let legacy: Set = [
            "21m00Tcm4TlvDq8ikWAM", "pNInz6obpgDQGcFmaJgB", "EXAVITQu4vr4xnSDxMaL", "ErXwobaYiN019PkySvjV",
            "AZnzlk1XvdvUeBnXmlld", "TxGEqnHWrfWFTfGW9XjX",
        ]
        let voices = ElevenLabsSettings().defaultVoiceIds
        #expect(voices.count >= 2)
        #expect(legacy.isDisjoint(with: voices))
    }

    @Test func item2PaidPlanRequiredIsReadFromCodeNotStatus() throws {
        let failure = try RecordedFixture.classify("elevenlabs/paid_plan_required")
        #expect(failure.status == 402)
        #expect(failure.code == "paid_plan_required")
        #expect(failure.kind == .quota)
        let target = ElevenLabsSettings().target(voice: "abc")
        let diagnosis = ProviderDiagnosis.diagnose(ProviderError(failure, service: "elevenlabs speech"), target: target)
        #expect(diagnosis.problem == .paidPlanRequired)
        #expect(diagnosis.fix?.contains("ELEVENLABS_VOICE_IDS") == true)
    }

    @Test func item2UnusualActivityIsAnAccountProblemNotAPlainClientError() throws {
        let failure = try RecordedFixture.classify("elevenlabs/detected_unusual_activity")
        #expect(failure.status == 401)
        #expect(failure.code == "detected_unusual_activity")
        #expect(failure.kind == .auth)
        let diagnosis = ProviderDiagnosis.diagnose(
            ProviderError(failure, service: "elevenlabs speech"),
            target: ElevenLabsSettings().target(voice: nil)
        )
        #expect(diagnosis.problem == .accountBlocked)
    }

    @Test func item2UnknownVoiceNamesTheVoiceSetting() throws {
        let failure = try RecordedFixture.classify("elevenlabs/voice_not_found")
        // ElevenLabs answers an unknown voice with 400, not 404: the code tells.
        #expect(failure.status == 400)
        #expect(failure.code == "voice_not_found")
        let diagnosis = ProviderDiagnosis.diagnose(
            ProviderError(failure, service: "elevenlabs speech"),
            target: ElevenLabsSettings().target(voice: "21m00Tcm4TlvDq8ikWAM")
        )
        #expect(diagnosis.problem == .unknownVoice)
        #expect(diagnosis.detail.contains("21m00Tcm4TlvDq8ikWAM"))
        #expect(diagnosis.fix?.contains("ELEVENLABS_VOICE_IDS") == true)
    }

    @Test func item2ElevenLabsConcurrencyAndBusyKeepTheirKinds() throws {
        #expect(try RecordedFixture.classify("elevenlabs/too_many_concurrent_requests").kind == .concurrencyLimit)
        #expect(try RecordedFixture.classify("elevenlabs/system_busy").kind == .overload)
        #expect(try RecordedFixture.classify("elevenlabs/quota_exceeded").kind == .quota)
        #expect(try RecordedFixture.classify("elevenlabs/invalid_api_key").kind == .auth)
    }

    // MARK: 3. Local servers: models by environment, and a 404 that says which setting

    @Test func item3ModelsAreSetByEnvironment() async throws {
        let environment = EnvironmentSettings([
            "REELFARM_PROVIDERS": "openai", "OPENAI_BASE_URL": "http://127.0.0.1:11434/v1",
            "OPENAI_SCRIPT_MODEL": "llama3.1:8b", "OPENAI_VOICE_MODEL": "kokoro", "OPENAI_IMAGE_MODEL": "sd-3",
            "OPENAI_VOICES": "af_bella, am_adam", "OPENAI_IMAGE_SIZE": "768x432",
            "OPENAI_MAX_OUTPUT_TOKENS": "3000", "OPENAI_TEMPERATURE": "none",
            "OPENAI_TOKEN_PARAMETER": "max_completion_tokens", "ELEVENLABS_VOICE_IDS": "v1,v2",
            "ELEVENLABS_MODEL_ID": "eleven_flash_v2_5", "HF_IMAGE_MODEL": "org/model",
        ])
        let c = try ProviderConfiguration.resolve(
            providersFlag: nil,
            presetFlag: nil,
            sources: SettingsSources(environment: environment, file: nil)
        )
        #expect(c.openAI.scriptModel == "llama3.1:8b")
        #expect(c.openAI.voiceModel == "kokoro")
        #expect(c.openAI.imageModel == "sd-3")
        #expect(c.openAI.voices == ["af_bella", "am_adam"])
        #expect(c.openAI.resolvedImageSize == "768x432")
        #expect(c.openAI.maxOutputTokens == 3000)
        #expect(c.openAI.temperature == nil)
        #expect(c.openAI.tokenParameter == .maxCompletionTokens)
        #expect(c.elevenLabs.defaultVoiceIds == ["v1", "v2"])
        #expect(c.elevenLabs.modelId == "eleven_flash_v2_5")
        #expect(c.huggingFace.imageModel == "org/model")
    }

    @Test(
        "item 3: a model the server does not have names the setting to change",
        arguments: ["ollama/model_not_found", "vllm/model_not_found", "openai/chat_model_not_found"]
    )
    func item3ModelNotFoundNamesTheSetting(fixture: String) async throws {
        let failure = try RecordedFixture.classify(fixture)
        #expect(failure.status == 404)
        #expect(failure.code == "model_not_found")
        let transport = FakeTransport([try RecordedFixture.answer(fixture)])
        let settings = OpenAISettings(baseURL: "http://127.0.0.1:11434/v1", scriptModel: "llama3.1:8b")
        let provider = OpenAIScriptProvider(settings: settings, caller: makeCaller(transport))
        let error = await #expect(throws: ProviderError.self) {
            try await provider.writeScript(for: EpisodeSpec(topic: "Lighthouses"), context: makeContext())
        }
        #expect(error?.message.contains("OPENAI_SCRIPT_MODEL") == true, "\(String(describing: error))")
        #expect(transport.requests.count == 1)
    }

    // MARK: 4. Chat parameters

    @Test func item4ReasoningModelsGetMaxCompletionTokensAndNoTemperature() throws {
        let provider = OpenAIScriptProvider(
            settings: OpenAISettings(scriptModel: "gpt-6.1-terra"),
            caller: makeCaller(FakeTransport([]))
        )
        let request = provider.chatRequest([], scenes: 4)
        #expect(request.maxTokens == nil)
        #expect(request.maxCompletionTokens != nil)
        #expect(request.temperature == nil)
        #expect(request.reasoningEffort == "low")
        let classic = OpenAIScriptProvider(
            settings: OpenAISettings(scriptModel: "gpt-4o-mini"),
            caller: makeCaller(FakeTransport([]))
        )
        let old = classic.chatRequest([], scenes: 4)
        #expect(old.maxTokens != nil && old.maxCompletionTokens == nil && old.temperature == 0.8)
        #expect(old.reasoningEffort == nil)
        #expect(OpenAIModels.isReasoning("o3-mini") && OpenAIModels.isReasoning("gpt-5-mini"))
        #expect(!OpenAIModels.isReasoning("gpt-4.1") && !OpenAIModels.isReasoning("llama3.1:8b"))
    }

    @Test func item4TheTokenCapScalesWithTheSceneCount() {
        let small = OpenAIModels.outputTokens(scenes: 4, model: "gpt-4o-mini")
        let large = OpenAIModels.outputTokens(scenes: 50, model: "gpt-4o-mini")
        #expect(small >= 2000)
        // The old fixed 2,000 tokens cut off scripts of more than about a dozen scenes.
        #expect(large >= 50 * 300)
        #expect(large <= 16_384)
    }

    @Test func item4ARefusedMaxTokensIsSentAgainAsMaxCompletionTokens() async throws {
        let transport = FakeTransport([
            try RecordedFixture.answer("openai/chat_max_tokens_unsupported"),
            .okJSON(Fixture.chat(Fixture.script())),
            .okJSON(Fixture.chat(Fixture.script())),
        ])
        let provider = OpenAIScriptProvider(
            settings: OpenAISettings(scriptModel: "future-model"),
            caller: makeCaller(transport)
        )
        let script = try await provider.writeScript(for: EpisodeSpec(topic: "Bees"), context: makeContext())
        #expect(script.scenes.count == 4)
        let sent = transport.requests.compactMap(jsonBody)
        #expect(sent[0]["max_tokens"] != nil)
        #expect(sent[1]["max_tokens"] == nil && sent[1]["max_completion_tokens"] != nil)
        // Remembered for the next call.
        _ = try await provider.writeScript(for: EpisodeSpec(topic: "Bees"), context: makeContext())
        #expect(transport.requests.count == 3)
        #expect(jsonBody(transport.requests[2])?["max_completion_tokens"] != nil)
    }

    @Test func item4ARefusedTemperatureIsDropped() async throws {
        let transport = FakeTransport([
            try RecordedFixture.answer("openai/chat_temperature_unsupported"),
            .okJSON(Fixture.chat(Fixture.script())),
        ])
        let provider = OpenAIScriptProvider(
            settings: OpenAISettings(scriptModel: "future-model"),
            caller: makeCaller(transport)
        )
        _ = try await provider.writeScript(for: EpisodeSpec(topic: "Bees"), context: makeContext())
        #expect(jsonBody(transport.requests[0])?["temperature"] != nil)
        #expect(jsonBody(transport.requests[1])?["temperature"] == nil)
    }

    @Test func item4ARefusalFailsTheCallWithoutARepairRequest() async throws {
        let transport = FakeTransport([try RecordedFixture.answer("openai/chat_refusal")])
        let provider = OpenAIScriptProvider(settings: OpenAISettings(), caller: makeCaller(transport))
        let error = await #expect(throws: ProviderError.self) {
            try await provider.writeScript(for: EpisodeSpec(topic: "Bees"), context: makeContext())
        }
        #expect(error?.message.contains("refused") == true)
        #expect(transport.requests.count == 1)
    }

    @Test func item4ALeadingThinkBlockIsTakenOff() async throws {
        let fixture = try RecordedFixture.load("ollama/chat_think_success")
        let reply = try OpenAIScriptProvider.reply(from: fixture.body)
        #expect(reply.content?.hasPrefix("<think>") == true)
        #expect(!OpenAIScriptProvider.withoutThinking(reply.content ?? "").contains("<think>"))
        let thinking = "<think>\nThe user wants JSON.\n</think>\n\n" + Fixture.script()
        let transport = FakeTransport([.okJSON(Fixture.chat(thinking))])
        let provider = OpenAIScriptProvider(
            settings: OpenAISettings(baseURL: "http://127.0.0.1:11434/v1", scriptModel: "deepseek-r1:8b"),
            caller: makeCaller(transport)
        )
        let script = try await provider.writeScript(for: EpisodeSpec(topic: "Bees"), context: makeContext())
        #expect(script.scenes.count == 4)
        #expect(transport.requests.count == 1)
    }

    @Test func item4ChatSuccessShapeIsRead() throws {
        let fixture = try RecordedFixture.load("openai/chat_success")
        let reply = try OpenAIScriptProvider.reply(from: fixture.body)
        #expect(reply.content != nil)
        #expect(reply.refusal == nil)
        #expect(reply.finishReason == "stop")
    }

    // MARK: 5. Billing and auth open the circuit

    @Test(
        "item 5: billing and auth errors are never retried and tell the fleet",
        arguments: [
            ("huggingface/credits_exhausted", HTTPFailure.Kind.quota, "quota_exceeded"),
            ("elevenlabs/paid_plan_required", .quota, "quota_exceeded"),
            ("openai/insufficient_quota", .quota, "quota_exceeded"),
            ("openai/invalid_api_key", .auth, "auth_failed"),
            ("huggingface/invalid_token", .auth, "auth_failed"),
            ("huggingface/insufficient_permissions", .auth, "auth_failed"),
            ("elevenlabs/detected_unusual_activity", .auth, "auth_failed"),
        ]
    )
    func item5BillingAndAuthOpenTheCircuit(fixture: String, kind: HTTPFailure.Kind, signal: String) throws {
        let failure = try RecordedFixture.classify(fixture)
        #expect(failure.kind == kind)
        #expect(RetryPolicy(.default).decide(failure, retries: 0) == .giveUp(.notRetryable))
        let sent = HTTPCaller.signal(for: failure, provider: "tts", service: "svc")
        #expect(sent?.kind.rawValue == signal)
    }

    @Test func item5TheSignalNamesTheKeyToFix() throws {
        let failure = try RecordedFixture.classify("openai/invalid_api_key")
        let sent = HTTPCaller.signal(
            for: failure,
            provider: "llm",
            service: "openai chat",
            target: OpenAISettings().target(.script)
        )
        #expect(sent?.detail.contains("OPENAI_API_KEY") == true)
        #expect(sent?.detail.contains("sk-") != true || sent?.detail.contains("***") == true)
    }

    // MARK: 6. Rate-limit hints

    @Test func item6ATokensPerMinute429WaitsForTheLaterReset() throws {
        let failure = try RecordedFixture.classify("openai/rate_limit_tokens")
        #expect(failure.kind == .rateLimit)
        #expect(failure.hints.remainingRequests != 0 && failure.hints.remainingTokens != 0)
        let later = try #require([failure.hints.resetRequests, failure.hints.resetTokens].compactMap { $0 }.max())
        #expect(failure.hints.reset == later)
        #expect(failure.serverDelay == failure.hints.retryAfter ?? later)
    }

    @Test func item6RequestTooLargeIsNotRetried() throws {
        let failure = try RecordedFixture.classify("openai/request_too_large")
        #expect(failure.status == 429)
        #expect(failure.kind == .clientError)
        #expect(failure.code == "request_too_large")
        #expect(RetryPolicy(.default).decide(failure, retries: 0) == .giveUp(.notRetryable))
        #expect(HTTPCaller.signal(for: failure, provider: "llm") == nil)
    }

    @Test func item6RequestsPerMinute429StillWaitsForItsReset() throws {
        let failure = try RecordedFixture.classify("openai/rate_limit_requests")
        #expect(failure.kind == .rateLimit)
        #expect(failure.hints.remainingRequests == 0)
    }

    // MARK: 7. Timeouts

    @Test func item7ImageCallsHaveALongTimeoutAndAreNotRetriedAfterOne() async throws {
        let configuration = try ProviderConfiguration.resolve(
            providersFlag: "openai",
            presetFlag: nil,
            sources: SettingsSources(
                environment: EnvironmentSettings(["OPENAI_API_KEY": "sk-test"]),
                file: nil
            )
        )
        let image = configuration.http(for: .image)
        #expect(image.requestTimeout >= .seconds(180))
        #expect(!image.retryTimeouts)
        #expect(configuration.http(for: .voice).retryTimeouts)

        try await withWorkspace { workspace in
            let transport = FakeTransport([.failure(.timeout("no answer in 300 s"))])
            let provider = OpenAIImageProvider(
                settings: OpenAISettings(),
                caller: makeCaller(transport, settings: image)
            )
            let error = await #expect(throws: ProviderError.self) {
                try await provider.image(
                    for: ImageRequest(item: "scene_1", purpose: .scene, prompt: "x"),
                    context: makeContext(workspace: workspace)
                )
            }
            #expect(error?.kind == .timeout)
            // One billed generation at most, not four.
            #expect(transport.requests.count == 1)
            #expect(transport.timeouts.first == image.requestTimeout)
        }
    }

    @Test func item7RetryingImageTimeoutsIsAnOptIn() throws {
        let configuration = try ProviderConfiguration.resolve(
            providersFlag: "openai",
            presetFlag: nil,
            sources: SettingsSources(
                environment: EnvironmentSettings([
                    "OPENAI_API_KEY": "sk-test", "REELFARM_RETRY_IMAGE_TIMEOUTS": "true",
                    "REELFARM_IMAGE_TIMEOUT": "600",
                ]),
                file: nil
            )
        )
        #expect(configuration.http(for: .image).retryTimeouts)
        #expect(configuration.http(for: .image).requestTimeout == .seconds(600))
        let policy = RetryPolicy(HTTPCallSettings(retryTimeouts: false))
        #expect(policy.decide(HTTPFailure(kind: .timeout), retries: 0) == .giveUp(.timeoutNotRetried))
        // A 408 means the server never started: safe to send again.
        if case .retry = policy.decide(HTTPFailure(kind: .timeout, status: 408), retries: 0) {
        } else {
            Issue.record("a 408 should be retried")
        }
    }
}

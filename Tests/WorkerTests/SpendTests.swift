import Foundation
import Protocol
import Shared
import Testing

@testable import Worker

/// Each billed answer is charged to its call at the worker's price table (issue 16 part 2).
@Suite struct CallCostTests {
    private func context(_ item: String, workspace: URL? = nil, prices: PriceTable = .defaults) -> CallContext {
        var context = makeContext(item: item, workspace: workspace)
        context.meter = CallMeter(prices: prices)
        return context
    }

    private static func chat(_ content: String, prompt: Int, completion: Int) -> String {
        let escaped = String(data: try! JSONEncoder().encode(content), encoding: .utf8)!
        return """
            {"id":"c1","object":"chat.completion","created":1,"model":"gpt-6-luna",\
            "choices":[{"index":0,"message":{"role":"assistant","content":\(escaped)},"finish_reason":"stop"}],\
            "usage":{"prompt_tokens":\(prompt),"completion_tokens":\(completion),"total_tokens":\(prompt + completion)}}
            """
    }

    @Test func aScriptIsChargedTheTokensItsReplyReports() async throws {
        let transport = FakeTransport([.okJSON(Self.chat(Fixture.script(scenes: 4), prompt: 1200, completion: 3400))])
        let settings = OpenAISettings(baseURL: "http://127.0.0.1:9/v1", apiKey: "sk")
        let provider = OpenAIScriptProvider(settings: settings, caller: makeCaller(transport))
        let context = context("script")
        _ = try await provider.writeScript(for: EpisodeSpec(topic: "t", scenes: 4), context: context)
        // gpt-6-luna: 1,200 × $0.10/1M + 3,400 × $0.50/1M.
        #expect(context.meter.costMicros == 1820)
    }

    @Test func aRepairRequestIsChargedToo() async throws {
        let transport = FakeTransport([
            .okJSON(Self.chat("not json", prompt: 1000, completion: 1000)),
            .okJSON(Self.chat(Fixture.script(scenes: 4), prompt: 2000, completion: 1000)),
        ])
        let provider = OpenAIScriptProvider(
            settings: OpenAISettings(baseURL: "http://127.0.0.1:9/v1", apiKey: "sk"),
            caller: makeCaller(transport)
        )
        let context = context("script")
        _ = try await provider.writeScript(for: EpisodeSpec(topic: "t", scenes: 4), context: context)
        // (3,000 × 0.10 + 2,000 × 0.50) / 1M dollars.
        #expect(context.meter.costMicros == 1300)
    }

    @Test func aFailedCallCostsNothingKnown() async throws {
        let transport = FakeTransport([
            .status(400, json: #"{"error":{"message":"bad","type":"invalid_request_error"}}"#)
        ])
        let provider = OpenAIScriptProvider(
            settings: OpenAISettings(baseURL: "http://127.0.0.1:9/v1", apiKey: "sk"),
            caller: makeCaller(transport)
        )
        let context = context("script")
        await #expect(throws: ProviderError.self) {
            try await provider.writeScript(for: EpisodeSpec(topic: "t"), context: context)
        }
        #expect(context.meter.costMicros == nil)
        #expect(context.meter.unpricedModel == nil)
    }

    @Test func speechIsChargedByCharactersAndImagesBySizeAndQuality() async throws {
        try await withWorkspace { workspace in
            let line = Script.Line(number: 1, character: "Ada", text: String(repeating: "a", count: 200))
            let voice = OpenAIVoiceProvider(
                settings: OpenAISettings(baseURL: "http://127.0.0.1:9/v1", apiKey: "sk"),
                caller: makeCaller(FakeTransport([.ok(Fixture.wavOneSecond, contentType: "audio/wav")]))
            )
            let voiceContext = context("line_1", workspace: workspace)
            _ = try await voice.voice(for: line, cast: ["Ada"], context: voiceContext)
            #expect(voiceContext.meter.costMicros == 3000)  // 200 characters at $0.015 per 1k

            let image = OpenAIImageProvider(
                settings: OpenAISettings(baseURL: "http://127.0.0.1:9/v1", apiKey: "sk"),
                caller: makeCaller(FakeTransport([.okJSON(Fixture.imagesJSON(Fixture.png))]))
            )
            let imageContext = context("scene_1", workspace: workspace)
            _ = try await image.image(
                for: ImageRequest(item: "scene_1", purpose: .scene, prompt: "p"),
                context: imageContext
            )
            // 1280×720 medium: $0.013 × 921,600 / 1,048,576.
            #expect(imageContext.meter.costMicros == 11426)
        }
    }

    @Test func elevenLabsIsChargedWhatItsCharacterCostHeaderSays() async throws {
        try await withWorkspace { workspace in
            let transport = FakeTransport([
                .response(
                    ProviderResponse(
                        status: 200,
                        headers: ["Content-Type": "audio/mpeg", "character-cost": "57"],
                        body: Fixture.wavOneSecond
                    )
                ),
                .ok(Fixture.wavOneSecond, contentType: "audio/mpeg"),
            ])
            let provider = ElevenLabsVoiceProvider(settings: ElevenLabsSettings(), caller: makeCaller(transport))
            let line = Script.Line(number: 1, character: "Ada", text: String(repeating: "b", count: 30))
            let first = context("line_1", workspace: workspace)
            _ = try await provider.voice(for: line, cast: ["Ada"], context: first)
            #expect(first.meter.costMicros == 5700)  // 57 characters at $0.10 per 1k (eleven_multilingual_v2)
            let second = context("line_2", workspace: workspace)
            _ = try await provider.voice(for: line, cast: ["Ada"], context: second)
            #expect(second.meter.costMicros == 3000)  // no header: the 30 characters sent
        }
    }

    @Test func aModelWithoutAPriceLeavesTheCostUnknownAndIsNamed() async throws {
        let transport = FakeTransport([.okJSON(Self.chat(Fixture.script(scenes: 4), prompt: 10, completion: 10))])
        let settings = OpenAISettings(baseURL: "http://127.0.0.1:9/v1", apiKey: "sk", scriptModel: "llama3.1:8b")
        let provider = OpenAIScriptProvider(settings: settings, caller: makeCaller(transport))
        let context = context("script")
        _ = try await provider.writeScript(for: EpisodeSpec(topic: "t", scenes: 4), context: context)
        #expect(context.meter.costMicros == nil)
        #expect(context.meter.unpricedModel == "llama3.1:8b")
    }

    @Test func theManifestCarriesEachAssetsCostAndTheTotal() {
        let events = [
            TraceEvent(seq: 1, event: .callStart, name: "llm:script"),
            TraceEvent(seq: 2, event: .callEnd, name: "llm:script", costMicros: 290),
            TraceEvent(seq: 3, event: .callEnd, name: "tts:line_1", costMicros: 3000),
            TraceEvent(seq: 4, event: .callEnd, name: "image:scene_1", costMicros: 11426),
            TraceEvent(seq: 5, event: .callEnd, name: "image:scene_2"),
        ]
        let costs = CallCosts(events: events, unpricedModels: ["sdxl-local"])
        #expect(costs.totalMicros == 14716)
        #expect(costs.byItem == ["script": 290, "line_1": 3000, "scene_1": 11426])
        #expect(costs.unpricedModels == ["sdxl-local"])
    }

    @Test func anAllowanceRefusesTheCallThatWouldPassItAndTakesBackWhatWasNotBilled() throws {
        let allowance = SpendAllowance(limitMicros: 10_000)
        let prices = PriceTable.defaults
        // Two voice lines of 200 characters reserve 3,000 each, one after the other or at once.
        let first = CallMeter(prices: prices, allowance: allowance)
        try first.reserve(.characters(model: "gpt-4o-mini-tts", count: 200))
        let second = CallMeter(prices: prices, allowance: allowance)
        try second.reserve(.characters(model: "gpt-4o-mini-tts", count: 200))
        #expect(allowance.usedMicros == 6000)
        // A medium image (13,000 for 1024×1024) does not fit in what is left.
        let image = CallMeter(prices: prices, allowance: allowance)
        do {
            try image.reserve(.image(model: "gpt-image-2.6-flare", width: 1024, height: 1024, quality: "medium"))
            Issue.record("the image was allowed past the allowance")
        } catch {
            #expect(error.kind == .spendCap)
            #expect(error.message.contains("allowance of $0.01"), "\(error.message)")
        }
        // The first line is billed less than reserved; the second got no answer.
        first.charge(.characters(model: "gpt-4o-mini-tts", count: 100))
        second.finish()
        #expect(allowance.usedMicros == 1500)
        #expect(first.costMicros == 1500)
        #expect(second.costMicros == nil)
        // A model without a price reserves nothing (it cannot be capped) and leaves the cost unknown.
        let unpriced = CallMeter(prices: prices, allowance: allowance)
        try unpriced.reserve(.tokens(model: "llama3.1:8b", input: 10_000, output: 10_000))
        #expect(allowance.usedMicros == 1500)
    }

    @Test func aScriptCallTheAllowanceCannotCoverFailsTheAttemptAsCapped() async throws {
        let pipeline = EpisodePipeline(
            providers: ProviderSet(
                script: OpenAIScriptProvider(
                    settings: OpenAISettings(baseURL: "http://127.0.0.1:9/v1", apiKey: "sk"),
                    caller: makeCaller(FakeTransport([]))
                ),
                voice: SimulatedVoiceProvider(simulator: Simulator(settings: .instant, clock: ContinuousClock())),
                image: SimulatedImageProvider(simulator: Simulator(settings: .instant, clock: ContinuousClock())),
                render: SimulatedRenderProvider(simulator: Simulator(settings: .instant, clock: ContinuousClock()))
            ),
            limits: WorkerLimits(apiCallsPerEpisode: 5),
            trace: TraceRecorder(),
            logger: quietLogger
        )
        let job = Job(
            batchId: "b",
            episodeId: "e",
            attempt: 1,
            spec: EpisodeSpec(topic: "t", scenes: 4),
            spendAllowanceMicros: 100
        )
        let result = await pipeline.run(job, progress: { _ in })
        #expect(result.status == .failed)
        #expect(result.spendCapped)
        #expect(result.error?.contains("spend cap") == true, "\(result.error ?? "")")
    }
}

import Foundation
import Protocol
import Testing

@testable import Worker

/// The real providers over the real transport against a running `mock-provider`, when
/// `REELFARM_MOCK_URL` names one (e.g. `http://127.0.0.1:8089`); skipped otherwise.
@Suite(
    "HTTP providers against the mock server",
    .enabled(if: mockURL != nil, "set REELFARM_MOCK_URL to a running mock-provider"),
    .timeLimit(.minutes(2))
)
struct HTTPMockServerTests {
    private let call = HTTPCallSettings(requestTimeout: .seconds(20), maxRetries: 5, maxRetryAfter: .seconds(30))

    @Test func everyProviderWritesItsFile() async throws {
        let base = try #require(mockURL)
        try await withWorkspace { workspace in
            let openAI = OpenAISettings(baseURL: "\(base)/v1/", apiKey: "sk-mock")
            let spec = EpisodeSpec(topic: "the history of the lighthouse", scenes: 3)
            let script = try await OpenAIScriptProvider(settings: openAI, call: call).writeScript(
                for: spec,
                context: makeContext(item: "script", workspace: workspace)
            )
            #expect(script.scenes.count == 3)
            let line = try #require(script.lines.first)

            let openAIVoice = try await OpenAIVoiceProvider(settings: openAI, call: call).voice(
                for: line,
                cast: script.characters,
                context: makeContext(item: line.item, workspace: workspace)
            )
            #expect(openAIVoice.path?.hasSuffix("/\(line.item).wav") == true)
            #expect(openAIVoice.duration > .zero)

            let scene = ImageRequest(item: "scene_1", purpose: .scene, prompt: script.scenes[0].description)
            let openAIImage = try await OpenAIImageProvider(settings: openAI, call: call).image(
                for: scene,
                context: makeContext(item: "scene_1", workspace: workspace)
            )
            #expect(openAIImage.path?.hasSuffix("/scene_1.png") == true)

            let hf = HuggingFaceSettings(baseURL: "\(base)/hf/models", token: "hf_mock", maxLoadingWait: .seconds(30))
            let broll = ImageRequest(item: "broll_1", purpose: .broll, prompt: "Waves on rocks")
            let hfImage = try await HuggingFaceImageProvider(settings: hf, call: call).image(
                for: broll,
                context: makeContext(item: "broll_1", workspace: workspace)
            )
            #expect(hfImage.path?.hasSuffix("/broll_1.png") == true)

            let eleven = ElevenLabsSettings(baseURL: "\(base)/elevenlabs/v1", apiKey: "xi-mock")
            let elevenVoice = try await ElevenLabsVoiceProvider(settings: eleven, call: call).voice(
                for: line,
                cast: script.characters,
                context: makeContext(item: "line_99", workspace: workspace)
            )
            #expect(elevenVoice.path?.hasSuffix("/line_99.wav") == true)
            #expect(elevenVoice.duration > .zero)

            for clip in [openAIVoice.path, openAIImage.path, hfImage.path, elevenVoice.path] {
                let size = (try? FileManager.default.attributesOfItem(atPath: clip ?? "")[.size] as? Int) ?? 0
                #expect(size > 44, "\(clip ?? "no path")")
            }
        }
    }
}

private let mockURL: String? = {
    guard let url = ProcessInfo.processInfo.environment["REELFARM_MOCK_URL"], !url.isEmpty else { return nil }
    return url
}()

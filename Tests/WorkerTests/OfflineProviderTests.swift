import Foundation
import Protocol
import Testing

@testable import Worker

@Suite(.enabled(if: offlineToolsAvailable, "needs ffmpeg, ffprobe and espeak-ng"))
struct OfflineProviderTests {
    @Test func everyCharacterGetsADistinctVoice() {
        let voices = (0..<12).map { EspeakVoiceProvider.voice(at: $0) }
        #expect(Set(voices.map(\.arguments)).count == 12)
        #expect(voices.allSatisfy { !$0.name.hasPrefix("mb-") })
        #expect(voices.allSatisfy { (0...99).contains($0.pitch) && $0.speed > 100 })
        let cast = ["Narrator", "Ana", "Ben"]
        #expect(EspeakVoiceProvider.voice(for: "Ben", characters: cast) == EspeakVoiceProvider.voice(at: 2))
        #expect(
            EspeakVoiceProvider.voice(for: "Stranger", characters: cast)
                == EspeakVoiceProvider.voice(for: "Stranger", characters: cast)
        )
    }

    @Test func speaksLinesIntoWAVFiles() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let cast = ["Narrator", "Ana"]
        let provider = EspeakVoiceProvider()
        let narrator = try await provider.voice(
            for: Script.Line(number: 1, character: "Narrator", text: "-- Welcome back: it's the show."),
            context: folder.callContext(item: "line_1", characters: cast)
        )
        let ana = try await provider.voice(
            for: Script.Line(number: 2, character: "Ana", text: "-- Welcome back: it's the show."),
            context: folder.callContext(item: "line_2", characters: cast)
        )
        for clip in [narrator, ana] {
            #expect(clip.provider == "espeak-ng")
            #expect(!clip.isPlaceholder)
            let path = try #require(clip.path)
            #expect(path.hasSuffix("/\(clip.item).wav"))
            #expect(clip.duration > .milliseconds(500))
            let probed = try await probe(URL(fileURLWithPath: path))
            #expect(abs(seconds(probed.duration) - seconds(clip.duration)) < 0.05)
        }
        let narratorBytes = try Data(contentsOf: URL(fileURLWithPath: narrator.path!))
        let anaBytes = try Data(contentsOf: URL(fileURLWithPath: ana.path!))
        #expect(narratorBytes != anaBytes, "two voices, same words")
    }

    @Test func aVoiceNeedsAWorkspace() async {
        var context = CallContext(batchId: "b", episodeId: "e", attempt: 1, item: "line_1", logger: quietLogger)
        context.workspace = nil
        await #expect(throws: ProviderError.self) {
            try await EspeakVoiceProvider().voice(
                for: Script.Line(number: 1, character: "A", text: "hi"),
                context: context
            )
        }
    }

    @Test func drawsSceneAndBrollImagesAtTheRenderSize() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let provider = OfflineImageProvider(settings: .landscape)
        let requests = [
            ImageRequest(item: "scene_1", purpose: .scene, prompt: "A lighthouse: it's 'stormy' tonight, 100% sure"),
            ImageRequest(item: "scene_2", purpose: .scene, prompt: "A quiet harbour at dawn"),
            ImageRequest(item: "broll_1", purpose: .broll, prompt: "Waves rolling onto an empty beach"),
        ]
        var bytes: [Data] = []
        for request in requests {
            let image = try await provider.image(for: request, context: folder.callContext(item: request.item))
            #expect(image.provider == "offline")
            let path = try #require(image.path)
            #expect(path.hasSuffix("/\(request.item).png"))
            let info = try await probe(URL(fileURLWithPath: path))
            #expect(info.video?.width == 1_280)
            #expect(info.video?.height == 720)
            bytes.append(try Data(contentsOf: URL(fileURLWithPath: path)))
        }
        #expect(Set(bytes).count == 3)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.url.path).sorted()
        #expect(leftovers == ["broll_1.png", "scene_1.png", "scene_2.png"], "no text files left behind")
    }

    @Test func fallbacksWriteFiles() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let fallback = OfflineFallbackProvider()
        let line = Script.Line(number: 4, character: "Ana", text: "I said this instead.")
        let spoken = await fallback.voice(for: line, context: folder.callContext(item: "line_4", characters: ["Ana"]))
        #expect(spoken.isPlaceholder)
        #expect(spoken.provider == "espeak-ng")
        #expect(spoken.path != nil)
        #expect(spoken.duration > .zero)

        let card = await fallback.image(
            for: ImageRequest(item: "scene_3", purpose: .scene, prompt: "p"),
            context: folder.callContext(item: "scene_3")
        )
        #expect(card.isPlaceholder)
        #expect(card.provider == "placeholder")
        let info = try await probe(URL(fileURLWithPath: try #require(card.path)))
        #expect(info.video?.width == 1_280)
    }

    @Test func withoutEspeakAFailedVoiceBecomesSilenceOfTheEstimatedLength() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let tools = try locator(onlyWith: ["ffmpeg", "ffprobe"], in: folder.url)
        let fallback = OfflineFallbackProvider(tools: tools)
        let line = Script.Line(number: 1, character: "Ana", text: "one two three four five six seven")
        let clip = await fallback.voice(for: line, context: folder.callContext(item: "line_1"))
        #expect(clip.provider == "silence")
        #expect(clip.isPlaceholder)
        #expect(clip.duration == VoiceClip.estimatedSpeakingTime(line.text))
        let file = URL(fileURLWithPath: try #require(clip.path))
        #expect(WAVFile.duration(of: file) == .milliseconds(2_800))
    }

    @Test func withoutAWorkspaceFallbacksHaveNoFiles() async {
        let context = CallContext(batchId: "b", episodeId: "e", attempt: 1, item: "line_1", logger: quietLogger)
        let clip = await OfflineFallbackProvider().voice(
            for: Script.Line(number: 1, character: "A", text: "hi"),
            context: context
        )
        #expect(clip == VoiceClip.placeholder(for: Script.Line(number: 1, character: "A", text: "hi")))
        #expect(clip.path == nil)
    }
}

import Foundation
import Protocol
import Testing

@testable import Worker

@Suite("HTTP voice providers")
struct HTTPVoiceProviderTests {
    private let line = Script.Line(number: 3, character: "Leo", text: "It all began with a single lamp.")

    @Test func openAIWritesAWavWithTheHeaderDuration() async throws {
        try await withWorkspace { workspace in
            let transport = FakeTransport([.ok(Fixture.wavOneSecond, contentType: "audio/wav")])
            let settings = OpenAISettings(baseURL: "http://127.0.0.1:9/v1", apiKey: "sk-voice")
            let provider = OpenAIVoiceProvider(settings: settings, caller: makeCaller(transport))
            let clip = try await provider.voice(
                for: line,
                cast: ["Ada", "Leo"],
                context: makeContext(item: "line_3", workspace: workspace)
            )
            #expect(clip.item == "line_3")
            #expect(clip.provider == "openai")
            #expect(!clip.isPlaceholder)
            #expect(clip.duration == .seconds(1))
            let path = try #require(clip.path)
            #expect(path == workspace.appending(path: "line_3.wav").path)
            #expect(FileManager.default.contents(atPath: path) == Fixture.wavOneSecond)

            let request = try #require(transport.requests.first)
            #expect(request.url == "http://127.0.0.1:9/v1/audio/speech")
            #expect(request.headers["Authorization"] == "Bearer sk-voice")
            #expect(request.maxResponseBytes == 25 << 20)
            let body = try #require(jsonBody(request))
            #expect(body["model"]?.string == "gpt-4o-mini-tts")
            #expect(body["input"]?.string == line.text)
            #expect(body["voice"]?.string == "cedar")  // Leo is the second character
            #expect(body["response_format"]?.string == "wav")
        }
    }

    @Test func openAIFallsBackToTheEstimateForOtherAudio() async throws {
        try await withWorkspace { workspace in
            let transport = FakeTransport([.ok(Fixture.mp3, contentType: "audio/mpeg")])
            let provider = OpenAIVoiceProvider(settings: OpenAISettings(), caller: makeCaller(transport))
            let clip = try await provider.voice(for: line, context: makeContext(item: "line_3", workspace: workspace))
            #expect(clip.path?.hasSuffix("/line_3.mp3") == true)
            #expect(clip.duration == VoiceClip.estimatedSpeakingTime(line.text))
        }
    }

    @Test func notAudioIsAnInvalidResponse() async throws {
        try await withWorkspace { workspace in
            let transport = FakeTransport([.okJSON(#"{"error":"nope"}"#)])
            let provider = OpenAIVoiceProvider(settings: OpenAISettings(), caller: makeCaller(transport))
            let error = await #expect(throws: ProviderError.self) {
                try await provider.voice(for: line, context: makeContext(workspace: workspace))
            }
            #expect(error?.kind == .invalidResponse)
            let empty = FakeTransport([.ok(Data(), contentType: "audio/wav")])
            let emptyError = await #expect(throws: ProviderError.self) {
                try await OpenAIVoiceProvider(settings: OpenAISettings(), caller: makeCaller(empty)).voice(
                    for: line,
                    context: makeContext(workspace: workspace)
                )
            }
            #expect(emptyError?.kind == .invalidResponse)
        }
    }

    @Test func aCutOffWavIsAnInvalidResponse() async throws {
        try await withWorkspace { workspace in
            let transport = FakeTransport([.ok(Fixture.wavOneSecond.prefix(44 + 480), contentType: "audio/wav")])
            let provider = OpenAIVoiceProvider(settings: OpenAISettings(), caller: makeCaller(transport))
            let error = await #expect(throws: ProviderError.self) {
                try await provider.voice(for: line, context: makeContext(item: "line_3", workspace: workspace))
            }
            #expect(error?.kind == .invalidResponse)
            #expect(error?.message == "openai speech: the audio for line_3 is cut off")
        }
    }

    @Test func aStreamedWavWithoutSizesIsMeasuredByItsBytes() async throws {
        try await withWorkspace { workspace in
            var streamed = Fixture.wavOneSecond
            streamed.replaceSubrange(40..<44, with: [0xFF, 0xFF, 0xFF, 0xFF])
            let transport = FakeTransport([.ok(streamed, contentType: "audio/wav")])
            let provider = OpenAIVoiceProvider(settings: OpenAISettings(), caller: makeCaller(transport))
            let clip = try await provider.voice(for: line, context: makeContext(item: "line_3", workspace: workspace))
            #expect(clip.duration == .seconds(1))
        }
    }

    @Test func withoutAWorkspaceNothingIsSent() async {
        let transport = FakeTransport([])
        let error = await #expect(throws: ProviderError.self) {
            try await OpenAIVoiceProvider(settings: OpenAISettings(), caller: makeCaller(transport)).voice(
                for: line,
                context: makeContext()
            )
        }
        #expect(error?.kind == .clientError)
        #expect(transport.requests.isEmpty)
        let eleven = await #expect(throws: ProviderError.self) {
            try await ElevenLabsVoiceProvider(settings: ElevenLabsSettings(), caller: makeCaller(transport)).voice(
                for: line,
                context: makeContext()
            )
        }
        #expect(eleven?.kind == .clientError)
    }

    @Test func voicesFollowTheCastAndWrapAround() {
        let voices = ["a", "b", "c"]
        let cast = ["P", "Q", "R", "S"]
        #expect(cast.map { VoiceCasting.voice(for: $0, cast: cast, voices: voices) } == ["a", "b", "c", "a"])
        let unknown = VoiceCasting.voice(for: "Zed", cast: [], voices: voices)
        #expect(unknown == VoiceCasting.voice(for: "Zed", cast: ["Other"], voices: voices))
        #expect(VoiceCasting.voice(for: "Zed", cast: [], voices: []) == nil)
    }

    @Test func elevenLabsSendsTheKeyInItsHeaderAndWritesMP3() async throws {
        try await withWorkspace { workspace in
            let transport = FakeTransport([.ok(Fixture.mp3, contentType: "audio/mpeg")])
            let settings = ElevenLabsSettings(
                baseURL: "http://127.0.0.1:9/elevenlabs/v1/",
                apiKey: "xi-secret",
                voiceIds: ["Leo": "voice-leo"]
            )
            let provider = ElevenLabsVoiceProvider(settings: settings, caller: makeCaller(transport))
            let clip = try await provider.voice(for: line, context: makeContext(item: "line_3", workspace: workspace))
            #expect(clip.provider == "elevenlabs")
            #expect(clip.path == workspace.appending(path: "line_3.mp3").path)
            #expect(clip.duration == VoiceClip.estimatedSpeakingTime(line.text))

            let request = try #require(transport.requests.first)
            #expect(
                request.url == "http://127.0.0.1:9/elevenlabs/v1/text-to-speech/voice-leo?output_format=mp3_44100_128"
            )
            #expect(request.headers["xi-api-key"] == "xi-secret")
            #expect(request.headers["authorization"] == nil)
            #expect(request.headers["accept"] == "audio/mpeg")
            let body = try #require(jsonBody(request))
            #expect(body["text"]?.string == line.text)
            #expect(body["model_id"]?.string == "eleven_multilingual_v2")
        }
    }

    @Test func elevenLabsWritesWavWhenItSaysWav() async throws {
        try await withWorkspace { workspace in
            let transport = FakeTransport([.ok(Fixture.wavOneSecond, contentType: "audio/wav")])
            let provider = ElevenLabsVoiceProvider(settings: ElevenLabsSettings(), caller: makeCaller(transport))
            let clip = try await provider.voice(
                for: line,
                cast: ["Leo"],
                context: makeContext(item: "line_3", workspace: workspace)
            )
            #expect(clip.path?.hasSuffix("/line_3.wav") == true)
            #expect(clip.duration == .seconds(1))
            // Leo is first in the cast and has no configured voice: the first default voice.
            #expect(
                transport.requests.first?.url
                    == "https://api.elevenlabs.io/v1/text-to-speech/\(ElevenLabsSettings.currentDefaultVoiceIds[0])"
                    + "?output_format=mp3_44100_128"
            )
        }
    }

    @Test func elevenLabsRawPCMIsWrappedInAWavHeader() async throws {
        try await withWorkspace { workspace in
            let transport = FakeTransport([.ok(Data(count: 32_000), contentType: "audio/pcm")])
            let settings = ElevenLabsSettings(outputFormat: "pcm_16000")
            let provider = ElevenLabsVoiceProvider(settings: settings, caller: makeCaller(transport))
            let clip = try await provider.voice(for: line, context: makeContext(item: "line_3", workspace: workspace))
            #expect(clip.path?.hasSuffix("/line_3.wav") == true)
            #expect(clip.duration == .seconds(1))
            #expect(transport.requests.first?.url.hasSuffix("?output_format=pcm_16000") == true)
        }
    }

    @Test func elevenLabsVoiceIdsAreOneSegment() {
        let provider = ElevenLabsVoiceProvider(
            settings: ElevenLabsSettings(voiceIds: ["Odd": "a/b?c"]),
            caller: makeCaller(FakeTransport([]))
        )
        #expect(provider.voiceId(for: "Odd", cast: []) == "a/b?c")
        #expect(ProviderURL.segment("a/b?c") == "a%2Fb%3Fc")
    }

    @Test func elevenLabsConcurrencyLimitIsRetriedThenReported() async throws {
        try await withWorkspace { workspace in
            let busy = FakeTransport.Answer.status(
                429,
                json: #"{"detail":{"status":"too_many_concurrent_requests","message":"Too many"}}"#
            )
            let transport = FakeTransport([busy, busy, busy, busy])
            let sleeps = Collected<Duration>()
            let provider = ElevenLabsVoiceProvider(
                settings: ElevenLabsSettings(),
                caller: makeCaller(transport, random: 0.5, sleeps: sleeps)
            )
            let error = await #expect(throws: ProviderError.self) {
                try await provider.voice(for: line, context: makeContext(workspace: workspace))
            }
            #expect(error?.kind == .concurrencyLimited)
            #expect(transport.requests.count == 4)
            #expect(sleeps.count == 3)
        }
    }
}

@Suite("HTTP image providers")
struct HTTPImageProviderTests {
    private let scene = ImageRequest(item: "scene_2", purpose: .scene, prompt: "A lighthouse at dusk", style: "noir")
    private let broll = ImageRequest(item: "broll_1", purpose: .broll, prompt: "Waves")

    @Test func openAIDecodesBase64AndPicksTheExtension() async throws {
        try await withWorkspace { workspace in
            let transport = FakeTransport([
                .okJSON(Fixture.imagesJSON(Fixture.png)), .okJSON(Fixture.imagesJSON(Fixture.jpeg)),
            ])
            let settings = OpenAISettings(baseURL: "http://127.0.0.1:9/v1", apiKey: "sk-image")
            let provider = OpenAIImageProvider(settings: settings, caller: makeCaller(transport))
            let png = try await provider.image(for: scene, context: makeContext(item: "scene_2", workspace: workspace))
            #expect(png.provider == "openai")
            #expect(png.path == workspace.appending(path: "scene_2.png").path)
            #expect(png.duration == Image.defaultDuration(.scene))
            #expect(FileManager.default.contents(atPath: png.path ?? "") == Fixture.png)
            let jpeg = try await provider.image(for: broll, context: makeContext(item: "broll_1", workspace: workspace))
            #expect(jpeg.path == workspace.appending(path: "broll_1.jpg").path)
            #expect(jpeg.duration == Image.defaultDuration(.broll))

            let request = try #require(transport.requests.first)
            #expect(request.url == "http://127.0.0.1:9/v1/images/generations")
            #expect(request.headers["authorization"] == "Bearer sk-image")
            let body = try #require(jsonBody(request))
            #expect(body["model"]?.string == OpenAISettings.defaultImageModel)
            #expect(body["size"]?.string == "1280x720")
            #expect(body["quality"]?.string == "medium")
            #expect(body["n"]?.double == 1)
            // GPT image models answer base64 by themselves and refuse the parameter.
            #expect(body["response_format"] == nil)
            let prompt = try #require(body["prompt"]?.string)
            #expect(prompt.hasPrefix("A lighthouse at dusk. Visual style: noir"))
        }
    }

    @Test func gptImageModelsGetNoResponseFormat() async throws {
        try await withWorkspace { workspace in
            let transport = FakeTransport([.okJSON(Fixture.imagesJSON(Fixture.png))])
            let settings = OpenAISettings(imageModel: "gpt-image-1", imageSize: "1536x1024")
            let provider = OpenAIImageProvider(settings: settings, caller: makeCaller(transport))
            _ = try await provider.image(for: scene, context: makeContext(item: "scene_2", workspace: workspace))
            let body = try #require(jsonBody(transport.requests.first))
            #expect(body["response_format"] == nil)
            #expect(body["model"]?.string == "gpt-image-1")
        }
    }

    @Test func badImagePayloadsAreInvalidResponses() async throws {
        try await withWorkspace { workspace in
            for payload in [
                #"{"data":[{"b64_json":"!!!not base64!!!"}]}"#,
                #"{"data":[{"b64_json":"\#(Data("just text".utf8).base64EncodedString())"}]}"#,
                #"{"data":[]}"#,
                "not json at all",
                Fixture.imagesJSON(Fixture.png.prefix(20)),
                Fixture.imagesJSON(Fixture.jpeg.dropLast(2)),
            ] {
                let transport = FakeTransport([.okJSON(payload)])
                let provider = OpenAIImageProvider(settings: OpenAISettings(), caller: makeCaller(transport))
                let error = await #expect(throws: ProviderError.self, "\(payload)") {
                    try await provider.image(for: scene, context: makeContext(item: "scene_2", workspace: workspace))
                }
                #expect(error?.kind == .invalidResponse, "\(payload)")
            }
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: workspace.path)
            #expect(leftovers.isEmpty)
        }
    }

    @Test func aURLReplyIsDownloadedWithoutCredentials() async throws {
        try await withWorkspace { workspace in
            let transport = FakeTransport([
                .okJSON(#"{"data":[{"url":"http://127.0.0.1:9/files/img.png"}]}"#),
                .ok(Fixture.png, contentType: "image/png"),
            ])
            let settings = OpenAISettings(apiKey: "sk-image")
            let provider = OpenAIImageProvider(settings: settings, caller: makeCaller(transport))
            let image = try await provider.image(
                for: scene,
                context: makeContext(item: "scene_2", workspace: workspace)
            )
            #expect(image.path?.hasSuffix("/scene_2.png") == true)
            #expect(transport.requests.count == 2)
            #expect(transport.requests[1].method == "GET")
            #expect(transport.requests[1].url == "http://127.0.0.1:9/files/img.png")
            #expect(transport.requests[1].headers["authorization"] == nil)
        }
    }

    @Test func huggingFaceTakesRawBytesAndBase64() async throws {
        try await withWorkspace { workspace in
            let transport = FakeTransport([
                .ok(Fixture.png, contentType: "image/png"),
                .okJSON(Fixture.imagesJSON(Fixture.jpeg)),
            ])
            let settings = HuggingFaceSettings(baseURL: "http://127.0.0.1:9/hf/models/", token: "hf_token")
            let provider = HuggingFaceImageProvider(settings: settings, caller: makeCaller(transport))
            let png = try await provider.image(for: scene, context: makeContext(item: "scene_2", workspace: workspace))
            #expect(png.provider == "huggingface")
            #expect(png.path == workspace.appending(path: "scene_2.png").path)
            let jpeg = try await provider.image(for: broll, context: makeContext(item: "broll_1", workspace: workspace))
            #expect(jpeg.path == workspace.appending(path: "broll_1.jpg").path)

            let request = try #require(transport.requests.first)
            #expect(request.url == "http://127.0.0.1:9/hf/models/stabilityai/stable-diffusion-xl-base-1.0")
            #expect(request.headers["authorization"] == "Bearer hf_token")
            let body = try #require(jsonBody(request))
            #expect(body["inputs"]?.string?.hasPrefix("A lighthouse at dusk") == true)
            #expect(body["parameters"]?["width"]?.double == 1_280)
            #expect(body["parameters"]?["height"]?.double == 720)
        }
    }

    @Test func huggingFaceWaitsForALoadingModel() async throws {
        try await withWorkspace { workspace in
            let loading = FakeTransport.Answer.status(
                503,
                json: #"{"error":"Model black-forest-labs/FLUX.1-schnell is currently loading","estimated_time":30.0}"#
            )
            let transport = FakeTransport([
                loading, loading, loading, loading, .ok(Fixture.png, contentType: "image/png"),
            ])
            let sleeps = Collected<Duration>()
            let settings = HuggingFaceSettings(maxLoadingWait: .seconds(120))
            let provider = HuggingFaceImageProvider(
                settings: settings,
                caller: makeCaller(
                    transport,
                    settings: HTTPCallSettings(maxRetries: 1),
                    maxLoadingWait: settings.maxLoadingWait,
                    sleeps: sleeps
                )
            )
            let image = try await provider.image(
                for: scene,
                context: makeContext(item: "scene_2", workspace: workspace)
            )
            #expect(image.path?.hasSuffix("/scene_2.png") == true)
            #expect(sleeps.all == Array(repeating: .seconds(30), count: 4))
        }
    }
}

@Suite("HTTP plumbing")
struct HTTPPlumbingTests {
    @Test(
        "base URLs and paths join with one slash",
        arguments: [
            ("http://h/v1", "chat/completions", "http://h/v1/chat/completions"),
            ("http://h/v1/", "/chat/completions", "http://h/v1/chat/completions"),
            ("http://h/v1//", "//audio/speech", "http://h/v1/audio/speech"),
            ("http://h:8080/hf/models", "org/model", "http://h:8080/hf/models/org/model"),
            ("http://h", "", "http://h"),
        ]
    )
    func joins(base: String, path: String, expected: String) {
        #expect(ProviderURL.join(base, path) == expected)
    }

    @Test func modelPathsKeepTheirSlashes() {
        #expect(ProviderURL.path("black-forest-labs/FLUX.1-schnell") == "black-forest-labs/FLUX.1-schnell")
        #expect(ProviderURL.path("/org/my model/") == "org/my%20model")
    }

    @Test func wavDurations() {
        #expect(WAVFile.duration(of: Fixture.wavOneSecond) == .seconds(1))
        #expect(
            WAVFile.duration(of: WAVFile.wav(pcm16: Data(count: 22_050), sampleRate: 22_050, channels: 1))
                == .milliseconds(500)
        )
        #expect(WAVFile.duration(of: Data("RIFF0000WAVEjunk".utf8)) == nil)
        #expect(WAVFile.duration(of: Data("not a wav at all".utf8)) == nil)
        #expect(WAVFile.duration(of: Data()) == nil)

        // A LIST chunk before data, and a streamed size of 0xFFFFFFFF.
        var wav = WAVFile.wav(pcm16: Data(count: 8_000), sampleRate: 8_000, channels: 1)
        let dataChunk = wav.range(of: Data("data".utf8))!.lowerBound
        let list = Data("LIST".utf8) + Data([5, 0, 0, 0]) + Data("INFOx".utf8) + Data([0])  // odd size, padded
        wav.insert(contentsOf: list, at: dataChunk)
        #expect(WAVFile.duration(of: wav) == .milliseconds(500))
        let sizeAt = wav.range(of: Data("data".utf8))!.upperBound
        wav.replaceSubrange(sizeAt..<sizeAt + 4, with: [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(WAVFile.duration(of: wav) == .milliseconds(500))
    }

    @Test func magicBytes() {
        #expect(MediaFiles.imageFormat(Fixture.png) == .png)
        #expect(MediaFiles.imageFormat(Fixture.jpeg) == .jpeg)
        #expect(MediaFiles.imageFormat(Data("RIFF0000WEBPVP8 ".utf8)) == .webp)
        #expect(MediaFiles.imageFormat(Data("GIF89a".utf8)) == nil)
        #expect(MediaFiles.isComplete(Fixture.png, format: .png))
        #expect(!MediaFiles.isComplete(Fixture.png.prefix(20), format: .png))
        #expect(MediaFiles.isComplete(Fixture.jpeg, format: .jpeg))
        #expect(!MediaFiles.isComplete(Fixture.jpeg.dropLast(), format: .jpeg))
        let webp = Data("RIFF".utf8) + Data([8, 0, 0, 0]) + Data("WEBPVP8 ".utf8)
        #expect(MediaFiles.isComplete(webp, format: .webp))
        #expect(!MediaFiles.isComplete(webp.dropLast(), format: .webp))
        #expect(!WAVFile.isTruncated(Fixture.wavOneSecond))
        #expect(WAVFile.isTruncated(Fixture.wavOneSecond.dropLast()))
        #expect(AudioFormat.detect(Fixture.wavOneSecond, mediaType: "audio/mpeg") == .wav)
        #expect(AudioFormat.detect(Fixture.mp3, mediaType: nil) == .mp3)
        #expect(AudioFormat.detect(Data([0xFF, 0xFB, 0x90, 0x00]), mediaType: nil) == .mp3)
        #expect(AudioFormat.detect(Data([0xFF, 0xF1, 0x50, 0x80]), mediaType: nil) == .aac)
        #expect(AudioFormat.detect(Data("hello".utf8), mediaType: "application/json") == nil)
        #expect(AudioFormat.detect(Data("....".utf8), mediaType: "audio/wav") == .wav)
    }

    @Test func base64IsBoundedAndTolerant() {
        let bytes = Data((0..<100).map { UInt8($0) })
        let standard = bytes.base64EncodedString()
        #expect(MediaFiles.decodeBase64(standard, limit: 100) == bytes)
        #expect(MediaFiles.decodeBase64(standard, limit: 99) == nil)
        let wrapped = bytes.base64EncodedString(options: .lineLength64Characters)
        #expect(MediaFiles.decodeBase64(wrapped, limit: 1_000) == bytes)
        let urlSafe = standard.replacing("+", with: "-").replacing("/", with: "_").replacing("=", with: "")
        #expect(MediaFiles.decodeBase64(urlSafe, limit: 1_000) == bytes)
        #expect(MediaFiles.decodeBase64("", limit: 10) == nil)
        #expect(MediaFiles.decodeBase64("a", limit: 10) == nil)
        #expect(MediaFiles.decodeBase64(String(repeating: "A", count: 4_000), limit: 100) == nil)
    }

    @Test func settingsDefaultsAndDescriptionsWithoutKeys() {
        let openAI = OpenAISettings(apiKey: "sk-very-secret")
        #expect(openAI.baseURL == "https://api.openai.com/v1")
        #expect(openAI.voices == ["marin", "cedar", "coral", "ash", "sage", "verse"])
        #expect(openAI.maxOutputTokens == nil)
        #expect(openAI.tokenParameter == .auto)
        #expect(!"\(openAI)".contains("sk-very-secret"))
        #expect(!String(reflecting: openAI).contains("sk-very-secret"))
        let hf = HuggingFaceSettings(token: "hf_secret")
        #expect(hf.width == 1_280 && hf.height == 720)
        #expect(hf.maxLoadingWait == .seconds(120))
        #expect(!"\(hf)".contains("hf_secret"))
        let eleven = ElevenLabsSettings(apiKey: "xi_secret")
        #expect(eleven.outputFormat == "mp3_44100_128")
        #expect(!eleven.defaultVoiceIds.isEmpty)
        #expect(!"\(eleven)".contains("xi_secret"))
        let call = HTTPCallSettings()
        #expect(call.requestTimeout == .seconds(60))
        #expect(call.connectTimeout == .seconds(10))
        #expect(call.maxRetries == 3)
        #expect(call.backoffBase == .milliseconds(500))
        #expect(call.backoffCap == .seconds(8))
        #expect(call.maxRetryAfter == .seconds(120))
    }

    @Test func theRealTransportReportsAnUnusableURL() async {
        let transport = AsyncHTTPClientTransport.processWide()
        let request = ProviderRequest(url: "not a url", maxResponseBytes: 1_024)
        await #expect(throws: HTTPTransportError.self) { try await transport.send(request, timeout: .seconds(5)) }
        #expect(AsyncHTTPClientTransport.processWide().client === transport.client)
    }

    @Test func theRealTransportReportsARefusedConnection() async throws {
        // Port 1 on loopback: nothing listens there.
        let transport = AsyncHTTPClientTransport.processWide()
        let request = ProviderRequest(url: "http://127.0.0.1:1/v1/chat/completions", maxResponseBytes: 1_024)
        let start = ContinuousClock.now
        do {
            _ = try await transport.send(request, timeout: .seconds(120))
            Issue.record("a request to a closed port succeeded")
        } catch let error as HTTPTransportError {
            #expect(error.isNetwork, "\(error)")
        }
        // Not the 120 s timeout (the bound is loose: the suite runs on busy 2-core machines).
        #expect(ContinuousClock.now - start < .seconds(30), "a refused connection fails at once")
    }
}

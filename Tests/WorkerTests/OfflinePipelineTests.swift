import Foundation
import Protocol
import Testing

@testable import Worker

/// Whole attempts with the offline providers into a temporary output folder.
@Suite(.enabled(if: offlineToolsAvailable, "needs ffmpeg, ffprobe and espeak-ng"))
struct OfflinePipelineTests {
    /// The folders a test checks.
    private struct Output {
        let folder: TemporaryFolder
        var batch: URL { folder.url.appendingPathComponent("batch_test") }
        var work: URL { batch.appendingPathComponent(".work") }
        func episode(_ id: String = "episode_1") -> URL { batch.appendingPathComponent(id) }
    }

    private func output() throws -> Output { Output(folder: try TemporaryFolder()) }

    /// Checks every manifest entry against its file and returns the manifest.
    private func checkManifest(
        in folder: URL,
        script: Script,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> EpisodeManifest {
        let manifest = try readManifest(folder)
        let expectedItems =
            script.lines.map(\.item) + script.scenes.map(\.item) + script.brollShots.map(\.item) + ["episode"]
        #expect(manifest.assets.map(\.item) == expectedItems, sourceLocation: sourceLocation)
        for asset in manifest.assets {
            let name = try #require(asset.file, "\(asset.item) has a file", sourceLocation: sourceLocation)
            let file = folder.appendingPathComponent(name)
            #expect(try EpisodeFiles.sha256(of: file) == asset.sha256, "\(asset.item)", sourceLocation: sourceLocation)
            let size = try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int
            #expect(size == asset.sizeBytes, sourceLocation: sourceLocation)
            #expect(asset.sha256?.count == 64, sourceLocation: sourceLocation)
        }
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: folder.path))
        let expectedFiles = Set(manifest.assets.compactMap(\.file) + ["script.json", "manifest.json"])
        #expect(files == expectedFiles, "nothing else in the folder", sourceLocation: sourceLocation)
        return manifest
    }

    private func voiceSeconds(_ manifest: EpisodeManifest, in folder: URL) async throws -> [String: Double] {
        var result: [String: Double] = [:]
        for asset in manifest.assets where asset.kind == .voice {
            let info = try await probe(folder.appendingPathComponent(asset.file!))
            result[asset.item] = seconds(info.duration)
        }
        return result
    }

    @Test("transfer delivery: nothing is published, the kept folder is offered file by file with digests")
    func transferDeliveryKeepsTheWorkspace() async throws {
        let out = try output()
        defer { out.folder.remove() }
        var pipeline = makeOfflinePipeline(output: out.folder.url)
        pipeline.delivery = .transfer
        let (result, files) = await pipeline.runKeepingFiles(makeJob(scenes: 1), progress: { _ in })
        #expect(result.status == .succeeded)
        #expect(result.delivery == .transfer)
        let folder = try #require(files)
        #expect(folder.path.hasPrefix(out.work.path), "kept in .work, not published")
        #expect(!FileManager.default.fileExists(atPath: out.episode().path))
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(result.artifacts.map(\.name) == names)
        #expect(names.contains("episode.mp4") && names.contains("manifest.json"))
        for file in result.artifacts {
            #expect(try EpisodeFiles.sha256(of: folder.appendingPathComponent(file.name)) == file.sha256)
        }
        try AttemptWorkspace.deleteOffered(folder)
        #expect(!FileManager.default.fileExists(atPath: out.work.path), "the empty .work goes too")
    }

    @Test("shared delivery: the RESULT lists the published files with their digests")
    func sharedDeliveryListsThePublishedFiles() async throws {
        let out = try output()
        defer { out.folder.remove() }
        let (result, files) = await makeOfflinePipeline(output: out.folder.url)
            .runKeepingFiles(makeJob(scenes: 1), progress: { _ in })
        #expect(result.status == .succeeded && result.delivery == .shared && files == nil)
        for file in result.artifacts {
            #expect(try EpisodeFiles.sha256(of: out.episode().appendingPathComponent(file.name)) == file.sha256)
        }
        #expect(!result.artifacts.isEmpty)
    }

    @Test func aFourSceneEpisodeBecomesAWatchableMP4() async throws {
        let out = try output()
        defer { out.folder.remove() }
        let job = makeJob(scenes: 4)
        let script = OfflineScriptWriter.script(for: job.spec)

        let result = await makeOfflinePipeline(output: out.folder.url).run(job, progress: { _ in })

        #expect(result.status == .succeeded, "\(result.error ?? "")")
        #expect(result.placeholders.isEmpty)
        let folder = out.episode()
        let video = folder.appendingPathComponent("episode.mp4")
        let info = try await probe(video)
        #expect(info.video?.codecName == "h264")
        #expect(info.video?.width == 1_280)
        #expect(info.video?.height == 720)
        #expect(info.audio?.codecName == "aac")
        #expect(info.audio?.sampleRate == 48_000)
        #expect(info.audio?.channels == 2)

        let manifest = try checkManifest(in: folder, script: script)
        #expect(manifest.episodeId == "episode_1")
        #expect(manifest.batchId == "batch_test")
        #expect(manifest.attempt == 1)
        #expect(manifest.title == script.title)
        #expect(manifest.render.provider == "ffmpeg")
        #expect(manifest.render.preset == "landscape")
        #expect(manifest.assets.allSatisfy { !$0.placeholder })
        #expect(manifest.assets.filter { $0.kind == .voice }.allSatisfy { $0.provider == "espeak-ng" })
        #expect(
            manifest.assets.filter { $0.kind == .scene || $0.kind == .broll }.allSatisfy { $0.provider == "offline" }
        )

        // The video lasts as long as the voices.
        let voices = try await voiceSeconds(manifest, in: folder)
        let speech = voices.values.reduce(0, +)
        #expect(abs(seconds(info.duration) - speech) <= 0.5, "video \(seconds(info.duration)) s, speech \(speech) s")
        #expect(speech > 10, "a real episode, \(speech) s of speech")

        // Two scenes look different: a frame in the middle of scene 1's first line and one in scene 2's.
        let firstLine = voices[script.scenes[0].lines[0].item]!
        let sceneOne = script.scenes[0].lines.reduce(0) { $0 + voices[$1.item]! }
        let frameOne = try await frame(of: video, at: firstLine / 2)
        let frameTwo = try await frame(of: video, at: sceneOne + voices[script.scenes[1].lines[0].item]! / 2)
        #expect(meanDifference(frameOne, frameTwo) > 5, "scenes 1 and 2 differ")

        let scriptData = try Data(contentsOf: folder.appendingPathComponent("script.json"))
        #expect(try EpisodeFiles.decoder().decode(Script.self, from: scriptData) == script)
        #expect(!FileManager.default.fileExists(atPath: out.work.path), "no .work leftovers")
    }

    @Test func theVerticalPresetGives1080x1920() async throws {
        let out = try output()
        defer { out.folder.remove() }
        let pipeline = makeOfflinePipeline(.offline(settings: .vertical), output: out.folder.url)
        // A `%` in an id must not be taken for an image-sequence pattern by ffmpeg.
        let result = await pipeline.run(makeJob("episode_%d", topic: "tea", scenes: 1), progress: { _ in })
        #expect(result.status == .succeeded, "\(result.error ?? "")")
        let folder = out.episode("episode_%d")
        let info = try await probe(folder.appendingPathComponent("episode.mp4"))
        #expect(info.video?.width == 1_080)
        #expect(info.video?.height == 1_920)
        #expect(try readManifest(folder).render.preset == "vertical")
    }

    @Test func failedImagesBecomePlaceholderCardsAndTheEpisodeStillRenders() async throws {
        let out = try output()
        defer { out.folder.remove() }
        var providers = ProviderSet.offline()
        providers.image = FailingImageProvider()
        let job = makeJob(topic: "comets", scenes: 2)
        let script = OfflineScriptWriter.script(for: job.spec)

        let result = await makeOfflinePipeline(providers, output: out.folder.url).run(job, progress: { _ in })

        #expect(result.status == .succeeded, "\(result.error ?? "")")
        let expected =
            script.scenes.map { Placeholder(stage: .scenes, item: $0.item, reason: "image service down") }
            + script.brollShots.map { Placeholder(stage: .broll, item: $0.item, reason: "image service down") }
        #expect(result.placeholders == expected)
        let manifest = try checkManifest(in: out.episode(), script: script)
        let images = manifest.assets.filter { $0.kind == .scene || $0.kind == .broll }
        #expect(images.allSatisfy { $0.placeholder && $0.provider == "placeholder" && $0.file == "\($0.item).png" })
        #expect(manifest.assets.filter { $0.kind == .voice }.allSatisfy { !$0.placeholder })
        let info = try await probe(out.episode().appendingPathComponent("episode.mp4"))
        #expect(info.video?.codecName == "h264")
    }

    @Test func failedVoicesAreSpokenByEspeak() async throws {
        let out = try output()
        defer { out.folder.remove() }
        var providers = ProviderSet.offline()
        providers.voice = FailingVoiceProvider()
        let job = makeJob(topic: "chess", scenes: 1)
        let script = OfflineScriptWriter.script(for: job.spec)

        let result = await makeOfflinePipeline(providers, output: out.folder.url).run(job, progress: { _ in })

        #expect(result.status == .succeeded, "\(result.error ?? "")")
        #expect(result.placeholders.map(\.item) == script.lines.map(\.item))
        #expect(result.placeholders.allSatisfy { $0.stage == .voices && $0.reason == "tts service busy" })
        let manifest = try checkManifest(in: out.episode(), script: script)
        let voices = manifest.assets.filter { $0.kind == .voice }
        #expect(voices.allSatisfy { $0.placeholder && $0.provider == "espeak-ng" })
        #expect(voices.allSatisfy { ($0.durationSeconds ?? 0) > 0.3 })
    }

    @Test func withoutEspeakFailedVoicesBecomeSilence() async throws {
        let out = try output()
        defer { out.folder.remove() }
        let tools = try locator(onlyWith: ["ffmpeg", "ffprobe"], in: out.folder.url)
        var providers = ProviderSet.offline()
        providers.voice = FailingVoiceProvider()
        providers.fallback = OfflineFallbackProvider(tools: tools)
        let job = makeJob(topic: "chess", scenes: 1)
        let script = OfflineScriptWriter.script(for: job.spec)

        let result = await makeOfflinePipeline(providers, output: out.folder.url).run(job, progress: { _ in })

        #expect(result.status == .succeeded, "\(result.error ?? "")")
        let manifest = try checkManifest(in: out.episode(), script: script)
        let voices = manifest.assets.filter { $0.kind == .voice }
        #expect(voices.allSatisfy { $0.placeholder && $0.provider == "silence" })
        for (voice, line) in zip(voices, script.lines) {
            #expect(voice.durationSeconds == VoiceClip.estimatedSpeakingTime(line.text) / .seconds(1))
        }
        let speech = voices.reduce(0) { $0 + ($1.durationSeconds ?? 0) }
        let info = try await probe(out.episode().appendingPathComponent("episode.mp4"))
        #expect(abs(seconds(info.duration) - speech) <= 0.5)
    }

    @Test func aBrokenImageFailsTheRenderAndLeavesNoFiles() async throws {
        /// Writes something that is not a PNG.
        struct CorruptImages: ImageProvider {
            func image(for request: ImageRequest, context: CallContext) async throws -> Image {
                let file = try context.requireWorkspace(for: "image").appendingPathComponent("\(request.item).png")
                try Data("this is not a png".utf8).write(to: file)
                return Image(item: request.item, path: file.path, duration: .seconds(6), provider: "corrupt")
            }
        }
        let out = try output()
        defer { out.folder.remove() }
        var providers = ProviderSet.offline()
        providers.image = CorruptImages()
        let progress = Collected<EpisodeProgress>()

        let result = await makeOfflinePipeline(providers, output: out.folder.url)
            .run(makeJob(scenes: 1), progress: { progress.append($0) })

        #expect(result.status == .failed)
        let error = try #require(result.error)
        #expect(error.hasPrefix("render: ffmpeg exited with status"), "\(error)")
        #expect(error.utf8.count <= WireProtocol.maxTextBytes)
        #expect(progress.all.last?.state == .failed)
        #expect(!FileManager.default.fileExists(atPath: out.work.path), "the workspace is gone")
        #expect(!FileManager.default.fileExists(atPath: out.episode().path), "nothing published")
    }

    @Test(.timeLimit(.minutes(1)))
    func cancellationDeletesTheWorkspace() async throws {
        /// Waits until cancelled.
        struct StuckRenderer: RenderProvider {
            let entered: Collected<Bool>
            func render(_ script: Script, assets: EpisodeAssets, context: CallContext) async throws -> RenderedEpisode {
                entered.append(true)
                try await Task.sleep(for: .seconds(600))
                return RenderedEpisode(duration: .zero)
            }
        }
        let out = try output()
        defer { out.folder.remove() }
        let entered = Collected<Bool>()
        var providers = ProviderSet.offline()
        providers.render = StuckRenderer(entered: entered)
        let pipeline = makeOfflinePipeline(providers, output: out.folder.url)
        let task = Task { await pipeline.run(makeJob(scenes: 1), progress: { _ in }) }
        try await eventually("the render starts") { entered.count == 1 }
        #expect(FileManager.default.fileExists(atPath: out.work.appendingPathComponent("episode_1-attempt-1").path))

        task.cancel()
        let result = await task.value

        #expect(result.error == "cancelled")
        #expect(!FileManager.default.fileExists(atPath: out.work.path))
        #expect(!FileManager.default.fileExists(atPath: out.episode().path))
    }
}

/// Publishing, with the (fast, file-less) simulated providers.
@Suite struct EpisodePublishingTests {
    @Test func aLaterAttemptReplacesTheEarlierOne() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let pipeline = makeOfflinePipeline(.simulated(.instant), output: folder.url)
        let batch = folder.url.appendingPathComponent("batch_test")

        let first = await pipeline.run(makeJob(attempt: 1), progress: { _ in })
        let second = await pipeline.run(makeJob(attempt: 2), progress: { _ in })

        #expect(first.status == .succeeded)
        #expect(second.status == .succeeded)
        let manifest = try readManifest(batch.appendingPathComponent("episode_1"))
        #expect(manifest.attempt == 2)
        #expect(manifest.assets.allSatisfy { $0.file == nil && $0.sha256 == nil })
        #expect(manifest.assets.last?.provider == "simulated")
        #expect(try FileManager.default.contentsOfDirectory(atPath: batch.path) == ["episode_1"])
    }

    @Test func anUnsafeEpisodeIdFailsTheAttemptBeforeAnyCall() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let pipeline = makeOfflinePipeline(.simulated(.instant), output: folder.url)
        let result = await pipeline.run(makeJob("../escape"), progress: { _ in })
        #expect(result.status == .failed)
        #expect(result.error?.hasPrefix("output: '../escape' cannot be a file name") == true, "\(result.error ?? "")")
        #expect(result.apiCalls == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.url.path).isEmpty)
    }

    @Test func withoutAnOutputFolderNothingIsWritten() async throws {
        let result = await makePipeline().run(makeJob(), progress: { _ in })
        #expect(result.status == .succeeded)
    }
}

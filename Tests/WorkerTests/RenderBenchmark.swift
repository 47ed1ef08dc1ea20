import Foundation
import Protocol
import Shared
import Testing

@testable import Worker

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Times one render of a 4-scene offline episode and prints it. Not a pass/fail check: run it on
/// purpose with `REELFARM_RENDER_BENCHMARK=1 swift test --filter RenderBenchmark`
/// (`REELFARM_RENDER_PRESET=vertical` for 1080x1920, `REELFARM_RENDER_TOPIC` for another script).
@Suite(.enabled(if: ProcessInfo.processInfo.environment["REELFARM_RENDER_BENCHMARK"] != nil && offlineToolsAvailable))
struct RenderBenchmark {
    @Test func renderAFourSceneEpisode() async throws {
        let environment = ProcessInfo.processInfo.environment
        let settings = environment["REELFARM_RENDER_PRESET"].flatMap(RenderSettings.named) ?? .landscape
        let topic = environment["REELFARM_RENDER_TOPIC"] ?? "the history of the lighthouse"
        let folder = try TemporaryFolder("reelfarm-bench")
        defer { folder.remove() }
        let spec = EpisodeSpec(topic: topic, scenes: 4)
        let script = OfflineScriptWriter.script(for: spec)
        let providers = ProviderSet.offline(settings: settings)

        let assetsStarted = ContinuousClock.now
        var voices: [VoiceClip] = []
        for line in script.lines {
            voices.append(
                try await providers.voice.voice(
                    for: line,
                    context: folder.callContext(item: line.item, characters: script.characters, topic: topic)
                )
            )
        }
        var scenes: [Image] = []
        for scene in script.scenes {
            let request = ImageRequest(item: scene.item, purpose: .scene, prompt: scene.description)
            scenes.append(try await providers.image.image(for: request, context: folder.callContext(item: scene.item)))
        }
        var broll: [Image] = []
        for shot in script.brollShots {
            let request = ImageRequest(item: shot.item, purpose: .broll, prompt: shot.description)
            broll.append(try await providers.image.image(for: request, context: folder.callContext(item: shot.item)))
        }
        let assetsTime = ContinuousClock.now - assetsStarted

        let cpuBefore = childCPUSeconds()
        let started = ContinuousClock.now
        let rendered = try await providers.render.render(
            script,
            assets: EpisodeAssets(voices: voices, scenes: scenes, broll: broll),
            context: folder.callContext(item: "render")
        )
        let renderTime = ContinuousClock.now - started
        let cpu = childCPUSeconds() - cpuBefore
        let size = try FileManager.default.attributesOfItem(atPath: rendered.path!)[.size] as? Int ?? 0
        print(
            "render benchmark: \(settings.preset) \(settings.size), \(script.lines.count) lines, "
                + "\(script.brollShots.count) B-roll; assets \(assetsTime.secondsText) (sequential); "
                + "video \(rendered.duration.secondsText); render \(renderTime.secondsText) wall, "
                + "\(Duration.seconds(cpu).secondsText) CPU in ffmpeg; \(size) bytes"
        )
        if let keep = environment["REELFARM_RENDER_KEEP"] {
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.copyItem(atPath: rendered.path!, toPath: keep)
        }
    }
}

/// CPU seconds (user + system) used so far by finished child processes.
private func childCPUSeconds() -> Double {
    var usage = rusage()
    #if canImport(Glibc)
    getrusage(RUSAGE_CHILDREN.rawValue, &usage)
    #else
    getrusage(RUSAGE_CHILDREN, &usage)
    #endif
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1_000_000 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

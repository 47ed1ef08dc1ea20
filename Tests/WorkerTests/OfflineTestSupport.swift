import Foundation
import Logging
import Protocol
import Testing

@testable import Worker

/// Whether ffmpeg, ffprobe and espeak-ng are installed (the offline tests need them).
let offlineToolsAvailable = (try? ProviderSet.checkOfflineTools()) != nil

/// A fresh folder under the system's temporary folder; remove it with ``remove()``.
struct TemporaryFolder {
    let url: URL

    init(_ label: String = "reelfarm-tests") throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func remove() {
        try? FileManager.default.removeItem(at: url)
    }

    func callContext(item: String, characters: [String] = [], topic: String = "lighthouses") -> CallContext {
        CallContext(
            batchId: "batch_test",
            episodeId: "episode_1",
            attempt: 1,
            item: item,
            logger: quietLogger,
            workspace: url,
            topic: topic,
            characters: characters
        )
    }
}

/// A locator that finds only the named tools (symlinked into a folder of their own), so a test can make
/// one tool unavailable.
func locator(onlyWith names: [String], in folder: URL) throws -> ToolLocator {
    let bin = folder.appendingPathComponent("bin")
    try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
    for name in names {
        let tool = try ToolLocator.environment.locate(name)
        try FileManager.default.createSymbolicLink(
            at: bin.appendingPathComponent(name),
            withDestinationURL: URL(fileURLWithPath: tool.path)
        )
    }
    return ToolLocator(searchPath: [bin.path])
}

func makeOfflinePipeline(
    _ providers: ProviderSet = .offline(),
    output: URL,
    limits: WorkerLimits = WorkerLimits()
) -> EpisodePipeline {
    EpisodePipeline(
        providers: providers,
        limits: limits,
        trace: TraceRecorder(),
        logger: quietLogger,
        outputRoot: output
    )
}

func probe(_ file: URL) async throws -> MediaInfo {
    try await MediaProbe(tools: .environment).info(file)
}

func seconds(_ duration: Duration?) -> Double {
    (duration ?? .zero) / .seconds(1)
}

/// One frame at `time` seconds, scaled down to 64x36 raw RGB bytes.
func frame(of video: URL, at time: Double) async throws -> [UInt8] {
    let folder = try TemporaryFolder("reelfarm-frame")
    defer { folder.remove() }
    let out = folder.url.appendingPathComponent("frame.rgb")
    try await FFmpeg(tools: .environment).run(
        [
            "-ss", FFmpegRenderer.seconds(time), "-i", video.path, "-frames:v", "1", "-s", "64x36", "-f", "rawvideo",
            "-pix_fmt", "rgb24", out.path,
        ],
        in: folder.url
    )
    return [UInt8](try Data(contentsOf: out))
}

/// Mean absolute difference of two byte arrays of the same size (0…255).
func meanDifference(_ a: [UInt8], _ b: [UInt8]) -> Double {
    guard a.count == b.count, !a.isEmpty else { return .infinity }
    let total = zip(a, b).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }
    return Double(total) / Double(a.count)
}

func readManifest(_ folder: URL) throws -> EpisodeManifest {
    let data = try Data(contentsOf: folder.appendingPathComponent(EpisodeFiles.manifestName))
    return try EpisodeFiles.decoder().decode(EpisodeManifest.self, from: data)
}

/// An image provider that always fails.
struct FailingImageProvider: ImageProvider {
    func image(for request: ImageRequest, context: CallContext) async throws -> Image {
        throw ProviderError(.serverError, "image service down")
    }
}

/// A voice provider that always fails.
struct FailingVoiceProvider: VoiceProvider {
    func voice(for line: Script.Line, context: CallContext) async throws -> VoiceClip {
        throw ProviderError(.overloaded, "tts service busy")
    }
}

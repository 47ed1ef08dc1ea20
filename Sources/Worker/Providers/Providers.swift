import Logging
import Protocol

/// The kinds of external service an episode calls. The raw value prefixes trace names
/// (`llm:script`, `tts:line_3`, `image:scene_2`) and names the kind in simulation settings.
enum ProviderKind: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Script writing (one call per attempt).
    case llm
    /// Text-to-speech: one call per character line.
    case tts
    /// Image generation: one call per scene and one per B-roll shot.
    case image
    /// Rendering the episode (local, e.g. ffmpeg); not an external API call.
    case render

    var description: String { rawValue }
}

/// What every provider call knows about where it belongs.
///
/// Passed to each call so providers can log with the episode's metadata, name their output files and,
/// for the simulation, derive deterministic outcomes. New fields get defaults, so adding one (an output
/// folder, a deadline) does not break providers.
struct CallContext: Sendable {
    var batchId: String
    var episodeId: String
    var attempt: Int
    /// The item within the attempt: `script`, `line_3`, `scene_2`, `broll_1` or `render`.
    var item: String
    /// The episode's logger, with metadata `episode`, `attempt` and `item` set.
    var logger: Logger

    init(batchId: String, episodeId: String, attempt: Int, item: String, logger: Logger) {
        self.batchId = batchId
        self.episodeId = episodeId
        self.attempt = attempt
        self.item = item
        self.logger = logger
    }
}

/// Writes the script of an episode: one LLM call.
protocol ScriptProvider: Sendable {
    /// Throws ``ProviderError`` when the service fails, `CancellationError` when the task is cancelled.
    func writeScript(for spec: EpisodeSpec, context: CallContext) async throws -> Script
}

/// Speaks one character line: one TTS call.
protocol VoiceProvider: Sendable {
    /// Throws ``ProviderError`` when the service fails, `CancellationError` when the task is cancelled.
    func voice(for line: Script.Line, context: CallContext) async throws -> VoiceClip
}

/// Makes one image (a scene visual or a B-roll shot): one image-generation call.
protocol ImageProvider: Sendable {
    /// Throws ``ProviderError`` when the service fails, `CancellationError` when the task is cancelled.
    func image(for request: ImageRequest, context: CallContext) async throws -> Image
}

/// Puts script and assets together into the episode's video. Placeholder assets are part of `assets`;
/// a renderer must cope with them (a title card for an image, silence for a voice clip).
protocol RenderProvider: Sendable {
    /// Throws ``ProviderError`` when rendering fails, `CancellationError` when the task is cancelled.
    func render(_ script: Script, assets: EpisodeAssets, context: CallContext) async throws -> RenderedEpisode
}

/// One provider of each kind: what an ``EpisodePipeline`` calls.
struct ProviderSet: Sendable {
    var script: any ScriptProvider
    var voice: any VoiceProvider
    var image: any ImageProvider
    var render: any RenderProvider

    init(script: any ScriptProvider, voice: any VoiceProvider, image: any ImageProvider, render: any RenderProvider) {
        self.script = script
        self.voice = voice
        self.image = image
        self.render = render
    }
}

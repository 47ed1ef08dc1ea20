import Foundation
import Logging
import Protocol
import Shared

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
    /// The folder for this attempt's files, created before the first call. Providers write their output
    /// there, named after `item` (`line_3.wav`, `scene_2.png`, `episode.mp4`). `nil` when the pipeline
    /// keeps no files (the simulation).
    var workspace: URL?
    /// The episode's topic (from its spec), e.g. for an image provider's palette.
    var topic: String
    /// The script's characters in script order, once the script is written (empty for the script call).
    /// A voice provider gives each position its own voice.
    var characters: [String]
    /// The kind of call this context is for; names the budget the call draws on.
    var kind: ProviderKind
    /// The fleet's rate-limit budget: every request to a provider goes through it (each HTTP try anew).
    var gate: any ProviderGate
    /// What the call costs: a provider charges each billed answer to it (``CallMeter``).
    var meter: CallMeter
    /// The coordinator's asset store: an HTTP call asks it before sending a request, and keeps each paid
    /// answer (in ``meter``) to offer once the call succeeded. `nil`: no reuse (preflight, tests).
    var reuse: AssetExchange?

    init(
        batchId: String,
        episodeId: String,
        attempt: Int,
        item: String,
        logger: Logger,
        workspace: URL? = nil,
        topic: String = "",
        characters: [String] = [],
        kind: ProviderKind = .llm,
        gate: any ProviderGate = OpenGate(),
        meter: CallMeter = CallMeter(prices: .defaults),
        reuse: AssetExchange? = nil
    ) {
        self.batchId = batchId
        self.episodeId = episodeId
        self.attempt = attempt
        self.item = item
        self.logger = logger
        self.workspace = workspace
        self.topic = topic
        self.characters = characters
        self.kind = kind
        self.gate = gate
        self.meter = meter
        self.reuse = reuse
    }

    /// Runs one request to the provider under the fleet's budget (see ``ProviderGate``). `teaches`: the
    /// answer carries what the provider says of its limits (an HTTP call), so the call is leased even while
    /// the coordinator is still learning them.
    func withPermit<T: Sendable>(
        units: Int = 1,
        teaches: Bool = false,
        _ body: () async throws -> T
    ) async throws -> T {
        try await gate.withPermit(kind, units: units, episodeId: episodeId, teaches: teaches, logger: logger, body)
    }

    /// ``workspace``, or a ``ProviderError`` (`toolFailed`) for providers that must write a file.
    func requireWorkspace(for what: String) throws(ProviderError) -> URL {
        guard let workspace else {
            throw ProviderError(.toolFailed, "no workspace folder to write the \(what) into")
        }
        return workspace
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

/// Makes the stand-in for a voice clip or image whose call finally failed, so the episode can still be
/// rendered. It cannot fail: when it cannot make a file either, it returns a file-less placeholder
/// (`path == nil`), which a renderer shows as a plain card or silence.
///
/// Every result has `isPlaceholder == true` and names what made it in `provider` (`espeak-ng`,
/// `silence`, `placeholder`).
protocol FallbackProvider: Sendable {
    /// The stand-in for a line whose TTS call failed: the line said some other way, or silence as long
    /// as the line would take to say.
    func voice(for line: Script.Line, context: CallContext) async -> VoiceClip
    /// The stand-in for an image whose call failed: a plain card naming the item.
    func image(for request: ImageRequest, context: CallContext) async -> Image
}

/// Placeholders without files: what the simulation (and any pipeline without a workspace) uses.
struct FilelessFallbackProvider: FallbackProvider {
    init() {}

    func voice(for line: Script.Line, context: CallContext) async -> VoiceClip {
        VoiceClip.placeholder(for: line)
    }

    func image(for request: ImageRequest, context: CallContext) async -> Image {
        Image.placeholder(for: request)
    }
}

/// One provider of each kind: what an ``EpisodePipeline`` calls.
struct ProviderSet: Sendable {
    var script: any ScriptProvider
    var voice: any VoiceProvider
    var image: any ImageProvider
    var render: any RenderProvider
    /// Stand-ins for failed voice and image calls. The default makes file-less placeholders.
    var fallback: any FallbackProvider
    /// What the paid models cost: each call's cost goes into its `call_end` trace event.
    var prices: PriceTable

    init(
        script: any ScriptProvider,
        voice: any VoiceProvider,
        image: any ImageProvider,
        render: any RenderProvider,
        fallback: any FallbackProvider = FilelessFallbackProvider(),
        prices: PriceTable = .defaults
    ) {
        self.script = script
        self.voice = voice
        self.image = image
        self.render = render
        self.fallback = fallback
        self.prices = prices
    }
}

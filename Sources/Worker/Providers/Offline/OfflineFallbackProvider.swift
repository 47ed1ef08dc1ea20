import Foundation
import Logging

/// Stand-ins as real files, so an episode with failed calls still renders:
///
/// - a failed image → a plain grey card naming the item and saying "image unavailable"
///   (`<workspace>/<item>.png`, provider `placeholder`);
/// - a failed voice → the line spoken by espeak-ng in the character's voice (provider `espeak-ng`), or,
///   if that fails too, silence as long as the line would take to say (a WAV, provider `silence`).
///
/// Without a workspace, or when even that fails, it returns the file-less placeholders of
/// ``FilelessFallbackProvider``.
struct OfflineFallbackProvider: FallbackProvider {
    var drawer: StillImageDrawer
    var tools: ToolLocator
    var voiceTimeout: Duration

    init(
        settings: RenderSettings = .landscape,
        tools: ToolLocator = .environment,
        fonts: FontResolver? = nil,
        voiceTimeout: Duration = .seconds(60)
    ) {
        self.drawer = StillImageDrawer(settings: settings, tools: tools, fonts: fonts ?? FontResolver(tools: tools))
        self.tools = tools
        self.voiceTimeout = voiceTimeout
    }

    func voice(for line: Script.Line, context: CallContext) async -> VoiceClip {
        guard let workspace = context.workspace, !Task.isCancelled else { return VoiceClip.placeholder(for: line) }
        let file = workspace.appendingPathComponent("\(line.item).wav")
        do {
            let duration = try await EspeakVoiceProvider.speak(
                line.text,
                voice: EspeakVoiceProvider.voice(for: line.character, characters: context.characters),
                to: file,
                espeak: try tools.locate("espeak-ng"),
                tools: tools,
                timeout: voiceTimeout
            )
            return VoiceClip(
                item: line.item,
                path: file.path,
                duration: duration,
                isPlaceholder: true,
                provider: EspeakVoiceProvider.providerName
            )
        } catch {
            context.logger.debug("espeak-ng fallback failed; using silence", metadata: ["error": "\(error)"])
        }
        let duration = VoiceClip.estimatedSpeakingTime(line.text)
        do {
            try WAVFile.writeSilence(to: file, duration: duration)
            return VoiceClip(
                item: line.item,
                path: file.path,
                duration: duration,
                isPlaceholder: true,
                provider: "silence"
            )
        } catch {
            context.logger.warning("Could not write a silent placeholder", metadata: ["error": "\(error)"])
            return VoiceClip.placeholder(for: line)
        }
    }

    func image(for request: ImageRequest, context: CallContext) async -> Image {
        let placeholder = Image.placeholder(for: request)
        guard let workspace = context.workspace, !Task.isCancelled else { return placeholder }
        let file = workspace.appendingPathComponent("\(request.item).png")
        do {
            try await drawer.draw(
                .card,
                text: "image unavailable",
                label: request.item,
                gradient: Palette.placeholder,
                to: file
            )
            var image = placeholder
            image.path = file.path
            return image
        } catch {
            context.logger.warning("Could not draw a placeholder card", metadata: ["error": "\(error)"])
            return placeholder
        }
    }
}

extension ProviderSet {
    /// Everything local and offline: the offline script writer, espeak-ng voices, ffmpeg-drawn images,
    /// the ffmpeg renderer and file placeholders. Needs ffmpeg, ffprobe, espeak-ng and a DejaVu font
    /// (check with ``checkOfflineTools(_:)`` at start-up).
    static func offline(settings: RenderSettings = .landscape, tools: ToolLocator = .environment) -> ProviderSet {
        let fonts = FontResolver(tools: tools)
        return ProviderSet(
            script: OfflineScriptWriter(),
            voice: EspeakVoiceProvider(tools: tools),
            image: OfflineImageProvider(settings: settings, tools: tools, fonts: fonts),
            render: FFmpegRenderer(settings: settings, tools: tools, fonts: fonts),
            fallback: OfflineFallbackProvider(settings: settings, tools: tools, fonts: fonts)
        )
    }

    /// The tools the offline providers and the ffmpeg renderer need.
    static let offlineToolNames = ["ffmpeg", "ffprobe", "espeak-ng"]

    /// Throws ``ProviderError`` `toolFailed` naming the first missing tool and how to install it, e.g.
    /// "espeak-ng not found; install espeak-ng (apt-get install espeak-ng)".
    static func checkOfflineTools(_ tools: ToolLocator = .environment) throws(ProviderError) {
        _ = try tools.locateAll(offlineToolNames)
    }
}

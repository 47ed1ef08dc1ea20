import Foundation
import Shared

/// Which provider each pipeline stage uses, and their settings, resolved once at start-up from
/// `--providers`/`REELFARM_PROVIDERS`, the config file (`providers.script`, …) and the defaults
/// (everything offline).
///
/// Keys of the config file and the environment variables that win over them are listed in
/// `examples/reelfarm.yaml` and the README's configuration table.
struct ProviderConfiguration: Sendable {
    static let scriptChoices = ["offline", "openai", "simulated"]
    static let voiceChoices = ["offline", "openai", "elevenlabs", "simulated"]
    static let imageChoices = ["offline", "openai", "huggingface", "simulated"]
    static let renderChoices = ["ffmpeg", "simulated"]

    var script = "offline"
    var voice = "offline"
    var image = "offline"
    var render = "ffmpeg"
    var renderSettings = RenderSettings.landscape
    var openAI = OpenAISettings()
    var huggingFace = HuggingFaceSettings()
    var elevenLabs = ElevenLabsSettings()
    var http = HTTPCallSettings.default

    /// Whether any stage writes files (all but the pure simulation).
    var writesFiles: Bool { [script, voice, image, render].contains { $0 != "simulated" } }

    /// One line for the start-up log; never shows a key.
    var summary: String {
        "script=\(script) voice=\(voice) image=\(image) render=\(render) preset=\(renderSettings.preset)"
    }

    static func resolve(
        providersFlag: String?,
        presetFlag: String?,
        sources: SettingsSources
    ) throws(ConfigurationError) -> ProviderConfiguration {
        var c = ProviderConfiguration()
        c.script = try sources.choice(env: nil, key: "providers.script", default: c.script, allowed: scriptChoices)
        c.voice = try sources.choice(env: nil, key: "providers.voice", default: c.voice, allowed: voiceChoices)
        c.image = try sources.choice(env: nil, key: "providers.image", default: c.image, allowed: imageChoices)
        c.render = try sources.choice(env: nil, key: "providers.render", default: c.render, allowed: renderChoices)
        if let (spec, source) = providersFlag.map({ ($0, "--providers") })
            ?? sources.environment.value("REELFARM_PROVIDERS").map({
                ($0.value, "REELFARM_PROVIDERS (from \($0.source))")
            })
        {
            try c.apply(spec, source: source)
        }

        let preset: String
        if let presetFlag {
            preset = presetFlag
        } else {
            preset = try sources.choice(
                env: "REELFARM_RENDER_PRESET",
                key: "render.preset",
                default: "landscape",
                allowed: ["landscape", "720p", "vertical", "portrait"]
            )
        }
        guard let settings = RenderSettings.named(preset) else {
            throw ConfigurationError("--render-preset must be landscape or vertical, got \"\(preset)\"")
        }
        c.renderSettings = settings

        c.http = HTTPCallSettings(
            requestTimeout: try sources.seconds(
                env: nil,
                key: "http.timeout_seconds",
                default: .seconds(60),
                range: 1...3600
            ),
            maxRetries: try sources.int(env: nil, key: "http.max_retries", default: 3, range: 0...20),
            maxRetryAfter: try sources.seconds(
                env: nil,
                key: "http.max_retry_after_seconds",
                default: .seconds(120),
                range: 0...3600
            )
        )

        var openAI = OpenAISettings()
        openAI.baseURL = try sources.url(
            env: "OPENAI_BASE_URL",
            key: "openai.base_url",
            default: URL(string: OpenAISettings.defaultBaseURL)!
        ).absoluteString
        openAI.apiKey = sources.value(env: "OPENAI_API_KEY", key: "openai.api_key")?.value
        openAI.scriptModel = sources.value(env: nil, key: "openai.script_model")?.value ?? openAI.scriptModel
        openAI.voiceModel = sources.value(env: nil, key: "openai.voice_model")?.value ?? openAI.voiceModel
        openAI.imageModel = sources.value(env: nil, key: "openai.image_model")?.value ?? openAI.imageModel
        openAI.imageSize = sources.value(env: nil, key: "openai.image_size")?.value ?? openAI.imageSize
        if let voices = sources.file?.strings("openai.voices"), !voices.isEmpty { openAI.voices = voices }
        c.openAI = openAI

        var hf = HuggingFaceSettings(width: settings.width, height: settings.height)
        hf.baseURL = try sources.url(
            env: "HF_BASE_URL",
            key: "huggingface.base_url",
            default: URL(string: HuggingFaceSettings.defaultBaseURL)!
        ).absoluteString
        hf.token =
            (sources.value(env: "HF_TOKEN", key: "huggingface.token")
            ?? sources.value(env: "HUGGING_FACE_HUB_TOKEN", key: nil))?.value
        hf.imageModel = sources.value(env: nil, key: "huggingface.image_model")?.value ?? hf.imageModel
        c.huggingFace = hf

        var eleven = ElevenLabsSettings()
        eleven.baseURL = try sources.url(
            env: "ELEVENLABS_BASE_URL",
            key: "elevenlabs.base_url",
            default: URL(string: ElevenLabsSettings.defaultBaseURL)!
        ).absoluteString
        eleven.apiKey = sources.value(env: "ELEVENLABS_API_KEY", key: "elevenlabs.api_key")?.value
        eleven.modelId = sources.value(env: nil, key: "elevenlabs.model_id")?.value ?? eleven.modelId
        for pair in sources.file?.strings("elevenlabs.voices") ?? [] {
            let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw ConfigurationError(
                    "elevenlabs.voices entries must look like \"Character=voice_id\", got \"\(pair)\""
                )
            }
            eleven.voiceIds[parts[0]] = parts[1]
        }
        c.elevenLabs = eleven

        try c.checkKeys()
        return c
    }

    /// `offline`, `simulated`, `openai` for every stage, or `script=openai,voice=elevenlabs,…` per stage.
    private mutating func apply(_ spec: String, source: String) throws(ConfigurationError) {
        let text = spec.trimmingCharacters(in: .whitespaces).lowercased()
        switch text {
        case "offline":
            (script, voice, image, render) = ("offline", "offline", "offline", "ffmpeg")
            return
        case "simulated":
            (script, voice, image, render) = ("simulated", "simulated", "simulated", "simulated")
            return
        case "openai":
            (script, voice, image, render) = ("openai", "openai", "openai", "ffmpeg")
            return
        default:
            break
        }
        for piece in text.split(separator: ",") {
            let kv = piece.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2 else {
                throw ConfigurationError(
                    "\(source) must be offline, simulated, openai, or stage=provider pairs such as "
                        + "script=openai,voice=elevenlabs; got \"\(spec)\""
                )
            }
            let (stage, choice) = (kv[0], kv[1])
            let allowed: [String]
            switch stage {
            case "script": allowed = Self.scriptChoices
            case "voice": allowed = Self.voiceChoices
            case "image": allowed = Self.imageChoices
            case "render": allowed = Self.renderChoices
            default:
                throw ConfigurationError("\(source): unknown stage \"\(stage)\" (stages: script, voice, image, render)")
            }
            guard allowed.contains(choice) else {
                throw ConfigurationError(
                    "\(source): \(stage) must be one of \(allowed.joined(separator: ", ")); got \"\(choice)\""
                )
            }
            switch stage {
            case "script": script = choice
            case "voice": voice = choice
            case "image": image = choice
            default: render = choice
            }
        }
    }

    /// A hosted API without a key would fail every call; say so before the first job.
    private func checkKeys() throws(ConfigurationError) {
        let usesOpenAI = [script, voice, image].contains("openai")
        if usesOpenAI, openAI.apiKey == nil, openAI.baseURL.hasPrefix(OpenAISettings.defaultBaseURL) {
            throw ConfigurationError(
                "the openai provider needs OPENAI_API_KEY (or openai.api_key), or OPENAI_BASE_URL pointing at a local server"
            )
        }
        if image == "huggingface", huggingFace.token == nil,
            huggingFace.baseURL.hasPrefix(HuggingFaceSettings.defaultBaseURL)
        {
            throw ConfigurationError("the huggingface provider needs HF_TOKEN (or huggingface.token)")
        }
        if voice == "elevenlabs", elevenLabs.apiKey == nil,
            elevenLabs.baseURL.hasPrefix(ElevenLabsSettings.defaultBaseURL)
        {
            throw ConfigurationError("the elevenlabs provider needs ELEVENLABS_API_KEY (or elevenlabs.api_key)")
        }
    }

    /// The providers, sharing one simulator, one font resolver and the process's HTTP client.
    func makeProviderSet(simulation: SimulationSettings, tools: ToolLocator = .environment) -> ProviderSet {
        let simulator = Simulator(settings: simulation, clock: ContinuousClock())
        let fonts = FontResolver(tools: tools)
        let scriptProvider: any ScriptProvider =
            switch script {
            case "openai": OpenAIScriptProvider(settings: openAI, call: http)
            case "simulated": SimulatedScriptProvider(simulator: simulator)
            default: OfflineScriptWriter()
            }
        let voiceProvider: any VoiceProvider =
            switch voice {
            case "openai": OpenAIVoiceProvider(settings: openAI, call: http)
            case "elevenlabs": ElevenLabsVoiceProvider(settings: elevenLabs, call: http)
            case "simulated": SimulatedVoiceProvider(simulator: simulator)
            default: EspeakVoiceProvider(tools: tools)
            }
        let imageProvider: any ImageProvider =
            switch image {
            case "openai": OpenAIImageProvider(settings: openAI, call: http)
            case "huggingface": HuggingFaceImageProvider(settings: huggingFace, call: http)
            case "simulated": SimulatedImageProvider(simulator: simulator)
            default: OfflineImageProvider(settings: renderSettings, tools: tools, fonts: fonts)
            }
        let renderProvider: any RenderProvider =
            render == "simulated"
            ? SimulatedRenderProvider(simulator: simulator)
            : FFmpegRenderer(settings: renderSettings, tools: tools, fonts: fonts)
        let fallback: any FallbackProvider =
            writesFiles
            ? OfflineFallbackProvider(settings: renderSettings, tools: tools, fonts: fonts)
            : FilelessFallbackProvider()
        return ProviderSet(
            script: scriptProvider,
            voice: voiceProvider,
            image: imageProvider,
            render: renderProvider,
            fallback: fallback
        )
    }
}

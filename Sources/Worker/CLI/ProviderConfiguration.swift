import Foundation
import Shared

/// Which provider each pipeline stage uses, and their settings, resolved once at start-up from
/// `--providers`/`REELFARM_PROVIDERS`, the config file (`providers.script`, …) and the defaults
/// (everything offline).
///
/// Keys of the config file and the environment variables that win over them are listed in
/// `examples/reelfarm.yaml` and docs/CONFIGURATION.md's table of environment variables.
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
    /// How long one request of each stage may take.
    var timeouts = StageTimeouts.default
    /// Whether an image request that timed out is sent again (each may be one more billed image).
    var retryImageTimeouts = false
    /// What the paid models cost (``PriceTable``): the shipped defaults, then the settings file's `prices`
    /// list, then `REELFARM_PRICES` (specs separated by `;`).
    var prices = PriceTable.defaults

    /// The call settings of `stage`: its timeout, and for images no retry after a timeout unless opted in.
    func http(for stage: ProviderTarget.Stage) -> HTTPCallSettings {
        switch stage {
        case .script: http.with(timeout: timeouts.script, retryTimeouts: true)
        case .voice: http.with(timeout: timeouts.voice, retryTimeouts: true)
        case .image: http.with(timeout: timeouts.image, retryTimeouts: retryImageTimeouts)
        }
    }

    /// `a, b ,c` → `["a", "b", "c"]`.
    static func list(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Whether a stage calls a hosted (or OpenAI-compatible) API.
    var usesHostedProviders: Bool {
        ["openai", "elevenlabs", "huggingface"].contains { [script, voice, image].contains($0) }
    }

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
                env: "REELFARM_HTTP_TIMEOUT",
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
        // Per stage: image generation often takes over a minute, and a script for 50 scenes from a
        // reasoning model can too. `http.timeout_seconds` stays the voice default and the floor of neither.
        c.timeouts = StageTimeouts(
            script: try sources.seconds(
                env: "REELFARM_SCRIPT_TIMEOUT",
                key: "http.script_timeout_seconds",
                default: max(c.http.requestTimeout, StageTimeouts.default.script),
                range: 1...3600
            ),
            voice: try sources.seconds(
                env: "REELFARM_VOICE_TIMEOUT",
                key: "http.voice_timeout_seconds",
                default: c.http.requestTimeout,
                range: 1...3600
            ),
            image: try sources.seconds(
                env: "REELFARM_IMAGE_TIMEOUT",
                key: "http.image_timeout_seconds",
                default: max(c.http.requestTimeout, StageTimeouts.default.image),
                range: 1...3600
            )
        )
        c.retryImageTimeouts = try sources.flag(
            env: "REELFARM_RETRY_IMAGE_TIMEOUTS",
            key: "http.retry_image_timeouts",
            default: false
        )

        var openAI = OpenAISettings(frameWidth: settings.width, frameHeight: settings.height)
        openAI.baseURL = try sources.url(
            env: "OPENAI_BASE_URL",
            key: "openai.base_url",
            default: URL(string: OpenAISettings.defaultBaseURL)!
        ).absoluteString
        openAI.apiKey = sources.value(env: "OPENAI_API_KEY", key: "openai.api_key")?.value
        openAI.scriptModel =
            sources.value(env: "OPENAI_SCRIPT_MODEL", key: "openai.script_model")?.value ?? openAI.scriptModel
        openAI.voiceModel =
            sources.value(env: "OPENAI_VOICE_MODEL", key: "openai.voice_model")?.value ?? openAI.voiceModel
        openAI.imageModel =
            sources.value(env: "OPENAI_IMAGE_MODEL", key: "openai.image_model")?.value ?? openAI.imageModel
        if let (size, source) = sources.value(env: "OPENAI_IMAGE_SIZE", key: "openai.image_size") {
            let family = OpenAIModels.imageFamily(openAI.imageModel)
            if let problem = OpenAIModels.sizeProblem(size, family: family) {
                throw ConfigurationError("\(source) does not suit \(openAI.imageModel): \(problem)")
            }
            openAI.imageSize = size
        }
        openAI.imageQuality = sources.value(env: "OPENAI_IMAGE_QUALITY", key: "openai.image_quality")?.value
        if let list = sources.value(env: "OPENAI_VOICES", key: nil)?.value {
            openAI.voices = Self.list(list)
        } else if let voices = sources.file?.strings("openai.voices"), !voices.isEmpty {
            openAI.voices = voices
        }
        if sources.value(env: "OPENAI_MAX_OUTPUT_TOKENS", key: "openai.max_output_tokens") != nil {
            openAI.maxOutputTokens = try sources.int(
                env: "OPENAI_MAX_OUTPUT_TOKENS",
                key: "openai.max_output_tokens",
                default: 0,
                range: 16...1_000_000
            )
        }
        if let (raw, source) = sources.value(env: "OPENAI_TEMPERATURE", key: "openai.temperature") {
            let text = raw.trimmingCharacters(in: .whitespaces).lowercased()
            if text == "none" || text == "default" {
                openAI.temperature = nil
            } else if let value = Double(text), (0...2).contains(value) {
                openAI.temperature = value
            } else {
                throw ConfigurationError("\(source) must be a number from 0 to 2, or none, got \"\(raw)\"")
            }
        }
        let parameter = try sources.choice(
            env: "OPENAI_TOKEN_PARAMETER",
            key: "openai.token_parameter",
            default: "auto",
            allowed: OpenAIModels.TokenParameter.allCases.map(\.rawValue)
        )
        openAI.tokenParameter = OpenAIModels.TokenParameter(rawValue: parameter) ?? .auto
        if let (raw, _) = sources.value(env: "OPENAI_REASONING_EFFORT", key: "openai.reasoning_effort") {
            let effort = raw.trimmingCharacters(in: .whitespaces).lowercased()
            openAI.reasoningEffort = effort == "default" || effort.isEmpty ? nil : effort
        }
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
        hf.imageModel = sources.value(env: "HF_IMAGE_MODEL", key: "huggingface.image_model")?.value ?? hf.imageModel
        c.huggingFace = hf

        var eleven = ElevenLabsSettings()
        eleven.baseURL = try sources.url(
            env: "ELEVENLABS_BASE_URL",
            key: "elevenlabs.base_url",
            default: URL(string: ElevenLabsSettings.defaultBaseURL)!
        ).absoluteString
        eleven.apiKey = sources.value(env: "ELEVENLABS_API_KEY", key: "elevenlabs.api_key")?.value
        eleven.modelId = sources.value(env: "ELEVENLABS_MODEL_ID", key: "elevenlabs.model_id")?.value ?? eleven.modelId
        if let list = sources.value(env: "ELEVENLABS_VOICE_IDS", key: nil)?.value {
            eleven.defaultVoiceIds = Self.list(list)
        } else if let ids = sources.file?.strings("elevenlabs.default_voice_ids"), !ids.isEmpty {
            eleven.defaultVoiceIds = ids
        }
        if eleven.defaultVoiceIds.isEmpty {
            throw ConfigurationError("ELEVENLABS_VOICE_IDS (or elevenlabs.default_voice_ids) lists no voice id")
        }
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

        var priceSpecs: [(spec: String, source: String)] = []
        for spec in sources.file?.strings("prices") ?? [] {
            priceSpecs.append((spec, "prices in \(sources.file?.path ?? "the settings file")"))
        }
        if let specs = sources.environment.value("REELFARM_PRICES") {
            for spec in specs.value.split(separator: ";") { priceSpecs.append((String(spec), "REELFARM_PRICES")) }
        }
        c.prices = try PriceTable.resolve(specs: priceSpecs)

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
            case "openai": OpenAIScriptProvider(settings: openAI, call: http(for: .script))
            case "simulated": SimulatedScriptProvider(simulator: simulator)
            default: OfflineScriptWriter()
            }
        let voiceProvider: any VoiceProvider =
            switch voice {
            case "openai": OpenAIVoiceProvider(settings: openAI, call: http(for: .voice))
            case "elevenlabs": ElevenLabsVoiceProvider(settings: elevenLabs, call: http(for: .voice))
            case "simulated": SimulatedVoiceProvider(simulator: simulator)
            default: EspeakVoiceProvider(tools: tools)
            }
        let imageProvider: any ImageProvider =
            switch image {
            case "openai": OpenAIImageProvider(settings: openAI, call: http(for: .image))
            case "huggingface": HuggingFaceImageProvider(settings: huggingFace, call: http(for: .image))
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
            fallback: fallback,
            prices: prices
        )
    }
}

/// How long one request of each stage may take before it fails as a timeout.
struct StageTimeouts: Sendable, Equatable {
    /// The default is 180 s (a long script from a reasoning model).
    var script: Duration
    /// The default is 60 s.
    var voice: Duration
    /// The default is 300 s: GPT image models at high quality often take more than a minute.
    var image: Duration

    static let `default` = StageTimeouts(script: .seconds(180), voice: .seconds(60), image: .seconds(300))
}

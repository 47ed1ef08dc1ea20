/// How every HTTP provider call is made: timeouts, retries and backoff (providers.md §1, §5).
///
/// Plain values with documented defaults; no I/O. One value is usually shared by all providers.
struct HTTPCallSettings: Sendable, Equatable {
    /// The whole exchange of one request (connect, send, response head and the body) must finish in
    /// this time, or it fails as a timeout (and may be retried). The default is 60 s.
    var requestTimeout: Duration
    /// Time to open a connection. Applies to the process-wide client made for these settings (see
    /// ``AsyncHTTPClientTransport/processWide(connectTimeout:)``). The default is 10 s.
    var connectTimeout: Duration
    /// Retries after the first request, for transient failures (rate limit, concurrency, overload, 5xx,
    /// timeout, network). The default is 3, so at most 4 requests per call.
    var maxRetries: Int
    /// Full-jitter exponential backoff when the server gives no hint: the n-th retry (from 0) waits
    /// `random(0, min(backoffCap, backoffBase · 2ⁿ))`. The default base is 0.5 s.
    var backoffBase: Duration
    /// The default is 8 s.
    var backoffCap: Duration
    /// The longest server hint (`retry-after`, rate-limit reset, `estimated_time`) that is slept on. A
    /// longer one is not waited for: the call fails at once with the classified error and the hint in
    /// ``ProviderError/retryAfter``, so the caller can give the work back and requeue it. The default
    /// is 120 s (openai-python's `MAX_RETRY_AFTER_DELAY`).
    var maxRetryAfter: Duration
    /// Whether a request that got no answer within ``requestTimeout`` is sent again. A timed-out
    /// generation may still finish, and be billed, on the provider's side: for images each retry can be
    /// one more paid image, so image calls turn this off unless the user opts in
    /// (`REELFARM_RETRY_IMAGE_TIMEOUTS`). HTTP 408 (the server gave up before starting) is always
    /// retried. The default is `true`.
    var retryTimeouts: Bool

    init(
        requestTimeout: Duration = .seconds(60),
        connectTimeout: Duration = .seconds(10),
        maxRetries: Int = 3,
        backoffBase: Duration = .milliseconds(500),
        backoffCap: Duration = .seconds(8),
        maxRetryAfter: Duration = .seconds(120),
        retryTimeouts: Bool = true
    ) {
        self.requestTimeout = requestTimeout
        self.connectTimeout = connectTimeout
        self.maxRetries = maxRetries
        self.backoffBase = backoffBase
        self.backoffCap = backoffCap
        self.maxRetryAfter = maxRetryAfter
        self.retryTimeouts = retryTimeouts
    }

    /// These settings with another request timeout and timeout retry rule (per stage).
    func with(timeout: Duration, retryTimeouts: Bool) -> HTTPCallSettings {
        var copy = self
        copy.requestTimeout = timeout
        copy.retryTimeouts = retryTimeouts
        return copy
    }

    static let `default` = HTTPCallSettings()
}

/// The largest response bodies read into memory, per kind of call. A larger body fails the call as an
/// invalid response (it is not retried).
enum HTTPBodyLimit {
    /// Chat completions: 1 MiB.
    static let chat = 1 << 20
    /// Speech audio: 25 MiB.
    static let audio = 25 << 20
    /// Images, raw or base64 in JSON (and the decoded image): 25 MiB.
    static let image = 25 << 20
    /// The part of an error body that is parsed for its code and message: 64 KiB.
    static let errorBody = 64 << 10
}

/// The OpenAI API or any OpenAI-compatible server (llama.cpp, vLLM, Ollama, LocalAI, the mock provider):
/// chat for scripts, `/audio/speech` for voices, `/images/generations` for images (providers.md §1, §4).
///
/// Every model is a setting (`OPENAI_SCRIPT_MODEL`, `OPENAI_VOICE_MODEL`, `OPENAI_IMAGE_MODEL` or the
/// config file's `openai.*`): a local server has its own names, and OpenAI retires models.
struct OpenAISettings: Sendable, Equatable {
    /// The API root, to which `/chat/completions` etc. are appended. The default is
    /// `https://api.openai.com/v1`; e.g. `http://127.0.0.1:8080/v1` for a local server.
    var baseURL: String
    /// Sent as `Authorization: Bearer …`; `nil` sends no such header (local servers). Never logged.
    var apiKey: String?
    /// The default is ``defaultScriptModel``.
    var scriptModel: String
    /// The default is ``defaultVoiceModel``.
    var voiceModel: String
    /// The default is ``defaultImageModel``. The request is shaped by the model's family
    /// (``OpenAIModels/imageFamily(_:)``): GPT image models get no `response_format`.
    var imageModel: String
    /// `nil` (the default) picks the family's size nearest the frame (``frameWidth``×``frameHeight``):
    /// `1536x1024` for gpt-image-1.x, the frame rounded to multiples of 16 for newer models.
    var imageSize: String?
    /// `low`, `medium`, `high`, `auto` (GPT image) or `standard`, `hd` (dall-e-3). `nil` (the default)
    /// sends ``OpenAIModels/defaultQuality(_:)``: always explicit, so the cost of a batch is known.
    var imageQuality: String?
    /// The render frame the images are for; set from the render preset. The default is 1280×720.
    var frameWidth: Int
    var frameHeight: Int
    /// One voice per character, by the character's position in the script's cast (wrapping around when
    /// there are more characters than voices). The default is ``defaultVoices``.
    var voices: [String]
    /// The chat completion's output-token cap. `nil` (the default) scales it with the episode's scene
    /// count (``OpenAIModels/outputTokens(scenes:model:)``).
    var maxOutputTokens: Int?
    /// Sent only to models that take it (not to reasoning models, which accept only 1). The default is 0.8.
    var temperature: Double?
    /// Which key carries the token cap. The default, `auto`, sends `max_completion_tokens` to reasoning
    /// models and `max_tokens` to the rest; a model that refuses the one sent gets the other.
    var tokenParameter: OpenAIModels.TokenParameter
    /// `reasoning_effort`, sent to reasoning models only (`none`, `low`, `medium`, `high`, …; `nil` sends
    /// nothing). The default is `low`: a script needs little reasoning, and reasoning tokens are billed as
    /// output and count against the token cap.
    var reasoningEffort: String?

    static let defaultBaseURL = "https://api.openai.com/v1"
    /// OpenAI's named successor of gpt-4o-mini (shut down 2027-01-14), for cost-sensitive volume work.
    static let defaultScriptModel = "gpt-6-luna"
    /// The speech endpoint's current model (OpenAI has announced its shutdown for 2027-01-06, with no
    /// `/audio/speech` successor yet: set another voice provider then).
    static let defaultVoiceModel = "gpt-4o-mini-tts"
    /// The fast tier of the current GPT image generation (dall-e-2/3 and gpt-image-1.x are shut down).
    static let defaultImageModel = "gpt-image-2.6-flare"
    /// Voices gpt-4o-mini-tts offers, the newest (marin, cedar) first.
    static let defaultVoices = ["marin", "cedar", "coral", "ash", "sage", "verse"]

    init(
        baseURL: String = defaultBaseURL,
        apiKey: String? = nil,
        scriptModel: String = defaultScriptModel,
        voiceModel: String = defaultVoiceModel,
        imageModel: String = defaultImageModel,
        imageSize: String? = nil,
        imageQuality: String? = nil,
        frameWidth: Int = 1280,
        frameHeight: Int = 720,
        voices: [String] = defaultVoices,
        maxOutputTokens: Int? = nil,
        temperature: Double? = 0.8,
        tokenParameter: OpenAIModels.TokenParameter = .auto,
        reasoningEffort: String? = "low"
    ) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.scriptModel = scriptModel
        self.voiceModel = voiceModel
        self.imageModel = imageModel
        self.imageSize = imageSize
        self.imageQuality = imageQuality
        self.frameWidth = frameWidth
        self.frameHeight = frameHeight
        self.voices = voices
        self.maxOutputTokens = maxOutputTokens
        self.temperature = temperature
        self.tokenParameter = tokenParameter
        self.reasoningEffort = reasoningEffort
    }

    /// The size sent for ``imageModel``: the configured one, else the family's nearest to the frame.
    var resolvedImageSize: String {
        imageSize
            ?? OpenAIModels.imageSize(OpenAIModels.imageFamily(imageModel), width: frameWidth, height: frameHeight)
    }

    /// The quality sent for ``imageModel``, if any.
    var resolvedImageQuality: String? {
        imageQuality ?? OpenAIModels.defaultQuality(OpenAIModels.imageFamily(imageModel))
    }
}

/// Hugging Face Inference Providers, for images (providers.md §2).
struct HuggingFaceSettings: Sendable, Equatable {
    /// The models root; `/{org}/{model}` is appended. The default is
    /// `https://router.huggingface.co/hf-inference/models`.
    var baseURL: String
    /// Sent as `Authorization: Bearer …` (`HF_TOKEN`); `nil` sends no such header. Never logged.
    var token: String?
    /// The default is ``defaultImageModel``.
    var imageModel: String
    /// The default is 1280.
    var width: Int
    /// The default is 720.
    var height: Int
    /// The most time one call spends waiting for a cold model (HTTP 503 with `estimated_time`), in total.
    /// These waits do not use up ``HTTPCallSettings/maxRetries``. The default is 120 s.
    var maxLoadingWait: Duration

    static let defaultBaseURL = "https://router.huggingface.co/hf-inference/models"
    /// The text-to-image model Hugging Face's own `hf-inference` route serves (FLUX.1-schnell no longer is).
    static let defaultImageModel = "stabilityai/stable-diffusion-xl-base-1.0"

    init(
        baseURL: String = defaultBaseURL,
        token: String? = nil,
        imageModel: String = defaultImageModel,
        width: Int = 1280,
        height: Int = 720,
        maxLoadingWait: Duration = .seconds(120)
    ) {
        self.baseURL = baseURL
        self.token = token
        self.imageModel = imageModel
        self.width = width
        self.height = height
        self.maxLoadingWait = maxLoadingWait
    }
}

/// ElevenLabs text-to-speech (providers.md §3).
struct ElevenLabsSettings: Sendable, Equatable {
    /// The API root; `/text-to-speech/{voice_id}` is appended. The default is `https://api.elevenlabs.io/v1`.
    var baseURL: String
    /// Sent as `xi-api-key`; `nil` sends no such header. Never logged.
    var apiKey: String?
    /// The default is ``defaultModelId``.
    var modelId: String
    /// Voice id per character name. Characters not listed take ``defaultVoiceIds``. The default is empty.
    var voiceIds: [String: String]
    /// Voice ids for characters without one in ``voiceIds``, by the character's position in the cast
    /// (wrapping around). The default is ``currentDefaultVoiceIds``.
    var defaultVoiceIds: [String]
    /// The `output_format` query parameter. The default is `mp3_44100_128`.
    var outputFormat: String

    static let defaultBaseURL = "https://api.elevenlabs.io/v1"
    static let defaultModelId = "eleven_multilingual_v2"
    /// ElevenLabs' Default voices George, Roger and Laura. The legacy premade voices (Rachel, Adam, …) are
    /// Voice Library voices now, which free plans may not use through the API (402 `paid_plan_required`).
    /// Default voices are visible to accounts made before March 2026 and are removed on 2026-12-31:
    /// after that, set `ELEVENLABS_VOICE_IDS` to voices of your account (`worker check` says so).
    static let currentDefaultVoiceIds = [
        "JBFqnCBsd6RMkjVDRZzb",  // George
        "CwhRBWXzGAHq8TQ4Fs17",  // Roger
        "FGY2WhTYpPnrIDTdsKH5",  // Laura
    ]

    init(
        baseURL: String = defaultBaseURL,
        apiKey: String? = nil,
        modelId: String = defaultModelId,
        voiceIds: [String: String] = [:],
        defaultVoiceIds: [String] = currentDefaultVoiceIds,
        outputFormat: String = "mp3_44100_128"
    ) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.modelId = modelId
        self.voiceIds = voiceIds
        self.defaultVoiceIds = defaultVoiceIds
        self.outputFormat = outputFormat
    }
}

// MARK: - Descriptions that never show a key

extension OpenAISettings: CustomStringConvertible {
    /// For start-up logs; the key shows only as `set`/`none`.
    var description: String {
        "openai \(baseURL) key=\(apiKey == nil ? "none" : "set") script=\(scriptModel) voice=\(voiceModel) "
            + "image=\(imageModel) \(resolvedImageSize) quality=\(resolvedImageQuality ?? "default")"
    }
}

extension HuggingFaceSettings: CustomStringConvertible {
    /// For start-up logs; the token shows only as `set`/`none`.
    var description: String {
        "huggingface \(baseURL) token=\(token == nil ? "none" : "set") image=\(imageModel) \(width)x\(height)"
    }
}

extension ElevenLabsSettings: CustomStringConvertible {
    /// For start-up logs; the key shows only as `set`/`none`.
    var description: String {
        "elevenlabs \(baseURL) key=\(apiKey == nil ? "none" : "set") model=\(modelId) format=\(outputFormat)"
    }
}

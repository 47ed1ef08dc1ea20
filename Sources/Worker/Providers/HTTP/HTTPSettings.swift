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

    init(
        requestTimeout: Duration = .seconds(60),
        connectTimeout: Duration = .seconds(10),
        maxRetries: Int = 3,
        backoffBase: Duration = .milliseconds(500),
        backoffCap: Duration = .seconds(8),
        maxRetryAfter: Duration = .seconds(120)
    ) {
        self.requestTimeout = requestTimeout
        self.connectTimeout = connectTimeout
        self.maxRetries = maxRetries
        self.backoffBase = backoffBase
        self.backoffCap = backoffCap
        self.maxRetryAfter = maxRetryAfter
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
struct OpenAISettings: Sendable, Equatable {
    /// The API root, to which `/chat/completions` etc. are appended. The default is
    /// `https://api.openai.com/v1`; e.g. `http://127.0.0.1:8080/v1` for a local server.
    var baseURL: String
    /// Sent as `Authorization: Bearer …`; `nil` sends no such header (local servers). Never logged.
    var apiKey: String?
    /// The default is `gpt-4o-mini`.
    var scriptModel: String
    /// The default is `tts-1`.
    var voiceModel: String
    /// The default is `dall-e-3`. For `gpt-image-*` models no `response_format` is sent (they always
    /// answer `b64_json`).
    var imageModel: String
    /// The default is `1792x1024`, dall-e-3's landscape size (the renderer scales to 720p).
    var imageSize: String
    /// One voice per character, by the character's position in the script's cast (wrapping around when
    /// there are more characters than voices). The default is
    /// `alloy, echo, fable, onyx, nova, shimmer`.
    var voices: [String]
    /// The chat completion's `max_tokens`. The default is 2000.
    var maxTokens: Int
    /// The default is 0.8.
    var temperature: Double

    static let defaultBaseURL = "https://api.openai.com/v1"
    static let defaultVoices = ["alloy", "echo", "fable", "onyx", "nova", "shimmer"]

    init(
        baseURL: String = defaultBaseURL,
        apiKey: String? = nil,
        scriptModel: String = "gpt-4o-mini",
        voiceModel: String = "tts-1",
        imageModel: String = "dall-e-3",
        imageSize: String = "1792x1024",
        voices: [String] = defaultVoices,
        maxTokens: Int = 2000,
        temperature: Double = 0.8
    ) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.scriptModel = scriptModel
        self.voiceModel = voiceModel
        self.imageModel = imageModel
        self.imageSize = imageSize
        self.voices = voices
        self.maxTokens = maxTokens
        self.temperature = temperature
    }
}

/// Hugging Face Inference Providers, for images (providers.md §2).
struct HuggingFaceSettings: Sendable, Equatable {
    /// The models root; `/{org}/{model}` is appended. The default is
    /// `https://router.huggingface.co/hf-inference/models`.
    var baseURL: String
    /// Sent as `Authorization: Bearer …` (`HF_TOKEN`); `nil` sends no such header. Never logged.
    var token: String?
    /// The default is `black-forest-labs/FLUX.1-schnell`.
    var imageModel: String
    /// The default is 1280.
    var width: Int
    /// The default is 720.
    var height: Int
    /// The most time one call spends waiting for a cold model (HTTP 503 with `estimated_time`), in total.
    /// These waits do not use up ``HTTPCallSettings/maxRetries``. The default is 120 s.
    var maxLoadingWait: Duration

    static let defaultBaseURL = "https://router.huggingface.co/hf-inference/models"

    init(
        baseURL: String = defaultBaseURL,
        token: String? = nil,
        imageModel: String = "black-forest-labs/FLUX.1-schnell",
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
    /// The default is `eleven_multilingual_v2`.
    var modelId: String
    /// Voice id per character name. Characters not listed take ``defaultVoiceIds``. The default is empty.
    var voiceIds: [String: String]
    /// Voice ids for characters without one in ``voiceIds``, by the character's position in the cast
    /// (wrapping around). The default is a few public premade voices (Rachel, Adam, Bella, Antoni,
    /// Domi, Josh).
    var defaultVoiceIds: [String]
    /// The `output_format` query parameter. The default is `mp3_44100_128`.
    var outputFormat: String

    static let defaultBaseURL = "https://api.elevenlabs.io/v1"
    static let premadeVoiceIds = [
        "21m00Tcm4TlvDq8ikWAM",  // Rachel
        "pNInz6obpgDQGcFmaJgB",  // Adam
        "EXAVITQu4vr4xnSDxMaL",  // Bella
        "ErXwobaYiN019PkySvjV",  // Antoni
        "AZnzlk1XvdvUeBnXmlld",  // Domi
        "TxGEqnHWrfWFTfGW9XjX",  // Josh
    ]

    init(
        baseURL: String = defaultBaseURL,
        apiKey: String? = nil,
        modelId: String = "eleven_multilingual_v2",
        voiceIds: [String: String] = [:],
        defaultVoiceIds: [String] = premadeVoiceIds,
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
            + "image=\(imageModel) \(imageSize)"
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

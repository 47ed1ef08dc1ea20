import Foundation

/// Everything the mock server can be told: limits, latency and failures per provider.
///
/// The same JSON is read from `--config FILE` and from `POST /admin/config`. Every field is optional; a missing
/// field keeps its default (or, for `POST /admin/config?merge=true`, its current value). Unknown keys are an error,
/// so a typo does not silently do nothing.
///
/// ```json
/// {
///   "seed": 0,                     // drives injected failures and latency jitter
///   "max_body_bytes": 1048576,     // larger request bodies get 413
///   "image_max_side": 256,         // generated PNGs keep the requested aspect ratio, longer side capped to this
///   "script_lines": null,          // character lines per chat script, spread over the scenes; null = 1–2 per scene
///   "script_broll": null,          // B-roll shots per chat script; null = ceil(scenes / 2)
///   "script_narration": true,      // false: scenes have an empty narration (no Narrator lines)
///   "openai": {                    // also "huggingface" and "elevenlabs", same fields
///     "request_limit": 500,        // accepted requests per sliding window, across all clients; null = no limit
///     "window_ms": 60000,          // the sliding window
///     "max_concurrent": null,      // requests in flight at once; null = no limit
///     "token_limit": 200000,       // reported in x-ratelimit-*-tokens (chat only), not enforced
///     "latency_ms": 0,             // added to every accepted request...
///     "jitter_percent": 0,         // ...± this percentage of it
///     "retry_after_ms": 1000,      // retry-after of injected or forced rate_limit 429s
///     "timeout_delay_ms": 60000,   // how long a "timeout" failure waits before answering
///     "failure_rates": { "billing": 0.0, "rate_limit": 0.0, "server_error": 0.0,
///                        "overload": 0.0, "malformed": 0.0, "timeout": 0.0 },   // probabilities, sum <= 1
///     "force_failures": [          // the next matching requests fail, entries used up in order
///       { "kind": "rate_limit", "count": 2, "endpoint": "chat_completions", "retry_after_ms": 1000 },
///       { "fixture": "openai/insufficient_quota", "count": 1 }   // exactly this recorded answer
///     ],
///     "cold_start_requests": 0,    // per model, the first K requests get 503 "is currently loading"
///     "estimated_time_s": 20.0,    // the estimated_time of those 503s
///     "known_models": null,        // OpenAI, Hugging Face: other models get the model-not-found fixture
///     "known_voices": null,        // OpenAI, ElevenLabs: other voices are refused
///     "paid_voices": [],           // ElevenLabs only: these voices get elevenlabs/paid_plan_required
///     "api_keys": null,            // requests without one of these keys get the invalid-key fixture
///     "reasoning_models": []       // OpenAI only: these refuse max_tokens and temperature != 1
///   }
/// }
/// ```
///
/// Defaults: OpenAI allows 500 requests per minute; Hugging Face has no limits; ElevenLabs allows 5 concurrent
/// requests (its Creator plan) and no request limit. Failure kinds are those of ``FailureKind``; endpoint names are
/// those of ``Endpoint``.
struct MockConfig: Equatable, Sendable {
    /// Seeds injected failures and latency jitter. The default is 0.
    var seed: UInt64 = 0
    /// The largest request body accepted, in bytes; larger ones get 413. The default is 1 MiB.
    var maxBodyBytes = 1_048_576
    /// Generated images keep the requested aspect ratio with the longer side at most this many pixels. The default is
    /// 256, which keeps responses small and fast.
    var imageMaxSide = 256
    /// The character lines of every script the chat endpoint writes, dealt to the scenes round-robin from the first
    /// (so scenes past the count get none); `nil`, the default, gives each scene 1–2 lines drawn from the prompt.
    var scriptLines: Int?
    /// The B-roll shots of every script the chat endpoint writes; `nil`, the default, means half the scene count,
    /// rounded up.
    var scriptBroll: Int?
    /// Whether scenes carry a narration (which a Reelfarm worker voices as a "Narrator" line). The default
    /// is true; a benchmark that needs an exact number of speech calls turns it off.
    var scriptNarration = true
    var openai = ProviderConfig.defaults(for: .openai)
    var huggingface = ProviderConfig.defaults(for: .huggingface)
    var elevenlabs = ProviderConfig.defaults(for: .elevenlabs)

    /// The largest `scriptLines` and `scriptBroll`, so a typo cannot make every chat reply huge.
    static let maxScriptItems = 1_000

    subscript(provider: Provider) -> ProviderConfig {
        get {
            switch provider {
            case .openai: openai
            case .huggingface: huggingface
            case .elevenlabs: elevenlabs
            }
        }
        set {
            switch provider {
            case .openai: openai = newValue
            case .huggingface: huggingface = newValue
            case .elevenlabs: elevenlabs = newValue
            }
        }
    }
}

/// Limits, latency and failures of one provider.
struct ProviderConfig: Equatable, Sendable {
    /// Accepted requests allowed in any sliding window of `windowMs`, across all clients; `nil` means no limit.
    var requestLimit: Int?
    /// The sliding window, in milliseconds. Also the window of `max_accepted_in_window` in `/stats`. The default is
    /// 60 000.
    var windowMs = 60_000
    /// Requests allowed in flight at once; `nil` means no limit.
    var maxConcurrent: Int?
    /// Tokens per window, only reported in the `x-ratelimit-*-tokens` headers of chat replies. The default is 200 000.
    var tokenLimit = 200_000
    /// Latency added to each accepted request, in milliseconds. The default is 0.
    var latencyMs = 0
    /// The latency varies uniformly by ± this percentage (0–100). The default is 0.
    var jitterPercent = 0.0
    /// `retry-after` of injected and forced `rate_limit` failures, in milliseconds. The default is 1 000.
    var retryAfterMs = 1_000
    /// How long a `timeout` failure waits before it answers, in milliseconds. The default is 60 000.
    var timeoutDelayMs = 60_000
    /// The probability of each injected failure kind per request; the sum must be at most 1. The default is none.
    var failureRates: [FailureKind: Double] = [:]
    /// Failures forced on the next matching requests, used up in order. The default is none.
    var forceFailures: [ForcedFailure] = []
    /// Per model, the first `coldStartRequests` requests get 503 "currently loading" (Hugging Face). The default is 0.
    var coldStartRequests = 0
    /// The `estimated_time` of cold-start 503s, in seconds. The default is 20.
    var estimatedTimeS = 20.0
    /// The models that exist (OpenAI and Hugging Face); a request naming another gets the provider's model-not-found
    /// fixture. `nil`, the default, accepts any model.
    var knownModels: [String]?
    /// The voices that exist: OpenAI voice names or ElevenLabs voice ids. A request naming another gets
    /// `elevenlabs/voice_not_found`, or OpenAI's 400 `invalid_value` for `voice`. `nil`, the default, accepts any.
    var knownVoices: [String]?
    /// ElevenLabs voice ids a free plan may not use over the API: they get `elevenlabs/paid_plan_required`. The
    /// default is none.
    var paidVoices: [String] = []
    /// The API keys accepted (`Authorization: Bearer KEY`; ElevenLabs `xi-api-key: KEY`). A request without one gets
    /// the provider's invalid-key fixture. `nil`, the default, accepts any key or none.
    var apiKeys: [String]?
    /// OpenAI chat models that behave like OpenAI's reasoning models: `max_tokens` gets
    /// `openai/chat_max_tokens_unsupported` and a `temperature` other than 1 `openai/chat_temperature_unsupported`.
    /// The default is none.
    var reasoningModels: [String] = []

    static func defaults(for provider: Provider) -> ProviderConfig {
        var config = ProviderConfig()
        switch provider {
        case .openai: config.requestLimit = 500
        case .huggingface: break
        case .elevenlabs: config.maxConcurrent = 5
        }
        return config
    }

    var window: Duration { .milliseconds(windowMs) }
}

/// `count` requests (of `endpoint`, or of any endpoint of the provider when `nil`) fail with a failure kind or with
/// a recorded fixture.
struct ForcedFailure: Equatable, Sendable {
    enum Reply: Equatable, Sendable {
        /// The mock's reply for this kind, as an injected failure would get.
        case kind(FailureKind)
        /// Exactly this fixture's status, headers and body.
        case fixture(FixtureFailure)
    }

    var reply: Reply
    var count: Int
    var endpoint: Endpoint?
    /// Overrides the provider's `retryAfterMs` for `rate_limit`.
    var retryAfterMs: Int?

    init(kind: FailureKind, count: Int, endpoint: Endpoint?, retryAfterMs: Int?) {
        reply = .kind(kind)
        self.count = count
        self.endpoint = endpoint
        self.retryAfterMs = retryAfterMs
    }

    init(fixture: FixtureFailure, count: Int, endpoint: Endpoint?) {
        reply = .fixture(fixture)
        self.count = count
        self.endpoint = endpoint
    }
}

/// A recorded fixture forced on a request (`force_failures[].fixture`) and how `/stats` counts it (see
/// ``RequestOutcome/ofFixture(status:body:)``).
struct FixtureFailure: Equatable, Sendable {
    /// `<service>/<case>`, e.g. `openai/insufficient_quota`.
    var name: String
    var outcome: RequestOutcome
}

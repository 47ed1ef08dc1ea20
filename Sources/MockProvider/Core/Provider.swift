/// The three services the mock stands in for.
enum Provider: String, CaseIterable, Codable, Sendable {
    case openai
    case huggingface
    case elevenlabs

    /// Its endpoints, in a fixed order.
    var endpoints: [Endpoint] { Endpoint.allCases.filter { $0.provider == self } }
}

/// One route of one provider; the names are the keys of `/stats` and of `force_failures[].endpoint`.
enum Endpoint: String, CaseIterable, Codable, Sendable {
    /// `POST /v1/chat/completions`
    case chatCompletions = "chat_completions"
    /// `POST /v1/audio/speech`
    case audioSpeech = "audio_speech"
    /// `POST /v1/images/generations`
    case imagesGenerations = "images_generations"
    /// `POST /hf/models/{org}/{model}`
    case textToImage = "text_to_image"
    /// `POST /elevenlabs/v1/text-to-speech/{voice_id}`
    case textToSpeech = "text_to_speech"
    /// `GET /v1/models` and `GET /v1/models/{model}`
    case models

    var provider: Provider {
        switch self {
        case .chatCompletions, .audioSpeech, .imagesGenerations, .models: .openai
        case .textToImage: .huggingface
        case .textToSpeech: .elevenlabs
        }
    }
}

/// Why a request did not get a normal answer. The raw values are the keys of `rejected` in `/stats` and of
/// `failure_rates` and `force_failures[].kind` in the configuration.
enum FailureKind: String, CaseIterable, Codable, CodingKeyRepresentable, Sendable {
    /// The sliding-window request limit was reached (429 with `retry-after`), or one was injected.
    case rateLimit = "rate_limit"
    /// Too many requests in flight (429).
    case concurrency
    /// Quota or credits exhausted: OpenAI 429 `insufficient_quota`, Hugging Face 402, ElevenLabs 401
    /// `quota_exceeded`. Never retry.
    case billing
    /// The service is overloaded: 503, or ElevenLabs 429 `system_busy`.
    case overload
    /// 500.
    case serverError = "server_error"
    /// 200 with a body the client cannot use.
    case malformed
    /// The reply comes only after `timeout_delay_ms` (60 s by default), longer than any client timeout.
    case timeout
    /// Hugging Face cold start: 503 with `estimated_time`.
    case modelLoading = "model_loading"
    /// The API key is missing or not one of `api_keys` (401), or the account may not do this (401/403).
    case auth
    /// The model (or voice) does not exist (404).
    case notFound = "not_found"
}

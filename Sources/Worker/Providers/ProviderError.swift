/// Why a provider call failed.
///
/// A struct around a private code (rather than a public enum) so kinds can be added without breaking
/// anyone who switches over them. `message` is human-readable and ends up in logs, placeholders and
/// the attempt's error (e.g. "script: simulated failure"), so it should say what happened without
/// repeating the episode id.
struct ProviderError: Error, Sendable, Equatable, CustomStringConvertible {
    struct Kind: Hashable, Sendable, CustomStringConvertible {
        private enum Code: String {
            case rateLimited = "rate_limited"
            case concurrencyLimited = "concurrency_limited"
            case quotaExceeded = "quota_exceeded"
            case authFailed = "auth_failed"
            case overloaded
            case clientError = "client_error"
            case serverError = "server_error"
            case timeout
            case network
            case invalidResponse = "invalid_response"
            case toolFailed = "tool_failed"
            case simulated
            case spendCap = "spend_cap"
        }

        private let code: Code

        private init(_ code: Code) { self.code = code }

        /// HTTP 429 or the service's own "slow down".
        static let rateLimited = Kind(.rateLimited)
        /// Too many requests in flight for the plan (ElevenLabs `too_many_concurrent_requests`): lower the
        /// in-flight count and retry when a slot frees.
        static let concurrencyLimited = Kind(.concurrencyLimited)
        /// Billing or quota exhausted (OpenAI `insufficient_quota`, spend limits): retrying will not help
        /// until someone pays; stop calling the provider.
        static let quotaExceeded = Kind(.quotaExceeded)
        /// The key is wrong or revoked, lacks a permission, or the account is blocked: no call will succeed
        /// until someone fixes the key; stop calling the provider.
        static let authFailed = Kind(.authFailed)
        /// HTTP 503/529: the service is out of capacity.
        static let overloaded = Kind(.overloaded)
        /// HTTP 4xx other than 429: the request is wrong (bad key, refused content); retrying will not help.
        static let clientError = Kind(.clientError)
        /// HTTP 5xx other than overloaded.
        static let serverError = Kind(.serverError)
        /// No answer in time.
        static let timeout = Kind(.timeout)
        /// Connection refused, reset, DNS failure.
        static let network = Kind(.network)
        /// An answer that could not be understood (bad JSON, missing fields, empty audio).
        static let invalidResponse = Kind(.invalidResponse)
        /// A local tool (ffmpeg, espeak-ng) exited non-zero or could not be started.
        static let toolFailed = Kind(.toolFailed)
        /// A failure injected by the simulated providers.
        static let simulated = Kind(.simulated)
        /// The call was not made: its expected cost would take the attempt past the spend allowance the
        /// coordinator leased it from the batch's `--max-spend`.
        static let spendCap = Kind(.spendCap)

        /// Whether trying the same call again later may succeed.
        var isTransient: Bool {
            switch code {
            case .rateLimited, .concurrencyLimited, .overloaded, .serverError, .timeout, .network: true
            case .clientError, .quotaExceeded, .authFailed, .invalidResponse, .toolFailed, .simulated, .spendCap:
                false
            }
        }

        var description: String { code.rawValue }
    }

    var kind: Kind
    var message: String
    /// How long the service asked us to wait before trying again (e.g. HTTP `Retry-After`), if it said.
    var retryAfter: Duration?
    /// For a failed HTTP call: how it was classified, with the status, the service's code and every
    /// rate-limit hint (remaining, reset, `estimated_time`), for whoever adapts the request rate.
    var classification: HTTPFailure?

    init(_ kind: Kind, _ message: String, retryAfter: Duration? = nil, classification: HTTPFailure? = nil) {
        self.kind = kind
        self.message = message
        self.retryAfter = retryAfter
        self.classification = classification
    }

    /// The error a call ends with after `failure`: its kind, a short message naming the service
    /// (`openai speech: rate limited (HTTP 429 rate_limit_exceeded): Rate limit reached…`), the
    /// server's wait hint and the classification.
    init(_ failure: HTTPFailure, service: String) {
        self.init(
            failure.kind.providerErrorKind,
            "\(service): \(failure)",
            retryAfter: failure.serverDelay,
            classification: failure
        )
    }

    var description: String { message }
}

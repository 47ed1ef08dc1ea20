import Foundation
import Protocol

/// A failed HTTP call, sorted into the kind that decides the reaction (providers.md §5), with what the
/// server said about waiting.
struct HTTPFailure: Sendable, Equatable, CustomStringConvertible {
    enum Kind: String, Sendable, CaseIterable, CustomStringConvertible {
        /// Requests/tokens/images per minute used up (OpenAI `rate_limit_exceeded`, a bare 429): wait for
        /// the reset, then retry.
        case rateLimit = "rate_limit"
        /// Too many requests in flight for the plan (ElevenLabs `too_many_concurrent_requests`): retry
        /// when a slot frees, soon.
        case concurrencyLimit = "concurrency_limit"
        /// Billing or quota exhausted (OpenAI `insufficient_quota` and kin, any HTTP 402): never retry;
        /// opens the provider's circuit for the whole fleet.
        case quota
        /// The key is wrong, revoked or lacks a permission, or the account is blocked (HTTP 401/403,
        /// ElevenLabs `detected_unusual_activity`): never retry; opens the provider's circuit for the fleet.
        case auth
        /// The service is out of capacity (ElevenLabs `system_busy`, 502/503/504/529, a model loading).
        case overload
        /// 500 and other 5xx.
        case serverError = "server_error"
        /// 4xx other than 408 and 429: the request is wrong; retrying will not help.
        case clientError = "client_error"
        /// No answer in time (also HTTP 408).
        case timeout
        /// Connection refused or reset, DNS or TLS failure.
        case network
        /// An answer that cannot be used (too large, not what the API promises).
        case invalidResponse = "invalid_response"

        /// Whether the kind is worth another try by itself (`x-should-retry` can override).
        var isRetryable: Bool {
            switch self {
            case .rateLimit, .concurrencyLimit, .overload, .serverError, .timeout, .network: true
            case .quota, .auth, .clientError, .invalidResponse: false
            }
        }

        /// The ``ProviderError`` kind a call that fails this way ends with.
        var providerErrorKind: ProviderError.Kind {
            switch self {
            case .rateLimit: .rateLimited
            case .concurrencyLimit: .concurrencyLimited
            case .quota: .quotaExceeded
            case .auth: .authFailed
            case .overload: .overloaded
            case .serverError: .serverError
            case .clientError: .clientError
            case .timeout: .timeout
            case .network: .network
            case .invalidResponse: .invalidResponse
            }
        }

        /// Short words for messages: `rate limited`, `quota exceeded`, …
        var phrase: String {
            switch self {
            case .rateLimit: "rate limited"
            case .concurrencyLimit: "too many concurrent requests"
            case .quota: "quota exceeded"
            case .auth: "authentication failed"
            case .overload: "overloaded"
            case .serverError: "server error"
            case .clientError: "request refused"
            case .timeout: "timed out"
            case .network: "network error"
            case .invalidResponse: "invalid response"
            }
        }

        var description: String { rawValue }
    }

    var kind: Kind
    /// The HTTP status; `nil` when no answer came.
    var status: Int?
    /// The service's own code: OpenAI `error.code` (or `error.type`), ElevenLabs `detail.status`.
    var code: String?
    /// The service's message (or the transport's), trimmed to ``maxMessageLength`` characters.
    var message: String
    var hints: RateLimitHints

    static let maxMessageLength = 200

    init(kind: Kind, status: Int? = nil, code: String? = nil, message: String = "", hints: RateLimitHints = .init()) {
        self.kind = kind
        self.status = status
        self.code = code
        self.message = Self.trim(message)
        self.hints = hints
    }

    /// The wait the server asked for, by kind: `retry-after(-ms)` first; for a rate limit the budget's
    /// reset; for an overload the model's `estimated_time`. `nil` when it said nothing usable.
    var serverDelay: Duration? {
        if let retryAfter = hints.retryAfter { return retryAfter }
        switch kind {
        case .rateLimit: return hints.reset
        case .overload: return hints.estimatedTime
        default: return nil
        }
    }

    /// Whether this is a Hugging Face cold start (503 with `estimated_time`).
    var isModelLoading: Bool {
        kind == .overload && hints.estimatedTime != nil
    }

    /// `rate limited (HTTP 429 rate_limit_exceeded): Rate limit reached for …`.
    var description: String {
        var parts: [String] = []
        if let status { parts.append("HTTP \(status)") }
        if let code, !code.isEmpty { parts.append(code) }
        var text = kind.phrase
        if !parts.isEmpty { text += " (\(parts.joined(separator: " ")))" }
        if !message.isEmpty { text += ": \(message)" }
        return text
    }

    private static func trim(_ message: String) -> String {
        let oneLine = message.split(whereSeparator: \.isNewline).joined(separator: " ")
            .trimmingCharacters(in: .whitespaces)
        guard oneLine.count > maxMessageLength else { return oneLine }
        return String(oneLine.prefix(maxMessageLength - 1)) + "…"
    }
}

/// Sorts failed HTTP answers (pure: status, headers and body in, ``HTTPFailure`` out).
///
/// The body decides before the status: OpenAI's `error.code` tells a rate limit from a billing stop
/// though both come as 429; ElevenLabs' `detail.status` tells concurrency from overload.
enum HTTPFailureClassifier {
    /// OpenAI codes (and the type) that mean billing or quota: never retried.
    static let quotaCodes: Set<String> = [
        "insufficient_quota", "credit_balance_exhausted", "organization_spend_limit_exceeded",
        "project_spend_limit_exceeded", "organization_usage_limit_exceeded",
        // ElevenLabs: the plan's characters are used up.
        "quota_exceeded",
    ]

    /// Classifies a non-2xx answer. `now` turns an HTTP-date `retry-after` into a delay; every string in
    /// `secrets` (the request's credentials) is replaced by `[redacted]` in the message, before it is
    /// shortened, should the server echo it.
    static func classify(
        status: Int,
        headers: HTTPHeaderFields,
        body: Data,
        now: Date = Date(),
        redacting secrets: [String] = []
    ) -> HTTPFailure {
        var hints = RateLimitHints(headers: headers, now: now)
        let details = ErrorBody(body, status: status)
        if let seconds = details.estimatedTime, seconds.isFinite, seconds > 0 {
            hints.estimatedTime = .milliseconds((seconds * 1000).rounded(.up))
        }
        let kind = kind(status: status, details: details, hints: hints)
        let message = secrets.reduce(details.message) { $0.replacing($1, with: "[redacted]") }
        return HTTPFailure(kind: kind, status: status, code: details.code, message: message, hints: hints)
    }

    /// Classifies a request that got no complete answer.
    static func classify(_ error: HTTPTransportError) -> HTTPFailure {
        let kind: HTTPFailure.Kind =
            if error.isTimeout {
                .timeout
            } else if error.isBodyTooLarge {
                .invalidResponse
            } else if error.isInvalidRequest {
                .clientError
            } else {
                .network
            }
        return HTTPFailure(kind: kind, message: error.message)
    }

    /// Codes that mean the key or the account, not the request, is at fault (OpenAI, ElevenLabs).
    static let authCodes: Set<String> = [
        "invalid_api_key", "detected_unusual_activity", "missing_permissions", "invalid_organization",
        "invalid_project", "account_deactivated", "unsupported_country_region_territory",
    ]

    private static func kind(status: Int, details: ErrorBody, hints: RateLimitHints) -> HTTPFailure.Kind {
        if let code = details.code, quotaCodes.contains(code) { return .quota }
        if let type = details.type, quotaCodes.contains(type) { return .quota }
        if let code = details.code, authCodes.contains(code) { return .auth }
        // OpenAI's permanent 429: one request asks for more tokens than the whole per-minute budget. It
        // carries `rate_limit_exceeded` like a passing limit, but waiting cannot help.
        if details.isRequestTooLarge { return .clientError }
        switch details.code {
        case "rate_limit_exceeded": return .rateLimit
        case "too_many_concurrent_requests", "concurrent_limit_exceeded": return .concurrencyLimit
        case "system_busy": return .overload
        default: break
        }
        switch status {
        case 429: return .rateLimit
        // Payment required: Hugging Face's monthly credits, ElevenLabs' paid plans.
        case 402: return .quota
        case 401, 403: return .auth
        case 408: return .timeout
        // openai-python retries 409 (lock timeouts): treat it as a passing server problem.
        case 409: return .serverError
        case 400..<500: return .clientError
        case 502, 503, 504, 529: return .overload
        case 500..<600: return .serverError
        default: return .invalidResponse
        }
    }
}

/// The interesting parts of an error body of any shape: OpenAI, vLLM, Ollama, Hugging Face, ElevenLabs,
/// FastAPI, plain text (fixtures of each under Sources/ProviderFixtures/Fixtures).
private struct ErrorBody {
    var code: String?
    var type: String?
    var message = ""
    var estimatedTime: Double?

    init(_ body: Data, status: Int) {
        defer { normalise(status: status) }
        guard let json = JSONValue(data: body, limit: HTTPBodyLimit.errorBody) else {
            message = Self.text(body)
            return
        }
        if let error = json["error"], error.members != nil {
            // OpenAI (and Ollama's /v1): {"error":{"message","type","param","code"}}
            code = Self.string(error["code"])
            type = error["type"]?.string
            message = error["message"]?.string ?? ""
            if code == nil, let type, HTTPFailureClassifier.quotaCodes.contains(type) { code = type }
        } else if let detail = json["detail"] {
            // ElevenLabs: {"detail":{"type","code","message","status","request_id"}}. `code` is the
            // specific reason (`paid_plan_required`, `voice_not_found`); `status` repeats it on older
            // replies and is a broad class (`payment_required`) on newer ones, so `code` wins. FastAPI's
            // own {"detail": "…" | [...]} has neither.
            code = Self.string(detail["code"]) ?? detail["status"]?.string
            type = detail["type"]?.string
            message = detail["message"]?.string ?? detail.string ?? ""
        } else if json["object"]?.string == "error" {
            // vLLM: {"object":"error","message","type":"NotFoundError","param","code":404}
            type = json["type"]?.string
            message = json["message"]?.string ?? ""
            code = json["code"]?.string
        } else {
            // Hugging Face: {"error":"Model … is currently loading","estimated_time":20.0}
            message = json["error"]?.string ?? json["message"]?.string ?? ""
            code = json["code"]?.string
        }
        estimatedTime = json["estimated_time"]?.double
    }

    /// Whether this is OpenAI's "Request too large for … on tokens per min" 429, which no wait cures.
    var isRequestTooLarge: Bool {
        code == "request_too_large" || message.hasPrefix("Request too large for")
    }

    /// Gives the same code to the same problem whatever the server's dialect: a model the server does not
    /// know is `model_not_found` (vLLM and Ollama send no such code).
    private mutating func normalise(status: Int) {
        if isRequestTooLarge { code = "request_too_large" }
        guard status == 404, code == nil || code == "404" || code == "model_not_found" else { return }
        let lower = message.lowercased()
        if code == "model_not_found"
            || (lower.contains("model") && (lower.contains("not found") || lower.contains("does not exist")))
        {
            code = "model_not_found"
        }
    }

    /// A code that is a string, or a number written as one (vLLM sends the HTTP status as `code`).
    private static func string(_ value: JSONValue?) -> String? {
        if let text = value?.string { return text }
        if let number = value?.double, number.isFinite, number == number.rounded(), abs(number) < 1e6 {
            return String(Int(number))
        }
        return nil
    }

    /// A short text body (an HTML error page, a proxy's plain text) as the message, if it is UTF-8.
    private static func text(_ body: Data) -> String {
        let prefix = body.prefix(512)
        // Cutting may split a character: drop up to three bytes to find a whole UTF-8 prefix.
        for cut in 0...min(3, prefix.count) {
            if let text = String(data: prefix.dropLast(cut), encoding: .utf8) {
                return text.unicodeScalars.allSatisfy({ $0.value >= 0x20 || $0 == "\n" || $0 == "\t" }) ? text : ""
            }
        }
        return ""
    }
}

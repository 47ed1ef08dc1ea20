extension RequestOutcome {
    /// How `/stats` counts a reply copied from a recorded fixture, judged from its status and body:
    ///
    /// - 402 → `billing`; 401, 403 and 429 whose body mentions quota, billing or credits → `billing`.
    /// - other 401 and 403 → `auth`; 404 → `not_found`.
    /// - other 429 → `concurrency` when the body mentions concurrent requests, `overload` when it says
    ///   `system_busy`, `rate_limit` otherwise.
    /// - any other 4xx → `bad_request` (counted beside `rejected`, as invalid bodies are).
    /// - 503 whose body says the model is loading → `model_loading`; 503 and 529 → `overload`; other 5xx →
    ///   `server_error`.
    /// - anything below 400 → `malformed`: a reply the mock did not generate, such as a refusal.
    static func ofFixture(status: Int, body: String) -> RequestOutcome {
        let text = body.lowercased()
        let mentionsBilling = ["quota", "billing", "credits"].contains { text.contains($0) }
        switch status {
        case 402:
            return .failed(.billing)
        case 401, 403:
            return .failed(mentionsBilling ? .billing : .auth)
        case 404:
            return .failed(.notFound)
        case 429:
            if mentionsBilling { return .failed(.billing) }
            if text.contains("concurrent") { return .failed(.concurrency) }
            if text.contains("system_busy") { return .failed(.overload) }
            return .failed(.rateLimit)
        case 400..<500:
            return .badRequest
        case 503 where text.contains("loading"):
            return .failed(.modelLoading)
        case 503, 529:
            return .failed(.overload)
        case 500...:
            return .failed(.serverError)
        default:
            return .failed(.malformed)
        }
    }
}

/// What the admission decision needs to know about a well-formed request.
struct AdmissionRequest: Sendable {
    var endpoint: Endpoint
    /// The model a Hugging Face request names; cold starts are counted per model.
    var model: String?
    /// `X-Wait-For-Model: true`: a loading model makes the request wait `estimated_time_s` instead of failing.
    var waitForModel = false
    /// Tokens counted in the `x-ratelimit-*-tokens` window when the request is accepted.
    var tokenCost = 0
}

/// The decision for one request and the limit state to report with it.
struct Admission: Equatable, Sendable {
    enum Outcome: Equatable, Sendable {
        /// Answer normally after `delay`, then call `finish`: the request holds a concurrency slot until then.
        case accepted(delay: Duration)
        /// Answer with this failure now.
        case rejected(Rejection)
        /// Answer 200 after `delay` but spoil the reply (`malformed`) or just be late (`timeout`). Holds no slot.
        case fault(FailureKind, delay: Duration)
        /// Answer now with exactly this recorded fixture (`force_failures[].fixture`), counted as `outcome`.
        case fixture(FixtureFailure)
    }

    var outcome: Outcome
    /// The limit state after this decision, for the rate-limit headers.
    var limits: LimitState
    /// The provider's request number since the last configuration, used to vary spoiled replies.
    var sequence: UInt64
}

/// A failed request and what its reply should say.
struct Rejection: Equatable, Sendable {
    var kind: FailureKind
    /// When to retry; set for `rate_limit` only.
    var retryAfter: Duration?
    /// The limit that was hit: requests per window for `rate_limit`, requests in flight for `concurrency`.
    var limit: Int?
    var window: Duration
    /// For `model_loading`: the model and its `estimated_time`.
    var model: String?
    var estimatedTime: Double?

    /// The wait the reply announces in `retry-after` and `retry-after-ms`: `retryAfter` (1 s if unset) for
    /// `rate_limit`, `nil` for the kinds whose reply carries no retry hint.
    var announcedRetryAfter: Duration? {
        kind == .rateLimit ? retryAfter ?? .seconds(1) : nil
    }
}

/// The numbers behind `x-ratelimit-*` (OpenAI) and `*-concurrent-requests` (ElevenLabs) headers.
struct LimitState: Equatable, Sendable {
    /// `nil` when the provider has no request limit.
    var requestLimit: Int?
    var remainingRequests: Int
    /// Time until the whole request budget is free again.
    var resetRequests: Duration
    var tokenLimit: Int
    var remainingTokens: Int
    var resetTokens: Duration
    /// Requests in flight after this decision.
    var inFlight: Int
    var maxConcurrent: Int?
}

/// One provider's limits, injected failures and counters: a value type with no clock and no I/O, so tests step time
/// by hand. ``MockEngine`` keeps one per provider behind a lock.
struct ProviderState {
    let provider: Provider
    private(set) var config: ProviderConfig
    private var seed: UInt64
    private var window: SlidingWindowLimiter?
    private var concurrency: ConcurrencyLimiter
    private var tokens: SlidingSum
    private var forcedRemaining: [Int]
    private var coldStartsServed: [String: Int] = [:]
    private var sequence: UInt64 = 0
    private(set) var total: RequestCounters
    private(set) var endpoints: [Endpoint: RequestCounters]

    init(provider: Provider, config: ProviderConfig, seed: UInt64) {
        self.provider = provider
        self.config = config
        self.seed = seed
        window = config.requestLimit.map { SlidingWindowLimiter(limit: $0, window: config.window) }
        concurrency = ConcurrencyLimiter(limit: config.maxConcurrent)
        tokens = SlidingSum(window: config.window)
        forcedRemaining = config.forceFailures.map(\.count)
        total = RequestCounters(window: config.window)
        endpoints = Dictionary(
            uniqueKeysWithValues: provider.endpoints.map { ($0, RequestCounters(window: config.window)) }
        )
    }

    /// Applies a new configuration: limits, forced failures, cold starts and the failure sequence start afresh;
    /// counters and the requests in flight carry over.
    mutating func reconfigure(_ config: ProviderConfig, seed: UInt64) {
        var fresh = ProviderState(provider: provider, config: config, seed: seed)
        fresh.concurrency = concurrency
        fresh.concurrency.limit = config.maxConcurrent
        fresh.total = total
        fresh.total.busiest.window = config.window
        fresh.endpoints = endpoints.mapValues { counters in
            var counters = counters
            counters.busiest.window = config.window
            return counters
        }
        self = fresh
    }

    /// Decides what happens to a well-formed request arriving at `now`.
    ///
    /// In order: forced failures, cold start, injected failures, the concurrency limit, then the request window.
    mutating func admit(_ request: AdmissionRequest, now: Duration) -> Admission {
        sequence += 1
        var extraDelay = Duration.zero
        let outcome: Admission.Outcome
        if let forced = takeForcedFailure(for: request.endpoint) {
            switch forced.reply {
            case .kind(let kind): outcome = fail(kind, retryAfterMs: forced.retryAfterMs, model: request.model)
            case .fixture(let fixture): outcome = .fixture(fixture)
            }
        } else if let model = request.model, coldStartsServed[model, default: 0] < config.coldStartRequests,
            !request.waitForModel
        {
            coldStartsServed[model, default: 0] += 1
            outcome = fail(.modelLoading, model: model)
        } else if let kind = injectedFailure() {
            outcome = fail(kind, model: request.model)
        } else if !concurrency.acquire() {
            outcome = fail(.concurrency, model: request.model)
        } else if case .rejected(let retryAfter) = window?.acquire(now: now) {
            concurrency.release()
            outcome = .rejected(
                Rejection(kind: .rateLimit, retryAfter: retryAfter, limit: config.requestLimit, window: config.window)
            )
        } else {
            if let model = request.model, coldStartsServed[model, default: 0] < config.coldStartRequests {
                // X-Wait-For-Model on a loading model: it loads while this request waits.
                coldStartsServed[model] = config.coldStartRequests
                extraDelay = .milliseconds(config.estimatedTimeS * 1_000)
            }
            tokens.add(request.tokenCost, now: now)
            outcome = .accepted(delay: latency() + extraDelay)
        }
        record(outcome, endpoint: request.endpoint, now: now)
        return Admission(outcome: outcome, limits: limitState(now: now), sequence: sequence)
    }

    /// Releases the slot of an accepted request once it is answered.
    mutating func finish(_ endpoint: Endpoint) {
        concurrency.release()
        total.recordFinished()
        endpoints[endpoint]?.recordFinished()
    }

    /// Counts a request refused before admission: an unreadable, invalid or oversized body (`bad_request`), or a
    /// check of the configuration such as `api_keys` or `known_models` (the outcome of its fixture). It uses no
    /// limit.
    mutating func recordRefused(_ endpoint: Endpoint, outcome: RequestOutcome) {
        switch outcome {
        case .accepted:
            preconditionFailure("a refused request cannot be accepted")
        case .badRequest:
            total.recordBadRequest()
            endpoints[endpoint]?.recordBadRequest()
        case .failed(let kind):
            total.recordRejected(kind)
            endpoints[endpoint]?.recordRejected(kind)
        }
    }

    mutating func resetStats() {
        total.reset()
        for endpoint in provider.endpoints {
            endpoints[endpoint]?.reset()
        }
    }

    /// The limit state at `now` without admitting anything (for replies to bad requests).
    mutating func limitState(now: Duration) -> LimitState {
        LimitState(
            requestLimit: config.requestLimit,
            remainingRequests: window?.remaining(now: now) ?? config.requestLimit ?? 0,
            resetRequests: window?.timeUntilReset(now: now) ?? .zero,
            tokenLimit: config.tokenLimit,
            remainingTokens: max(0, config.tokenLimit - tokens.sum(now: now)),
            resetTokens: tokens.timeUntilEmpty(now: now),
            inFlight: concurrency.inFlight,
            maxConcurrent: config.maxConcurrent
        )
    }

    // MARK: - Steps

    private mutating func takeForcedFailure(for endpoint: Endpoint) -> ForcedFailure? {
        for (index, forced) in config.forceFailures.enumerated() where forcedRemaining[index] > 0 {
            if forced.endpoint == nil || forced.endpoint == endpoint {
                forcedRemaining[index] -= 1
                return forced
            }
        }
        return nil
    }

    /// The injected failure for this request, if any: one draw, deterministic in (seed, provider, sequence).
    private func injectedFailure() -> FailureKind? {
        guard !config.failureRates.isEmpty else { return nil }
        let draw = SplitMix64.unit(seed, UInt64(providerIndex), sequence)
        var cumulative = 0.0
        for kind in FailureKind.allCases {
            cumulative += config.failureRates[kind] ?? 0
            if draw < cumulative {
                return kind
            }
        }
        return nil
    }

    private func latency() -> Duration {
        guard config.latencyMs > 0 else { return .zero }
        var milliseconds = Double(config.latencyMs)
        if config.jitterPercent > 0 {
            let draw = SplitMix64.unit(seed, UInt64(providerIndex), sequence, 1)
            milliseconds *= 1 + config.jitterPercent / 100 * (2 * draw - 1)
        }
        return .milliseconds(milliseconds)
    }

    private func fail(_ kind: FailureKind, retryAfterMs: Int? = nil, model: String?) -> Admission.Outcome {
        switch kind {
        case .malformed:
            return .fault(.malformed, delay: latency())
        case .timeout:
            return .fault(.timeout, delay: .milliseconds(config.timeoutDelayMs))
        case .rateLimit:
            let retryAfter = Duration.milliseconds(retryAfterMs ?? config.retryAfterMs)
            return .rejected(
                Rejection(kind: kind, retryAfter: retryAfter, limit: config.requestLimit, window: config.window)
            )
        case .modelLoading:
            return .rejected(
                Rejection(kind: kind, window: config.window, model: model, estimatedTime: config.estimatedTimeS)
            )
        case .concurrency:
            return .rejected(Rejection(kind: kind, limit: config.maxConcurrent, window: config.window))
        case .billing, .overload, .serverError, .auth, .notFound:
            return .rejected(Rejection(kind: kind, window: config.window))
        }
    }

    private mutating func record(_ outcome: Admission.Outcome, endpoint: Endpoint, now: Duration) {
        switch outcome {
        case .accepted:
            total.recordAccepted(now: now)
            endpoints[endpoint]?.recordAccepted(now: now)
        case .rejected(let rejection):
            total.recordRejected(rejection.kind)
            endpoints[endpoint]?.recordRejected(rejection.kind)
        case .fault(let kind, _):
            total.recordRejected(kind)
            endpoints[endpoint]?.recordRejected(kind)
        case .fixture(let fixture):
            recordRefused(endpoint, outcome: fixture.outcome)
        }
    }

    private var providerIndex: Int { Provider.allCases.firstIndex(of: provider)! }
}

/// Decides whether a failed call is tried again and after how long (pure; providers.md §1, §5).
///
/// In order:
/// 1. Billing/quota and authentication failures are never retried. Nor is a request that got no answer
///    in time when ``retryTimeouts`` is off (a timed-out generation may still be billed).
/// 2. `x-should-retry: false` gives up, `true` retries even a kind that is not retryable by itself.
/// 3. Otherwise client errors (400/401/403/404/422…) and invalid responses give up; rate limit,
///    concurrency, overload, server error, timeout and network are retried.
/// 4. A model that is loading (Hugging Face 503 with `estimated_time`) is waited for out of its own
///    budget (``maxLoadingWait`` in total), without using up ``maxRetries``, when that budget is set.
/// 5. Other retries stop after ``maxRetries``.
/// 6. The delay is the server's hint (``HTTPFailure/serverDelay``) when there is one; a hint longer
///    than ``maxRetryAfter`` is not slept on: give up (the error carries the hint, so the caller can
///    requeue). Without a hint: full-jitter exponential backoff, `random(0, min(cap, base · 2ⁿ))`.
struct RetryPolicy: Sendable {
    var maxRetries: Int
    var backoffBase: Duration
    var backoffCap: Duration
    var maxRetryAfter: Duration
    /// The total wait allowed for a loading model; zero treats loading like any overload.
    var maxLoadingWait: Duration
    /// Whether a request that got no answer in time is sent again (``HTTPCallSettings/retryTimeouts``).
    var retryTimeouts: Bool
    /// A number in `0..<1`; tests pass a fixed one.
    var random: @Sendable () -> Double

    init(
        maxRetries: Int,
        backoffBase: Duration,
        backoffCap: Duration,
        maxRetryAfter: Duration,
        maxLoadingWait: Duration = .zero,
        retryTimeouts: Bool = true,
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.maxRetries = maxRetries
        self.backoffBase = backoffBase
        self.backoffCap = backoffCap
        self.maxRetryAfter = maxRetryAfter
        self.maxLoadingWait = maxLoadingWait
        self.retryTimeouts = retryTimeouts
        self.random = random
    }

    init(
        _ settings: HTTPCallSettings,
        maxLoadingWait: Duration = .zero,
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.init(
            maxRetries: settings.maxRetries,
            backoffBase: settings.backoffBase,
            backoffCap: settings.backoffCap,
            maxRetryAfter: settings.maxRetryAfter,
            maxLoadingWait: maxLoadingWait,
            retryTimeouts: settings.retryTimeouts,
            random: random
        )
    }

    enum Decision: Sendable, Equatable {
        case retry(after: Duration, Reason)
        case giveUp(GiveUp)
    }

    /// Where a retry's delay came from.
    enum Reason: String, Sendable {
        /// `retry-after(-ms)`, a rate-limit reset or `estimated_time`.
        case serverHint = "server_hint"
        /// Full-jitter exponential backoff.
        case backoff
        /// Waiting for a loading model, out of the loading budget (not counted as a retry).
        case modelLoading = "model_loading"
    }

    enum GiveUp: String, Sendable {
        /// Quota, client error, invalid response.
        case notRetryable = "not_retryable"
        /// `x-should-retry: false`.
        case serverSaidNo = "server_said_no"
        case retriesExhausted = "retries_exhausted"
        /// The server's hint is longer than ``maxRetryAfter``.
        case hintTooLong = "hint_too_long"
        /// The loading budget is spent, or the model's estimate is beyond ``maxRetryAfter``.
        case loadingTooLong = "loading_too_long"
        /// No answer in time, and timeouts are not retried for this call (``retryTimeouts``).
        case timeoutNotRetried = "timeout_not_retried"
    }

    /// - Parameters:
    ///   - retries: retries already made for this call (0 after the first request failed).
    ///   - loadingWaited: time already spent waiting for a loading model in this call.
    func decide(_ failure: HTTPFailure, retries: Int, loadingWaited: Duration = .zero) -> Decision {
        if failure.kind == .quota || failure.kind == .auth { return .giveUp(.notRetryable) }
        // No status: the transport gave up, and the provider may still be generating (and billing).
        if failure.kind == .timeout, failure.status == nil, !retryTimeouts { return .giveUp(.timeoutNotRetried) }
        switch failure.hints.shouldRetry {
        case false?: return .giveUp(.serverSaidNo)
        case true?: break
        case nil: if !failure.kind.isRetryable { return .giveUp(.notRetryable) }
        }
        if failure.isModelLoading, maxLoadingWait > .zero, let estimated = failure.serverDelay {
            let left = maxLoadingWait - loadingWaited
            guard left > .zero, estimated <= maxRetryAfter else { return .giveUp(.loadingTooLong) }
            return .retry(after: min(estimated, left), .modelLoading)
        }
        guard retries < maxRetries else { return .giveUp(.retriesExhausted) }
        if let hint = failure.serverDelay {
            guard hint <= maxRetryAfter else { return .giveUp(.hintTooLong) }
            return .retry(after: hint, .serverHint)
        }
        return .retry(after: backoff(retries), .backoff)
    }

    /// `random(0, min(cap, base · 2ⁿ))` for the n-th retry (from 0).
    func backoff(_ n: Int) -> Duration {
        var ceiling = backoffBase
        var step = 0
        while step < n && ceiling < backoffCap {
            ceiling *= 2
            step += 1
        }
        let fraction = min(max(random(), 0), 1)
        return min(ceiling, backoffCap) * fraction
    }
}

import Protocol
import Shared

/// What one provider said about its limits, and the budget the coordinator leases from that: the configured
/// budget (`--budget`), lowered, never raised, by what the provider's rate-limit headers and 429s say. With
/// no configured budget the learned limits are the budget. A pure value: inputs are the workers' signals and
/// the coordinator's own counts, no clock.
///
/// - **Headers** (PROVIDER_SIGNAL `limits`, and the header fields of a 429): `x-ratelimit-limit-requests`
///   and `-limit-tokens` are the limits; ElevenLabs' `maximum-concurrent-requests` the concurrency. The
///   window is not in the headers. `x-ratelimit-reset-*` (the time until the budget is fully refilled) is
///   never longer than the window, for a sliding window (then it is the window right after a call) as for a
///   token bucket (then it is `(limit − remaining) × window / limit`), so the longest reset heard is taken
///   as the window: a lower bound that only grows towards the truth. Until a reset is heard, a minute (the
///   meaning of OpenAI's headers: per minute).
/// - **A rate 429 without a stated limit** (Hugging Face and ElevenLabs publish none, providers.md §2, §3):
///   the provider accepted the calls started in the last window minus those it refused, so that is the
///   limit (over the budget's window, else one second). A limit stated in headers is not second-guessed by
///   a 429 (the ledger's multiplicative decrease handles those).
struct LimitLearner: Sendable, Equatable {
    /// The window of a request limit learned from 429s when no window is known: 1 s, the shortest one
    /// providers use, so the learned rate is never above the provider's over a longer window.
    static let defaultMeasureWindowMs = 1000
    /// The window assumed for a stated limit before any reset was heard: a minute.
    static let defaultStatedWindowMs = 60_000

    /// Where a learned request limit came from.
    enum Source: String, Sendable, Codable {
        case headers
        /// Counted from the calls the provider accepted before a 429.
        case rateLimited = "rate_limited"
    }

    /// The limits learned so far, each `nil` until something was heard.
    struct Learned: Sendable, Equatable {
        var requests: Int?
        var requestWindowMs: Int?
        var requestSource: Source?
        var units: Int?
        var unitWindowMs: Int?
        var maxConcurrent: Int?

        var isEmpty: Bool { requests == nil && units == nil && maxConcurrent == nil }
    }

    let provider: String
    /// The user's budget: an upper bound on everything learned. `nil`: none configured.
    let configured: ProviderBudget?
    private(set) var learned = Learned()
    /// Whether the provider has told a limit (a header, or a 429 that taught one). Until then the coordinator
    /// grants the provider's calls one at a time a short interval apart (``LeaseManager``), so that a first
    /// 429 stops a burst after a call or two.
    private(set) var confirmed = false
    /// ElevenLabs' `current-concurrent-requests` in the last answer that had it (shown, not acted on).
    private(set) var providerInFlight: Int?
    private var longestResetMs: Int?
    private var longestUnitResetMs: Int?
    /// When a 429 last lowered the request limit.
    private var learnedAt: ContinuousClock.Instant?

    init(provider: String, configured: ProviderBudget?) {
        self.provider = provider
        self.configured = configured
    }

    /// The budget to lease: per dimension the lower of the configured and the learned limit (rates compared
    /// per millisecond, so `10/s` and `600/min` are equal); a configured `burst` is kept only while the
    /// configured request limit is the one used.
    var effective: ProviderBudget {
        var budget = configured ?? ProviderBudget(provider: provider)
        if let limit = learned.requests, let window = learned.requestWindowMs,
            Self.lower(limit, window, than: budget.requests, budget.requestWindowMs)
        {
            budget.requests = limit
            budget.requestWindowMs = window
            budget.burst = nil
        }
        if let limit = learned.units, let window = learned.unitWindowMs,
            Self.lower(limit, window, than: budget.units, budget.unitWindowMs)
        {
            budget.units = limit
            budget.unitWindowMs = window
        }
        if let learned = learned.maxConcurrent {
            budget.maxConcurrent = min(learned, budget.maxConcurrent ?? learned)
        }
        return budget
    }

    /// Whether `limit` per `window` ms is a lower rate than `other` per `otherWindow` (always, if there is
    /// no other).
    private static func lower(_ limit: Int, _ window: Int, than other: Int?, _ otherWindow: Int) -> Bool {
        guard let other else { return true }
        // limit / window < other / otherWindow, in integers.
        return limit.multipliedReportingOverflow(by: otherWindow).partialValue
            < other.multipliedReportingOverflow(by: window).partialValue
    }

    /// Learns what the header fields of a signal state (a `limits` signal, or a 429 or `exhausted` that
    /// carries them). Returns whether the effective budget changed.
    @discardableResult
    mutating func observe(_ signal: ProviderSignal) -> Bool {
        let before = effective
        if let current = signal.currentConcurrent { providerInFlight = current }
        if let reset = signal.resetMs, reset > 0, signal.kind != .exhausted {
            // `exhausted` carries the reset shortened by the call's duration: not a window length.
            longestResetMs = max(longestResetMs ?? 0, reset)
        }
        if let reset = signal.resetUnitsMs, reset > 0 {
            longestUnitResetMs = max(longestUnitResetMs ?? 0, reset)
        }
        if let limit = signal.limitRequests, limit > 0 {
            learned.requests = limit
            learned.requestWindowMs = Self.window(longestResetMs)
            learned.requestSource = .headers
            confirmed = true
        } else if learned.requestSource == .headers, learned.requests != nil {
            learned.requestWindowMs = Self.window(longestResetMs)
        }
        if let limit = signal.limitUnits, limit > 0 {
            learned.units = min(limit, 1_000_000_000)
            learned.unitWindowMs = Self.window(longestUnitResetMs)
        } else if learned.units != nil {
            learned.unitWindowMs = Self.window(longestUnitResetMs)
        }
        if let limit = signal.maxConcurrent, limit > 0 {
            learned.maxConcurrent = limit
            confirmed = true
        }
        return effective != before
    }

    private static func window(_ longestReset: Int?) -> Int {
        guard let longestReset else { return defaultStatedWindowMs }
        return min(max(1, longestReset), 86_400_000)
    }

    /// The window over which a 429 is measured: the effective request window when there is a request limit,
    /// else ``defaultMeasureWindowMs``.
    var measureWindowMs: Int {
        let budget = effective
        return budget.requests == nil ? Self.defaultMeasureWindowMs : budget.requestWindowMs
    }

    /// What a rate 429 taught.
    enum Lesson: Sendable, Equatable {
        /// The request limit was lowered to what the provider accepted.
        case lowered
        /// The 429 belongs to the burst that taught the limit within the last window: nothing more to learn.
        case known
        /// Not explained by a count (the limit was stated in headers, or the count is above the limit in
        /// use): the caller falls back to the ledger's multiplicative decrease.
        case unexplained
    }

    /// A rate 429 heard at `now` when `accepted` calls (started minus refused) went to the provider within
    /// the last ``measureWindowMs``: unless a header stated the request limit, that many is the limit, if it
    /// is lower than the one in use.
    ///
    /// The count explains the 429 only if some call was accepted in the window and the provider's
    /// `retryAfterMs` (when it sent one) ends within the window: a longer wait means a longer window than
    /// the one counted over, or no rate limit at all (a quota for the day, an injected failure), and
    /// counting would teach a far too low limit.
    mutating func rateLimited(accepted: Int, retryAfterMs: Int? = nil, now: ContinuousClock.Instant) -> Lesson {
        guard learned.requestSource != .headers else { return .unexplained }
        let window = measureWindowMs
        guard accepted >= 1, (retryAfterMs ?? 0) <= window else { return .unexplained }
        let limit = accepted
        let current = effective
        guard Self.lower(limit, window, than: current.requests, current.requestWindowMs) else {
            if learned.requestSource == .rateLimited, let at = learnedAt, now - at < .milliseconds(window) {
                return .known
            }
            return .unexplained
        }
        learned.requests = limit
        learned.requestWindowMs = window
        learned.requestSource = .rateLimited
        learnedAt = now
        confirmed = true
        return .lowered
    }

    /// The learned limits in words (`5 per 1s, 200000 units per 1s`), or `nil` when nothing was learned.
    var learnedDescription: String? {
        guard !learned.isEmpty else { return nil }
        var parts: [String] = []
        if let r = learned.requests, let w = learned.requestWindowMs {
            parts.append(
                "\(r) per \(Duration.milliseconds(w).shortDescription)"
                    + (learned.requestSource == .rateLimited ? " (from 429s)" : "")
            )
        }
        if let c = learned.maxConcurrent { parts.append("\(c) concurrent") }
        if let u = learned.units, let w = learned.unitWindowMs {
            parts.append("\(u) units per \(Duration.milliseconds(w).shortDescription)")
        }
        return parts.joined(separator: ", ")
    }
}

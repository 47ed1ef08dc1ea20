/// The rate-limit budget of one provider, as the coordinator announces it in WELCOME (protocol minor 1).
///
/// Every limit is optional; any combination may be set. A call costs one request, one concurrency slot
/// while it runs, and `units` of the unit dimension (tokens for `llm`, images for `image`, characters for
/// `tts`). Limits hold over **every sliding window** of the given length, as a strict provider counts them.
public struct ProviderBudget: Codable, Sendable, Equatable {
    /// The provider kind the budget covers: `llm`, `tts` or `image`.
    public var provider: String
    /// At most this many calls start in any sliding window of `requestWindowMs`.
    public var requests: Int?
    public var requestWindowMs: Int
    /// At most this many calls start in any sliding window of `requestWindowMs × burst / requests`
    /// (smooths a per-minute limit). `nil`: the whole window's worth may start at once.
    public var burst: Int?
    /// At most this many calls in flight at once.
    public var maxConcurrent: Int?
    /// At most this many units start in any sliding window of `unitWindowMs`.
    public var units: Int?
    public var unitWindowMs: Int

    public init(
        provider: String,
        requests: Int? = nil,
        requestWindowMs: Int = 1000,
        burst: Int? = nil,
        maxConcurrent: Int? = nil,
        units: Int? = nil,
        unitWindowMs: Int = 60_000
    ) {
        self.provider = provider
        self.requests = requests
        self.requestWindowMs = requestWindowMs
        self.burst = burst
        self.maxConcurrent = maxConcurrent
        self.units = units
        self.unitWindowMs = unitWindowMs
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        provider = try c.decode(String.self, forKey: .provider)
        requests = try c.decodeIfPresent(Int.self, forKey: .requests)
        requestWindowMs = try c.decodeIfPresent(Int.self, forKey: .requestWindowMs) ?? 1000
        burst = try c.decodeIfPresent(Int.self, forKey: .burst)
        maxConcurrent = try c.decodeIfPresent(Int.self, forKey: .maxConcurrent)
        units = try c.decodeIfPresent(Int.self, forKey: .units)
        unitWindowMs = try c.decodeIfPresent(Int.self, forKey: .unitWindowMs) ?? 60_000
    }

    /// No limit at all: a provider whose limits the coordinator is still learning (minor 4, §16.8).
    public var isUnlimited: Bool {
        requests == nil && burst == nil && maxConcurrent == nil && units == nil
    }
}

/// How the workers of a session draw on the budgets announced in WELCOME.
public enum BudgetMode: String, Codable, Sendable, CaseIterable {
    /// Every call needs a permit leased by the coordinator (LEASE_REQUEST / LEASE_GRANT).
    case leased
    /// Each worker enforces the budgets on its own calls, as the single-machine predecessor did (no lease
    /// messages). A comparison mode for benchmarks: the fleet as a whole may exceed the limits.
    case local
}

/// LEASE_REQUEST (worker → coordinator, 0x10): "I have `calls` calls to `provider` ready to start".
///
/// The coordinator answers with one or more LEASE_GRANTs (as the budget allows, in priority order) until
/// `calls` permits were granted, or with a refusal. The worker measures each permit's deadline from the
/// moment it *sent* this request, so no clock synchronisation is needed.
public struct LeaseRequest: Codable, Sendable, Equatable {
    /// Chosen by the worker, unique within its session; 1…128 bytes.
    public var requestId: String
    public var provider: String
    /// Permits wanted, 1…1000.
    public var calls: Int
    /// Units each call costs (0 when the budget has no unit limit).
    public var units: Int
    /// The episode the calls belong to: earlier-dispatched episodes are served first, so episodes finish
    /// in order and steadily. `nil` ranks after every episode.
    public var episodeId: String?

    public init(requestId: String, provider: String, calls: Int = 1, units: Int = 0, episodeId: String? = nil) {
        self.requestId = requestId
        self.provider = provider
        self.calls = calls
        self.units = units
        self.episodeId = episodeId
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        requestId = try c.decode(String.self, forKey: .requestId)
        provider = try c.decode(String.self, forKey: .provider)
        calls = try c.decodeIfPresent(Int.self, forKey: .calls) ?? 1
        units = try c.decodeIfPresent(Int.self, forKey: .units) ?? 0
        episodeId = try c.decodeIfPresent(String.self, forKey: .episodeId)
    }
}

/// LEASE_GRANT (coordinator → worker, 0x11): permits for (part of) a request, or its refusal.
public struct LeaseGrant: Codable, Sendable, Equatable {
    public var requestId: String
    /// Names the permits in LEASE_STARTED and LEASE_RELEASE. Empty in a refusal.
    public var leaseId: String
    public var provider: String
    /// Permits granted, 0…1000 (0 only in a refusal).
    public var calls: Int
    /// A permit is void `queuedMs + useWithinMs` after the worker *sent* the request: the worker must not
    /// start it later, and returns it. (The request's send time precedes its arrival, so this deadline is
    /// never later than the coordinator's, without synchronised clocks.)
    public var useWithinMs: Int
    /// How long the request waited in the coordinator's queue before this grant.
    public var queuedMs: Int
    /// Set when the request is refused for good (the rest of it is dropped): `circuit_open` (the provider
    /// answered with a billing, quota or auth error) or `unknown_provider` (no budget of that name).
    public var refused: Refusal?
    /// Human-readable detail of a refusal.
    public var detail: String

    public enum Refusal: String, Codable, Sendable {
        case circuitOpen = "circuit_open"
        case unknownProvider = "unknown_provider"
    }

    public init(
        requestId: String,
        leaseId: String,
        provider: String,
        calls: Int,
        useWithinMs: Int,
        queuedMs: Int = 0,
        refused: Refusal? = nil,
        detail: String = ""
    ) {
        self.requestId = requestId
        self.leaseId = leaseId
        self.provider = provider
        self.calls = calls
        self.useWithinMs = useWithinMs
        self.queuedMs = queuedMs
        self.refused = refused
        self.detail = detail
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        requestId = try c.decode(String.self, forKey: .requestId)
        leaseId = try c.decode(String.self, forKey: .leaseId)
        provider = try c.decode(String.self, forKey: .provider)
        calls = try c.decode(Int.self, forKey: .calls)
        useWithinMs = try c.decode(Int.self, forKey: .useWithinMs)
        queuedMs = try c.decodeIfPresent(Int.self, forKey: .queuedMs) ?? 0
        refused = try c.decodeIfPresent(Refusal.self, forKey: .refused)
        detail = try c.decodeIfPresent(String.self, forKey: .detail) ?? ""
    }
}

/// LEASE_STARTED (worker → coordinator, 0x12): `calls` permits of the lease were just used; sent right
/// before the requests leave for the provider. Lets the coordinator stop assuming the permits might still
/// be used later.
public struct LeaseStarted: Codable, Sendable, Equatable {
    public var leaseId: String
    public var calls: Int

    public init(leaseId: String, calls: Int = 1) {
        self.leaseId = leaseId
        self.calls = calls
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        leaseId = try c.decode(String.self, forKey: .leaseId)
        calls = try c.decodeIfPresent(Int.self, forKey: .calls) ?? 1
    }
}

/// LEASE_RELEASE (worker → coordinator, 0x13): `finished` started calls of the lease ended (their
/// concurrency slots are free) and `returned` permits were never used and never will be.
public struct LeaseRelease: Codable, Sendable, Equatable {
    public var leaseId: String
    public var finished: Int
    public var returned: Int
    /// Minor 4: the units the `finished` calls really used, all together, when the provider said (an LLM
    /// reply's `usage.total_tokens`). The coordinator counts these in the unit window instead of the
    /// estimate of the request. `nil`: keep the estimate.
    public var usedUnits: Int?

    public init(leaseId: String, finished: Int = 0, returned: Int = 0, usedUnits: Int? = nil) {
        self.leaseId = leaseId
        self.finished = finished
        self.returned = returned
        self.usedUnits = usedUnits
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        leaseId = try c.decode(String.self, forKey: .leaseId)
        finished = try c.decodeIfPresent(Int.self, forKey: .finished) ?? 0
        returned = try c.decodeIfPresent(Int.self, forKey: .returned) ?? 0
        usedUnits = try c.decodeIfPresent(Int.self, forKey: .usedUnits)
    }
}

/// LEASE_CANCEL (worker → coordinator, 0x14): the part of a request not granted yet is no longer wanted.
public struct LeaseCancel: Codable, Sendable, Equatable {
    public var requestId: String

    public init(requestId: String) {
        self.requestId = requestId
    }
}

/// PROVIDER_SIGNAL (worker → coordinator, 0x15): what a provider said about its limits or its account.
///
/// `quota_exceeded` and `auth_failed` are sent and honoured whether or not the provider has a budget; the
/// other kinds only for budgeted providers.
public struct ProviderSignal: Codable, Sendable, Equatable {
    public var provider: String
    public var kind: Kind
    /// The provider's `retry-after(-ms)` hint, when it gave one.
    public var retryAfterMs: Int?
    /// `x-ratelimit-remaining-requests`, when present.
    public var remaining: Int?
    /// `x-ratelimit-reset-requests` in milliseconds, when present. In `exhausted`, shortened by the call's
    /// duration; in `limits`, as the provider sent it.
    public var resetMs: Int?
    /// Human-readable detail (the provider's error message, redacted).
    public var detail: String
    /// Minor 4: `x-ratelimit-limit-requests`, the provider's request limit per window.
    public var limitRequests: Int?
    /// Minor 4: `x-ratelimit-limit-tokens`, the provider's unit (token) limit per window.
    public var limitUnits: Int?
    /// Minor 4: `x-ratelimit-remaining-tokens`.
    public var remainingUnits: Int?
    /// Minor 4: `x-ratelimit-reset-tokens` in milliseconds, as the provider sent it.
    public var resetUnitsMs: Int?
    /// Minor 4: ElevenLabs' `maximum-concurrent-requests`.
    public var maxConcurrent: Int?
    /// Minor 4: ElevenLabs' `current-concurrent-requests`.
    public var currentConcurrent: Int?

    public enum Kind: String, Codable, Sendable {
        /// A 429 for requests or tokens per window.
        case rateLimited = "rate_limited"
        /// A 429 for too many requests in flight.
        case concurrencyLimited = "concurrency_limited"
        /// A billing or quota error: no call will succeed until someone pays. Opens the provider's circuit for
        /// the whole fleet, with or without a budget.
        case quotaExceeded = "quota_exceeded"
        /// Minor 3: the provider refused the credentials (a bad or revoked key, a missing permission, a
        /// blocked account): no call will succeed until someone fixes the key. Opens the circuit like
        /// ``quotaExceeded``; never sent to a coordinator of minor < 3 (it gets `quota_exceeded` instead).
        case authFailed = "auth_failed"
        /// A successful call whose headers say the window is used up (`remaining: 0`).
        case exhausted
        /// Minor 4: a successful call's rate-limit headers (the `limit_*`, `remaining*`, `reset_*` and
        /// concurrency fields), sent when they tell something new, so that the coordinator learns the
        /// provider's limits. Never sent to a coordinator of minor < 4.
        case limits
    }

    public init(
        provider: String,
        kind: Kind,
        retryAfterMs: Int? = nil,
        remaining: Int? = nil,
        resetMs: Int? = nil,
        detail: String = "",
        limitRequests: Int? = nil,
        limitUnits: Int? = nil,
        remainingUnits: Int? = nil,
        resetUnitsMs: Int? = nil,
        maxConcurrent: Int? = nil,
        currentConcurrent: Int? = nil
    ) {
        self.provider = provider
        self.kind = kind
        self.retryAfterMs = retryAfterMs
        self.remaining = remaining
        self.resetMs = resetMs
        self.detail = detail
        self.limitRequests = limitRequests
        self.limitUnits = limitUnits
        self.remainingUnits = remainingUnits
        self.resetUnitsMs = resetUnitsMs
        self.maxConcurrent = maxConcurrent
        self.currentConcurrent = currentConcurrent
    }

    /// Whether the signal carries any of the minor-4 header fields.
    public var hasLimitFields: Bool {
        limitRequests != nil || limitUnits != nil || remainingUnits != nil || resetUnitsMs != nil
            || maxConcurrent != nil || currentConcurrent != nil
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        provider = try c.decode(String.self, forKey: .provider)
        kind = try c.decode(Kind.self, forKey: .kind)
        retryAfterMs = try c.decodeIfPresent(Int.self, forKey: .retryAfterMs)
        remaining = try c.decodeIfPresent(Int.self, forKey: .remaining)
        resetMs = try c.decodeIfPresent(Int.self, forKey: .resetMs)
        detail = try c.decodeIfPresent(String.self, forKey: .detail) ?? ""
        limitRequests = try c.decodeIfPresent(Int.self, forKey: .limitRequests)
        limitUnits = try c.decodeIfPresent(Int.self, forKey: .limitUnits)
        remainingUnits = try c.decodeIfPresent(Int.self, forKey: .remainingUnits)
        resetUnitsMs = try c.decodeIfPresent(Int.self, forKey: .resetUnitsMs)
        maxConcurrent = try c.decodeIfPresent(Int.self, forKey: .maxConcurrent)
        currentConcurrent = try c.decodeIfPresent(Int.self, forKey: .currentConcurrent)
    }
}

/// PROVIDER_PAUSE (coordinator → worker, 0x16): start no call to `provider` for `pauseMs` (0 lifts a
/// pause); with `circuitOpen`, no call at all until the batch ends: use placeholders. A circuit opened by a
/// billing or auth error (`reason` `quota_exceeded: …` or `auth_failed: …`) is sent to every session,
/// budget or not, and again to each session that registers later.
public struct ProviderPause: Codable, Sendable, Equatable {
    public var provider: String
    public var pauseMs: Int
    public var circuitOpen: Bool
    public var reason: String

    public init(provider: String, pauseMs: Int, circuitOpen: Bool = false, reason: String = "") {
        self.provider = provider
        self.pauseMs = pauseMs
        self.circuitOpen = circuitOpen
        self.reason = reason
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        provider = try c.decode(String.self, forKey: .provider)
        pauseMs = try c.decode(Int.self, forKey: .pauseMs)
        circuitOpen = try c.decodeIfPresent(Bool.self, forKey: .circuitOpen) ?? false
        reason = try c.decodeIfPresent(String.self, forKey: .reason) ?? ""
    }
}

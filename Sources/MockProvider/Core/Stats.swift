/// What happened to the requests of one endpoint, or of all endpoints of a provider.
///
/// Every request is counted once in `requests` and then exactly once in `accepted`, in one kind of `rejected`, or
/// in `bad_request` (400 or 413), so `requests == accepted + rejected_total + bad_request`. `malformed` and
/// `timeout` replies are 200s but count as rejected, not accepted, and hold no concurrency slot.
struct RequestCounters: Equatable, Sendable {
    var requests = 0
    var accepted = 0
    var badRequest = 0
    var rejected: [FailureKind: Int] = [:]
    var inFlight = 0
    var maxInFlight = 0
    var busiest: BusiestWindow

    init(window: Duration) {
        busiest = BusiestWindow(window: window)
    }

    mutating func recordAccepted(now: Duration) {
        requests += 1
        accepted += 1
        inFlight += 1
        maxInFlight = max(maxInFlight, inFlight)
        busiest.record(now: now)
    }

    mutating func recordFinished() {
        inFlight -= 1
    }

    mutating func recordRejected(_ kind: FailureKind) {
        requests += 1
        rejected[kind, default: 0] += 1
    }

    mutating func recordBadRequest() {
        requests += 1
        badRequest += 1
    }

    /// Zeroes everything except the requests now in flight, which still have to finish.
    mutating func reset() {
        let stillInFlight = inFlight
        self = RequestCounters(window: busiest.window)
        inFlight = stillInFlight
        maxInFlight = stillInFlight
    }

    var snapshot: StatsSnapshot.Counters {
        StatsSnapshot.Counters(
            requests: requests,
            accepted: accepted,
            badRequest: badRequest,
            rejected: Dictionary(uniqueKeysWithValues: FailureKind.allCases.map { ($0.rawValue, rejected[$0] ?? 0) }),
            rejectedTotal: rejected.values.reduce(0, +),
            inFlight: inFlight,
            maxInFlight: maxInFlight,
            maxAcceptedInWindow: busiest.maximum,
            windowMs: Int(busiest.window.milliseconds)
        )
    }
}

extension BusiestWindow: Equatable {
    static func == (lhs: BusiestWindow, rhs: BusiestWindow) -> Bool {
        lhs.window == rhs.window && lhs.maximum == rhs.maximum
    }
}

/// The body of `GET /stats`: `{"openai": {...}, "huggingface": {...}, "elevenlabs": {...}}`, each provider's
/// counters plus `endpoints`, the same counters per endpoint.
struct StatsSnapshot: Codable, Equatable, Sendable {
    struct Counters: Codable, Equatable, Sendable {
        var requests: Int
        var accepted: Int
        var badRequest: Int
        /// Every ``FailureKind`` raw value, zero included.
        var rejected: [String: Int]
        var rejectedTotal: Int
        var inFlight: Int
        var maxInFlight: Int
        /// The most requests accepted in any sliding window of `window_ms`.
        var maxAcceptedInWindow: Int
        var windowMs: Int

        enum CodingKeys: String, CodingKey {
            case requests, accepted, rejected
            case badRequest = "bad_request"
            case rejectedTotal = "rejected_total"
            case inFlight = "in_flight"
            case maxInFlight = "max_in_flight"
            case maxAcceptedInWindow = "max_accepted_in_window"
            case windowMs = "window_ms"
        }
    }

    struct ProviderStats: Codable, Equatable, Sendable {
        var total: Counters
        var endpoints: [String: Counters]

        // The provider totals sit beside `endpoints` in the JSON rather than under a key of their own.
        init(total: Counters, endpoints: [String: Counters]) {
            self.total = total
            self.endpoints = endpoints
        }

        private enum CodingKeys: String, CodingKey {
            case endpoints
        }

        init(from decoder: any Decoder) throws {
            total = try Counters(from: decoder)
            endpoints = try decoder.container(keyedBy: CodingKeys.self).decode(
                [String: Counters].self,
                forKey: .endpoints
            )
        }

        func encode(to encoder: any Encoder) throws {
            try total.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(endpoints, forKey: .endpoints)
        }
    }

    var openai: ProviderStats
    var huggingface: ProviderStats
    var elevenlabs: ProviderStats

    subscript(provider: Provider) -> ProviderStats {
        switch provider {
        case .openai: openai
        case .huggingface: huggingface
        case .elevenlabs: elevenlabs
        }
    }

    subscript(endpoint: Endpoint) -> Counters {
        self[endpoint.provider].endpoints[endpoint.rawValue]!
    }
}

extension Duration {
    /// Whole milliseconds, truncated.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000 + attoseconds / 1_000_000_000_000_000
    }

    /// Milliseconds with their fraction, as `t_ms` in `/stats/requests` gives them.
    var fractionalMilliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1_000 + Double(attoseconds) / 1_000_000_000_000_000
    }

    /// Milliseconds rounded up, so a wait of this long is never too short.
    var millisecondsRoundedUp: Int64 {
        let (seconds, attoseconds) = components
        let partial = attoseconds % 1_000_000_000_000_000 > 0 ? 1 : 0
        return seconds * 1_000 + attoseconds / 1_000_000_000_000_000 + Int64(partial)
    }

    /// What `retry-after-ms` says for a wait this long: milliseconds rounded up, at least 1.
    var retryAfterHeaderMs: Int64 { max(1, millisecondsRoundedUp) }

    /// Whole seconds rounded up.
    var secondsRoundedUp: Int64 {
        let (seconds, attoseconds) = components
        return seconds + (attoseconds > 0 ? 1 : 0)
    }

    /// Go's `time.Duration.String()` style at millisecond precision, as OpenAI's `x-ratelimit-reset-*` headers use:
    /// `0s`, `12ms`, `1s`, `1.5s`, `6m0s`, `1h2m3s`. Rounded up to the millisecond.
    var goStyle: String {
        let totalMs = max(0, millisecondsRoundedUp)
        if totalMs == 0 { return "0s" }
        if totalMs < 1_000 { return "\(totalMs)ms" }
        let hours = totalMs / 3_600_000
        let minutes = totalMs / 60_000 % 60
        let wholeSeconds = totalMs / 1_000 % 60
        let fraction = totalMs % 1_000
        var seconds = "\(wholeSeconds)"
        if fraction > 0 {
            var digits = String(fraction)
            digits = String(repeating: "0", count: 3 - digits.count) + digits
            while digits.hasSuffix("0") { digits.removeLast() }
            seconds += ".\(digits)"
        }
        if hours > 0 { return "\(hours)h\(minutes)m\(seconds)s" }
        if minutes > 0 { return "\(minutes)m\(seconds)s" }
        return "\(seconds)s"
    }
}

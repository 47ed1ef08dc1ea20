/// How the mock answered a request, as `/stats/requests` names it: `accepted`, `bad_request`, or the
/// ``FailureKind`` raw value (the keys of `rejected` in `/stats`).
enum RequestOutcome: Equatable, Sendable {
    case accepted
    /// Refused before admission: an unreadable, invalid or oversized body (400 or 413).
    case badRequest
    case failed(FailureKind)

    init(_ outcome: Admission.Outcome) {
        switch outcome {
        case .accepted: self = .accepted
        case .rejected(let rejection): self = .failed(rejection.kind)
        case .fault(let kind, _): self = .failed(kind)
        case .fixture(let fixture): self = fixture.outcome
        }
    }

    init?(name: String) {
        switch name {
        case "accepted": self = .accepted
        case "bad_request": self = .badRequest
        default:
            guard let kind = FailureKind(rawValue: name) else { return nil }
            self = .failed(kind)
        }
    }

    var name: String {
        switch self {
        case .accepted: "accepted"
        case .badRequest: "bad_request"
        case .failed(let kind): kind.rawValue
        }
    }
}

extension RequestOutcome: Codable {
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let name = try container.decode(String.self)
        guard let outcome = RequestOutcome(name: name) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "unknown outcome \(name)")
        }
        self = outcome
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(name)
    }
}

/// One request of `GET /stats/requests`: when the mock decided its outcome and what that outcome was.
struct RequestLogEntry: Codable, Equatable, Sendable {
    /// Milliseconds since the mock started, on the clock the limiter uses, with sub-millisecond precision.
    var tMs: Double
    var provider: Provider
    var endpoint: Endpoint
    var outcome: RequestOutcome
    /// The `retry-after-ms` header of the reply: set for `rate_limit` 429s, `nil` for every other reply.
    var retryAfterMs: Int?

    init(time: Duration, endpoint: Endpoint, outcome: RequestOutcome, retryAfterMs: Int? = nil) {
        tMs = time.fractionalMilliseconds
        provider = endpoint.provider
        self.endpoint = endpoint
        self.outcome = outcome
        self.retryAfterMs = retryAfterMs
    }

    /// The entry of a request admitted (or refused by a limit or an injected failure) at `time`.
    init(time: Duration, endpoint: Endpoint, admission: Admission.Outcome) {
        var retryAfterMs: Int?
        if case .rejected(let rejection) = admission, let retryAfter = rejection.announcedRetryAfter {
            retryAfterMs = Int(retryAfter.retryAfterHeaderMs)
        }
        self.init(time: time, endpoint: endpoint, outcome: RequestOutcome(admission), retryAfterMs: retryAfterMs)
    }

    enum CodingKeys: String, CodingKey {
        case provider, endpoint, outcome
        case tMs = "t_ms"
        case retryAfterMs = "retry_after_ms"
    }

    func encode(to encoder: any Encoder) throws {
        // `retry_after_ms` is written as null rather than left out.
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(tMs, forKey: .tMs)
        try container.encode(provider, forKey: .provider)
        try container.encode(endpoint, forKey: .endpoint)
        try container.encode(outcome, forKey: .outcome)
        try container.encode(retryAfterMs, forKey: .retryAfterMs)
    }
}

/// The body of `GET /stats/requests`: `{"dropped": N, "requests": [...]}`, oldest first.
struct RequestLogSnapshot: Codable, Equatable, Sendable {
    /// Entries evicted to keep the log bounded since the start or the last reset.
    var dropped: Int
    var requests: [RequestLogEntry]
}

/// The most recent requests to the provider routes, in the order the mock decided them, so their times never go
/// down. Bounded: past `capacity` entries the oldest is evicted and counted in `dropped`.
///
/// A value type with no clock and no lock, like ``ProviderState``; ``MockEngine`` keeps one behind its lock.
struct RequestLog: Sendable {
    static let defaultCapacity = 20_000

    let capacity: Int
    private var entries = RingBuffer<RequestLogEntry>()
    private(set) var dropped = 0

    init(capacity: Int = Self.defaultCapacity) {
        precondition(capacity > 0, "a request log needs a positive capacity")
        self.capacity = capacity
    }

    var count: Int { entries.count }

    mutating func append(_ entry: RequestLogEntry) {
        if entries.count == capacity {
            entries.removeFirst()
            dropped += 1
        }
        entries.append(entry)
    }

    /// Forgets every entry and the dropped count.
    mutating func reset() {
        entries.removeAll()
        dropped = 0
    }

    /// The entries with `t_ms` greater than `sinceMs` (all of them when `nil`), oldest first.
    func snapshot(sinceMs: Double? = nil) -> RequestLogSnapshot {
        var requests = entries.elements
        if let sinceMs {
            requests.removeAll { $0.tMs <= sinceMs }
        }
        return RequestLogSnapshot(dropped: dropped, requests: requests)
    }
}

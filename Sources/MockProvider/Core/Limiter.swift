/// A first-in first-out buffer that grows as needed and reuses its storage.
struct RingBuffer<Element> {
    private var storage: [Element?] = []
    private var head = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }
    var first: Element? { isEmpty ? nil : storage[head] }
    var last: Element? { isEmpty ? nil : storage[(head + count - 1) % storage.count] }
    /// Every element, oldest first.
    var elements: [Element] { (0..<count).map { storage[(head + $0) % storage.count]! } }

    mutating func append(_ element: Element) {
        if count == storage.count {
            grow()
        }
        storage[(head + count) % storage.count] = element
        count += 1
    }

    @discardableResult
    mutating func removeFirst() -> Element {
        precondition(!isEmpty, "removeFirst on an empty RingBuffer")
        let element = storage[head]!
        storage[head] = nil
        head = (head + 1) % storage.count
        count -= 1
        return element
    }

    mutating func removeAll() {
        storage = []
        head = 0
        count = 0
    }

    private mutating func grow() {
        var grown = [Element?](repeating: nil, count: max(16, storage.count * 2))
        for index in 0..<count {
            grown[index] = storage[(head + index) % storage.count]
        }
        storage = grown
        head = 0
    }
}

extension RingBuffer: Sendable where Element: Sendable {}

/// Allows at most `limit` acquisitions in any sliding window of length `window` (a sliding log: it keeps the
/// timestamps of the acquisitions still inside the window, so never more than `limit` of them).
///
/// A window is half-open, `(now - window, now]`: a request accepted at `t` stops counting at `t + window`.
/// Time is passed in (any monotonic origin); calls must not go back in time, and an earlier `now` is treated as the
/// latest one seen.
struct SlidingWindowLimiter: Sendable {
    enum Decision: Equatable {
        case accepted
        /// Over the limit; a request made `retryAfter` from now will be accepted.
        case rejected(retryAfter: Duration)
    }

    let limit: Int
    let window: Duration
    private var accepted = RingBuffer<Duration>()
    private var latest: Duration = .zero

    init(limit: Int, window: Duration) {
        precondition(limit > 0 && window > .zero, "a limiter needs a positive limit and window")
        self.limit = limit
        self.window = window
    }

    /// Accepts and records a request at `now`, or says how long until one would be accepted.
    mutating func acquire(now: Duration) -> Decision {
        let now = advance(to: now)
        if accepted.count >= limit, let oldest = accepted.first {
            return .rejected(retryAfter: oldest + window - now)
        }
        accepted.append(now)
        return .accepted
    }

    /// Requests still allowed in the window ending at `now`.
    mutating func remaining(now: Duration) -> Int {
        advance(to: now)
        return limit - accepted.count
    }

    /// Time until the whole budget is free again (the `x-ratelimit-reset-*` meaning), zero when it already is.
    mutating func timeUntilReset(now: Duration) -> Duration {
        let now = advance(to: now)
        guard let newest = accepted.last else { return .zero }
        return newest + window - now
    }

    @discardableResult
    private mutating func advance(to now: Duration) -> Duration {
        latest = max(latest, now)
        while let oldest = accepted.first, oldest <= latest - window {
            accepted.removeFirst()
        }
        return latest
    }
}

/// Counts requests in flight against an optional ceiling.
struct ConcurrencyLimiter: Sendable {
    /// `nil` means no ceiling.
    var limit: Int?
    private(set) var inFlight = 0

    init(limit: Int?) {
        self.limit = limit
    }

    /// Takes a slot, or returns `false` when all are taken.
    mutating func acquire() -> Bool {
        if let limit, inFlight >= limit {
            return false
        }
        inFlight += 1
        return true
    }

    mutating func release() {
        precondition(inFlight > 0, "released a slot that was not taken")
        inFlight -= 1
    }
}

/// A sliding sum of weighted events (tokens) over a window; reported, not enforced.
struct SlidingSum: Sendable {
    /// Beyond this many events in one window the oldest are forgotten early, so memory stays bounded.
    static let capacity = 100_000

    var window: Duration
    private var events = RingBuffer<(time: Duration, amount: Int)>()
    private(set) var total = 0
    private var latest: Duration = .zero

    init(window: Duration) {
        self.window = window
    }

    mutating func add(_ amount: Int, now: Duration) {
        advance(to: now)
        if events.count == Self.capacity {
            total -= events.removeFirst().amount
        }
        events.append((latest, amount))
        total += amount
    }

    /// The sum over the window ending at `now`.
    mutating func sum(now: Duration) -> Int {
        advance(to: now)
        return total
    }

    /// Time until every event in the window has left it.
    mutating func timeUntilEmpty(now: Duration) -> Duration {
        advance(to: now)
        guard let newest = events.last else { return .zero }
        return newest.time + window - latest
    }

    private mutating func advance(to now: Duration) {
        latest = max(latest, now)
        while let oldest = events.first, oldest.time <= latest - window {
            total -= events.removeFirst().amount
        }
    }
}

/// The most events seen in any sliding window of length `window`, computed exactly: the busiest window always ends
/// at an event, so after each event the count of events in `(t - window, t]` is a candidate.
struct BusiestWindow: Sendable {
    /// Beyond this many events in one window the result is capped at this number and memory stays bounded.
    static let capacity = 100_000

    var window: Duration
    private var times = RingBuffer<Duration>()
    private var latest: Duration = .zero
    private(set) var maximum = 0

    init(window: Duration) {
        self.window = window
    }

    mutating func record(now: Duration) {
        latest = max(latest, now)
        while let oldest = times.first, oldest <= latest - window {
            times.removeFirst()
        }
        if times.count == Self.capacity {
            times.removeFirst()
        }
        times.append(latest)
        maximum = max(maximum, times.count)
    }

    mutating func reset() {
        times.removeAll()
        maximum = 0
    }
}

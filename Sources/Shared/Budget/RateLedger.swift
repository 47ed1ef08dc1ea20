import Protocol

/// The budget of one provider as a pure state machine: which calls may start now, over every sliding
/// window, with concurrency slots, an adaptive (AIMD) rate, pauses and a billing circuit breaker.
///
/// Time is passed in (`now`), never read, so tests step it exactly. The coordinator runs one ledger per
/// provider for the whole fleet (``LeaseManager``); a worker in the `local` comparison mode runs one for
/// itself.
///
/// ## Why no window can overshoot
/// A permit is a right to start one call. The ledger does not know when the worker will use it, only a
/// latest moment: the grant time plus `useWithin` (the worker measures that deadline from the moment it
/// *sent* its request, which is earlier, so no clock sync is needed), tightened to the moment the
/// coordinator hears "started" once it does. A new permit is granted at `now` only if the permits whose
/// latest use lies within `window + margin` before `now`, plus the new one, fit the limit. Take any window
/// at the provider and the last-granted call `i` in it: every other call `j` in it arrived after
/// `start(i) − window ≥ now(i) − window`, and before `latest(j) + margin` (`margin` bounds how much later the
/// provider sees a call than the coordinator hears of it), so `j` was counted when `i` was granted. Hence
/// no window sees more than the limit, however many workers share it, and a dead worker's unused permits
/// simply age out.
public struct RateLedger: Sendable {
    public typealias Instant = ContinuousClock.Instant

    /// Identifies one permit within the ledger.
    public typealias PermitID = UInt64

    /// The limits and the tuning the ledger works with.
    public struct Settings: Sendable, Equatable {
        public var budget: ProviderBudget
        /// Added to every window: how much later the provider may see a call than the ledger hears it
        /// started (network and scheduling jitter). The default is 15 ms.
        public var margin: Duration
        /// A slot whose holder is gone (worker dropped), or a permit never reported started, is reclaimed
        /// this long after it was last vouched for. Must exceed the time a worker takes to notice it lost
        /// the coordinator (liveness × heartbeat) plus one network delay. The default is 5 s.
        public var slotTTL: Duration
        /// Multiplicative decrease on a rate or concurrency signal (AIMD's β). The default is 0.7.
        public var decrease: Double
        /// Additive increase per clean window, as a share of the configured rate. The default is 0.05.
        public var increase: Double

        public init(
            budget: ProviderBudget,
            margin: Duration = .milliseconds(15),
            slotTTL: Duration = .seconds(5),
            decrease: Double = 0.7,
            increase: Double = 0.05
        ) {
            self.budget = budget
            self.margin = margin
            self.slotTTL = slotTTL
            self.decrease = decrease
            self.increase = increase
        }
    }

    /// Why a permit cannot be granted right now.
    public enum Block: Sendable, Equatable {
        case circuitOpen
        case paused(until: Instant)
        case concurrency
        case requests
        case burst
        case units
    }

    struct Permit: Sendable {
        var granted: Instant
        /// The latest moment the call can start: grant + useWithin until it is heard started, then that moment.
        var latestStart: Instant
        var units: Int
        var started = false
        /// Holds a concurrency slot until finished or returned, or until ``slotExpiry``.
        var holdsSlot = true
        /// When a held slot comes back without a release (dropped worker, permit never started).
        var slotExpiry: Instant?
    }

    public private(set) var settings: Settings
    /// Live permits: still inside a window, or holding a slot.
    private(set) var permits: [PermitID: Permit] = [:]
    private var nextID: PermitID = 1

    /// 1 = the configured limits; lowered by rate signals, raised by clean windows.
    public private(set) var rateFactor: Double = 1
    /// A concurrency ceiling learnt from concurrency 429s (below the configured one, if any).
    public private(set) var learnedConcurrency: Int?
    /// The in-flight count that drew the last concurrency 429, when no ceiling is configured.
    private var concurrencyCeiling: Int?
    public private(set) var pausedUntil: Instant?
    public private(set) var circuitOpen = false
    /// Why the circuit opened.
    public private(set) var circuitReason = ""
    /// The last signal that changed the budget (for "one signal per window").
    private var lastSignal: Instant?
    /// The last additive increase.
    private var lastIncrease: Instant?

    public private(set) var stats = Stats()

    /// What the ledger did, for summaries and metrics.
    public struct Stats: Sendable, Equatable, Codable {
        public var granted = 0
        public var started = 0
        public var returned = 0
        public var decreases = 0
        public var pauses = 0
        public var slotsReclaimed = 0
        public var peakInFlight = 0
        public init() {}
    }

    public init(_ settings: Settings) {
        self.settings = settings
    }

    // MARK: - Effective limits

    private var requestWindow: Duration { .milliseconds(settings.budget.requestWindowMs) }
    private var unitWindow: Duration { .milliseconds(settings.budget.unitWindowMs) }

    /// Requests per window after AIMD, at least 1; `nil` when unlimited.
    public var effectiveRequests: Int? {
        settings.budget.requests.map { max(1, Int((Double($0) * rateFactor).rounded(.down))) }
    }

    public var effectiveUnits: Int? {
        settings.budget.units.map { max(1, Int((Double($0) * rateFactor).rounded(.down))) }
    }

    /// The burst window and its limit: `burst` calls per `window × burst / requests`.
    private var burstRule: (limit: Int, window: Duration)? {
        guard let burst = settings.budget.burst, let requests = settings.budget.requests, burst < requests else {
            return nil
        }
        let window = requestWindow * (Double(burst) / Double(requests))
        return (max(1, Int((Double(burst) * rateFactor).rounded(.down))), window)
    }

    public var effectiveConcurrency: Int? {
        switch (settings.budget.maxConcurrent, learnedConcurrency) {
        case (let c?, let l?): min(c, l)
        case (let c?, nil): c
        case (nil, let l?): l
        case (nil, nil): nil
        }
    }

    /// Slots held right now.
    public var inFlight: Int { permits.values.count { $0.holdsSlot } }

    /// Calls counted in the request window at `now` (started, or granted and not yet started), for
    /// progress displays and metrics.
    public func callsInWindow(now: Instant) -> Int {
        let horizon = requestWindow + settings.margin
        return permits.values.count { $0.latestStart + horizon > now }
    }

    /// Whether the provider is paused at `now`, or its circuit is open.
    public func isHeld(now: Instant) -> Bool {
        circuitOpen || (pausedUntil.map { $0 > now } ?? false)
    }

    // MARK: - Granting

    /// Whether one call costing `units` may start at `now`, and if not, why.
    public func check(units: Int, now: Instant) -> Block? {
        if circuitOpen { return .circuitOpen }
        if let until = pausedUntil, until > now { return .paused(until: until) }
        if let cap = effectiveConcurrency, inFlight + 1 > cap { return .concurrency }
        let margin = settings.margin
        if let limit = effectiveRequests {
            let horizon = requestWindow + margin
            if permits.values.count(where: { $0.latestStart + horizon > now }) + 1 > limit { return .requests }
        }
        if let (limit, window) = burstRule {
            let horizon = window + margin
            if permits.values.count(where: { $0.latestStart + horizon > now }) + 1 > limit { return .burst }
        }
        if let limit = effectiveUnits, units > 0 {
            let horizon = unitWindow + margin
            let used = permits.values.reduce(0) { $0 + ($1.latestStart + horizon > now ? $1.units : 0) }
            // A call dearer than the whole budget may start alone in an empty window; it would never fit.
            if used > 0, used + units > limit { return .units }
        }
        return nil
    }

    /// Grants one permit at `now` if ``check(units:now:)`` allows it.
    ///
    /// - Parameter useWithin: the worker must start the call within this time of asking.
    public mutating func grant(units: Int, useWithin: Duration, now: Instant) -> PermitID? {
        advance(to: now)
        guard check(units: units, now: now) == nil else { return nil }
        let id = nextID
        nextID += 1
        let latest = now + useWithin
        permits[id] = Permit(granted: now, latestStart: latest, units: units, slotExpiry: latest + settings.slotTTL)
        stats.granted += 1
        stats.peakInFlight = max(stats.peakInFlight, inFlight)
        return id
    }

    /// The worker said the call started: it counts in windows from now on, not from its deadline.
    public mutating func started(_ id: PermitID, now: Instant) {
        guard var permit = permits[id], !permit.started else { return }
        permit.started = true
        permit.latestStart = min(permit.latestStart, now)
        if permit.holdsSlot { permit.slotExpiry = nil }
        permits[id] = permit
        stats.started += 1
    }

    /// The call ended: its slot is free. It still counts in the windows it started in, with `usedUnits`
    /// instead of the estimate it was granted with when the provider said what it really used.
    public mutating func finished(_ id: PermitID, usedUnits: Int? = nil, now: Instant) {
        guard var permit = permits[id] else { return }
        permit.holdsSlot = false
        permit.slotExpiry = nil
        if let usedUnits { permit.units = max(0, usedUnits) }
        permits[id] = permit
        advance(to: now)
    }

    /// Units counted in the unit window at `now` (estimates of calls not finished, actual use of the others).
    public func unitsInWindow(now: Instant) -> Int {
        let horizon = unitWindow + settings.margin
        return permits.values.reduce(0) { $0 + ($1.latestStart + horizon > now ? $1.units : 0) }
    }

    /// Replaces the limits (a limit learned from the provider, ``LimitLearner``): every permit granted so
    /// far keeps counting in the new windows, so lowering a limit takes effect at once.
    public mutating func updateBudget(_ budget: ProviderBudget, now: Instant) {
        guard budget != settings.budget else { return }
        settings.budget = budget
        advance(to: now)
    }

    /// The permit was never used and never will be: it leaves every window and frees its slot.
    public mutating func returned(_ id: PermitID, now: Instant) {
        guard let permit = permits[id] else { return }
        if permit.started {
            finished(id, now: now)
            return
        }
        permits[id] = nil
        stats.returned += 1
        advance(to: now)
    }

    /// The permit's holder is gone without a word (its worker was dropped): the permit keeps counting
    /// until its deadline, and its slot comes back only `slotTTL` after `lastVouched` (the last time the
    /// worker was heard), since the call may still be running at the provider.
    public mutating func abandoned(_ id: PermitID, lastVouched: Instant, now: Instant) {
        guard var permit = permits[id] else { return }
        if permit.holdsSlot {
            let expiry = lastVouched + settings.slotTTL
            permit.slotExpiry = min(permit.slotExpiry ?? expiry, expiry)
            if !permit.started { permit.slotExpiry = max(permit.slotExpiry!, permit.latestStart) }
        }
        permits[id] = permit
        advance(to: now)
    }

    /// Calls a worker started before this ledger existed (from its HELLO after a coordinator restart):
    /// they count in the windows as if granted and finished here.
    public mutating func seed(startedAt instants: [Instant], now: Instant) {
        for instant in instants where instant <= now {
            let id = nextID
            nextID += 1
            permits[id] = Permit(granted: instant, latestStart: instant, units: 0, started: true, holdsSlot: false)
        }
        advance(to: now)
    }

    /// Drops permits that no window can see any more, reclaims expired slots and applies AIMD recovery.
    public mutating func advance(to now: Instant) {
        let horizon = max(requestWindow, settings.budget.units == nil ? .zero : unitWindow) + settings.margin
        for (id, var permit) in permits {
            if permit.holdsSlot, let expiry = permit.slotExpiry, expiry <= now {
                permit.holdsSlot = false
                permit.slotExpiry = nil
                stats.slotsReclaimed += 1
                permits[id] = permit
            }
            if !permit.holdsSlot, permit.latestStart + horizon <= now {
                permits[id] = nil
            }
        }
        if let until = pausedUntil, until <= now { pausedUntil = nil }
        recover(now: now)
    }

    /// The earliest moment after `now` at which a blocked grant might become possible (a permit leaving a
    /// window, a slot expiring, a pause ending), or `nil` if nothing will change by itself.
    public func nextChange(after now: Instant) -> Instant? {
        var best: Instant?
        func consider(_ t: Instant) {
            if t > now, best.map({ t < $0 }) ?? true { best = t }
        }
        if circuitOpen { return nil }
        if let until = pausedUntil { consider(until) }
        let margin = settings.margin
        let burstWindow = burstRule?.window
        for permit in permits.values {
            if settings.budget.requests != nil { consider(permit.latestStart + requestWindow + margin) }
            if let burstWindow { consider(permit.latestStart + burstWindow + margin) }
            if settings.budget.units != nil, permit.units > 0 { consider(permit.latestStart + unitWindow + margin) }
            if permit.holdsSlot, let expiry = permit.slotExpiry { consider(expiry) }
        }
        if rateFactor < 1 || learnedConcurrency != nil {
            consider((lastIncrease ?? lastSignal ?? now) + requestWindow)
        }
        return best
    }

    // MARK: - Provider signals

    /// What a signal did to the budget.
    public enum Reaction: Sendable, Equatable {
        /// Ignored: a signal of the same window was already acted on.
        case none
        case decreased(factor: Double, concurrency: Int?)
        case paused(until: Instant)
        case decreasedAndPaused(factor: Double, concurrency: Int?, until: Instant)
        case circuitOpened
    }

    /// Reacts to what a provider said: a rate 429 lowers the rate (once per window), a concurrency 429 the
    /// concurrency; `retry-after` or an exhausted window pauses every call; a billing or auth error opens the
    /// circuit.
    ///
    /// - Parameter decrease: `false` when the caller already lowered the limits to what the provider said
    ///   (``updateBudget(_:now:)``): a rate 429 then only pauses.
    public mutating func signal(
        _ kind: ProviderSignal.Kind,
        retryAfter: Duration?,
        reset: Duration?,
        detail: String = "",
        decrease: Bool = true,
        now: Instant
    ) -> Reaction {
        advance(to: now)
        switch kind {
        case .limits:
            return .none
        case .quotaExceeded, .authFailed:
            if circuitOpen { return .none }
            circuitOpen = true
            circuitReason = detail
            return .circuitOpened
        case .exhausted:
            guard let reset, reset > .zero else { return .none }
            return pause(until: now + reset) ? .paused(until: now + reset) : .none
        case .rateLimited, .concurrencyLimited:
            var decreased = false
            if decrease, lastSignal.map({ now - $0 >= requestWindow }) ?? true {
                decreased = true
                lastSignal = now
                lastIncrease = nil
                stats.decreases += 1
                if kind == .rateLimited {
                    rateFactor = max(0.01, rateFactor * settings.decrease)
                } else {
                    let current = max(1, inFlight)
                    if settings.budget.maxConcurrent == nil { concurrencyCeiling = max(1, current - 1) }
                    learnedConcurrency = max(
                        1,
                        Int(
                            (Double(min(current, effectiveConcurrency ?? current))
                                * settings.decrease).rounded(.down)
                        )
                    )
                }
            }
            let wait = retryAfter ?? reset
            var pausedUntil: Instant?
            if let wait, wait > .zero, pause(until: now + wait) { pausedUntil = now + wait }
            switch (decreased, pausedUntil) {
            case (false, nil): return .none
            case (true, nil): return .decreased(factor: rateFactor, concurrency: learnedConcurrency)
            case (false, let until?): return .paused(until: until)
            case (true, let until?):
                return .decreasedAndPaused(factor: rateFactor, concurrency: learnedConcurrency, until: until)
            }
        }
    }

    private mutating func pause(until: Instant) -> Bool {
        if let current = pausedUntil, current >= until { return false }
        pausedUntil = until
        stats.pauses += 1
        return true
    }

    /// One additive step per clean window since the last signal, up to the configured limits.
    private mutating func recover(now: Instant) {
        guard rateFactor < 1 || learnedConcurrency != nil, let signal = lastSignal else { return }
        var from = lastIncrease ?? signal
        while now - from >= requestWindow, rateFactor < 1 || learnedConcurrency != nil {
            from = from + requestWindow
            rateFactor = min(1, rateFactor + settings.increase)
            if rateFactor > 0.999 { rateFactor = 1 }
            if let learned = learnedConcurrency {
                let next = learned + 1
                if let cap = settings.budget.maxConcurrent, next >= cap {
                    learnedConcurrency = nil
                } else if let ceiling = concurrencyCeiling, next >= ceiling {
                    learnedConcurrency = ceiling
                    if rateFactor >= 1 { break }
                } else {
                    learnedConcurrency = next
                }
            }
            lastIncrease = from
        }
    }
}

import Shared
import Synchronization

/// What one provider call cost: every billed answer of the call (a repair request, a retry that got an
/// answer) is charged to it, at the worker's ``PriceTable``.
///
/// One meter per call, shared by the call's tasks; the pipeline reads it when the call ends and writes
/// the cost into the call's `call_end` trace event. Under a spend cap the meter also draws on the
/// attempt's ``SpendAllowance``: a provider ``reserve(_:)``s the expected cost of each request before
/// sending it, and the answer's ``charge(_:)`` replaces the estimate with what it cost.
final class CallMeter: Sendable {
    private struct State {
        var micros = 0
        var charged = false
        var unpriced: String?
        /// Estimates reserved on the allowance and not yet replaced by a charge, oldest first.
        var reserved: [Int] = []
        /// The next charge is for an answer the asset store gave: saved, not spent.
        var reusedNext = false
        var reused = false
        var savedMicros = 0
        /// Paid answers of this call, offered to the asset store once the call succeeds.
        var offers: [AssetExchange.Offer] = []
    }

    private let prices: PriceTable
    private let allowance: SpendAllowance?
    private let state = Mutex(State())

    init(prices: PriceTable, allowance: SpendAllowance? = nil) {
        self.prices = prices
        self.allowance = allowance
    }

    /// Before a request leaves: takes its expected cost from the attempt's allowance, or throws
    /// ``ProviderError/Kind/spendCap`` when the allowance cannot cover it (the request is then not sent).
    /// A model without a price reserves nothing: its cost cannot be known, so it cannot be capped.
    func reserve(_ usage: PriceTable.Usage) throws(ProviderError) {
        guard let allowance, let estimate = prices.costMicros(of: usage) else { return }
        guard allowance.reserve(estimate) else {
            throw ProviderError(
                .spendCap,
                "spend cap: this attempt's allowance of \(PriceTable.dollars(allowance.limitMicros)) cannot cover "
                    + "another \(PriceTable.dollars(estimate)) call (\(PriceTable.dollars(allowance.usedMicros)) used)"
            )
        }
        state.withLock { $0.reserved.append(estimate) }
    }

    /// A billed answer. A model without a price is remembered (the call's cost is then unknown).
    /// An answer that came from the asset store (``markReused()``) is charged as saved: it costs nothing.
    func charge(_ usage: PriceTable.Usage) {
        let cost = prices.costMicros(of: usage)
        let (estimate, spent): (Int?, Int) = state.withLock {
            $0.charged = true
            let estimate = $0.reserved.isEmpty ? nil : $0.reserved.removeFirst()
            if $0.reusedNext {
                $0.reusedNext = false
                $0.savedMicros += cost ?? 0
                return (estimate, 0)
            }
            if let cost { $0.micros += cost } else { $0.unpriced = usage.model }
            return (estimate, cost ?? 0)
        }
        allowance?.settle(reserved: estimate ?? 0, spent: spent)
    }

    /// The answer about to be charged came from the asset store (``HTTPCaller`` says so before returning
    /// it): its charge counts as saved.
    func markReused() {
        state.withLock {
            $0.reusedNext = true
            $0.reused = true
        }
    }

    /// Keeps a paid answer to offer to the asset store if the call succeeds.
    func keep(_ offer: AssetExchange.Offer) {
        state.withLock { $0.offers.append(offer) }
    }

    /// The paid answers kept so far, handed over once.
    func takeOffers() -> [AssetExchange.Offer] {
        state.withLock { s in
            defer { s.offers = [] }
            return s.offers
        }
    }

    /// `nil` unless an answer of the call came from the asset store; then what those answers would have
    /// cost, in micro-dollars.
    var savedMicros: Int? { state.withLock { $0.reused ? $0.savedMicros : nil } }

    /// A call that costs nothing (the offline providers).
    func free() {
        state.withLock { $0.charged = true }
    }

    /// The call ended: estimates of requests that got no billed answer go back to the allowance.
    func finish() {
        let left = state.withLock {
            let left = $0.reserved.reduce(0, +)
            $0.reserved = []
            return left
        }
        if left > 0 { allowance?.settle(reserved: left, spent: 0) }
    }

    /// The call's cost in micro-dollars: `nil` when nothing was charged (the call got no billed answer)
    /// or a model had no price.
    var costMicros: Int? {
        state.withLock { $0.charged && $0.unpriced == nil ? $0.micros : nil }
    }

    /// The model that had no price, if one had none.
    var unpricedModel: String? { state.withLock { $0.unpriced } }
}

/// The spend an attempt may make (JOB `spend_allowance_micros`, leased from the batch's `--max-spend`),
/// shared by the attempt's concurrent calls: what they were charged plus what in-flight requests
/// reserved never passes ``limitMicros``.
final class SpendAllowance: Sendable {
    let limitMicros: Int
    private let state = Mutex((spent: 0, reserved: 0))

    init(limitMicros: Int) {
        self.limitMicros = max(0, limitMicros)
    }

    /// Reserves `micros` if they fit.
    func reserve(_ micros: Int) -> Bool {
        state.withLock {
            guard $0.spent + $0.reserved + micros <= limitMicros else { return false }
            $0.reserved += micros
            return true
        }
    }

    /// Replaces a reservation by what was spent.
    func settle(reserved: Int, spent: Int) {
        state.withLock {
            $0.reserved = max(0, $0.reserved - reserved)
            $0.spent += spent
        }
    }

    /// Charged plus reserved.
    var usedMicros: Int { state.withLock { $0.spent + $0.reserved } }
}

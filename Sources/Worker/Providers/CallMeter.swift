import Shared
import Synchronization

/// What one provider call cost: every billed answer of the call (a repair request, a retry that got an
/// answer) is charged to it, at the worker's ``PriceTable``.
///
/// One meter per call, shared by the call's tasks; the pipeline reads it when the call ends and writes
/// the cost into the call's `call_end` trace event.
final class CallMeter: Sendable {
    private struct State {
        var micros = 0
        var charged = false
        var unpriced: String?
    }

    private let prices: PriceTable
    private let state = Mutex(State())

    init(prices: PriceTable) {
        self.prices = prices
    }

    /// A billed answer. A model without a price is remembered (the call's cost is then unknown).
    func charge(_ usage: PriceTable.Usage) {
        let cost = prices.costMicros(of: usage)
        state.withLock {
            $0.charged = true
            if let cost { $0.micros += cost } else { $0.unpriced = usage.model }
        }
    }

    /// A call that costs nothing (the offline providers).
    func free() {
        state.withLock { $0.charged = true }
    }

    /// The call's cost in micro-dollars: `nil` when nothing was charged (the call got no billed answer)
    /// or a model had no price.
    var costMicros: Int? {
        state.withLock { $0.charged && $0.unpriced == nil ? $0.micros : nil }
    }

    /// The model that had no price, if one had none.
    var unpricedModel: String? { state.withLock { $0.unpriced } }
}

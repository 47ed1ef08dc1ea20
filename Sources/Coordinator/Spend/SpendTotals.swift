import Protocol

/// What a batch's calls cost, from the `cost_micros` of the `call_end` events in the workers' RESULTs
/// (PROTOCOL §9), by provider kind (`llm`, `tts`, `image`: the prefix of the call's name).
///
/// Every reported attempt counts once, fenced ones included (their calls were paid for); an attempt
/// whose worker died before it reported is not known here.
struct SpendTotals: Sendable, Equatable {
    /// Micro-dollars by provider kind.
    private(set) var byProvider: [String: Int] = [:]
    /// Calls that ended without a price (their model is not in the worker's price table).
    private(set) var unpricedCalls = 0
    /// Calls with a cost (zero-cost offline calls included).
    private(set) var pricedCalls = 0
    /// Calls answered from the asset store (their `call_end` has `saved_micros`), and what they would
    /// have cost.
    private(set) var reusedCalls = 0
    private(set) var savedMicros = 0
    /// Attempts already counted, so that a RESULT sent again (after a reconnect) is not counted twice.
    /// Only attempts that cost something are remembered.
    private var counted: Set<JobRef> = []

    var totalMicros: Int { byProvider.values.reduce(0, +) }

    /// Counts a RESULT's calls once per attempt; returns what the attempt cost (0 when already counted).
    mutating func record(_ result: EpisodeResult) -> Int {
        guard !counted.contains(result.ref) else { return 0 }
        var cost = 0
        var byKind: [String: Int] = [:]
        var priced = 0
        var unpriced = 0
        var reused = 0
        var saved = 0
        for event in result.trace where event.event == .callEnd {
            let kind = event.name.split(separator: ":", maxSplits: 1).first.map(String.init) ?? event.name
            guard kind != "render" else { continue }
            if let micros = event.savedMicros {
                reused += 1
                saved += micros
            }
            if let micros = event.costMicros {
                priced += 1
                cost += micros
                byKind[kind, default: 0] += micros
            } else {
                unpriced += 1
            }
        }
        if cost > 0 || reused > 0 { counted.insert(result.ref) }
        reusedCalls += reused
        savedMicros += saved
        for (kind, micros) in byKind where micros > 0 { byProvider[kind, default: 0] += micros }
        pricedCalls += priced
        unpricedCalls += unpriced
        return cost
    }
}

import Protocol
import Shared

/// The batch's spend cap (`--max-spend`), leased out to attempts like rate permits: each attempt starts
/// with an allowance (JOB `spend_allowance_micros`) that its worker never lets its calls pass, and the
/// allowances of the attempts running plus what was spent never pass the cap. So the fleet as a whole
/// stays under the cap however many workers it has; it can go over only by what a call cost beyond the
/// estimate its worker reserved for it (a chat reply is reserved at its whole token cap, so only a price
/// table that disagrees with the provider's bill).
///
/// A new attempt starts only when what is left covers what an episode is expected to cost: the most an
/// attempt cost so far, or `--expected-episode-cost` before any attempt finished. With neither, one
/// attempt runs alone until its cost is known. Its allowance is the expectation × ``headroom`` (an
/// episode with more lines than the others still finishes), at most what is left. Once nothing can
/// start and nothing runs, the cap is reached: the episodes not started end as `capped`.
///
/// Pure: the dispatcher calls it with the events; no clock.
struct SpendCap: Sendable, Equatable {
    let capMicros: Int
    /// An allowance is the expected cost times this.
    let headroom: Double
    /// Reported costs of finished attempts, plus the allowances of attempts lost with their worker (their
    /// calls may have been billed; replaced by the real cost if their RESULT still arrives).
    private(set) var spentMicros = 0
    /// Allowances of the attempts running.
    private(set) var allowances: [JobRef: Int] = [:]
    /// Allowances of lost attempts, counted in ``spentMicros`` until their RESULT says what they cost.
    private var forfeited: [JobRef: Int] = [:]
    /// What an episode is expected to cost; `nil` until an attempt succeeded (or the user said).
    private(set) var expectedMicros: Int?
    /// Where the cap comes from when it is not `--max-spend` (`serve --max-spend-per-day`: what is left of
    /// the day's), for the capped episodes' errors and the log line.
    var origin: String?

    init(capMicros: Int, expectedEpisodeMicros: Int? = nil, headroom: Double = 1.5) {
        self.capMicros = max(0, capMicros)
        self.expectedMicros = expectedEpisodeMicros
        self.headroom = max(1, headroom)
    }

    var reservedMicros: Int { allowances.values.reduce(0, +) }
    /// What is neither spent nor leased out.
    var freeMicros: Int { max(0, capMicros - spentMicros - reservedMicros) }

    /// The allowance a new attempt gets now, or `nil` when it cannot start.
    func allowanceForNewAttempt() -> Int? {
        let free = freeMicros
        guard let expected = expectedMicros else {
            // Nothing known yet: one attempt at a time, with all that is left.
            return allowances.isEmpty && free > 0 ? free : nil
        }
        guard free >= expected, free > 0 || expected == 0 else { return nil }
        return expected == 0 ? free : min(free, Int((Double(expected) * headroom).rounded(.up)))
    }

    /// Whether the cap stops the batch: no attempt can start and none runs (so none will free any).
    var isReached: Bool { allowances.isEmpty && allowanceForNewAttempt() == nil }

    /// What a resumed batch's episodes cost before the restart.
    mutating func seed(spentMicros: Int) {
        self.spentMicros += max(0, spentMicros)
    }

    mutating func started(_ ref: JobRef, allowance: Int) {
        allowances[ref] = allowance
    }

    /// A RESULT reported what an attempt cost (0 when it was already counted): its allowance goes back,
    /// its cost is spent, and a success teaches what an episode costs.
    mutating func finished(_ ref: JobRef, costMicros: Int, succeeded: Bool) {
        allowances.removeValue(forKey: ref)
        if let lost = forfeited.removeValue(forKey: ref) { spentMicros -= lost }
        spentMicros += costMicros
        if succeeded { expectedMicros = max(expectedMicros ?? 0, costMicros) }
    }

    /// An attempt lost with its worker: what it may have spent is its whole allowance, until its RESULT
    /// (if it ever comes) says otherwise.
    mutating func lost(_ ref: JobRef) {
        guard let allowance = allowances.removeValue(forKey: ref) else { return }
        forfeited[ref] = allowance
        spentMicros += allowance
    }

    /// For people: "$1.20 of $5.00 spent, $0.90 leased to 3 attempts".
    var description: String {
        "\(PriceTable.dollars(spentMicros)) of \(PriceTable.dollars(capMicros)) spent, "
            + "\(PriceTable.dollars(reservedMicros)) leased to \(allowances.count) attempt(s)"
            + (origin.map { "; the cap is \($0)" } ?? "")
    }
}

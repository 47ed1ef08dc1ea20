import Protocol
import Shared

/// The fleet's rate-limit budgets and how the coordinator leases them (`--budget`, `budgets:` in the
/// settings file).
struct LeaseSettings: Sendable, Equatable {
    /// One budget per provider kind (`llm`, `tts`, `image`); empty = nothing is rate-limited.
    var budgets: [ProviderBudget] = []
    /// `leased` (the default) or `local` (each worker enforces the budgets by itself; a benchmark mode).
    var mode: BudgetMode = .leased
    /// A permit not started within this time of the worker's request is void. The default is 2 s.
    var useWithin: Duration = .seconds(2)
    /// Added to every window for network and scheduling jitter (``RateLedger/Settings/margin``).
    var margin: Duration = .milliseconds(15)
    /// How long after a worker was last heard its concurrency slots come back (``RateLedger/Settings/slotTTL``).
    var slotTTL: Duration = .seconds(5)
    /// Budget-aware admission: a new episode starts only while every budgeted provider has at most this
    /// many windows' worth of calls waiting for permits. The default is 2; 0 turns admission control off.
    var admissionWindows: Double = 2

    var isEmpty: Bool { budgets.isEmpty }

    func ledgerSettings(for budget: ProviderBudget) -> RateLedger.Settings {
        RateLedger.Settings(budget: budget, margin: margin, slotTTL: slotTTL)
    }
}

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
    /// Learn each provider's limits from what it answers (``LimitLearner``) and lease within them: every
    /// provider kind without a budget is leased too, from limits learned as the batch goes. The default
    /// here is `false`; ``BudgetConfiguration`` turns it on unless `REELFARM_LEARN_LIMITS=0` or
    /// `leases.learn_limits: false`. Only in `leased` mode.
    var learnLimits = false
    /// While a provider has not told its limits, its permits are granted at most one per this interval,
    /// halved after every second of granting (so it fades out within a few seconds), so that the first 429
    /// stops a burst after a call or two. The default is 20 ms; zero turns the pacing off.
    var probeInterval: Duration = .milliseconds(20)

    /// No configured budget (limits may still be learned: ``learnLimits``).
    var isEmpty: Bool { budgets.isEmpty }

    func ledgerSettings(for budget: ProviderBudget) -> RateLedger.Settings {
        RateLedger.Settings(budget: budget, margin: margin, slotTTL: slotTTL)
    }
}

import Logging
import Protocol
import Synchronization

/// What every external call passes through before it leaves the worker: the fleet's rate-limit budget.
///
/// ``withPermit(_:units:episodeId:logger:_:)`` waits until the call may start (a permit leased by the
/// coordinator, or the worker's own budget in the `local` comparison mode), runs the call, and frees what
/// it held. Waiting here never counts as a retry of the call or an attempt of the episode.
protocol ProviderGate: Sendable {
    /// Runs `body` as one call to `kind` costing `units` of the provider's unit dimension.
    ///
    /// `teaches`: the call's answer tells the provider's limits (an HTTP call). A provider the coordinator
    /// announced without any limit (it is learning them, protocol minor 4) leases only such calls; others
    /// (the simulated providers) start at once, as without a budget.
    ///
    /// - Throws: ``GateError/circuitOpen(provider:cause:detail:)`` when the provider's circuit is open after
    ///   a billing, quota or authentication error (the call must become a placeholder); `CancellationError` when the task is cancelled while
    ///   waiting; whatever `body` throws.
    func withPermit<T: Sendable>(
        _ kind: ProviderKind,
        units: Int,
        episodeId: String?,
        teaches: Bool,
        logger: Logger,
        _ body: () async throws -> T
    ) async throws -> T

    /// Passes on what a provider said about its limits (a 429 of some kind, `retry-after`, an exhausted
    /// window) or its account (a billing or authentication error, which opens the provider's circuit with
    /// or without a budget), so the whole fleet reacts.
    func report(_ kind: ProviderKind, _ signal: ProviderSignal)

    /// Whether calls of `kind` are leased: a rate or concurrency 429 is then retried after a new permit,
    /// without using up the call's retries (the budget, not the call, was at fault).
    func isLeased(_ kind: ProviderKind) -> Bool
}

/// Why a provider's circuit is open: what the provider said about the account.
enum CircuitCause: String, Sendable, Equatable {
    /// A billing or quota error (`quota_exceeded`): no call succeeds until someone pays.
    case quota = "quota_exceeded"
    /// The credentials were refused (`auth_failed`, minor 3): no call succeeds until someone fixes the key.
    case auth = "auth_failed"

    /// The cause a signal reports, if it is one that opens a circuit.
    init?(_ kind: ProviderSignal.Kind) {
        switch kind {
        case .quotaExceeded: self = .quota
        case .authFailed: self = .auth
        case .rateLimited, .concurrencyLimited, .exhausted, .limits: return nil
        }
    }

    /// The cause and detail of a coordinator's circuit text (`PROVIDER_PAUSE.reason`, a refusal's `detail`):
    /// `auth_failed: …` or `quota_exceeded: …`; anything else is a billing or quota error (what coordinators
    /// before minor 3 meant).
    static func parse(_ text: String) -> (cause: CircuitCause, detail: String) {
        for cause in [CircuitCause.auth, .quota] where text.hasPrefix(cause.rawValue + ":") {
            let rest = text.dropFirst(cause.rawValue.count + 1)
            return (cause, String(rest.drop { $0 == " " }))
        }
        return (.quota, text)
    }

    /// What went wrong, in words: `a billing or quota error`, `an authentication error`.
    var phrase: String {
        switch self {
        case .quota: "a billing or quota error"
        case .auth: "an authentication error (bad or revoked key, missing permission or blocked account)"
        }
    }
}

/// Why a gate refused a call.
enum GateError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The provider answered with a billing, quota or authentication error (here or on another worker): no
    /// call will succeed until someone pays or fixes the key.
    case circuitOpen(provider: String, cause: CircuitCause, detail: String)

    var description: String {
        switch self {
        case .circuitOpen(let provider, let cause, let detail):
            "\(provider) circuit open after \(cause.phrase)" + (detail.isEmpty ? "" : ": \(detail)")
        }
    }
}

/// No budgets: every call starts at once.
struct OpenGate: ProviderGate {
    init() {}

    func withPermit<T: Sendable>(
        _ kind: ProviderKind,
        units: Int,
        episodeId: String?,
        teaches: Bool,
        logger: Logger,
        _ body: () async throws -> T
    ) async throws -> T {
        try await body()
    }

    func report(_ kind: ProviderKind, _ signal: ProviderSignal) {}

    func isLeased(_ kind: ProviderKind) -> Bool { false }
}

/// Where a call running inside ``ProviderGate/withPermit(_:units:episodeId:logger:_:)`` records the units it
/// really used, as the provider reported them (an LLM reply's `usage.total_tokens`), so that the permit's
/// release tells the coordinator (LEASE_RELEASE `used_units`, minor 4). The gate sets ``current`` around
/// the call; outside a leased call it is `nil` and recording does nothing.
final class UsageMeter: Sendable {
    @TaskLocal static var current: UsageMeter?

    private let units = Mutex<Int?>(nil)

    init() {}

    /// The units the call used (the last value recorded wins: one call, one reply).
    func record(_ used: Int) {
        units.withLock { $0 = max(0, used) }
    }

    var recorded: Int? { units.withLock { $0 } }
}

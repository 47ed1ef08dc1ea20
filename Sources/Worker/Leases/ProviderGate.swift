import Logging
import Protocol

/// What every external call passes through before it leaves the worker: the fleet's rate-limit budget.
///
/// ``withPermit(_:units:episodeId:logger:_:)`` waits until the call may start (a permit leased by the
/// coordinator, or the worker's own budget in the `local` comparison mode), runs the call, and frees what
/// it held. Waiting here never counts as a retry of the call or an attempt of the episode.
protocol ProviderGate: Sendable {
    /// Runs `body` as one call to `kind` costing `units` of the provider's unit dimension.
    ///
    /// - Throws: ``GateError/circuitOpen(provider:detail:)`` when the provider's billing circuit is open
    ///   (the call must become a placeholder); `CancellationError` when the task is cancelled while
    ///   waiting; whatever `body` throws.
    func withPermit<T: Sendable>(
        _ kind: ProviderKind,
        units: Int,
        episodeId: String?,
        logger: Logger,
        _ body: () async throws -> T
    ) async throws -> T

    /// Passes on what a provider said about its limits (a 429 of some kind, `retry-after`, an exhausted
    /// window), so the whole fleet reacts.
    func report(_ kind: ProviderKind, _ signal: ProviderSignal)

    /// Whether calls of `kind` are leased: a rate or concurrency 429 is then retried after a new permit,
    /// without using up the call's retries (the budget, not the call, was at fault).
    func isLeased(_ kind: ProviderKind) -> Bool
}

/// Why a gate refused a call.
enum GateError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The provider answered with a billing or quota error (here or on another worker): no call will
    /// succeed until someone pays.
    case circuitOpen(provider: String, detail: String)

    var description: String {
        switch self {
        case .circuitOpen(let provider, let detail):
            "\(provider) circuit open after a billing or quota error" + (detail.isEmpty ? "" : ": \(detail)")
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
        logger: Logger,
        _ body: () async throws -> T
    ) async throws -> T {
        try await body()
    }

    func report(_ kind: ProviderKind, _ signal: ProviderSignal) {}

    func isLeased(_ kind: ProviderKind) -> Bool { false }
}

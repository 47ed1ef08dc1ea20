import Protocol

/// Counts of everything the dispatcher refused or noticed; printed in the batch summary.
struct DispatchCounters: Sendable, Equatable, Codable {
    /// Undecodable messages by `DecodeError.Code` raw value.
    var decodeErrors: [String: Int] = [:]
    /// Messages with an empty, unknown or foreign session token (answered with DISCONNECT).
    var unknownSession = 0
    /// Messages a coordinator never expects (WELCOME, JOB, CANCEL from a worker).
    var outOfOrder = 0
    /// RESULT or PROGRESS for an attempt that is no longer in flight on that session.
    var staleResults = 0
    /// Successful RESULTs for an episode that had already succeeded: counted, never recorded.
    var duplicateResults = 0
    /// Successes of an older attempt that arrived while a newer one ran (the newer one is cancelled).
    var lateResultsAccepted = 0
    /// Newer attempts cancelled because an older one succeeded first.
    var supersededCancelled = 0
    /// Attempts a reconnecting worker announced for episodes that had finished meanwhile: cancelled.
    var finishedElsewhereCancelled = 0
    /// Requeued attempts taken back by their reconnecting worker before anyone else started them.
    var attemptsReadopted = 0
    var staleProgress = 0
    /// Workers declared dead for silence, or whose connection vanished.
    var workersLost = 0
    /// Attempts requeued because their worker died or left.
    var attemptsRequeued = 0
    /// Sends libzmq refused (peer gone, or high-water mark reached).
    var sendFailures = 0
    /// Lease messages refused by the lease manager, by reason (`unknown_lease`, `lease_overdrawn`,
    /// `unknown_provider`, `duplicate_request`).
    var leaseRejected: [String: Int] = [:]
    /// Episode files pulled from workers (PROTOCOL §17).
    var artifacts = ArtifactCounters()

    var totalRejected: Int {
        decodeErrors.values.reduce(0, +) + unknownSession + outOfOrder + leaseRejected.values.reduce(0, +)
    }
}

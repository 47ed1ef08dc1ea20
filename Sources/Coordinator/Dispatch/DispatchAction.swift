import Protocol

/// What the dispatcher asks its shell to do. The shell performs sends in order and logs notices.
enum DispatchAction: Equatable, Sendable {
    /// Send an envelope to the worker connection with this ZeroMQ routing id.
    case send(to: [UInt8], Envelope)
    /// Something worth logging or recording happened.
    case notice(DispatchNotice)
    /// Hand a command to the artifact store (the disk task); its event comes back through
    /// ``Dispatcher/onArtifactEvent(_:now:)``.
    case store(ArtifactCommand)
    /// Hand an asset store message (ASSET_GET, ASSET_PUT) of a registered session to the asset task, or
    /// tell it a session ended (what that worker was sending is dropped).
    case asset(AssetService.Command)
}

/// Events the shell logs, counts or records. The dispatcher itself never logs.
enum DispatchNotice: Equatable, Sendable {
    /// Storing episode files failed for lack of space on the coordinator's disk: dispatch and storing pause,
    /// retried periodically (said once per pause).
    case diskFull(error: String)
    /// A file was stored again after a pause for disk space.
    case diskSpaceBack(pausedFor: Duration)
    case workerJoined(workerId: String, host: String, capacity: Capacity, session: String)
    case workerLeft(workerId: String, reason: String, requeued: [JobRef])
    case dispatched(JobRef, workerId: String)
    /// `finished` counts episodes that ended (succeeded or failed) so far, this one included.
    case episodeSucceeded(
        episodeId: String,
        attempt: Int,
        workerId: String,
        finished: Int,
        total: Int,
        durationMs: Int,
        placeholders: Int
    )
    case attemptFailed(JobRef, workerId: String, error: String, willRetry: Bool)
    case episodeFailed(episodeId: String, finished: Int, total: Int, reasons: [String])
    /// Trace events of an attempt as reported in its RESULT, for the batch's `trace.jsonl`.
    case trace(workerId: String, instance: String, JobRef, [TraceEvent], stale: Bool)
    /// A message that no longer fits the state: a RESULT or PROGRESS for an attempt not in flight on that session.
    case stale(kind: MessageKind, JobRef, workerId: String)
    /// A message that breaks the session rules (unknown session, unexpected kind, undecodable frames).
    case rejected(reason: String, detail: String)
    case batchComplete(succeeded: Int, failed: Int)
    /// The spend cap lets no more attempt start and none runs: `notStarted` episodes end `capped`.
    case spendCapReached(notStarted: Int, detail: String)
    /// A worker began a graceful shutdown: no more jobs for it.
    case workerDraining(workerId: String, running: Int)
    /// A successful attempt's files are being pulled from its worker (or, shared delivery, checked).
    case collecting(JobRef, workerId: String, files: Int, bytes: Int, delivery: ArtifactDelivery)
    /// A reconnecting worker's attempt was taken back instead of being run again.
    case readopted(JobRef, workerId: String)
    /// The coordinator's own loop did not tick for `gap` (the process was stopped, or busy): every peer got
    /// a fresh liveness window instead of being judged on time the coordinator did not listen.
    case loopStalled(gap: Duration, workers: Int)
    /// Something happened to a provider budget (a pause, a decrease, the circuit, a bad lease message).
    case lease(LeaseNotice)
}

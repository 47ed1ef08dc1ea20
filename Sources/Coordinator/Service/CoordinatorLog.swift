import Foundation
import Logging
import Protocol
import Shared

/// What the coordinator says in its log: a line per dispatcher and lease notice, a batch's closing lines,
/// and the lines of its own life (a batch submitted, started, resumed; workers awaited). The messages
/// users and tests read are here, in one place; the core only says what happened.
///
/// Owned by the coordinator's loop (it counts rejected messages so that a flood is logged once per reason
/// and interval, not once per message).
struct CoordinatorLog {
    let logger: Logger
    /// The `--output` folder (named in the disk-full line).
    let output: URL
    /// The journal's file (`--state`), if any.
    let journalPath: String?
    /// The ROUTER's endpoint, as bound (named in the line that asks for workers).
    var endpoint = ""
    private var rejections = RejectionLog()

    init(logger: Logger, output: URL, journalPath: String?) {
        self.logger = logger
        self.output = output
        self.journalPath = journalPath
    }

    /// A line of the coordinator's own life.
    func say(_ event: CoordinatorEvent) {
        switch event {
        case .submitted(let batchId, let episodes, let ahead):
            logger.info(
                "batch submitted",
                metadata: ["batch": "\(batchId)", "episodes": "\(episodes)", "queued_before_it": "\(ahead)"]
            )
        case .submitRefused(let error):
            logger.error("cannot write the journal; batch refused", metadata: ["error": "\(error)"])
        case .resuming(let batchId, let done, let total, let inFlight, let hold):
            logger.notice(
                "resuming batch \(batchId) from the journal: \(done)/\(total) episodes done, \(inFlight) were in flight (held \(hold.shortDescription) for their workers to re-announce them)",
                metadata: ["journal": "\(journalPath ?? "-")"]
            )
        case .started(let batchId, let episodes, let dir, let workers, let perWorker, let maxAttempts):
            logger.info(
                "Batch processing: \(episodes) episodes with max parallelism: \(perWorker) per worker",
                metadata: [
                    "batch": "\(batchId)", "output": "\(dir)", "workers": "\(workers)",
                    "max_attempts": "\(maxAttempts)",
                ]
            )
        case .progress(let line):
            logger.info("\(line)")
        case .waitingForWorkers(let pending):
            logger.notice("waiting for workers", metadata: ["endpoint": "\(endpoint)", "pending": "\(pending)"])
        case .workerDrained(let workerId):
            logger.info("local worker drained; stopping it", metadata: ["worker": "\(workerId)"])
        case .shutdownRequested:
            logger.notice("shutdown requested; stopping dispatch")
        }
    }

    /// The journal cannot be written (disk full, I/O error, removed): said once, and the coordinator stops
    /// dispatching and exits 1. Going on without it would run finished episodes again after a restart.
    func journalBroken(_ error: String) {
        logger.critical(
            "cannot write the journal in --state: stopping (exit 1). Its record is intact up to the last write; free space or fix the folder, then run the same command again to resume",
            metadata: ["path": "\(journalPath ?? "-")", "error": "\(error)"]
        )
    }

    /// The batch's closing log lines: the outcome, each budget's use, the protocol counters.
    func closing(
        dispatcher: Dispatcher,
        summary: BatchSummary,
        wall: Duration,
        summaryPath: String?,
        interrupted: Bool
    ) {
        let succeeded = dispatcher.succeededCount
        let total = dispatcher.episodes.count
        let line =
            "Batch complete: \(succeeded)/\(total) successful in \(wall.shortDescription) (\(dispatcher.peakWorkers) workers, \(dispatcher.peakSlots) slots)"
        let meta: Logger.Metadata = [
            "batch": "\(dispatcher.batchId)", "failed": "\(dispatcher.failedCount)",
            "summary": "\(summaryPath ?? "not written")",
        ]
        if interrupted {
            logger.warning(
                "Batch interrupted: \(succeeded)/\(total) successful in \(wall.shortDescription) (\(dispatcher.peakWorkers) workers, \(dispatcher.peakSlots) slots)",
                metadata: meta
            )
        } else if succeeded == total {
            logger.info("\(line)", metadata: meta)
        } else {
            logger.error("\(line)", metadata: meta)
        }
        if let warning = summary.placeholderWarning {
            logger.warning(
                "\(warning.line)",
                metadata: [
                    "batch": "\(dispatcher.batchId)", "placeholders": "\(warning.placeholders)",
                    "assets": "\(warning.assets)",
                ]
            )
        }
        if let spend = summary.spend,
            spend.totalMicros > 0 || spend.capMicros != nil || spend.unpricedCalls > 0 || spend.reusedCalls != nil
        {
            var line = "spend: \(spend.total)"
            if let cap = spend.cap { line += " of the \(cap) cap" }
            if let capped = spend.cappedEpisodes, capped > 0 { line += "; \(capped) episodes stopped by the cap" }
            if let reused = spend.reusedCalls, let saved = spend.saved {
                line += "; \(reused) calls reused from the asset store saved \(saved)"
            }
            if spend.unpricedCalls > 0 {
                line += "; \(spend.unpricedCalls) calls of models without a price not counted"
            }
            logger.info(
                "\(line)",
                metadata: spend.byProviderMicros.reduce(into: ["batch": "\(dispatcher.batchId)"]) {
                    $0[$1.key] = "\(PriceTable.dollars($1.value))"
                }
            )
        }
        for (provider, budget) in summary.budgets.sorted(by: { $0.key < $1.key }) {
            let signals = budget.signals.values.reduce(0, +)
            logger.info(
                "budget \(provider): \(budget.started) calls started, busiest window \(budget.maxStartedInWindow) (limit \(budget.limit)), \(signals) provider signals",
                metadata: [
                    "provider": "\(provider)", "granted": "\(budget.granted)", "returned": "\(budget.returned)",
                    "mean_wait_ms": "\(budget.meanWaitMs)", "pauses": "\(budget.pauses)",
                    "decreases": "\(budget.decreases)",
                ]
            )
        }
        let counters = dispatcher.counters
        if counters.totalRejected > 0 || counters.staleResults > 0 || counters.workersLost > 0
            || counters.duplicateResults > 0
        {
            logger.notice(
                "protocol counters",
                metadata: [
                    "rejected": "\(counters.totalRejected)", "stale_results": "\(counters.staleResults)",
                    "workers_lost": "\(counters.workersLost)", "attempts_requeued": "\(counters.attemptsRequeued)",
                    "duplicate_results": "\(counters.duplicateResults)",
                    "late_results_accepted": "\(counters.lateResultsAccepted)",
                    "attempts_readopted": "\(counters.attemptsReadopted)",
                ]
            )
        }
    }

    mutating func log(_ notice: DispatchNotice, trace: TraceWriter?) {
        switch notice {
        case .workerJoined(let workerId, let host, let capacity, _):
            logger.info(
                "worker joined",
                metadata: [
                    "worker": "\(workerId)", "host": "\(host)", "episodes": "\(capacity.episodes)",
                    "api_calls": "\(capacity.apiCalls)",
                ]
            )
        case .workerLeft(let workerId, let reason, let requeued):
            logger.warning(
                "worker left",
                metadata: [
                    "worker": "\(workerId)", "reason": "\(reason)", "requeued": "\(requeued.count)",
                    "episodes": "\(requeued.map(\.episodeId).joined(separator: ","))",
                ]
            )
        case .dispatched(let ref, let workerId):
            logger.debug(
                "dispatched",
                metadata: ["episode": "\(ref.episodeId)", "attempt": "\(ref.attempt)", "worker": "\(workerId)"]
            )
        case .episodeSucceeded(
            let id,
            let attempt,
            let workerId,
            let finished,
            let total,
            let durationMs,
            let placeholders
        ):
            let duration = Duration.milliseconds(durationMs).shortDescription
            logger.info(
                "✅ \(id) completed (\(finished)/\(total)) in \(duration)",
                metadata: [
                    "episode": "\(id)", "worker": "\(workerId)", "attempt": "\(attempt)",
                    "placeholders": "\(placeholders)",
                ]
            )
        case .attemptFailed(let ref, let workerId, let error, let willRetry):
            logger.warning(
                "attempt \(ref.attempt) failed\(willRetry ? "; retrying" : "")",
                metadata: ["episode": "\(ref.episodeId)", "worker": "\(workerId)", "error": "\(error)"]
            )
        case .episodeFailed(let id, let finished, let total, let reasons):
            logger.error(
                "❌ \(id) failed (\(finished)/\(total)) after \(reasons.count) attempts: \(reasons.last ?? "unknown")",
                metadata: ["episode": "\(id)"]
            )
        case .trace(let workerId, let instance, let ref, let events, let stale):
            trace?.append(workerId: workerId, instance: instance, ref: ref, events: events, stale: stale)
        case .stale(let kind, let ref, let workerId):
            logger.notice(
                "stale \(kind) ignored",
                metadata: ["episode": "\(ref.episodeId)", "attempt": "\(ref.attempt)", "worker": "\(workerId)"]
            )
        case .rejected(let reason, let detail):
            let (count, shouldLog) = rejections.record(reason)
            if shouldLog {
                logger.warning(
                    "message rejected",
                    metadata: ["reason": "\(reason)", "detail": "\(detail)", "count": "\(count)"]
                )
            }
        case .batchComplete:
            break
        case .spendCapReached(let notStarted, let detail):
            logger.warning(
                "spend cap reached: no new episode starts; \(notStarted) not started end as capped",
                metadata: ["spend": "\(detail)"]
            )
        case .lease(let notice):
            log(notice)
        case .loopStalled(let gap, let workers):
            logger.warning(
                "the coordinator's loop stood still; every worker gets a fresh liveness window",
                metadata: ["gap": "\(gap.shortDescription)", "workers": "\(workers)"]
            )
        case .workerDraining(let workerId, let running):
            logger.notice(
                "worker draining: no more jobs for it",
                metadata: ["worker": "\(workerId)", "running": "\(running)"]
            )
        case .collecting(let ref, let workerId, let files, let bytes, let delivery):
            logger.debug(
                delivery == .transfer ? "pulling episode files" : "checking episode files (shared delivery)",
                metadata: [
                    "episode": "\(ref.episodeId)", "attempt": "\(ref.attempt)", "worker": "\(workerId)",
                    "files": "\(files)", "bytes": "\(bytes)",
                ]
            )
        case .diskFull(let error):
            logger.error(
                "the output folder's disk is full: storing and dispatch paused, retried every \(ArtifactSettings().diskFullRetry.shortDescription); the workers keep their finished files. Free some space",
                metadata: ["error": "\(error)", "output": "\(output.path)"]
            )
        case .diskSpaceBack(let pausedFor):
            logger.notice(
                "disk space is back: storing and dispatch resumed",
                metadata: ["paused_for": "\(pausedFor.shortDescription)"]
            )
        case .readopted(let ref, let workerId):
            logger.info(
                "attempt re-adopted from its reconnected worker",
                metadata: ["episode": "\(ref.episodeId)", "attempt": "\(ref.attempt)", "worker": "\(workerId)"]
            )
        }
    }

    mutating func log(_ notice: LeaseNotice) {
        switch notice {
        case .decreased(let provider, let factor, let concurrency, let signal):
            var meta: Logger.Metadata = ["provider": "\(provider)", "signal": "\(signal.rawValue)"]
            if let concurrency { meta["max_concurrent"] = "\(concurrency)" }
            logger.warning(
                "\(provider) budget lowered to \(Int((factor * 100).rounded()))% after a 429; recovering over clean windows",
                metadata: meta
            )
        case .paused(let provider, let duration, let signal):
            logger.warning(
                "\(provider) paused for \(duration.secondsText) on every worker",
                metadata: ["provider": "\(provider)", "signal": "\(signal.rawValue)"]
            )
        case .circuitOpened(let provider, let signal, let detail):
            // Once per provider and coordinator: the lease manager reports only the signal that opened it.
            logger.error(
                "\(Self.circuitLine(provider: provider, signal: signal, detail: detail))",
                metadata: ["provider": "\(provider)", "signal": "\(signal.rawValue)", "detail": "\(detail)"]
            )
        case .learned(let provider, let budget):
            logger.info(
                "\(provider) limits learned from the provider: leasing \(budget)",
                metadata: ["provider": "\(provider)"]
            )
        case .started, .granted:
            break  // journaled, not logged
        case .rejected(let reason, let detail):
            let (count, shouldLog) = rejections.record(reason)
            if shouldLog {
                logger.warning(
                    "lease message rejected",
                    metadata: ["reason": "\(reason)", "detail": "\(detail)", "count": "\(count)"]
                )
            }
        }
    }

    /// The line an opened circuit is logged with: `🔴 tts: authentication failed (the key was refused (HTTP
    /// 401 …)), circuit OPEN for the whole fleet: every remaining tts call uses a placeholder. Fix: set
    /// ELEVENLABS_API_KEY to a valid key, then rerun.` The cure is the worker's (`…; fix: …` in its detail)
    /// when it named one, else a general one.
    static func circuitLine(provider: String, signal: ProviderSignal.Kind, detail: String) -> String {
        var what = detail
        var fix: String?
        if let range = detail.range(of: "; fix: ", options: .backwards) {
            what = String(detail[..<range.lowerBound])
            fix = String(detail[range.upperBound...])
        }
        let auth = signal == .authFailed
        let cure = fix.map { "Fix: \($0)" } ?? (auth ? "Fix the key" : "Add credits or raise the quota")
        return "🔴 \(provider): \(auth ? "authentication failed" : "billing or quota error")"
            + (what.isEmpty ? "" : " (\(what))")
            + ", circuit OPEN for the whole fleet: every remaining \(provider) call uses a placeholder. "
            + "\(cure), then rerun."
    }

}

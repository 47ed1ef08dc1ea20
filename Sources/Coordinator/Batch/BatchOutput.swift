import Foundation
import Logging
import Shared

/// A batch about to be dispatched: its folder (`output/<batch id>`) is to be prepared.
struct BatchOpening: Sendable, Equatable {
    var batchId: String
    var dir: URL
}

/// A batch that ended, complete or interrupted, with the dispatcher as it ended (a copy: the core may
/// already run the next batch).
struct BatchClosing: Sendable {
    var batchId: String
    var dir: URL
    var startedAt: Date
    var finishedAt: Date
    var wall: Duration
    var complete: Bool
    var dispatcher: Dispatcher
}

/// A batch's folder as the coordinator writes it: `trace.jsonl` while it runs, the marker that ties the
/// folder to its `--state`, then `summary.json` and `report.html` when it ends.
///
/// Owned by the coordinator's loop; the episode files are the artifact store's (the disk task's).
struct BatchOutput {
    let dir: URL
    /// The batch's `trace.jsonl`; nil when it could not be created (said at error level).
    let trace: TraceWriter?

    /// Creates the trace file and writes the marker (with `--state`). Failures are logged, not thrown: the
    /// batch still runs, and storing its episodes will say what is wrong with the folder.
    static func open(_ opening: BatchOpening, stateTag: String?, logger: Logger) -> BatchOutput {
        let dir = opening.dir
        var trace: TraceWriter?
        do {
            trace = try TraceWriter(url: dir.appendingPathComponent("trace.jsonl"))
        } catch {
            logger.error(
                "cannot write to the batch's folder; its episodes will fail to be stored",
                metadata: ["dir": "\(dir.path)", "error": "\(error)"]
            )
        }
        if let stateTag {
            do {
                try OutputCheck.writeMarker(batchDir: dir, stateTag: stateTag)
            } catch {
                logger.error("cannot mark the batch's folder", metadata: ["dir": "\(dir.path)", "error": "\(error)"])
            }
        }
        return BatchOutput(dir: dir, trace: trace)
    }

    /// What closing wrote: the paths of the files that could be written.
    struct Closed: Sendable, Equatable {
        var summary: String?
        var report: String?
    }

    /// Closes the trace and writes `summary.json` and `report.html`, then the closing log lines.
    func close(_ closing: BatchClosing, log: CoordinatorLog) -> Closed {
        trace?.close()
        let dispatcher = closing.dispatcher
        let summary = BatchSummary(
            dispatcher: dispatcher,
            batchDir: dir,
            startedAt: closing.startedAt,
            finishedAt: closing.finishedAt,
            wallSeconds: closing.wall.secondsDouble,
            workersSeen: dispatcher.instancesSeen.count,
            slots: dispatcher.peakSlots
        )
        var closed = Closed()
        do {
            try summary.write(to: dir)
            closed.summary = dir.appendingPathComponent("summary.json").path
        } catch {
            log.logger.error("cannot write summary.json", metadata: ["dir": "\(dir.path)", "error": "\(error)"])
        }
        do {
            try BatchReport.write(summary: summary, rates: BatchReport.rates(from: dispatcher), to: dir)
            closed.report = dir.appendingPathComponent("report.html").path
        } catch {
            log.logger.error("cannot write report.html", metadata: ["dir": "\(dir.path)", "error": "\(error)"])
        }
        log.closing(
            dispatcher: dispatcher,
            summary: summary,
            wall: closing.wall,
            summaryPath: closed.summary,
            interrupted: !closing.complete
        )
        return closed
    }
}

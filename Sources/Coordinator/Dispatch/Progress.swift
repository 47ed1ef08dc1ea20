import Shared

/// Where a batch stands, for the progress line, the periodic progress log and the status API.
struct ProgressSnapshot: Sendable, Equatable {
    var total: Int
    var succeeded: Int
    var failed: Int
    var running: Int
    /// Files of finished attempts on their way to the output folder.
    var collecting: Int
    var pending: Int
    var workers: Int
    var slots: Int
    /// Since the first dispatch; `nil` before it.
    var elapsed: Duration?
    var budgets: [LeaseManager.Usage]

    var finished: Int { succeeded + failed }

    /// Remaining time at the pace so far (finished episodes per elapsed time); `nil` until one finished.
    var eta: Duration? {
        guard let elapsed, finished > 0, finished < total else { return finished == total ? .zero : nil }
        return elapsed * (Double(total - finished) / Double(finished))
    }

    /// `llm 5/5 · image 9/10 (3 waiting) · tts 3/20`.
    var budgetText: String {
        budgets.map { u in
            if u.circuitOpen { return "\(u.provider) circuit open" }
            var text = "\(u.provider) \(u.inWindow)/\(u.limit.map(String.init) ?? "∞")"
            if let c = u.maxConcurrent { text += " (\(u.inFlight)/\(c) in flight)" }
            if u.waiting > 0 { text += " (\(u.waiting) waiting)" }
            if u.held { text += " paused" }
            return text
        }.joined(separator: " · ")
    }

    /// The terminal line: `[██████░░░░] 12/24 done · 1 failed · 9 running · ETA 14s · 4 workers · llm 5/5 …`.
    func barLine(width: Int = 20) -> String {
        let filled = total == 0 ? width : min(width, finished * width / total)
        var parts = [
            "[" + String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled) + "]"
                + " \(succeeded)/\(total) done"
        ]
        if failed > 0 { parts.append("\(failed) failed") }
        parts.append("\(running) running")
        if collecting > 0 { parts.append("\(collecting) saving") }
        parts.append("ETA \(eta.map(Self.clock) ?? "–")")
        parts.append("\(workers) worker\(workers == 1 ? "" : "s")/\(slots) slots")
        if !budgets.isEmpty { parts.append(budgetText) }
        return parts.joined(separator: " · ")
    }

    /// The periodic log line when standard error is not a terminal.
    var logLine: String {
        var text =
            "progress: \(succeeded)/\(total) done, \(failed) failed, \(running) running, \(pending) pending, ETA \(eta.map(Self.clock) ?? "unknown"), \(workers) workers"
        if !budgets.isEmpty { text += "; budgets: " + budgetText }
        return text
    }

    /// `14s`, `3m05s`, `1h02m`.
    static func clock(_ d: Duration) -> String {
        let s = max(0, Int(d.secondsDouble.rounded()))
        if s < 60 { return "\(s)s" }
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        if s < 3600 { return "\(s / 60)m\(two(s % 60))s" }
        return "\(s / 3600)h\(two((s % 3600) / 60))m"
    }
}

extension Dispatcher {
    /// Where the batch stands at `now`. From counts kept as episodes change: no pass over the batch.
    func progress(now: ContinuousClock.Instant) -> ProgressSnapshot {
        let collecting = collectingCount
        return ProgressSnapshot(
            total: episodes.count,
            succeeded: succeededCount,
            failed: failedCount,
            running: max(0, episodes.counts.running - collecting),
            collecting: collecting,
            pending: episodes.counts.pending,
            workers: workers.count,
            slots: totalSlots,
            elapsed: episodes.firstDispatchedAt.map { now - $0 },
            budgets: leases.usage(now: now)
        )
    }
}

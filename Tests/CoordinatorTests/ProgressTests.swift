import Protocol
import Synchronization
import Testing

@testable import Coordinator
@testable import Shared

@Suite("Progress: the bar, the log line, the ETA")
struct ProgressTests {
    func snapshot(succeeded: Int = 12, failed: Int = 1, elapsed: Duration? = .seconds(26)) -> ProgressSnapshot {
        ProgressSnapshot(
            total: 24,
            succeeded: succeeded,
            failed: failed,
            running: 9,
            collecting: 1,
            pending: 1,
            workers: 4,
            slots: 12,
            elapsed: elapsed,
            budgets: [
                LeaseManager.Usage(
                    provider: "image",
                    inWindow: 9,
                    limit: 10,
                    inFlight: 3,
                    maxConcurrent: nil,
                    waiting: 4,
                    held: false
                ),
                LeaseManager.Usage(
                    provider: "llm",
                    inWindow: 5,
                    limit: 5,
                    inFlight: 1,
                    maxConcurrent: 2,
                    waiting: 0,
                    held: true
                ),
            ]
        )
    }

    @Test("the ETA extrapolates the pace so far")
    func eta() {
        #expect(snapshot().eta == .seconds(22), "13 finished in 26 s: 11 more take 22 s")
        #expect(snapshot(succeeded: 0, failed: 0).eta == nil)
        #expect(snapshot(succeeded: 24, failed: 0).eta == .zero)
        #expect(ProgressSnapshot.clock(.seconds(14)) == "14s")
        #expect(ProgressSnapshot.clock(.seconds(185)) == "3m05s")
        #expect(ProgressSnapshot.clock(.seconds(3725)) == "1h02m")
    }

    @Test("the bar shows counts, ETA, workers and every budget against its limit")
    func bar() {
        let line = snapshot().barLine(width: 10)
        #expect(
            line.hasPrefix("[█████░░░░░] 12/24 done · 1 failed · 9 running · 1 saving · ETA 22s · 4 workers/12 slots")
        )
        #expect(line.contains("image 9/10 (4 waiting)"))
        #expect(line.contains("llm 5/5 (1/2 in flight) paused"))
    }

    @Test("the log line says the same in words")
    func logLine() {
        #expect(
            snapshot().logLine
                == "progress: 12/24 done, 1 failed, 9 running, 1 pending, ETA 22s, 4 workers; budgets: image 9/10 (4 waiting) · llm 5/5 (1/2 in flight) paused"
        )
    }

    @Test("the dispatcher's snapshot follows the batch")
    func dispatcherSnapshot() {
        let h = DispatcherTests()
        var d = h.makeDispatcher(5)
        #expect(d.progress(now: h.t0).elapsed == nil)
        let (s, a) = h.join(&d, [1], "w1", episodes: 2, at: h.t0)
        _ = d.onMessage(from: [1], h.result(h.jobs(a)[0], session: s), now: h.t0 + .seconds(2))
        let p = d.progress(now: h.t0 + .seconds(2))
        #expect(p.succeeded == 1 && p.running == 2 && p.pending == 2 && p.workers == 1 && p.slots == 2)
        #expect(p.elapsed == .seconds(2))
    }
}

@Suite("Status line: log lines scroll above the bar", .serialized)
struct StatusLineTests {
    @Test("while active, every write erases the bar, writes the lines and draws the bar again")
    func writesAroundTheBar() {
        let captured = Captured()
        let saved = StatusLine.sink
        StatusLine.sink = { captured.append($0) }
        defer { StatusLine.sink = saved }
        StatusLine.write(Array("plain\n".utf8))
        StatusLine.activate()
        StatusLine.update("[bar]")
        StatusLine.write(Array("a log line\n".utf8))
        StatusLine.finish()
        StatusLine.write(Array("after\n".utf8))
        #expect(
            captured.text == [
                "plain\n", "\r\u{1B}[K[bar]", "\r\u{1B}[Ka log line\n[bar]", "\r\u{1B}[K", "after\n",
            ]
        )
    }

    final class Captured: Sendable {
        private let chunks = Mutex<[[UInt8]]>([])
        func append(_ bytes: [UInt8]) { chunks.withLock { $0.append(bytes) } }
        var text: [String] { chunks.withLock { $0.map { String(decoding: $0, as: UTF8.self) } } }
    }
}

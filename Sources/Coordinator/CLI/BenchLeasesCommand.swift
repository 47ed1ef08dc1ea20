import ArgumentParser
import Foundation
import Protocol
import Shared

/// `coordinator bench-leases` (hidden): what the ``LeaseManager`` costs with a large fleet and a large
/// backlog (issue 17), driven directly with stepped time and no sockets; prints a Markdown table.
///
/// It lives in the coordinator rather than in `reelfarm-bench` because the lease manager is part of the
/// coordinator's executable module, which no other executable can import.
///
/// The workload: `workers` sessions send one-call image requests (priority = the episode's dispatch order,
/// about 13 calls per episode, arriving slightly out of order) until `waiting` calls wait behind a budget
/// of `limit` calls per second; then 1,000 of them are cancelled and 10 workers leave; then time steps by
/// 1 ms and every grant is started and finished at once (each LEASE_RELEASE lets the manager grant again),
/// until nothing waits or `max-seconds` of wall time have passed.
struct BenchLeasesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-leases",
        abstract: "Time the lease manager with many workers and a large backlog (a benchmark; prints Markdown).",
        shouldDisplay: false
    )

    @Option(help: "Worker sessions asking for permits.") var workers = 1_000
    @Option(help: "Calls waiting once every request is in.") var waiting = 100_000
    @Option(help: "The image budget, in calls per 1 s window.") var limit = 1_000
    @Option(help: "Stop draining after this much wall time, in seconds.") var maxSeconds = 120.0
    @Option(help: "How many grants (in order) the printed fingerprint covers.") var fingerprint = 20_000

    func run() throws {
        guard workers > 10, waiting > 1_000, limit > 0 else {
            throw ValidationError("needs more than 10 workers, more than 1,000 waiting and a limit above 0")
        }
        var settings = LeaseSettings()
        settings.budgets = [ProviderBudget(provider: "image", requests: limit)]
        var bench = Run(manager: LeaseManager(settings: settings), fingerprintLength: fingerprint)
        let sessions = (0..<workers).map { "w\($0)" }
        for session in sessions { bench.manager.workerJoined(session: session, recentCalls: [:], now: bench.now) }
        var rows: [(String, Int, Duration)] = []

        // Enqueue until `waiting` calls wait (the first `limit` are granted at once).
        var rng = SplitMix64(seed: 17)
        var sent = 0
        var clock = Stopwatch()
        while sent - bench.granted < waiting {
            let priority = sent / 13 + Int(rng.next() % 1_000)
            bench.now = bench.origin + .microseconds(sent)
            let request = LeaseRequest(requestId: "r\(sent)", provider: "image")
            let actions = bench.manager.onMessage(
                .leaseRequest(request),
                session: sessions[sent % workers],
                priority: priority,
                now: bench.now
            )
            sent += 1
            bench.respond(actions)
        }
        rows.append(("enqueue (LEASE_REQUEST)", sent, clock.lap()))
        let rssAfterEnqueue = Self.memory("VmRSS")

        var open = 0
        for _ in 0..<1_000 where bench.manager.admissionOpen { open += 1 }
        rows.append(("admission check", 1_000, clock.lap()))
        var waitingSeen = 0
        for _ in 0..<100 { waitingSeen += bench.manager.usage(now: bench.now).first?.waiting ?? 0 }
        rows.append(("usage (status page)", 100, clock.lap()))

        // 1,000 cancels of requests still waiting (the latest sent), then 10 workers leave.
        for index in (sent - 1_000)..<sent {
            let cancel = LeaseCancel(requestId: "r\(index)")
            bench.respond(
                bench.manager.onMessage(
                    .leaseCancel(cancel),
                    session: sessions[index % workers],
                    priority: 0,
                    now: bench.now
                )
            )
        }
        rows.append(("LEASE_CANCEL", 1_000, clock.lap()))
        for session in sessions.suffix(10) {
            bench.respond(bench.manager.workerLeft(session: session, lastHeard: bench.now, now: bench.now))
        }
        rows.append(("worker left (its waiting calls dropped)", 10, clock.lap()))
        let backlog = bench.manager.backlog("image")

        // Drain: 1 ms steps; every grant starts and finishes at once.
        let drainGranted = bench.granted
        var ticks = 0
        let deadline = ContinuousClock.now + .milliseconds(Int(maxSeconds * 1000))
        var left = backlog
        while left > 0, ContinuousClock.now < deadline {
            bench.now += .milliseconds(1)
            bench.respond(bench.manager.advance(now: bench.now))
            ticks += 1
            if ticks % 1_000 == 0 { left = bench.manager.backlog("image") }
        }
        let drain = clock.lap()
        left = bench.manager.backlog("image")
        rows.append(("grant cycle (1 ms step: advance, then each grant's STARTED and RELEASE)", ticks, drain))

        print("| phase | operations | wall time | per operation |")
        print("|---|---|---|---|")
        for (name, count, elapsed) in rows {
            let per = elapsed.secondsDouble * 1e6 / Double(max(1, count))
            print("| \(name) | \(count) | \(elapsed.secondsText) | \(String(format: "%.1f", per)) µs |")
        }
        print("")
        print("workers \(workers), budget \(limit)/s, requests sent \(sent), waiting after the churn \(backlog)")
        print(
            "drain: \(bench.granted - drainGranted) granted in \(ticks) steps (\(ticks / 1000) simulated s), "
                + (left == 0 ? "drained" : "stopped at \(maxSeconds) s with \(left) still waiting")
        )
        print("admission open \(open)/1000 checks; waiting as the status page saw it \(waitingSeen / 100)")
        print("memory: VmRSS after enqueue \(rssAfterEnqueue), VmHWM \(Self.memory("VmHWM"))")
        print("grant order fingerprint (first \(bench.fingerprintCount) grants): \(bench.fingerprintText)")
    }

    /// A line of `/proc/self/status` (`VmRSS`, `VmHWM`), e.g. `41236 kB`.
    static func memory(_ field: String) -> String {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix(field + ":") }
        return line.map { $0.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces) } ?? "?"
    }
}

/// The manager, its simulated clock, and what the benchmark's workers answer.
private struct Run {
    var manager: LeaseManager
    /// The simulated clock: the manager never reads a real one.
    let origin: ContinuousClock.Instant
    var now: ContinuousClock.Instant
    var granted = 0
    let fingerprintLength: Int
    var fingerprintCount = 0
    /// FNV-1a over the granted request ids in order: equal before and after a change that keeps the order.
    private var hash: UInt64 = 0xcbf2_9ce4_8422_2325

    init(manager: LeaseManager, fingerprintLength: Int) {
        self.manager = manager
        self.fingerprintLength = fingerprintLength
        origin = ContinuousClock.now
        now = origin
    }

    var fingerprintText: String { String(hash, radix: 16) }

    /// Every grant is started and finished at once; a release may grant again, answered the same way.
    mutating func respond(_ actions: [LeaseManager.Action]) {
        var pending = actions
        while !pending.isEmpty {
            var next: [LeaseManager.Action] = []
            for case .send(let session, .leaseGrant(let grant)) in pending where grant.calls > 0 {
                granted += grant.calls
                if fingerprintCount < fingerprintLength {
                    fingerprintCount += 1
                    for byte in grant.requestId.utf8 + [0] {
                        hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
                    }
                }
                _ = manager.onMessage(
                    .leaseStarted(LeaseStarted(leaseId: grant.leaseId, calls: grant.calls)),
                    session: session,
                    priority: 0,
                    now: now
                )
                next += manager.onMessage(
                    .leaseRelease(LeaseRelease(leaseId: grant.leaseId, finished: grant.calls)),
                    session: session,
                    priority: 0,
                    now: now
                )
            }
            pending = next
        }
    }
}

/// Wall time between laps.
private struct Stopwatch {
    private var last = ContinuousClock.now

    mutating func lap() -> Duration {
        let now = ContinuousClock.now
        defer { last = now }
        return now - last
    }
}

import Logging
import Protocol
import Synchronization
import Testing

@testable import Worker

// MARK: - Jobs and pipelines

func makeJob(
    _ episodeId: String = "episode_1",
    attempt: Int = 1,
    topic: String = "the history of the lighthouse",
    scenes: Int? = nil,
    characters: [String]? = nil
) -> Job {
    Job(
        batchId: "batch_test",
        episodeId: episodeId,
        attempt: attempt,
        spec: EpisodeSpec(topic: topic, id: episodeId, characters: characters, scenes: scenes)
    )
}

func makePipeline(
    _ settings: SimulationSettings = .instant,
    limits: WorkerLimits = WorkerLimits(),
    trace: TraceRecorder = TraceRecorder(),
    clock: any Clock<Duration> = ContinuousClock(),
    logger: Logger = quietLogger
) -> EpisodePipeline {
    EpisodePipeline(providers: .simulated(settings, clock: clock), limits: limits, trace: trace, logger: logger)
}

let quietLogger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

/// Latencies small enough to keep tests fast, large enough that calls overlap.
func smallLatencies(llm: Int = 2, tts: Int = 3, image: Int = 5, render: Int = 3) -> SimulationSettings {
    SimulationSettings(latencies: [
        .llm: .milliseconds(llm), .tts: .milliseconds(tts), .image: .milliseconds(image),
        .render: .milliseconds(render),
    ])
}

/// Runs the jobs through the pipeline all at once and returns their results in job order.
func runConcurrently(_ jobs: [Job], _ pipeline: EpisodePipeline) async -> [EpisodeResult] {
    await withTaskGroup(of: (Int, EpisodeResult).self) { group in
        for (index, job) in jobs.enumerated() {
            group.addTask { (index, await pipeline.run(job, progress: { _ in })) }
        }
        var results = [EpisodeResult?](repeating: nil, count: jobs.count)
        for await (index, result) in group { results[index] = result }
        return results.map { $0! }
    }
}

// MARK: - Trace replay

/// Replays events in `seq` order and returns the most that were between a `start` and an `end` event
/// at once. Records an issue if an end comes without its start.
func maxInFlight(
    _ events: [TraceEvent],
    start: TraceEvent.Kind,
    end: TraceEvent.Kind,
    sourceLocation: SourceLocation = #_sourceLocation
) -> Int {
    var inFlight = 0
    var most = 0
    for event in events.sorted(by: { $0.seq < $1.seq }) {
        if event.event == start {
            inFlight += 1
            most = max(most, inFlight)
        } else if event.event == end {
            inFlight -= 1
            if inFlight < 0 {
                Issue.record("\(end) without \(start) at seq \(event.seq)", sourceLocation: sourceLocation)
            }
        }
    }
    #expect(inFlight == 0, "events still in flight at the end", sourceLocation: sourceLocation)
    return most
}

/// The names of the events of one kind, sorted.
func names(_ events: [TraceEvent], _ kind: TraceEvent.Kind) -> [String] {
    events.filter { $0.event == kind }.map(\.name).sorted()
}

// MARK: - Waiting

/// Polls `condition` until it holds. The bound only turns a hang into a failure; no test passes or
/// fails on timing otherwise.
func eventually(
    _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () -> Bool
) async throws {
    for _ in 0..<10_000 {
        if condition() { return }
        await Task.yield()
        try await Task.sleep(for: .milliseconds(1))
    }
    Issue.record("timed out waiting for \(what)", sourceLocation: sourceLocation)
    throw TimedOut(what: what)
}

struct TimedOut: Error {
    var what: String
}

// MARK: - Collecting

/// A thread-safe list, for collecting from concurrent tasks.
final class Collected<Element: Sendable>: Sendable {
    private let items = Mutex<[Element]>([])

    init() {}

    func append(_ item: Element) { items.withLock { $0.append(item) } }
    var all: [Element] { items.withLock { $0 } }
    var count: Int { items.withLock { $0.count } }
}

// MARK: - Logging

/// Keeps every log entry in memory (swift-log's own InMemoryLogging is not a dependency of this target).
struct CapturingLogHandler: LogHandler {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata
    }

    let entries = Collected<Entry>()
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        entries.append(
            Entry(
                level: event.level,
                message: event.message.description,
                metadata: metadata.merging(event.metadata ?? [:]) { $1 }
            )
        )
    }
}

// MARK: - A clock that only moves when told

/// A clock for tests: `sleep` suspends until ``advance(by:)`` moves time past the deadline, or the
/// sleeping task is cancelled.
final class TestClock: Clock, Sendable {
    struct Instant: InstantProtocol {
        var offset: Duration

        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
    }

    private struct Sleeper {
        var id: UInt64
        var deadline: Instant
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now = Instant(offset: .zero)
        var sleepers: [Sleeper] = []
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    init() {}

    var now: Instant { state.withLock { $0.now } }
    var minimumResolution: Duration { .zero }
    var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome: Result<Void, any Error>? = state.withLock { state in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if deadline <= state.now { return .success(()) }
                    state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let removed: CheckedContinuation<Void, any Error>? = state.withLock { state in
                guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.sleepers.remove(at: index).continuation
            }
            removed?.resume(throwing: CancellationError())
        }
    }

    func advance(by duration: Duration) {
        let due: [CheckedContinuation<Void, any Error>] = state.withLock { state in
            state.now = state.now.advanced(by: duration)
            let now = state.now
            let due = state.sleepers.filter { $0.deadline <= now }
            state.sleepers.removeAll { $0.deadline <= now }
            return due.map(\.continuation)
        }
        for continuation in due { continuation.resume() }
    }
}

/// `Progress` of the wire protocol, for test files that import Foundation (which has its own `Progress`).
typealias EpisodeProgress = Progress

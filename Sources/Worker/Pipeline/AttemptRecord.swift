import Protocol
import Synchronization

/// What one attempt has done so far: its trace events, API call count and placeholders.
/// Shared by the concurrent calls of the attempt.
final class AttemptRecord: Sendable {
    private struct State {
        var events: [TraceEvent] = []
        var apiCalls = 0
        var placeholders: [(stage: Int, position: Int, placeholder: Placeholder)] = []
        var unpricedModels: Set<String> = []
    }

    private let recorder: TraceRecorder
    private let state = Mutex(State())

    init(recorder: TraceRecorder) {
        self.recorder = recorder
    }

    func record(_ kind: TraceEvent.Kind, _ name: String) {
        let event = recorder.record(kind, name)
        state.withLock { $0.events.append(event) }
    }

    /// Records the start of an external call and counts it.
    func callStarted(_ name: String) {
        let event = recorder.record(.callStart, name)
        state.withLock {
            $0.events.append(event)
            $0.apiCalls += 1
        }
    }

    /// Records the end of an external call with what it cost (see ``CallMeter``).
    func callEnded(_ name: String, meter: CallMeter) {
        var event = recorder.record(.callEnd, name)
        event.costMicros = meter.costMicros
        event.savedMicros = meter.savedMicros
        let unpriced = meter.unpricedModel
        state.withLock {
            $0.events.append(event)
            if let unpriced { $0.unpricedModels.insert(unpriced) }
        }
    }

    /// - Parameter position: the item's 0-based position in its stage, for a stable order in the result.
    func addPlaceholder(_ placeholder: Placeholder, position: Int) {
        let stage = Stage.allCases.firstIndex(of: placeholder.stage) ?? Stage.allCases.count
        state.withLock { $0.placeholders.append((stage, position, placeholder)) }
    }

    var apiCalls: Int { state.withLock { $0.apiCalls } }

    /// Models called without a price in the worker's table (their calls' costs are unknown).
    var unpricedModels: [String] { state.withLock { $0.unpricedModels }.sorted() }

    /// What the attempt's calls cost so far, in micro-dollars (calls of unpriced models count 0).
    var costMicros: Int { state.withLock { $0.events.reduce(0) { $0 + ($1.costMicros ?? 0) } } }

    /// Trace events ordered by `seq`.
    var events: [TraceEvent] {
        state.withLock { $0.events }.sorted { $0.seq < $1.seq }
    }

    /// Placeholders in pipeline order: by stage, then by item.
    var placeholders: [Placeholder] {
        state.withLock { $0.placeholders }
            .sorted { ($0.stage, $0.position) < ($1.stage, $1.position) }
            .map(\.placeholder)
    }
}

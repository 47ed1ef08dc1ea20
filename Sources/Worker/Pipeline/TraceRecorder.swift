import Protocol
import Synchronization

/// Stamps trace events with sequence numbers that increase strictly across the whole worker process.
///
/// One recorder is shared by every episode of a worker, so events of different episodes interleave in
/// one order. Replaying events by `seq` then shows how many calls, renders or episodes were in flight
/// at each step, without trusting wall clocks.
final class TraceRecorder: Sendable {
    private let lastSeq: Mutex<UInt64>

    /// - Parameter startingAfter: the first event gets this plus one. The default gives 1, 2, 3, …
    init(startingAfter: UInt64 = 0) {
        self.lastSeq = Mutex(startingAfter)
    }

    /// Stamps an event with the next sequence number.
    func record(_ kind: TraceEvent.Kind, _ name: String) -> TraceEvent {
        let seq = lastSeq.withLock { seq in
            seq += 1
            return seq
        }
        return TraceEvent(seq: seq, event: kind, name: name)
    }

    /// The sequence number of the latest event (0 before the first with the default start).
    var currentSeq: UInt64 { lastSeq.withLock { $0 } }
}

import Foundation
import Protocol

/// Appends the trace events of every RESULT to `OUTPUT/<batch>/trace.jsonl`, one JSON object per line:
/// `{"worker":…,"instance":…,"episode":…,"attempt":…,"seq":…,"event":…,"name":…,"stale":false}`, and on
/// a `call_end` whose cost the worker reported, `"cost_micros":…` (micro-dollars).
///
/// `seq` orders the events of one worker process (`instance`), so the file proves, without trusting
/// wall clocks, how many episodes and calls each worker had in flight at once.
/// Owned by the coordinator's event loop (one task); not thread-safe.
final class TraceWriter {
    private let handle: FileHandle?
    /// Lines not yet written: the file is written in 64 KiB pieces, on the loop's tick and at close, not
    /// with every RESULT (a write per episode was 4% of the coordinator in W0). It is a report, not the
    /// journal: a crash loses at most the last tick's lines.
    private var pending = JSONWriter(capacity: 1 << 16)

    init(url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
        }
        handle = try FileHandle(forWritingTo: url)
    }

    /// The lines are written by hand, keys sorted (what `JSONEncoder` with `.sortedKeys` wrote before):
    /// a W0 RESULT has 28 events, and `JSONEncoder` took ~8 µs a line.
    func append(workerId: String, instance: String, ref: JobRef, events: [TraceEvent], stale: Bool) {
        guard handle != nil, !events.isEmpty else { return }
        defer { if pending.bytes.count >= 1 << 16 { flush() } }
        for e in events {
            pending.raw(#"{"attempt":"#)
            pending.integer(ref.attempt)
            if let cost = e.costMicros {
                pending.raw(#","cost_micros":"#)
                pending.integer(cost)
            }
            pending.raw(#","episode":"#)
            pending.string(ref.episodeId)
            pending.raw(#","event":"#)
            pending.string(e.event.rawValue)
            pending.raw(#","instance":"#)
            pending.string(instance)
            pending.raw(#","name":"#)
            pending.string(e.name)
            pending.raw(#","seq":"#)
            pending.integer(e.seq)
            pending.raw(stale ? #","stale":true,"worker":"# : #","stale":false,"worker":"#)
            pending.string(workerId)
            pending.raw("}\n")
        }
    }

    /// Writes the lines kept so far.
    func flush() {
        guard let handle, !pending.bytes.isEmpty else { return }
        try? handle.write(contentsOf: pending.bytes)
        pending.bytes.removeAll(keepingCapacity: true)
    }

    func close() {
        flush()
        try? handle?.synchronize()
        try? handle?.close()
    }
}

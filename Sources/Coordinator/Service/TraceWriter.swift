import Foundation
import Protocol

/// Appends the trace events of every RESULT to `OUTPUT/<batch>/trace.jsonl`, one JSON object per line:
/// `{"worker":…,"instance":…,"episode":…,"attempt":…,"seq":…,"event":…,"name":…,"stale":false}`.
///
/// `seq` orders the events of one worker process (`instance`), so the file proves, without trusting
/// wall clocks, how many episodes and calls each worker had in flight at once.
/// Owned by the coordinator's event loop (one task); not thread-safe.
final class TraceWriter {
    private let handle: FileHandle?

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
        guard let handle, !events.isEmpty else { return }
        var w = JSONWriter(capacity: events.count * 200)
        for e in events {
            w.raw(#"{"attempt":"#)
            w.integer(ref.attempt)
            w.raw(#","episode":"#)
            w.string(ref.episodeId)
            w.raw(#","event":"#)
            w.string(e.event.rawValue)
            w.raw(#","instance":"#)
            w.string(instance)
            w.raw(#","name":"#)
            w.string(e.name)
            w.raw(#","seq":"#)
            w.integer(e.seq)
            w.raw(stale ? #","stale":true,"worker":"# : #","stale":false,"worker":"#)
            w.string(workerId)
            w.raw("}\n")
        }
        try? handle.write(contentsOf: w.bytes)
    }

    func close() {
        try? handle?.synchronize()
        try? handle?.close()
    }
}

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
    private let encoder: JSONEncoder

    private struct Line: Encodable {
        var worker: String
        var instance: String
        var episode: String
        var attempt: Int
        var seq: UInt64
        var event: String
        var name: String
        var stale: Bool
    }

    init(url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
        }
        handle = try FileHandle(forWritingTo: url)
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    }

    func append(workerId: String, instance: String, ref: JobRef, events: [TraceEvent], stale: Bool) {
        guard let handle, !events.isEmpty else { return }
        var chunk = Data()
        for e in events {
            let line = Line(
                worker: workerId,
                instance: instance,
                episode: ref.episodeId,
                attempt: ref.attempt,
                seq: e.seq,
                event: e.event.rawValue,
                name: e.name,
                stale: stale
            )
            if let data = try? encoder.encode(line) {
                chunk.append(data)
                chunk.append(0x0A)
            }
        }
        try? handle.write(contentsOf: chunk)
    }

    func close() {
        try? handle?.synchronize()
        try? handle?.close()
    }
}

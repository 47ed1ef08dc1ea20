import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `--ready-file PATH` (env `REELFARM_READY_FILE`): a small JSON document that says the coordinator is
/// ready and where to reach it, for scripts, supervisors and tests, which would otherwise read the log:
///
/// ```json
/// {"pid":4242,"mode":"batch","endpoint":"tcp://127.0.0.1:40517","http":"http://127.0.0.1:39133",
///  "output":"/srv/out","batch":"promo"}
/// ```
///
/// It is written once the ROUTER socket is bound (``bound(endpoint:)``) and the HTTP side, if there is
/// one, listens (``httpListening(host:port:)``) or has given up (``httpUnavailable()``: a one-shot
/// coordinator goes on without HTTP, and `http` is then null). The endpoint and the URL are the bound
/// ones: a wildcard port (`tcp://127.0.0.1:*`, `--http 127.0.0.1:0`) is resolved.
///
/// The file appears whole or not at all (a temporary file in the same folder, then `rename`). A file left
/// at the path by an earlier run is removed before the coordinator starts (``removeStale(at:)``, once its
/// settings are checked and it holds the `--state` lock), so that whoever waits for it never reads an old
/// one. The coordinator removes its own when it exits; after SIGKILL or a second signal it stays, and its
/// `pid` tells a reader whether it is current.
///
/// Called from the coordinator's loop and the HTTP server's event loop; the write (a few hundred bytes to a
/// local file, once) is done on the calling thread, under the lock ``remove()`` takes too.
final class ReadyFile: Sendable {
    /// What the file holds. snake_case JSON.
    struct Document: Codable, Sendable, Equatable {
        var pid: Int32
        /// `batch` (one batch, then exit) or `serve`.
        var mode: String
        /// The ZeroMQ endpoint workers connect to, e.g. `tcp://127.0.0.1:5555`.
        var endpoint: String
        /// The HTTP API's base URL without a trailing slash, e.g. `http://127.0.0.1:8090`; nil: no HTTP.
        var http: String?
        /// The output folder, absolute.
        var output: String
        /// The batch being run (one-shot); nil for `serve`.
        var batch: String?

        /// `http` and `batch` are written as null when absent, not left out: every key is always there.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(pid, forKey: .pid)
            try container.encode(mode, forKey: .mode)
            try container.encode(endpoint, forKey: .endpoint)
            try container.encode(http, forKey: .http)
            try container.encode(output, forKey: .output)
            try container.encode(batch, forKey: .batch)
        }
    }

    private enum HTTPState: Sendable {
        case pending
        case listening(String)
        case absent
    }

    private struct State: Sendable {
        var endpoint: String?
        var http: HTTPState
        var written = false
        /// Removed at exit: nothing is written after.
        var closed = false
    }

    let url: URL
    private let pid: Int32
    private let mode: String
    private let output: String
    private let batch: String?
    private let logger: Logger
    private let state: Mutex<State>

    /// - Parameter expectsHTTP: whether an HTTP server is started (`--http` not `off`); the file then waits
    ///   for it too.
    init(url: URL, pid: Int32, mode: String, output: URL, batch: String?, expectsHTTP: Bool, logger: Logger) {
        self.url = url
        self.pid = pid
        self.mode = mode
        self.output = output.path
        self.batch = batch
        self.logger = logger
        state = Mutex(State(http: expectsHTTP ? .pending : .absent))
    }

    /// Removes a file an earlier run left at `url` (a crash, SIGKILL). A missing file is fine.
    static func removeStale(at url: URL) throws {
        guard unlink(url.path) == 0 || errno == ENOENT else { throw systemError(url) }
    }

    /// The ROUTER socket is bound at `endpoint` (the real one, wildcard port resolved).
    func bound(endpoint: String) {
        settle { $0.endpoint = endpoint }
    }

    /// The HTTP server listens on `host:port` (the bound address).
    func httpListening(host: String, port: Int) {
        let shown = host.contains(":") ? "[\(host)]" : host
        settle { $0.http = .listening("http://\(shown):\(port)") }
    }

    /// The HTTP server could not listen and the coordinator goes on without it.
    func httpUnavailable() {
        settle { $0.http = .absent }
    }

    /// At exit: removes the file if this process wrote it, and writes none after.
    func remove() {
        state.withLock { s in
            s.closed = true
            if s.written { try? FileManager.default.removeItem(at: url) }
        }
    }

    /// Applies `change`; once the endpoint and the HTTP state are both known, writes the file (once). The
    /// write is done under the lock, so that ``remove()`` never runs between it and its rename.
    private func settle(_ change: (inout State) -> Void) {
        let outcome: Result<Void, any Error>? = state.withLock { s in
            change(&s)
            guard !s.written, !s.closed, let endpoint = s.endpoint else { return nil }
            let http: String?
            switch s.http {
            case .pending: return nil
            case .listening(let url): http = url
            case .absent: http = nil
            }
            s.written = true
            let document = Document(
                pid: pid,
                mode: mode,
                endpoint: endpoint,
                http: http,
                output: output,
                batch: batch
            )
            return Result { try Self.write(document, to: url) }
        }
        switch outcome {
        case nil: break
        case .success: logger.debug("ready file written", metadata: ["path": "\(url.path)"])
        case .failure(let error):
            // The coordinator works without it; whoever waits for the file times out and reads this.
            logger.error("cannot write the ready file", metadata: ["path": "\(url.path)", "error": "\(error)"])
        }
    }

    /// Writes `document` to `url` atomically: a temporary file beside it, then `rename`.
    static func write(_ document: Document, to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(document)
        data.append(UInt8(ascii: "\n"))
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(document.pid).tmp")
        do {
            try data.write(to: temporary)
            guard rename(temporary.path, url.path) == 0 else { throw systemError(url) }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }

    /// The error of the system call that just failed on `url`, with its `errno` in words.
    private static func systemError(_ url: URL) -> CocoaError {
        CocoaError(
            .fileWriteUnknown,
            userInfo: [NSFilePathErrorKey: url.path, NSLocalizedDescriptionKey: String(cString: strerror(errno))]
        )
    }

    /// Reads a ready file (tests, tools).
    static func read(_ url: URL) throws -> Document {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(Document.self, from: Data(contentsOf: url))
    }
}

import Foundation
import Logging
import Testing

@testable import Coordinator

@Suite("--ready-file: written once, whole, when the endpoint and the HTTP side are known")
struct ReadyFileTests {
    func folder() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("reelfarm-ready-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    func make(_ url: URL, mode: String = "batch", batch: String? = "promo", http: Bool) -> ReadyFile {
        ReadyFile(
            url: url,
            pid: 4242,
            mode: mode,
            output: URL(fileURLWithPath: "/srv/out"),
            batch: batch,
            expectsHTTP: http,
            logger: Logger(label: "test")
        )
    }

    func exists(_ url: URL) -> Bool { FileManager.default.fileExists(atPath: url.path) }

    @Test("waits for both the bound endpoint and the listening HTTP server, in either order")
    func waitsForBoth() throws {
        let dir = try folder()
        for httpFirst in [false, true] {
            let url = dir.appendingPathComponent("ready-\(httpFirst).json")
            let ready = make(url, http: true)
            if httpFirst {
                ready.httpListening(host: "127.0.0.1", port: 39133)
            } else {
                ready.bound(endpoint: "tcp://127.0.0.1:40517")
            }
            #expect(!exists(url), "written before both were known")
            if httpFirst {
                ready.bound(endpoint: "tcp://127.0.0.1:40517")
            } else {
                ready.httpListening(host: "127.0.0.1", port: 39133)
            }
            let document = try ReadyFile.read(url)
            #expect(
                document
                    == .init(
                        pid: 4242,
                        mode: "batch",
                        endpoint: "tcp://127.0.0.1:40517",
                        http: "http://127.0.0.1:39133",
                        output: "/srv/out",
                        batch: "promo"
                    )
            )
        }
        // Nothing else is left in the folder: the temporary files were renamed.
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == [
                "ready-false.json", "ready-true.json",
            ]
        )
    }

    @Test("without HTTP, or when HTTP gave up, http is null (present, not left out) and the bind is enough")
    func noHTTP() throws {
        let dir = try folder()
        let none = dir.appendingPathComponent("none.json")
        make(none, mode: "serve", batch: nil, http: false).bound(endpoint: "tcp://127.0.0.1:5555")
        let text = try String(contentsOf: none, encoding: .utf8)
        #expect(
            text
                == #"{"batch":null,"endpoint":"tcp://127.0.0.1:5555","http":null,"mode":"serve","output":"/srv/out","pid":4242}"#
                + "\n"
        )
        let failed = dir.appendingPathComponent("failed.json")
        let ready = make(failed, http: true)
        ready.bound(endpoint: "tcp://127.0.0.1:5555")
        #expect(!exists(failed))
        ready.httpUnavailable()
        #expect(try ReadyFile.read(failed).http == nil)
    }

    @Test("written once: later calls change nothing; an IPv6 address gets brackets")
    func once() throws {
        let dir = try folder()
        let url = dir.appendingPathComponent("ready.json")
        let ready = make(url, http: true)
        ready.httpListening(host: "::1", port: 8090)
        ready.bound(endpoint: "tcp://[::1]:5555")
        #expect(try ReadyFile.read(url).http == "http://[::1]:8090")
        try FileManager.default.removeItem(at: url)
        ready.bound(endpoint: "tcp://127.0.0.1:1")
        ready.httpUnavailable()
        #expect(!exists(url))
    }

    @Test("removal: a stale file goes at start (a missing one is fine); at exit only a file this process wrote")
    func removal() throws {
        let dir = try folder()
        let url = dir.appendingPathComponent("ready.json")
        try Data("{}".utf8).write(to: url)
        try ReadyFile.removeStale(at: url)
        #expect(!exists(url))
        try ReadyFile.removeStale(at: url)
        // Another process's file (never written by this one) is left alone at exit.
        try Data("{}".utf8).write(to: url)
        let unwritten = make(url, http: true)
        unwritten.bound(endpoint: "tcp://127.0.0.1:1")
        unwritten.remove()
        #expect(exists(url))
        let written = make(url, http: false)
        written.bound(endpoint: "tcp://127.0.0.1:1")
        #expect(try ReadyFile.read(url).endpoint == "tcp://127.0.0.1:1")
        written.remove()
        #expect(!exists(url))
        // Once removed (the coordinator exits), a late HTTP server or bind writes nothing.
        let late = make(url, http: true)
        late.bound(endpoint: "tcp://127.0.0.1:1")
        late.remove()
        late.httpListening(host: "127.0.0.1", port: 1)
        #expect(!exists(url))
        // A path in a folder that cannot be removed from is an error with the reason.
        #expect(throws: (any Error).self) { try ReadyFile.removeStale(at: URL(fileURLWithPath: "/proc/version")) }
    }

    @Test("a folder that does not exist: nothing written, no temporary file, no crash")
    func unwritable() throws {
        let dir = try folder()
        let url = dir.appendingPathComponent("missing/ready.json")
        make(url, http: false).bound(endpoint: "tcp://127.0.0.1:1")
        #expect(!exists(url))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }
}

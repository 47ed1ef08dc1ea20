import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Starts the real `coordinator` and `worker` executables built by `swift build`/`swift test`, on
/// loopback, with their output captured to a file that is printed only when a test fails.
enum Harness {
    /// The folder holding the built executables: `REELFARM_BIN_DIR`, else the test bundle's own folder
    /// (SwiftPM puts the executables next to `reelfarmPackageTests.xctest`).
    static let binDir: URL = {
        if let dir = ProcessInfo.processInfo.environment["REELFARM_BIN_DIR"], !dir.isEmpty {
            return URL(fileURLWithPath: dir)
        }
        let exe =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // On some layouts the test binary sits inside the .xctest folder.
        while !FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent("coordinator").path),
            dir.path != "/"
        {
            dir = dir.deletingLastPathComponent()
        }
        return dir
    }()

    static var coordinatorPath: String { binDir.appendingPathComponent("coordinator").path }
    static var workerPath: String { binDir.appendingPathComponent("worker").path }

    /// A fresh temporary folder for one test.
    static func tempDir(_ name: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("reelfarm-it-\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Fast simulated latencies so that a test batch takes seconds, not minutes.
    static let fastSimulation = ["REELFARM_SIM_LATENCY": "llm=40,tts=30,image=60,render=20"]
}

/// What a coordinator's `--ready-file` holds (docs/CLI.md), read as any script would: by its keys.
struct Ready: Decodable, Sendable {
    var pid: Int32
    var mode: String
    var endpoint: String
    var http: String?
    var output: String
    var batch: String?
}

/// One child process with its output going to a log file.
final class Child: @unchecked Sendable {
    let process = Process()
    let logURL: URL
    let name: String
    /// Where a coordinator that runs or serves batches writes its `--ready-file`: `NAME.ready.json` beside
    /// the log, added to its arguments by `init`, or the test's own `REELFARM_READY_FILE` (nil for workers
    /// and the client subcommands).
    let readyURL: URL?
    private let readyBox = Mutex<Ready?>(nil)

    init(name: String, executable: String, arguments: [String], environment: [String: String] = [:], cwd: URL) throws {
        self.name = name
        logURL = cwd.appendingPathComponent("\(name).log")
        var arguments = arguments
        if let path = environment["REELFARM_READY_FILE"] {
            readyURL = URL(fileURLWithPath: path, relativeTo: cwd)
        } else if executable == Harness.coordinatorPath, Self.runsBatches(arguments),
            !arguments.contains("--ready-file")
        {
            let url = cwd.appendingPathComponent("\(name).ready.json")
            // First, after the subcommand: a test's last option may be one left without its value on purpose.
            let at = arguments.first.map { $0.hasPrefix("-") } ?? true ? 0 : 1
            arguments.insert(contentsOf: ["--ready-file", url.path], at: at)
            readyURL = url
        } else {
            readyURL = nil
        }
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let handle = try FileHandle(forWritingTo: logURL)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        // Settings of the developer's shell must not leak into tests.
        for key in [
            "MAX_PARALLEL_EPISODES", "MAX_PARALLEL_API_CALLS", "REELFARM_SIM_LATENCY", "REELFARM_SIM_FAIL",
            "REELFARM_SIM_FAILURE_RATE", "REELFARM_SIM_SEED", "LOG_LEVEL", "REELFARM_CONNECT", "REELFARM_CONFIG",
            "OPENAI_BASE_URL", "OPENAI_API_KEY", "HF_TOKEN", "ELEVENLABS_API_KEY", "REELFARM_RENDER_PRESET",
            "OPENAI_SCRIPT_MODEL", "OPENAI_VOICE_MODEL", "OPENAI_IMAGE_MODEL", "REELFARM_NO_CHECK", "HF_BASE_URL",
            "ELEVENLABS_BASE_URL", "ELEVENLABS_VOICE_IDS", "REELFARM_NO_REUSE", "REELFARM_ASSET_STORE",
            "REELFARM_ASSET_STORE_SIZE", "REELFARM_MAX_SPEND", "REELFARM_MAX_SPEND_PER_DAY",
        ] {
            env.removeValue(forKey: key)
        }
        // The simulated providers unless a test asks for others: most tests check the distributed
        // machinery, not video files.
        env["REELFARM_PROVIDERS"] = "simulated"
        env.merge(environment) { _, new in new }
        process.environment = env
        process.currentDirectoryURL = cwd
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// Waits for exit; kills the process and records a test failure after `timeout`.
    @discardableResult
    func wait(timeout: Duration = .seconds(120)) async -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline {
                signal(SIGKILL)
                Issue.record("\(name) did not exit within \(timeout); log:\n\(log.suffix(6000))")
                process.waitUntilExit()
                return -1
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return process.terminationStatus
    }

    /// Polls the log until `predicate` holds; records a failure with the log after `timeout`.
    @discardableResult
    func waitForLog(
        within timeout: Duration = .seconds(60),
        _ what: String,
        _ predicate: (String) -> Bool
    ) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if predicate(log) { return true }
            if !process.isRunning { break }
            try? await Task.sleep(for: .milliseconds(50))
        }
        if predicate(log) { return true }
        Issue.record("\(name): timed out waiting for \(what); log:\n\(log.suffix(6000))")
        return false
    }

    /// Whether `coordinator ARGUMENTS` runs or serves batches (and so takes `--ready-file`), rather than being
    /// a client or tool subcommand (`submit`, `status`, `check`, …).
    static func runsBatches(_ arguments: [String]) -> Bool {
        guard let first = arguments.first else { return true }
        return first.hasPrefix("-") || first == "run" || first == "serve"
    }

    /// The coordinator's ready file once it is there and written by this process: its ZeroMQ endpoint is
    /// bound and its HTTP side listens (or gave up). Nil, with a recorded failure, after `timeout`, or when
    /// the process exits first (it removes the file when it exits).
    func ready(within timeout: Duration = .seconds(30)) async -> Ready? {
        if let known = readyBox.withLock({ $0 }) { return known }
        guard let readyURL else {
            Issue.record("\(name) was not started as a coordinator that runs batches: it has no ready file")
            return nil
        }
        let decoder = JSONDecoder()
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let data = try? Data(contentsOf: readyURL),
                let ready = try? decoder.decode(Ready.self, from: data),
                ready.pid == pid
            {
                readyBox.withLock { $0 = ready }
                return ready
            }
            if !process.isRunning { break }
            try? await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("\(name): no ready file at \(readyURL.path); log:\n\(log.suffix(6000))")
        return nil
    }

    /// The base URL (`http://HOST:PORT/`) of the coordinator's HTTP side, from its ready file (`--http HOST:0`
    /// picks a free port); nil, with a recorded failure, if it is not ready within 30 s or has no HTTP.
    func httpBase() async -> String? {
        guard let ready = await ready() else { return nil }
        guard let http = ready.http else {
            Issue.record("\(name) is ready without HTTP (the port could not be bound?); log:\n\(log.suffix(6000))")
            return nil
        }
        return http + "/"
    }

    /// The ZeroMQ endpoint the coordinator bound (a wildcard port resolved), from its ready file.
    func boundEndpoint() async -> String? {
        await ready()?.endpoint
    }

    /// Polls the coordinator's `/api/status` (at the HTTP address of its ready file: give it `--http
    /// 127.0.0.1:0`) until at least `count` episodes of the running batch succeeded; records a failure with
    /// the log after `timeout`, or when the process exits first.
    @discardableResult
    func waitForSucceeded(_ count: Int, within timeout: Duration = .seconds(60)) async -> Bool {
        guard let base = await httpBase() else { return false }
        let deadline = ContinuousClock.now + timeout
        var succeeded = 0
        while ContinuousClock.now < deadline, process.isRunning {
            let request = HTTPClientRequest(url: "\(base)api/status?episodes=none")
            if let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(10)),
                let body = try? await response.body.collect(upTo: 1 << 20),
                let status = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
                let progress = status["progress"] as? [String: Any]
            {
                succeeded = progress["succeeded"] as? Int ?? 0
                if succeeded >= count { return true }
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("\(name): \(succeeded) of \(count) episodes succeeded in time; log:\n\(log.suffix(6000))")
        return false
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// The parts of summary.json the tests check.
struct Summary: Decodable {
    struct Episode: Decodable {
        var id: String
        var status: String
        var attempts: Int
        var worker: String?
        var durationSeconds: Double?
        var errors: [String]
    }
    struct Totals: Decodable {
        var episodes: Int
        var succeeded: Int
        var failed: Int
    }
    var batchId: String
    var status: String
    var wallSeconds: Double
    var totals: Totals
    var episodes: [Episode]

    static func load(_ output: URL, batch: String) throws -> Summary {
        let data = try Data(contentsOf: output.appendingPathComponent(batch).appendingPathComponent("summary.json"))
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(Summary.self, from: data)
    }
}

/// One line of trace.jsonl.
struct TraceLine: Decodable {
    var worker: String
    var instance: String
    var episode: String
    var attempt: Int
    var seq: UInt64
    var event: String
    var name: String
    var stale: Bool

    static func load(_ output: URL, batch: String) throws -> [TraceLine] {
        let text = try String(
            contentsOf: output.appendingPathComponent(batch).appendingPathComponent("trace.jsonl"),
            encoding: .utf8
        )
        return try text.split(separator: "\n").map { try JSONDecoder().decode(TraceLine.self, from: Data($0.utf8)) }
    }

    /// The largest number of (start … end) intervals open at once, replaying events in `seq` order.
    static func maxInFlight(_ lines: [TraceLine], start: String, end: String, key: (TraceLine) -> String) -> Int {
        var open = Set<String>()
        var peak = 0
        for line in lines.sorted(by: { $0.seq < $1.seq }) {
            if line.event == start { open.insert(key(line)) }
            if line.event == end { open.remove(key(line)) }
            peak = max(peak, open.count)
        }
        return peak
    }
}

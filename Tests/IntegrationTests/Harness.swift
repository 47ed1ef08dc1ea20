import Foundation
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

/// One child process with its output going to a log file.
final class Child: @unchecked Sendable {
    let process = Process()
    let logURL: URL
    let name: String

    init(name: String, executable: String, arguments: [String], environment: [String: String] = [:], cwd: URL) throws {
        self.name = name
        logURL = cwd.appendingPathComponent("\(name).log")
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

    /// The base URL (`http://HOST:PORT/`) the coordinator logged once its HTTP side was up (`--http HOST:0`
    /// picks a free port); nil, with a recorded failure, if it did not within 30 s.
    func httpBase() async -> String? {
        let marker = "dashboard and status API on http://"
        guard await waitForLog(within: .seconds(30), "the HTTP address", { $0.contains(marker) }),
            let line = log.split(separator: "\n").first(where: { $0.contains(marker) })
        else { return nil }
        return String(line[line.range(of: "http://")!.lowerBound...].prefix { $0 != " " })
    }

    /// The endpoint the coordinator logged after binding a wildcard port.
    func boundEndpoint() async -> String? {
        guard await waitForLog(within: .seconds(30), "the bound endpoint", { $0.contains("coordinator listening") })
        else {
            return nil
        }
        for line in log.split(separator: "\n") where line.contains("coordinator listening") {
            if let range = line.range(of: "endpoint=") {
                return String(line[range.upperBound...].split(separator: " ").first ?? "")
            }
        }
        return nil
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

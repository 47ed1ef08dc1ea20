import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Real episodes from the real binaries: MP4 files checked with ffprobe, manifests checked against the
/// files, with the offline providers and with every stage pointed at the mock provider server.
@Suite(.serialized) struct EpisodeFileTests {
    static let batchYAML = """
        - topic: The secret life of lighthouse keepers
          id: lighthouse
          scenes: 2
        - topic: How honeybees vote on a new home
          id: honeybees
          characters: [Ada, Bo]
          scenes: 2
        """

    struct Manifest: Decodable {
        struct Asset: Decodable {
            var item: String
            var kind: String
            var file: String?
            var provider: String
            var placeholder: Bool
            var durationSeconds: Double?
            var sha256: String?
        }
        var episodeId: String
        var assets: [Asset]
    }

    struct Probe {
        var codecs: [String: String]  // codec_type -> codec_name
        var width: Int
        var height: Int
        var duration: Double
    }

    static func run(_ tool: String, _ arguments: [String]) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return data
    }

    static func probe(_ file: URL) throws -> Probe {
        let data = try run(
            "ffprobe",
            [
                "-v", "error", "-show_entries", "stream=codec_type,codec_name,width,height:format=duration",
                "-of", "json", file.path,
            ]
        )
        let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        var codecs: [String: String] = [:]
        var width = 0
        var height = 0
        for stream in json["streams"] as? [[String: Any]] ?? [] {
            let type = stream["codec_type"] as? String ?? "?"
            codecs[type] = stream["codec_name"] as? String
            if type == "video" {
                width = stream["width"] as? Int ?? 0
                height = stream["height"] as? Int ?? 0
            }
        }
        let duration = Double((json["format"] as? [String: Any])?["duration"] as? String ?? "") ?? 0
        return Probe(codecs: codecs, width: width, height: height, duration: duration)
    }

    /// A single frame at `seconds`, as PNG bytes.
    static func frame(_ file: URL, at seconds: Double) throws -> Data {
        try run(
            "ffmpeg",
            [
                "-v", "error", "-ss", String(format: "%.2f", seconds), "-i", file.path, "-frames:v", "1",
                "-f", "image2pipe", "-vcodec", "png", "-",
            ]
        )
    }

    /// Checks one published episode folder the way a user would; returns its manifest.
    @discardableResult
    static func checkEpisode(_ dir: URL) throws -> Manifest? {
        let video = dir.appendingPathComponent("episode.mp4")
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("script.json").path))
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let manifest = try decoder.decode(
            Manifest.self,
            from: Data(contentsOf: dir.appendingPathComponent("manifest.json"))
        )
        let probe = try probe(video)
        #expect(probe.codecs["video"] == "h264", "\(dir.lastPathComponent)")
        #expect(probe.codecs["audio"] == "aac", "\(dir.lastPathComponent)")
        #expect(probe.width == 1280 && probe.height == 720)
        let voices = manifest.assets.filter { $0.kind == "voice" }
        #expect(!voices.isEmpty)
        let speech = voices.compactMap(\.durationSeconds).reduce(0, +)
        #expect(abs(probe.duration - speech) <= 0.5, "video \(probe.duration)s vs voices \(speech)s")
        // Every asset the manifest names is a non-empty file with a SHA-256 recorded.
        for asset in manifest.assets {
            guard let file = asset.file else { continue }
            let attributes = try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent(file).path)
            #expect((attributes[.size] as? Int ?? 0) > 0, "\(file)")
            #expect(asset.sha256?.count == 64, "\(file)")
        }
        // Scenes differ: their images have different checksums, and frames early and late in the video differ.
        let scenes = manifest.assets.filter { $0.kind == "scene" }
        #expect(Set(scenes.compactMap(\.sha256)).count == scenes.count)
        let early = try frame(video, at: 0.3)
        let late = try frame(video, at: max(0.3, probe.duration - 0.5))
        #expect(!early.isEmpty && early != late)
        return manifest
    }

    @Test func offlineProvidersMakeRealEpisodes() async throws {
        let dir = try Harness.tempDir("offline")
        let out = dir.appendingPathComponent("output")
        let batch = dir.appendingPathComponent("batch.yaml")
        try Self.batchYAML.write(to: batch, atomically: true, encoding: .utf8)
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--workers", "2", "--batch", batch.path, "--bind", "tcp://127.0.0.1:*", "--output", out.path,
                "--batch-id", "offline",
            ],
            environment: ["REELFARM_PROVIDERS": "offline"],
            cwd: dir
        )
        #expect(await coordinator.wait(timeout: .seconds(240)) == 0, "log:\n\(coordinator.log.suffix(4000))")
        let summary = try Summary.load(out, batch: "offline")
        #expect(summary.totals.succeeded == 2)
        for id in ["lighthouse", "honeybees"] {
            let manifest = try Self.checkEpisode(out.appendingPathComponent("offline/\(id)"))
            #expect(manifest?.assets.filter { $0.kind == "voice" }.allSatisfy { $0.provider == "espeak-ng" } == true)
            #expect(manifest?.assets.filter { $0.kind == "scene" }.allSatisfy { $0.provider == "offline" } == true)
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent("offline").path)
        #expect(
            Set(leftovers).isSubset(of: [
                "lighthouse", "honeybees", "summary.json", "report.html", "trace.jsonl", ".work",
            ])
        )
        let work = out.appendingPathComponent("offline/.work")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: work.path))?.isEmpty ?? true)
    }

    /// Starts `mock-provider` on a free port; returns it and its base URL.
    static func startMock(in dir: URL) async throws -> (Child, String)? {
        let mock = try Child(
            name: "mock-provider",
            executable: Harness.binDir.appendingPathComponent("mock-provider").path,
            arguments: ["--port", "0"],
            cwd: dir
        )
        guard
            await mock.waitForLog(
                within: .seconds(30),
                "the mock's address",
                { $0.contains("mock-provider listening on ") }
            )
        else { return nil }
        let line = mock.log.split(separator: "\n").first { $0.contains("mock-provider listening on ") }!
        let url = String(line[line.range(of: "listening on ")!.upperBound...]).trimmingCharacters(in: .whitespaces)
        return (mock, url)
    }

    /// Starts the mock and applies `config` (a `POST /admin/config` body).
    static func startMock(in dir: URL, config: String) async throws -> (Child, String)? {
        guard let (mock, base) = try await startMock(in: dir) else { return nil }
        _ = try await http("POST", "\(base)/admin/config", body: config)
        return (mock, base)
    }

    static func http(_ method: String, _ url: String, body: String? = nil) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method)
        if let body {
            request.body = .bytes(ByteBuffer(string: body))
            request.headers.add(name: "Content-Type", value: "application/json")
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 4 << 20)
        return (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView)) as? [String: Any]) ?? [:]
    }

    @Test func everyStageAgainstTheMockProviderWithFailures() async throws {
        let dir = try Harness.tempDir("mock")
        let out = dir.appendingPathComponent("output")
        guard let (mock, base) = try await Self.startMock(in: dir) else { return }
        defer { mock.signal(SIGTERM) }
        // The first two script calls get a rate-limit 429 with Retry-After 1 s; one image call hits the
        // billing quota; speech and images also fail now and then (5xx, malformed, slow).
        _ = try await Self.http(
            "POST",
            "\(base)/admin/config",
            body: """
                {"seed": 7, "openai": {"request_limit": 1000, "window_ms": 60000, "timeout_delay_ms": 4000,
                  "force_failures": [
                    {"kind": "rate_limit", "count": 2, "endpoint": "chat_completions", "retry_after_ms": 1000},
                    {"kind": "billing", "count": 1, "endpoint": "images_generations"}],
                  "failure_rates": {"server_error": 0.05, "malformed": 0.05, "timeout": 0.02}}}
                """
        )
        let config = dir.appendingPathComponent("reelfarm.yaml")
        try """
        providers: {script: openai, voice: openai, image: openai, render: ffmpeg}
        http: {timeout_seconds: 2, max_retries: 4}
        """.write(to: config, atomically: true, encoding: .utf8)
        let batch = dir.appendingPathComponent("batch.yaml")
        try Self.batchYAML.write(to: batch, atomically: true, encoding: .utf8)
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--workers", "1", "--batch", batch.path, "--bind", "tcp://127.0.0.1:*", "--output", out.path,
                "--batch-id", "mock", "--config", config.path,
            ],
            environment: [
                "REELFARM_PROVIDERS": "", "OPENAI_BASE_URL": "\(base)/v1", "OPENAI_API_KEY": "sk-test-not-a-real-key",
                // The injected failures are drawn per request: a check's calls would shift which fail.
                "REELFARM_NO_CHECK": "1",
            ],
            cwd: dir
        )
        #expect(await coordinator.wait(timeout: .seconds(240)) == 0, "log:\n\(coordinator.log.suffix(6000))")
        let summary = try Summary.load(out, batch: "mock")
        #expect(summary.totals.succeeded == 2)
        var placeholders: [Manifest.Asset] = []
        for id in ["lighthouse", "honeybees"] {
            guard let manifest = try Self.checkEpisode(out.appendingPathComponent("mock/\(id)")) else { continue }
            let made = manifest.assets.filter { ($0.kind == "voice" || $0.kind == "scene") && !$0.placeholder }
            #expect(made.allSatisfy { $0.provider == "openai" })
            placeholders += manifest.assets.filter(\.placeholder)
        }
        // The billing failure became a recorded placeholder and was never retried.
        #expect(!placeholders.isEmpty)
        let log = coordinator.log
        let retries = log.split(separator: "\n").filter { $0.contains("provider call retrying") }
        #expect(!retries.contains { $0.contains("failure=quota") })
        // Retry-After was honoured for the rate-limited script calls. The limits the mock announces are
        // learned, so the calls are leased: the 429 goes back to the fleet budget, and the coordinator
        // holds the llm for the server's 1 s on every worker (not one worker's private sleep).
        let lines = log.split(separator: "\n")
        #expect(
            lines.contains {
                $0.contains("provider 429; retrying on a new permit") && $0.contains("failure=rate_limit")
            },
            "log:\n\(log.suffix(6000))"
        )
        #expect(lines.contains { $0.contains("llm paused for 1.00s on every worker") }, "log:\n\(log.suffix(6000))")
        let stats = try await Self.http("GET", "\(base)/stats")
        let openai = stats["openai"] as? [String: Any] ?? [:]
        let endpoints = openai["endpoints"] as? [String: Any] ?? [:]
        let chat = endpoints["chat_completions"] as? [String: Any] ?? [:]
        let images = endpoints["images_generations"] as? [String: Any] ?? [:]
        let chatRejected = chat["rejected"] as? [String: Any] ?? [:]
        let imageRejected = images["rejected"] as? [String: Any] ?? [:]
        #expect(chatRejected["rate_limit"] as? Int == 2, "stats: \(chat)")
        #expect(imageRejected["billing"] as? Int == 1, "stats: \(images)")
    }
}

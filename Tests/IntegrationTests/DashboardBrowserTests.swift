import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Debian's Chromium, if installed.
let chromiumPath: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first {
    FileManager.default.isExecutableFile(atPath: $0)
}

/// Chromium (Debian's package, installed by `scripts/test`), headless, loads the dashboard of a running
/// batch: the page renders the batch from `/api/status`, logs nothing to the console (no errors, no
/// failed requests), and a screenshot is kept as a test artifact.
@Suite(.serialized, .enabled(if: chromiumPath != nil, "needs chromium (scripts/test installs it)"))
struct DashboardBrowserTests {
    /// Where screenshots go: `REELFARM_TEST_ARTIFACTS`, else `.build/test-artifacts` of this checkout.
    static var artifacts: URL {
        if let dir = ProcessInfo.processInfo.environment["REELFARM_TEST_ARTIFACTS"] {
            return URL(fileURLWithPath: dir)
        }
        return Harness.binDir.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("test-artifacts")
    }

    /// Runs headless Chromium on `url`; returns (stdout, stderr).
    static func runChromium(_ arguments: [String], url: String) throws -> (String, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: chromiumPath!)
        process.arguments =
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--enable-logging=stderr",
                "--v=0", "--window-size=1280,1100", "--virtual-time-budget=4000",
                "--user-data-dir=\(FileManager.default.temporaryDirectory.path)/reelfarm-chromium-\(UUID().uuidString)",
            ] + arguments + [url]
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    @Test("the dashboard of a running batch renders it, with no console errors; screenshot kept")
    func dashboardInAHeadlessBrowser() async throws {
        let dir = try Harness.tempDir("browser")
        let out = dir.appendingPathComponent("output")
        var env = Harness.fastSimulation
        env["REELFARM_SIM_LATENCY"] = "llm=400,tts=300,image=600,render=300"
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--workers", "2", "--episodes", "16", "--bind", "tcp://127.0.0.1:*", "--output", out.path,
                "--batch-id", "browser", "--http", "127.0.0.1:0", "--budget", "image=8/s",
            ],
            environment: env,
            cwd: dir
        )
        #expect(
            await coordinator.waitForLog(within: .seconds(30), "the first episode") { $0.contains("completed (1/16)") }
        )
        let url = try #require(await coordinator.httpBase())

        let (dom, domLog) = try Self.runChromium(["--dump-dom"], url: url)
        #expect(dom.contains("batch browser"), "the page did not render the batch:\n\(dom.prefix(2000))")
        #expect(dom.range(of: #"\d+/16 done"#, options: .regularExpression) != nil)
        #expect(dom.contains("local-1") && dom.contains("local-2"), "workers missing")
        #expect(dom.contains("<rect"), "the timeline drew nothing")
        let console = domLog.split(separator: "\n").filter { $0.contains(":CONSOLE") }
        #expect(console.isEmpty, "console output: \(console)")

        try FileManager.default.createDirectory(at: Self.artifacts, withIntermediateDirectories: true)
        let shot = Self.artifacts.appendingPathComponent("dashboard.png")
        try? FileManager.default.removeItem(at: shot)
        let (_, shotLog) = try Self.runChromium(["--screenshot=\(shot.path)"], url: url)
        let size = (try? FileManager.default.attributesOfItem(atPath: shot.path)[.size] as? Int) ?? 0
        #expect(size > 10_000, "screenshot \(shot.path): \(size) bytes; \(shotLog.suffix(1000))")
        print("dashboard screenshot: \(shot.path)")

        #expect(await coordinator.wait(timeout: .seconds(120)) == 0, "log:\n\(coordinator.log.suffix(3000))")
    }

    @Test("coordinator serve's dashboard lists the batches and links a finished one's report; screenshot kept")
    func serveDashboardInAHeadlessBrowser() async throws {
        let dir = try Harness.tempDir("browser-serve")
        var env = Harness.fastSimulation
        env["REELFARM_SIM_LATENCY"] = "llm=400,tts=300,image=600,render=300"
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "serve", "--workers", "2", "--bind", "tcp://127.0.0.1:*", "--output",
                dir.appendingPathComponent("output").path, "--http", "127.0.0.1:0", "--budget", "image=8/s",
            ],
            environment: env,
            cwd: dir
        )
        defer { coordinator.signal(SIGKILL) }
        let url = try #require(await coordinator.httpBase())
        _ = try await EpisodeFileTests.http("POST", "\(url)api/batches?episodes=2&id=short")
        _ = try await EpisodeFileTests.http("POST", "\(url)api/batches?episodes=16&id=long")
        #expect(
            await coordinator.waitForLog(within: .seconds(60), "the second batch's first episode") {
                $0.contains("completed (1/16)")
            }
        )
        let (dom, domLog) = try Self.runChromium(["--dump-dom"], url: url)
        #expect(dom.contains("batch long") && dom.contains("Batches"), "\(dom.prefix(3000))")
        #expect(dom.contains(#"api/batches/short/report"#), "the finished batch links its report")
        #expect(dom.contains(">completed<") && dom.contains(">running<"), "\(dom.prefix(3000))")
        let console = domLog.split(separator: "\n").filter { $0.contains(":CONSOLE") }
        #expect(console.isEmpty, "console output: \(console)")
        let (report, reportLog) = try Self.runChromium(["--dump-dom"], url: url + "api/batches/short/report")
        #expect(report.contains("short") && report.contains("2 succeeded"), "\(report.prefix(2000))")
        #expect(reportLog.split(separator: "\n").filter { $0.contains(":CONSOLE") }.isEmpty)

        try FileManager.default.createDirectory(at: Self.artifacts, withIntermediateDirectories: true)
        let shot = Self.artifacts.appendingPathComponent("dashboard-serve.png")
        try? FileManager.default.removeItem(at: shot)
        _ = try Self.runChromium(["--screenshot=\(shot.path)"], url: url)
        let size = (try? FileManager.default.attributesOfItem(atPath: shot.path)[.size] as? Int) ?? 0
        #expect(size > 10_000, "screenshot \(shot.path): \(size) bytes")
        print("serve dashboard screenshot: \(shot.path)")
        coordinator.signal(SIGTERM)
        #expect(await coordinator.wait(timeout: .seconds(60)) == 0)
    }

    @Test("report.html: self-contained, renders the batch, escapes hostile topics, no console output; screenshot kept")
    func reportInAHeadlessBrowser() async throws {
        let dir = try Harness.tempDir("report")
        let out = dir.appendingPathComponent("output")
        let batch = dir.appendingPathComponent("batch.yaml")
        try """
        - topic: "</script><script>document.title='pwned'</script> lighthouses"
          id: hostile
        - topic: honeybees
          id: bees
        - topic: octopus hearts
          id: octopus
        - topic: the emu war
          id: emus
        """.write(to: batch, atomically: true, encoding: .utf8)
        var env = Harness.fastSimulation
        // Every voice line of the three others becomes a placeholder: far over the 10 % that warns.
        env["REELFARM_SIM_FAIL"] = "llm:emus;tts:hostile,bees,octopus"
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--workers", "2", "--batch", batch.path, "--bind", "tcp://127.0.0.1:*", "--output", out.path,
                "--batch-id", "report", "--http", "off", "--budget", "image=20/s", "--max-attempts", "2",
            ],
            environment: env,
            cwd: dir
        )
        #expect(
            await coordinator.wait(timeout: .seconds(120)) == 1,
            "emus fails: log:\n\(coordinator.log.suffix(3000))"
        )
        let report = out.appendingPathComponent("report/report.html")
        let html = try String(contentsOf: report, encoding: .utf8)
        #expect(!html.contains("<script>document.title"), "the hostile topic must stay data")
        #expect(!html.contains("src=\"http") && !html.contains("href=\"http"), "nothing fetched from elsewhere")

        let (dom, log) = try Self.runChromium(["--dump-dom"], url: report.absoluteString)
        #expect(dom.contains("Batch report: completed with failures"), "\(dom.prefix(1500))")
        #expect(dom.contains("3/4 succeeded") && dom.contains("1 failed"))
        #expect(dom.contains("script: simulated failure"), "the failure is listed")
        #expect(dom.contains("&lt;/script&gt;&lt;script&gt;document.title"), "the topic is shown as text")
        #expect(!dom.contains("<title>pwned</title>"))
        #expect(dom.components(separatedBy: "<rect").count - 1 >= 4, "the Gantt chart and the rate chart")
        #expect(dom.contains("image: 20 per 1.0s"))
        #expect(dom.contains("id=\"placeholder-warning\""), "the placeholder warning at the top")
        #expect(dom.contains("assets (") && dom.contains("are placeholders"))
        #expect(coordinator.log.contains("are placeholders — most common cause: voices"))
        let console = log.split(separator: "\n").filter { $0.contains(":CONSOLE") }
        #expect(console.isEmpty, "console output: \(console)")

        try FileManager.default.createDirectory(at: Self.artifacts, withIntermediateDirectories: true)
        let shot = Self.artifacts.appendingPathComponent("report.png")
        try? FileManager.default.removeItem(at: shot)
        _ = try Self.runChromium(["--screenshot=\(shot.path)"], url: report.absoluteString)
        let size = (try? FileManager.default.attributesOfItem(atPath: shot.path)[.size] as? Int) ?? 0
        #expect(size > 10_000, "screenshot \(shot.path): \(size) bytes")
        print("report screenshot: \(shot.path)")
    }
}

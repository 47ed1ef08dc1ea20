import ArgumentParser
import Foundation
import Hummingbird
import Logging

/// `mock-provider`: a stand-in for the OpenAI-compatible, Hugging Face and ElevenLabs APIs. See README.md here.
///
/// On startup it prints exactly one line to standard output, `mock-provider listening on http://HOST:PORT`, with the
/// port actually bound (useful with `--port 0`). Logs go to standard error. SIGTERM or SIGINT shuts it down
/// gracefully.
@main
struct MockProviderMain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mock-provider",
        abstract: "A mock OpenAI / Hugging Face / ElevenLabs server with limits, 429s and injected failures."
    )

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on; 0 picks a free one.")
    var port = 8_089

    @Option(help: "A JSON configuration file (schema in README.md). Flags below override it.")
    var config: String?

    @Option(help: "Seed for injected failures and latency jitter.")
    var seed: UInt64?

    @Option(help: "Latency added to every accepted request of every provider, in milliseconds.")
    var latencyMs: Int?

    @Option(help: "Latency jitter of every provider, in percent (0-100).")
    var jitterPercent: Double?

    @Option(help: "The sliding window of every provider's request limit, in milliseconds.")
    var windowMs: Int?

    @Option(help: "OpenAI: requests per window (0 = no limit).")
    var openaiLimit: Int?

    @Option(help: "OpenAI: requests in flight at once (0 = no limit).")
    var openaiConcurrency: Int?

    @Option(help: "Hugging Face: requests per window (0 = no limit).")
    var huggingfaceLimit: Int?

    @Option(help: "Hugging Face: requests in flight at once (0 = no limit).")
    var huggingfaceConcurrency: Int?

    @Option(help: "Hugging Face: per model, the first N requests get 503 'currently loading'.")
    var huggingfaceColdStart: Int?

    @Option(help: "ElevenLabs: requests per window (0 = no limit).")
    var elevenlabsLimit: Int?

    @Option(help: "ElevenLabs: requests in flight at once (0 = no limit).")
    var elevenlabsConcurrency: Int?

    @Option(help: "Character lines in every chat script, dealt to the scenes round-robin (default: 1-2 per scene).")
    var scriptLines: Int?

    @Option(help: "B-roll shots in every chat script (default: half the scene count, rounded up).")
    var scriptBroll: Int?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func validate() throws {
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be between 0 and 65535.") }
        for (name, value) in [
            ("--latency-ms", latencyMs), ("--window-ms", windowMs), ("--openai-limit", openaiLimit),
            ("--openai-concurrency", openaiConcurrency), ("--huggingface-limit", huggingfaceLimit),
            ("--huggingface-concurrency", huggingfaceConcurrency), ("--huggingface-cold-start", huggingfaceColdStart),
            ("--elevenlabs-limit", elevenlabsLimit), ("--elevenlabs-concurrency", elevenlabsConcurrency),
        ] {
            if let value, value < 0 { throw ValidationError("\(name) must not be negative.") }
        }
        if Logger.Level(rawValue: logLevel) == nil { throw ValidationError("Unknown --log-level \(logLevel).") }
        if let windowMs, windowMs == 0 { throw ValidationError("--window-ms must be positive.") }
        if let jitterPercent, !(0...100).contains(jitterPercent) {
            throw ValidationError("--jitter-percent must be between 0 and 100.")
        }
        if let scriptLines, !(1...MockConfig.maxScriptItems).contains(scriptLines) {
            throw ValidationError("--script-lines must be between 1 and \(MockConfig.maxScriptItems).")
        }
        if let scriptBroll, !(0...MockConfig.maxScriptItems).contains(scriptBroll) {
            throw ValidationError("--script-broll must be between 0 and \(MockConfig.maxScriptItems).")
        }
    }

    func run() async throws {
        var logger = Logger(label: "mock-provider")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let startupConfig = try loadConfig()
        let app = MockProviderApp.application(
            config: startupConfig,
            host: host,
            port: port,
            logger: logger
        ) { host, port in
            let shown = host.contains(":") ? "[\(host)]" : host
            // FileHandle writes unbuffered, so a parent process sees the line at once.
            FileHandle.standardOutput.write(Data("mock-provider listening on http://\(shown):\(port)\n".utf8))
        }
        try await app.runService()
    }

    /// The `--config` file (if any) with the flags applied on top.
    private func loadConfig() throws -> MockConfig {
        var config = MockConfig()
        if let path = self.config {
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: path))
            } catch {
                throw ValidationError("Cannot read --config \(path): \(error.localizedDescription)")
            }
            do {
                config = try MockConfig.decode(data)
            } catch {
                throw ValidationError("Invalid --config \(path): \(error.message)")
            }
        }
        if let seed { config.seed = seed }
        if let scriptLines { config.scriptLines = scriptLines }
        if let scriptBroll { config.scriptBroll = scriptBroll }
        for provider in Provider.allCases {
            if let latencyMs { config[provider].latencyMs = latencyMs }
            if let jitterPercent { config[provider].jitterPercent = jitterPercent }
            if let windowMs { config[provider].windowMs = windowMs }
        }
        func limit(_ value: Int?, _ keyPath: WritableKeyPath<ProviderConfig, Int?>, _ provider: Provider) {
            if let value { config[provider][keyPath: keyPath] = value == 0 ? nil : value }
        }
        limit(openaiLimit, \.requestLimit, .openai)
        limit(openaiConcurrency, \.maxConcurrent, .openai)
        limit(huggingfaceLimit, \.requestLimit, .huggingface)
        limit(huggingfaceConcurrency, \.maxConcurrent, .huggingface)
        limit(elevenlabsLimit, \.requestLimit, .elevenlabs)
        limit(elevenlabsConcurrency, \.maxConcurrent, .elevenlabs)
        if let huggingfaceColdStart { config.huggingface.coldStartRequests = huggingfaceColdStart }
        return config
    }
}

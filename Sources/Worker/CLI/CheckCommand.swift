import ArgumentParser
import Foundation
import Shared

/// `worker check`: the provider preflight, with the settings a worker started the same way would use.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check the configured providers with one cheap real call per stage.",
        discussion: """
            Uses the same settings as `worker run` (flags, environment, .env, --config). Per stage: a \\
            chat completion capped at a token or two, a one-character speech per configured voice, OpenAI's \\
            model-info request for images (Hugging Face: the smallest image), and the versions of ffmpeg and \\
            espeak-ng for offline stages. Prints one line per stage: OK with model, voice and latency, or \\
            what is wrong and which setting to change. Exit status: 0 every stage is usable, 1 one is not, \\
            2 usage or configuration error.

            Example:
              OPENAI_API_KEY=sk-… worker check --providers openai
            """
    )

    @OptionGroup var settings: ProviderOptions

    @Option(help: "Each call's time limit in seconds (default 30).")
    var timeout: Double = 30

    func run() async throws {
        let (_, sources) = try await settings.load()
        let configuration = try ProviderConfiguration.resolve(
            providersFlag: settings.providers,
            presetFlag: settings.renderPreset,
            sources: sources
        )
        guard timeout > 0, timeout <= 600 else { throw ConfigurationError("--timeout must be from 0 to 600 seconds") }
        print("providers: \(configuration.summary)")
        let results = await Preflight(
            configuration: configuration,
            timeout: .milliseconds(Int64(timeout * 1000))
        ).run()
        for result in results { print(result) }
        let passed = Preflight.passed(results)
        print(passed ? "check: OK" : "check: FAILED: fix the stages marked FAIL, then run the check again")
        throw ExitCode(passed ? 0 : 1)
    }
}

/// The options that choose and configure the providers, shared by `worker run` and `worker check`.
struct ProviderOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Providers: offline (default), simulated, openai, or per stage: script=openai,voice=elevenlabs,image=huggingface,render=ffmpeg (env REELFARM_PROVIDERS)."
        )
    )
    var providers: String?

    @Option(
        name: .customLong("render-preset"),
        help: "landscape (1280x720, default) or vertical (1080x1920) (env REELFARM_RENDER_PRESET)."
    )
    var renderPreset: String?

    @Option(help: "A JSON or YAML settings file: providers, models, base URLs, render preset (env REELFARM_CONFIG).")
    var config: String?

    @Option(name: .customLong("env-file"), help: "A .env file with settings; the real environment wins over it.")
    var envFile: String = ".env"

    /// The environment (with `.env`) and the settings file, read once.
    func load() async throws -> (EnvironmentSettings, SettingsSources) {
        let environment = try await EnvironmentSettings.load(envFile: envFile)
        let configPath = config ?? environment.value("REELFARM_CONFIG")?.value
        let file: ConfigFile? = if let configPath { try await ConfigFile.load(configPath) } else { nil }
        return (environment, SettingsSources(environment: environment, file: file))
    }
}

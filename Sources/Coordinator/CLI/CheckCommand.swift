import ArgumentParser
import Foundation
import Shared
import Subprocess

#if canImport(System)
import System
#else
import SystemPackage
#endif

/// `coordinator check`: the provider preflight of the workers this coordinator would start.
///
/// Local workers resolve their providers themselves (environment, `.env`, `--config`), so the check is
/// theirs: this runs `worker check` with the same settings a batch gives its local workers and passes
/// on its output and exit status. `coordinator run` and `serve` do the same before they start local
/// workers, unless `--no-check`.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check the providers the local workers would use: one cheap real call per stage.",
        discussion: """
            Prints one line per stage (script, voice, image, render): OK with model, voice and latency, or \\
            exactly what is wrong (bad key, unknown model, retired voice, no credits, rate limit and its \\
            reset) and which setting or variable to change. Exit status: 0 every stage is usable, 1 one is \\
            not, 2 usage or configuration error. A batch runs the same check before it starts local \\
            workers (--no-check skips it); remote workers check themselves when they start.

            Examples:
              OPENAI_API_KEY=sk-… REELFARM_PROVIDERS=openai coordinator check
              coordinator check --config reelfarm.yaml
            """
    )

    @Option(
        help: ArgumentHelp(
            "Providers, as the workers take them: offline, simulated, openai, or script=openai,voice=elevenlabs,… (env REELFARM_PROVIDERS)."
        )
    )
    var providers: String?

    @Option(help: "The settings file the local workers get (env REELFARM_CONFIG).")
    var config: String?

    @Option(name: .customLong("env-file"), help: "A .env file with settings; the real environment wins over it.")
    var envFile: String = ".env"

    @Option(
        name: .customLong("worker-binary"),
        help: "The worker executable (default: beside this coordinator, then REELFARM_WORKER_BIN, then PATH)."
    )
    var workerBinary: String?

    func run() async throws {
        let executable = try LocalWorkerPool.locateWorker(explicit: workerBinary)
        var arguments = ["--env-file", envFile]
        if let config { arguments += ["--config", URL(fileURLWithPath: config).standardizedFileURL.path] }
        if let providers { arguments += ["--providers", providers] }
        throw ExitCode(try await Self.runWorkerCheck(executable: executable, arguments: arguments))
    }

    /// Runs `worker check ARGUMENTS` with this process's environment and output; returns its exit status
    /// (1 when it died of a signal).
    static func runWorkerCheck(executable: String, arguments: [String]) async throws -> Int32 {
        let status = try await Subprocess.run(
            .path(FilePath(executable)),
            arguments: Arguments(["check"] + arguments),
            environment: .inherit,
            input: .none,
            output: .currentStandardOutput,
            error: .currentStandardError
        ).terminationStatus
        switch status {
        case .exited(let code): return code
        default: return 1
        }
    }
}

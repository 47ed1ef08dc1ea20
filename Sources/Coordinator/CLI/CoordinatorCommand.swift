import ArgumentParser
import Foundation
import Shared

/// `coordinator`: the root command. Without a subcommand it runs one batch (``RunCommand``).
struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run batches of AI video episodes across ZeroMQ workers.",
        discussion: """
            Without a subcommand, runs one batch (`coordinator run`) and exits: 0 every episode succeeded, \
            1 some failed, 2 usage or configuration error. `coordinator serve` keeps running and takes \
            batches from `coordinator submit`; `status` and `scale` talk to a running coordinator's HTTP API; `check` tests the providers.

            Examples:
              coordinator --workers 4 --episodes 24
              coordinator serve --workers 2 --state state/      # then: coordinator submit --episodes 24
              coordinator status
              coordinator scale --workers 6
            """,
        version: ReelfarmVersion.current,
        subcommands: [
            RunCommand.self, ServeCommand.self, SubmitCommand.self, StatusCommand.self, ScaleCommand.self,
            CheckCommand.self, KeygenCommand.self,
        ],
        defaultSubcommand: RunCommand.self
    )
}

/// `coordinator [run]`: runs one batch of episodes on the workers that connect to it, then exits.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run one batch and exit (the default subcommand).",
        discussion: """
            Binds a ZeroMQ ROUTER socket, dispatches episode jobs to workers by credit (never more in flight \
            than a worker announced), tracks their heartbeats, retries failed attempts and writes \
            OUTPUT/<batch>/summary.json and report.html. Exit status: 0 every episode succeeded, 1 some \
            failed, 2 usage or configuration error.

            Examples:
              coordinator --workers 4 --episodes 24
              coordinator --bind tcp://0.0.0.0:5555 --batch batch.yaml     # then: worker --connect tcp://HOST:5555
              coordinator --workers 4 --episodes 24 --budget image=10/s --budget llm=5/s --budget tts=20/s
            """
    )

    @Option(
        name: [.customLong("episodes"), .customLong("batch-count")],
        parsing: .unconditional,
        help: "Make N episodes with generated topics."
    )
    var episodes: Int?

    @Option(help: "A JSON or YAML batch file: a list of episode specs (topic, id, characters, scenes, style).")
    var batch: String?

    @Option(
        name: .customLong("batch-id"),
        help: "Name of the batch and its output folder (default: batch-YYYYMMDD-HHMMSS)."
    )
    var batchId: String?

    @OptionGroup var options: CoordinatorOptions

    func validate() throws {
        if episodes != nil && batch != nil {
            throw ValidationError("give either --episodes N or --batch FILE, not both")
        }
        if episodes == nil && batch == nil {
            throw ValidationError("give --episodes N (generated topics) or --batch FILE")
        }
        if let episodes, !(1...BatchFile.maxEpisodes).contains(episodes) {
            throw ValidationError("--episodes must be from 1 to \(BatchFile.maxEpisodes), got \(episodes)")
        }
        try options.validateWorkers()
    }

    func run() async throws {
        throw ExitCode(try await options.launch(.batch(episodes: episodes, file: batch, id: batchId)))
    }
}

/// `coordinator serve`: the long-running mode.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Keep running and run the batches submitted over HTTP, one after another.",
        discussion: """
            Binds the ZeroMQ endpoint and the HTTP API (--http, loopback by default) and waits. Batches \
            come from `coordinator submit` (or POST /api/batches) and run in submission order, each with \
            the whole fleet and the whole rate-limit budgets; the workers stay connected between batches. \
            Every batch gets OUTPUT/<batch>/ with its episodes, summary.json and report.html. With --state, \
            queued and running batches survive a restart. SIGTERM or SIGINT stops it (exit 0).

            Examples:
              coordinator serve --workers 2 --state state/
              coordinator serve --bind tcp://0.0.0.0:5555 --http 127.0.0.1:8090 --state /var/lib/reelfarm
            """
    )

    @OptionGroup var options: CoordinatorOptions

    func validate() throws {
        try options.validateWorkers()
    }

    func run() async throws {
        throw ExitCode(try await options.launch(.serve))
    }
}

extension CoordinatorOptions {
    func validateWorkers() throws {
        if !(0...256).contains(workers) {
            throw ValidationError("--workers must be from 0 to 256, got \(workers)")
        }
    }
}

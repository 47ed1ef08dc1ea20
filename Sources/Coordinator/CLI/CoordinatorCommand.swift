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
            CheckCommand.self, KeygenCommand.self, SummaryCommand.self, BenchLeasesCommand.self,
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

/// `coordinator summary --state DIR`: rewrites `summary.json` and `report.html` of the journal's finished
/// batches from the journal alone.
struct SummaryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summary",
        abstract: "Rewrite summary.json and report.html of the journal's finished batches from the journal.",
        discussion: """
            For a batch whose files were lost or never written (the coordinator was killed right after \
            recording the batch's end). What only the running coordinator knew (per-episode times, workers \
            seen, budget figures) is not in the journal and is left out. Exit 0 done, 1 a file could not be \
            written, 2 usage error or no such batch.

            Examples:
              coordinator summary --state state/
              coordinator summary --state state/ --output output/ --batch-id promo
            """
    )

    @Option(help: "The coordinator's --state folder (env REELFARM_STATE).")
    var state: String?

    @Option(help: "The folder that holds one sub-folder per batch.")
    var output: String = "output"

    @Option(name: .customLong("batch-id"), help: "Only this batch (default: every finished batch).")
    var batchId: String?

    func run() async throws {
        guard let stateDir = state ?? ProcessInfo.processInfo.environment["REELFARM_STATE"] else {
            throw ConfigurationError("give --state DIR: the journal to read")
        }
        let stateURL = URL(fileURLWithPath: stateDir)
        guard FileManager.default.fileExists(atPath: stateURL.appendingPathComponent("journal.sqlite").path) else {
            throw ConfigurationError("--state \(stateDir) holds no journal (journal.sqlite)")
        }
        let journal: Journal
        do {
            journal = try Journal(directory: stateURL)
        } catch {
            throw ConfigurationError("cannot open the journal in --state \(stateDir): \(error)")
        }
        let outputURL = URL(fileURLWithPath: output).standardizedFileURL
        let statuses = try journal.batchStatuses()
        let ids = statuses.filter { $0.value == "completed" }.keys.sorted()
        if let batchId, statuses[batchId] != "completed" {
            throw ConfigurationError(
                statuses[batchId] == nil
                    ? "the journal holds no batch \(batchId)"
                    : "batch \(batchId) is \(statuses[batchId] ?? "?"), not finished: run the coordinator again with this --state to finish it"
            )
        }
        var failures = 0
        for id in batchId.map({ [$0] }) ?? ids {
            do {
                if let summary = try SummaryRewrite.rewrite(journal: journal, batchId: id, output: outputURL) {
                    print(
                        "\(id): \(summary.totals.succeeded)/\(summary.totals.episodes) succeeded, \(summary.totals.failed) failed → \(outputURL.appendingPathComponent(id).appendingPathComponent("summary.json").path)"
                    )
                }
            } catch {
                failures += 1
                FileHandle.standardError.write(Data("coordinator: error: \(id): \(error)\n".utf8))
            }
        }
        if ids.isEmpty, batchId == nil { print("the journal holds no finished batch") }
        if failures > 0 { throw ExitCode(1) }
    }
}

extension CoordinatorOptions {
    func validateWorkers() throws {
        if !(0...256).contains(workers) {
            throw ValidationError("--workers must be from 0 to 256, got \(workers)")
        }
    }
}

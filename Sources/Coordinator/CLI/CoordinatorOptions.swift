import ArgumentParser
import Foundation
import Logging
import Protocol
import ServiceLifecycle
import Shared
import UnixSignals

/// The options `coordinator` (one batch) and `coordinator serve` share: endpoints, workers, limits,
/// budgets, journal, logging and HTTP.
struct CoordinatorOptions: ParsableArguments {
    @Option(
        help:
            "ZeroMQ endpoint to bind (env REELFARM_BIND, default tcp://127.0.0.1:5555). A wildcard port (tcp://127.0.0.1:*) picks a free one; the real endpoint is logged."
    )
    var bind: String?

    // `.unconditional`: "--workers -1" reads -1 (and validate() names the range) instead of "Missing value".
    @Option(
        parsing: .unconditional,
        help: "Local worker processes to start and supervise (0 to 256; 0: only remote workers)."
    )
    var workers: Int = 0

    @Option(help: "Folder that gets one sub-folder per batch.")
    var output: String = "output"

    @Option(
        help:
            "How local workers deliver finished episodes: transfer (over ZeroMQ, each file checked by SHA-256; default) or shared (written straight into --output; the coordinator checks the digests). Env REELFARM_ARTIFACTS."
    )
    var artifacts: String?

    @Option(
        name: .customLong("max-parallel-episodes"),
        parsing: .unconditional,
        help: "Episodes each local worker runs at once (env MAX_PARALLEL_EPISODES, default 3)."
    )
    var maxParallelEpisodes: String?

    @Option(
        name: .customLong("max-parallel-api-calls"),
        parsing: .unconditional,
        help: "API calls each episode makes at once (env MAX_PARALLEL_API_CALLS, default 5)."
    )
    var maxParallelAPICalls: String?

    @Option(
        name: .customLong("max-attempts"),
        parsing: .unconditional,
        help: "Attempts per episode before it is failed (env MAX_ATTEMPTS, default 3)."
    )
    var maxAttempts: String?

    @Option(
        name: .customLong("max-spend"),
        parsing: .unconditional,
        help: ArgumentHelp(
            "The most a batch's paid calls may cost together, in US dollars, at the workers' price tables (env REELFARM_MAX_SPEND; default: no cap).",
            discussion:
                "Leased to the attempts: no new episode starts when what is left cannot cover one, running ones finish, the rest end capped."
        )
    )
    var maxSpend: String?

    @Option(
        name: .customLong("max-spend-per-day"),
        parsing: .unconditional,
        help: ArgumentHelp(
            "(serve) The most the batches of one UTC day may cost together, in US dollars (env REELFARM_MAX_SPEND_PER_DAY; default: no daily cap).",
            discussion:
                "Each batch is capped at what is left of the day's when it starts (or --max-spend, if lower); a batch that ends on a day counts on that day."
        )
    )
    var maxSpendPerDay: String?

    @Option(
        name: .customLong("expected-episode-cost"),
        parsing: .unconditional,
        help:
            "With --max-spend: what one episode is expected to cost, in US dollars, until one has finished (env REELFARM_EXPECTED_EPISODE_COST; default: the first episode runs alone until its cost is known)."
    )
    var expectedEpisodeCost: String?

    @Flag(
        name: .customLong("no-reuse"),
        help:
            "Pay for every asset afresh: no asset store, so retries and re-runs call the providers again (env REELFARM_NO_REUSE=1)."
    )
    var noReuse = false

    @Option(
        name: .customLong("asset-store"),
        help:
            "Folder of the asset store, the paid answers kept for reuse (env REELFARM_ASSET_STORE; default: assets/ in --state, else .assets/ in the output folder)."
    )
    var assetStore: String?

    @Option(
        name: .customLong("asset-store-size"),
        help:
            "The most the asset store keeps, e.g. 500MiB or 10GiB; the least recently used answers go first (env REELFARM_ASSET_STORE_SIZE, default 2GiB)."
    )
    var assetStoreSize: String?

    @Option(
        name: .customLong("heartbeat-ms"),
        parsing: .unconditional,
        help: "Heartbeat interval in milliseconds (env HEARTBEAT_MS, default 1000)."
    )
    var heartbeatMs: String?

    @Option(
        parsing: .unconditional,
        help: "Silent heartbeat intervals before a worker is declared dead (env LIVENESS, default 3)."
    )
    var liveness: String?

    @Option(
        help:
            "A folder for the durable journal (SQLite). Started again with the same --state, the coordinator resumes the unfinished batch: finished episodes are not run again (env REELFARM_STATE)."
    )
    var state: String?

    @Flag(
        name: .customLong("rebuild-journal"),
        help:
            "With --state: adopt the finished episodes in the output folder that the journal does not record (each checked against its manifest's SHA-256) instead of refusing to start; they are not run again."
    )
    var rebuildJournal = false

    @Flag(
        help:
            "(run) Run a batch whose folder (OUTPUT/<batch-id>) already holds an earlier run's files, replacing them; without it the coordinator refuses (exit 2)."
    )
    var overwrite = false

    @Option(
        name: .customLong("min-free-space"),
        help:
            "Free space the output folder needs before a batch starts, like 1GiB or 500MiB; 0 turns the check off (env REELFARM_MIN_FREE_SPACE, default 1GiB)."
    )
    var minFreeSpace: String?

    @Option(
        name: .customLong("budget"),
        help: ArgumentHelp(
            "A fleet-wide rate-limit budget, repeatable: PROVIDER=RATE[,burst=N][,concurrent=N][,units=RATE] with PROVIDER llm, tts or image and RATE like 10/s or 500/min (env REELFARM_BUDGETS, ';'-separated; file: budgets:).",
            valueName: "spec"
        )
    )
    var budgets: [String] = []

    @Option(
        name: .customLong("budget-mode"),
        help:
            "leased (the coordinator leases permits; default), local (every worker enforces the full budget alone) or local-split (budget ÷ --workers each); env REELFARM_BUDGET_MODE."
    )
    var budgetMode: String?

    @Option(
        name: .customLong("worker-binary"),
        help: "Path of the worker executable for --workers (default: next to this one)."
    )
    var workerBinary: String?

    @Option(
        help:
            "A JSON or YAML settings file (providers, models, render preset) passed to the local workers (env REELFARM_CONFIG)."
    )
    var config: String?

    @Option(name: .customLong("env-file"), help: "A .env file with settings; the real environment wins over it.")
    var envFile: String = ".env"

    @Flag(
        name: .customLong("no-check"),
        help:
            "Start local workers without checking their providers first (`coordinator check`; env REELFARM_NO_CHECK=1)."
    )
    var noCheck = false

    @Option(
        name: .customLong("log-level"),
        help: "trace, debug, info, notice, warning, error or critical (env LOG_LEVEL, default info)."
    )
    var logLevel: String?

    @Option(
        help:
            "auto (a live progress bar when standard error is a terminal, else a progress log line every --progress-interval), bar, log or off (env REELFARM_PROGRESS)."
    )
    var progress: String?

    @Option(
        help:
            "The dashboard, JSON status API (/api/status) and Prometheus metrics (/metrics): HOST:PORT, PORT, or off (env REELFARM_HTTP, default 127.0.0.1:8090; port 0 picks a free one)."
    )
    var http: String?

    @Option(
        name: .customLong("progress-interval"),
        parsing: .unconditional,
        help: "Seconds between progress log lines when there is no bar (env REELFARM_PROGRESS_INTERVAL, default 10)."
    )
    var progressInterval: String?

    @Option(
        name: .customLong("log-format"),
        help: "text (for people, default) or json (one object per line, for log shippers) (env LOG_FORMAT)."
    )
    var logFormat: String?

    @Option(
        name: .customLong("curve-secret"),
        help:
            "This coordinator's CURVE key pair (a .key_secret file from `coordinator keygen`): workers connect encrypted and authenticated (env REELFARM_CURVE_SECRET)."
    )
    var curveSecret: String?

    @Option(
        name: .customLong("allow-workers"),
        help:
            "With --curve-secret: a file of worker public keys (one per line) or a folder of .key files; only those workers get in. Reloaded when it changes (env REELFARM_ALLOWED_WORKERS)."
    )
    var allowWorkers: String?

    @Flag(
        help:
            "Allow --bind beyond loopback without CURVE keys, and --http beyond loopback without a token (env REELFARM_INSECURE=1). Only on a network you trust."
    )
    var insecure = false

    @Option(
        name: .customLong("http-token"),
        help:
            "A token the HTTP API requires (Authorization: Bearer TOKEN, or ?token=TOKEN); needed when --http listens beyond loopback (env REELFARM_HTTP_TOKEN)."
    )
    var httpToken: String?

    @Option(
        name: .customLong("ready-file"),
        help:
            "Write a JSON file here once the ZeroMQ endpoint is bound and the HTTP API listens: pid, mode, endpoint, http, output, batch; removed at exit (env REELFARM_READY_FILE)."
    )
    var readyFile: String?

    /// What to run: one batch, or the long-running mode.
    enum Mode {
        case batch(episodes: Int?, file: String?, id: String?)
        case serve
    }

    /// Resolves every setting (flags, then the environment and `.env`, then the config file), opens the
    /// journal, and runs the coordinator until it is done or stopped. Returns the exit status.
    func launch(_ mode: Mode) async throws -> Int32 {
        let serve: Bool
        if case .serve = mode { serve = true } else { serve = false }
        let environment = try await EnvironmentSettings.load(envFile: envFile)
        let level = try LoggingSetup.level(logLevel ?? environment.value("LOG_LEVEL")?.value ?? "info")
        let format = try LoggingSetup.format(logFormat ?? environment.value("LOG_FORMAT")?.value ?? "text")
        LoggingSetup.bootstrap(level: level, format: format)
        let logger = Logger(label: "coordinator")
        let bind = bind ?? environment.value("REELFARM_BIND")?.value ?? "tcp://127.0.0.1:5555"
        let insecure = insecure || ["1", "true", "yes"].contains(environment.value("REELFARM_INSECURE")?.value ?? "")

        let parallelism = try ParallelismSettings.resolve(
            episodesFlag: maxParallelEpisodes,
            apiCallsFlag: maxParallelAPICalls,
            environment: environment
        )
        var dispatch = DispatchSettings()
        dispatch.freshWindowAfterStall = true
        dispatch.maxAttempts = try ParallelismSettings.positiveInt(
            flag: maxAttempts,
            flagName: "--max-attempts",
            environment: environment,
            key: "MAX_ATTEMPTS",
            default: 3,
            range: 1...100
        )
        if let raw = maxSpend ?? environment.value("REELFARM_MAX_SPEND")?.value {
            dispatch.spendCapMicros = try PriceTable.parseDollars(
                raw,
                source: maxSpend != nil ? "--max-spend" : "REELFARM_MAX_SPEND"
            )
        }
        if let raw = maxSpendPerDay ?? environment.value("REELFARM_MAX_SPEND_PER_DAY")?.value {
            let source = maxSpendPerDay != nil ? "--max-spend-per-day" : "REELFARM_MAX_SPEND_PER_DAY"
            guard serve else {
                throw ConfigurationError(
                    "\(source) is for coordinator serve, which runs batches day after day; give one batch --max-spend"
                )
            }
            dispatch.dailySpendCapMicros = try PriceTable.parseDollars(raw, source: source)
        }
        if let raw = expectedEpisodeCost ?? environment.value("REELFARM_EXPECTED_EPISODE_COST")?.value {
            let source = expectedEpisodeCost != nil ? "--expected-episode-cost" : "REELFARM_EXPECTED_EPISODE_COST"
            guard dispatch.spendCapMicros != nil || dispatch.dailySpendCapMicros != nil else {
                throw ConfigurationError(
                    "\(source) only means something with --max-spend (or REELFARM_MAX_SPEND) or --max-spend-per-day"
                )
            }
            dispatch.expectedEpisodeCostMicros = try PriceTable.parseDollars(raw, source: source)
        }
        dispatch.heartbeatInterval = .milliseconds(
            try ParallelismSettings.positiveInt(
                flag: heartbeatMs,
                flagName: "--heartbeat-ms",
                environment: environment,
                key: "HEARTBEAT_MS",
                default: 1000,
                range: 10...60_000
            )
        )
        dispatch.liveness = try ParallelismSettings.positiveInt(
            flag: liveness,
            flagName: "--liveness",
            environment: environment,
            key: "LIVENESS",
            default: 3,
            range: 1...100
        )

        let outputURL = URL(fileURLWithPath: output).standardizedFileURL
        // The output folder must take the batch's files: checked before anything else starts.
        let minimumFree = try DiskSpace.parse(
            minFreeSpace ?? environment.value("REELFARM_MIN_FREE_SPACE")?.value ?? "1GiB"
        )
        if let problem = DiskSpace.check(outputURL, minimum: minimumFree).message {
            throw ConfigurationError(problem)
        }

        // The journal: resume the unfinished batch it holds, or start a new one in it.
        var journal: Journal?
        var resumed: Journal.StoredBatch?
        var queued: [Batch] = []
        // Held until this process ends (the kernel releases it however it ends).
        var stateLock: StateLock?
        var stateTag: String?
        var statuses: [String: String] = [:]
        let batchId: String? = if case .batch(_, _, let id) = mode { id } else { nil }
        let stateDir = state ?? environment.value("REELFARM_STATE")?.value
        if rebuildJournal, stateDir == nil {
            throw ConfigurationError("--rebuild-journal needs --state: it adopts finished episodes into the journal")
        }
        if let stateDir {
            let stateURL = URL(fileURLWithPath: stateDir)
            do {
                stateLock = try StateLock(directory: stateURL)
            } catch let held as StateLock.Held {
                throw ConfigurationError(held.description)
            }
            stateTag = OutputCheck.stateTag(stateURL)
            do {
                journal = try Journal(directory: stateURL)
                resumed = try journal?.unfinishedBatch()
                if serve { queued = try journal?.queuedBatches() ?? [] }
                statuses = try journal?.batchStatuses() ?? [:]
            } catch {
                throw ConfigurationError("cannot open the journal in --state \(stateDir): \(error)")
            }
            // A batch the journal finished whose summary or report is missing (the coordinator was killed
            // between recording the end and writing them): rewritten from the journal.
            for (id, status) in statuses.sorted(by: { $0.key < $1.key })
            where status == "completed" && SummaryRewrite.isMissing(batchId: id, output: outputURL) {
                guard let journal else { break }
                do {
                    try SummaryRewrite.rewrite(journal: journal, batchId: id, output: outputURL)
                    logger.notice(
                        "rewrote summary.json and report.html of a finished batch from the journal",
                        metadata: ["batch": "\(id)", "dir": "\(outputURL.appendingPathComponent(id).path)"]
                    )
                } catch {
                    throw ConfigurationError(
                        "cannot rewrite the summary of batch \(id) in \(outputURL.appendingPathComponent(id).path): \(error)"
                    )
                }
            }
            if resumed == nil, let explicit = batchId, statuses[explicit] == "completed",
                let stored = try? journal?.storedBatch(id: explicit)
            {
                // The same command again after the batch ended: nothing to run (its files were rewritten
                // above if they were missing); the exit status is the batch's.
                let succeeded = stored.episodes.count { $0.status == .succeeded }
                logger.notice(
                    "batch \(explicit) is already complete in the journal: nothing to run",
                    metadata: [
                        "succeeded": "\(succeeded)", "episodes": "\(stored.episodes.count)",
                        "summary":
                            "\(outputURL.appendingPathComponent(explicit).appendingPathComponent("summary.json").path)",
                    ]
                )
                return succeeded == stored.episodes.count ? 0 : 1
            }
            if let stored = resumed, let explicit = batchId, explicit != stored.id {
                let done = stored.episodes.count { $0.isFinished }
                throw ConfigurationError(
                    "--state \(stateDir) holds the unfinished batch \(stored.id) (\(done)/\(stored.episodes.count) episodes done): run again without --batch-id (or with --batch-id \(stored.id)) to finish it, or use another --state"
                )
            }
            if resumed == nil, let explicit = batchId,
                (try? journal?.batches())??.contains(where: { $0.id == explicit }) == true
            {
                throw ConfigurationError(
                    "--state \(stateDir) already holds a batch \(explicit); choose another --batch-id"
                )
            }
        }
        var theBatch: Batch?
        if let resumed {
            theBatch = Batch(id: resumed.id, episodes: resumed.episodes.map(\.spec))
        } else if case .batch(let episodes, let file, _) = mode {
            let id = batchId ?? Batch.makeId()
            do {
                // A batch id becomes a folder name: the same rule as episode ids
                // (docs/CONFIGURATION.md: Batch and episode ids).
                try BatchNames.check(id, field: "--batch-id")
            } catch {
                throw ConfigurationError(error.detail)
            }
            if let file {
                theBatch = try BatchFile.load(path: file, batchId: id)
            } else {
                theBatch = Batch.generated(id: id, count: episodes ?? 0)
            }
        } else {
            theBatch = nil
        }
        if let journal, let stateDir, let stateTag {
            // The output folder against the journal: finished episodes on disk that the journal does not
            // record are never run again. Refused, or adopted with --rebuild-journal.
            let findings = try OutputCheck.findings(output: outputURL, stateTag: stateTag, statuses: statuses) {
                try journal.episodeStatuses(batchId: $0)
            }
            let runningId = resumed?.id ?? batchId
            if !rebuildJournal || findings.contains(where: { $0.batchId != runningId && !$0.lost.isEmpty }),
                let refusal = OutputCheck.refusal(
                    findings.filter { !rebuildJournal || $0.batchId != runningId },
                    stateDir: stateDir,
                    output: outputURL,
                    runningBatch: runningId
                )
            {
                throw ConfigurationError(refusal)
            }
            if rebuildJournal, let finding = findings.first(where: { $0.batchId == runningId }), let batch = theBatch {
                let found = Dictionary(
                    (finding.lost + finding.running).map { ($0.id, $0) },
                    uniquingKeysWith: { a, _ in a }
                )
                var records =
                    resumed?.episodes
                    ?? batch.episodes.indices.map { i in
                        EpisodeRecord(
                            index: i,
                            id: batch.episodes.id(at: i) ?? "episode_\(i + 1)",
                            specs: batch.episodes
                        )
                    }
                var adopted: [EpisodeRecord] = []
                for i in records.indices {
                    guard let episode = found[records[i].id] else { continue }
                    records[i].status = .succeeded
                    records[i].attempts = max(records[i].attempts, episode.attempt)
                    records[i].artifacts = episode.files
                    adopted.append(records[i])
                }
                do {
                    if resumed == nil { try journal.begin(batchId: batch.id, episodes: records) }
                    try journal.adopt(batchId: batch.id, episodes: adopted)
                    resumed = try journal.unfinishedBatch()
                } catch {
                    throw ConfigurationError("cannot write the journal in --state \(stateDir): \(error)")
                }
                logger.notice(
                    "adopted finished episodes from the output folder into the journal (--rebuild-journal)",
                    metadata: [
                        "batch": "\(batch.id)", "adopted": "\(adopted.count)",
                        "episodes": "\(adopted.map(\.id).joined(separator: ","))",
                    ]
                )
                if let resumed { theBatch = Batch(id: resumed.id, episodes: resumed.episodes.map(\.spec)) }
            }
        }
        if resumed == nil, let batch = theBatch, !overwrite {
            // A new batch in a folder an earlier run filled (the same --batch-id again) would overwrite it.
            let dir = outputURL.appendingPathComponent(batch.id)
            let earlier = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter {
                !$0.hasPrefix(".")
            }
            if !earlier.isEmpty {
                throw ConfigurationError(
                    "\(dir.path) already holds batch \(batch.id) from an earlier run (\(earlier.sorted().prefix(5).joined(separator: ", "))\(earlier.count > 5 ? ", …" : "")): running it again would overwrite it. Give another --batch-id, move the folder aside, or give --overwrite to replace it"
                )
            }
        }
        let configPath = config ?? environment.value("REELFARM_CONFIG")?.value
        let configFile: ConfigFile? = if let configPath { try await ConfigFile.load(configPath) } else { nil }
        let leases = try BudgetConfiguration.resolve(
            flags: budgets,
            mode: budgetMode,
            localWorkers: workers,
            environment: environment,
            file: configFile
        )
        // Needed for --workers; `coordinator scale` can start workers later if it is found.
        let executable =
            workers > 0
            ? try LocalWorkerPool.locateWorker(explicit: workerBinary)
            : try? LocalWorkerPool.locateWorker(explicit: workerBinary)

        // Local workers keep their attempts' files under this coordinator's output folder (`.work`) and
        // deliver them by transfer, or publish them there themselves (shared).
        let delivery = artifacts ?? environment.value("REELFARM_ARTIFACTS")?.value ?? ArtifactDelivery.transfer.rawValue
        guard ArtifactDelivery(rawValue: delivery) != nil else {
            throw ConfigurationError("--artifacts must be transfer or shared, got \"\(delivery)\"")
        }
        var workerArguments = [
            "--max-parallel-episodes", "\(parallelism.maxParallelEpisodes)",
            "--max-parallel-api-calls", "\(parallelism.maxParallelAPICalls)",
            "--log-level", level.rawValue,
            "--log-format", format.rawValue,
            "--output", outputURL.path,
            "--artifacts", delivery,
            // The coordinator stops its local workers only when it stops itself, or after draining them
            // (`coordinator scale`): they hand their attempts back at once instead of finishing them for
            // nobody.
            "--shutdown-grace", "0",
        ]
        var workerEnvironment: [String: String] = [:]
        if let configPath {
            workerArguments += ["--config", URL(fileURLWithPath: configPath).standardizedFileURL.path]
        }
        // The providers of the local workers are checked once, here, before any is started: a bad key or a
        // retired model then costs one call and exits 1, instead of a batch of placeholders. The workers
        // themselves (also those `coordinator scale` adds later) skip their own start-up check.
        let skipCheck =
            noCheck || ["1", "true", "yes"].contains(environment.value("REELFARM_NO_CHECK")?.value.lowercased() ?? "")
        if workers > 0, !skipCheck, let executable {
            var checkArguments = ["--env-file", envFile]
            if let configPath {
                checkArguments += ["--config", URL(fileURLWithPath: configPath).standardizedFileURL.path]
            }
            logger.info("checking the local workers' providers (--no-check skips this)")
            let status = try await CheckCommand.runWorkerCheck(executable: executable, arguments: checkArguments)
            guard status == 0 else {
                logger.error(
                    "the provider check failed (above): no batch started. Fix the settings it names, or give --no-check to run anyway",
                    metadata: ["status": "\(status)"]
                )
                return status == 2 ? 2 : 1
            }
        }
        workerArguments.append("--no-check")
        let progressName = progress ?? environment.value("REELFARM_PROGRESS")?.value ?? "auto"
        let progressMode: CoordinatorService.ProgressMode
        switch progressName {
        case "auto": progressMode = format == .text && StatusLine.standardErrorIsTerminal ? .bar : .log
        default:
            guard let mode = CoordinatorService.ProgressMode(rawValue: progressName) else {
                throw ConfigurationError("--progress must be auto, bar, log or off, got \"\(progressName)\"")
            }
            progressMode = mode
        }
        let interval = try ParallelismSettings.positiveInt(
            flag: progressInterval,
            flagName: "--progress-interval",
            environment: environment,
            key: "REELFARM_PROGRESS_INTERVAL",
            default: 10,
            range: 1...86_400
        )
        let httpAddress = try StatusServer.parse(http ?? environment.value("REELFARM_HTTP")?.value ?? "127.0.0.1:8090")
        if serve, httpAddress == nil {
            throw ConfigurationError("coordinator serve takes its batches over HTTP: --http off is not allowed here")
        }
        let token = httpToken ?? environment.value("REELFARM_HTTP_TOKEN")?.value
        if let token, token.count < 16 {
            throw ConfigurationError("--http-token must be at least 16 characters")
        }
        if let httpAddress, token == nil, !Endpoints.isLoopback(host: httpAddress.host) {
            guard insecure else {
                throw ConfigurationError(
                    "--http \(httpAddress.host):\(httpAddress.port) listens beyond this machine, and the HTTP API can submit batches and start workers: set a token (REELFARM_HTTP_TOKEN or --http-token, 16 characters or more), keep --http on 127.0.0.1, or give --insecure on a network you trust"
                )
            }
            logger.warning(
                "INSECURE: the HTTP API listens beyond loopback without a token",
                metadata: ["http": "\(httpAddress.host):\(httpAddress.port)"]
            )
        }

        // CURVE: the coordinator's keys and the workers allowed in.
        let secretPath = curveSecret ?? environment.value("REELFARM_CURVE_SECRET")?.value
        let allowPath = allowWorkers ?? environment.value("REELFARM_ALLOWED_WORKERS")?.value
        var security: CoordinatorSecurity?
        switch (secretPath, allowPath) {
        case (let secretPath?, let allowPath?):
            let keys = try CurveKeyPair.load(path: secretPath, needSecret: true)
            // Local workers get a key pair of their own, made now, allowed for this run only.
            var builtin: [[UInt8]: String] = [:]
            if executable != nil {
                let local = try CurveKeyPair.generate()
                if let raw = CurveKeyPair.decode(local.publicKey) { builtin[raw] = "local workers" }
                workerEnvironment["REELFARM_CURVE_SERVER_KEY"] = keys.publicKey
                workerEnvironment["REELFARM_CURVE_KEYPAIR"] = "\(local.publicKey) \(local.secretKey ?? "")"
            }
            security = CoordinatorSecurity(
                keys: keys,
                authenticator: try WorkerAuthenticator(path: allowPath, builtin: builtin)
            )
        case (nil, nil):
            if !Endpoints.isLocal(bind) {
                guard insecure else {
                    throw ConfigurationError(
                        "--bind \(bind) listens beyond this machine without CURVE: anyone who reaches the port could take jobs and send results. Make keys with `coordinator keygen`, then give --curve-secret and --allow-workers (docs/OPERATIONS.md: Security), bind 127.0.0.1, or give --insecure on a network you trust"
                    )
                }
                logger.warning(
                    "INSECURE: ZeroMQ listens beyond loopback without CURVE; any peer that reaches it can take jobs",
                    metadata: ["bind": "\(bind)"]
                )
            }
        case (nil, _):
            throw ConfigurationError("--allow-workers needs --curve-secret (this coordinator's key pair)")
        case (_, nil):
            throw ConfigurationError(
                "--curve-secret needs --allow-workers: a file or folder of the public keys of the workers to let in"
            )
        }
        let httpLimits = StatusServer.Limits(
            idleTimeout: .seconds(
                try ParallelismSettings.positiveInt(
                    flag: nil,
                    flagName: "REELFARM_HTTP_IDLE_TIMEOUT",
                    environment: environment,
                    key: "REELFARM_HTTP_IDLE_TIMEOUT",
                    default: 10,
                    range: 1...3600
                )
            ),
            maxConnections: try ParallelismSettings.positiveInt(
                flag: nil,
                flagName: "REELFARM_HTTP_MAX_CONNECTIONS",
                environment: environment,
                key: "REELFARM_HTTP_MAX_CONNECTIONS",
                default: 512,
                range: 1...65_536
            )
        )
        // The asset store: paid answers kept so that retries, resumed batches and re-runs reuse them.
        let noReuse = noReuse || ["1", "true", "yes"].contains(environment.value("REELFARM_NO_REUSE")?.value ?? "")
        var assetStoreSettings: AssetStore.Settings?
        if !noReuse {
            let folder =
                (assetStore ?? environment.value("REELFARM_ASSET_STORE")?.value).map { URL(fileURLWithPath: $0) }
                ?? stateDir.map { URL(fileURLWithPath: $0).appendingPathComponent("assets", isDirectory: true) }
                ?? outputURL.appendingPathComponent(".assets", isDirectory: true)
            var store = AssetStore.Settings(folder: folder.standardizedFileURL)
            if let raw = assetStoreSize ?? environment.value("REELFARM_ASSET_STORE_SIZE")?.value {
                let source = assetStoreSize != nil ? "--asset-store-size" : "REELFARM_ASSET_STORE_SIZE"
                let bytes: Int64
                do {
                    bytes = try DiskSpace.parse(raw)
                } catch {
                    throw ConfigurationError("\(source) \(raw): \(error)")
                }
                guard bytes >= 1 << 20 else {
                    throw ConfigurationError("\(source) \(raw) is less than 1MiB; use --no-reuse to keep no assets")
                }
                store.maxBytes = Int(clamping: bytes)
            }
            assetStoreSettings = store
        }
        dispatch.assetReuse = assetStoreSettings != nil
        let board = httpAddress.map { _ in StatusBoard() }
        let metrics = httpAddress.map { _ in FleetMetrics() }
        let control = ControlChannel()
        let readyPath = readyFile ?? environment.value("REELFARM_READY_FILE")?.value
        let ready = try readyPath.map { path in
            let url = URL(fileURLWithPath: path).standardizedFileURL
            // Whoever waits for the file must never read one an earlier run left behind (a SIGKILLed
            // coordinator's). Removed only now, past every check and the state lock: a second coordinator
            // refused on the same --state leaves the running one's file alone.
            do {
                try ReadyFile.removeStale(at: url)
            } catch {
                throw ConfigurationError("--ready-file \(path): cannot remove the earlier file: \(error)")
            }
            return ReadyFile(
                url: url,
                pid: ProcessInfo.processInfo.processIdentifier,
                mode: serve ? "serve" : "batch",
                output: outputURL,
                batch: theBatch?.id,
                expectsHTTP: httpAddress != nil,
                logger: logger
            )
        }
        defer { ready?.remove() }
        let service = CoordinatorService(
            settings: .init(
                bind: bind,
                output: outputURL,
                batch: theBatch,
                dispatch: dispatch,
                leases: leases,
                journal: journal,
                stateTag: stateTag,
                resumed: resumed,
                parallelism: parallelism,
                localWorkers: workers,
                workerExecutable: executable,
                workerArguments: workerArguments,
                workerEnvironment: workerEnvironment,
                progress: progressMode,
                progressInterval: .seconds(interval),
                board: board,
                metrics: metrics,
                serve: serve,
                queued: queued,
                control: control,
                security: security,
                assetStore: assetStoreSettings
            ),
            logger: logger,
            onBound: { ready?.bound(endpoint: $0) }
        )
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)
        ]
        if let httpAddress, let board, let metrics {
            services.append(
                .init(
                    service: StatusServer(
                        host: httpAddress.host,
                        port: httpAddress.port,
                        board: board,
                        metrics: metrics,
                        control: control,
                        token: token,
                        required: serve,
                        limits: httpLimits,
                        logger: logger,
                        onListening: { address in
                            if let address {
                                ready?.httpListening(host: address.host, port: address.port)
                            } else {
                                ready?.httpUnavailable()
                            }
                        }
                    ),
                    successTerminationBehavior: .ignore,
                    failureTerminationBehavior: serve ? .gracefullyShutdownGroup : .ignore
                )
            )
        }
        let group = ServiceGroup(
            configuration: .init(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                cancellationSignals: [],
                logger: Logger(label: "lifecycle")
            )
        )
        do {
            try await group.run()
        } catch let error as ZMQError {
            throw ConfigurationError("cannot bind \(bind): \(error)")
        } catch let error as StatusServer.CannotServe {
            throw ConfigurationError(error.description)
        }
        withExtendedLifetime(stateLock) {}
        if service.journalFailed { return 1 }
        return serve ? 0 : service.outcome.exitCode
    }
}

import ArgumentParser
import Foundation
import Logging
import Protocol
import ServiceLifecycle
import Shared
import UnixSignals

/// `worker`: the root command. Without a subcommand it joins a coordinator (``RunWorkerCommand``).
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run Reelfarm episodes for a coordinator.",
        discussion: """
            Without a subcommand, joins a coordinator (`worker run`). `worker check` makes one cheap real \
            call per configured provider stage and says what is wrong, if anything.

            Examples:
              worker --connect tcp://render-host:5555 --max-parallel-episodes 4
              worker check --providers openai
            """,
        version: ReelfarmVersion.current,
        subcommands: [RunWorkerCommand.self, CheckCommand.self],
        defaultSubcommand: RunWorkerCommand.self
    )
}

/// `worker [run]`: joins a coordinator and runs the episodes it sends, within local limits.
struct RunWorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Join a coordinator and run its episodes (the default subcommand).",
        discussion: """
            Connects a ZeroMQ DEALER socket to the coordinator, announces its capacity and runs up to \
            MAX_PARALLEL_EPISODES episodes at once, each with at most MAX_PARALLEL_API_CALLS external calls \
            in flight. Reconnects with backoff when the coordinator goes away. Stops on SIGTERM or SIGINT. \
            Before it connects it checks its hosted providers with one cheap call each, as `worker check` \
            does, and exits 1 if one is misconfigured (--no-check skips that).

            Example:
              worker --connect tcp://render-host:5555 --max-parallel-episodes 4
            """,
    )

    @Option(help: "The coordinator's ZeroMQ endpoint, e.g. tcp://HOST:5555 (env REELFARM_CONNECT).")
    var connect: String?

    @Option(name: .customLong("worker-id"), help: "Name shown in logs and summary.json (default: HOSTNAME-PID).")
    var workerId: String?

    @Option(
        name: .customLong("max-parallel-episodes"),
        parsing: .unconditional,
        help: "Episodes run at once (env MAX_PARALLEL_EPISODES, default 3)."
    )
    var maxParallelEpisodes: String?

    @Option(
        name: .customLong("max-parallel-api-calls"),
        parsing: .unconditional,
        help: "API calls one episode makes at once (env MAX_PARALLEL_API_CALLS, default 5)."
    )
    var maxParallelAPICalls: String?

    @Option(
        name: .customLong("max-parallel-renders"),
        parsing: .unconditional,
        help: "Renders this worker runs at once (env MAX_PARALLEL_RENDERS, default 1)."
    )
    var maxParallelRenders: String?

    @Option(
        name: .customLong("max-worker-api-calls"),
        parsing: .unconditional,
        help: "Optional cap on API calls across all episodes of this worker (env MAX_WORKER_API_CALLS; default none)."
    )
    var maxWorkerAPICalls: String?

    @Option(help: "Folder that gets OUTPUT/<batch>/<episode>/episode.mp4, script.json and manifest.json.")
    var output: String = "output"

    @Option(
        help:
            "How finished episodes reach the coordinator: transfer (over ZeroMQ, checked by SHA-256; default) or shared (written straight into --output, which the coordinator must see too). Env REELFARM_ARTIFACTS; file: artifacts."
    )
    var artifacts: String?

    @Option(
        name: .customLong("sim-latency"),
        help: "Simulated latencies in ms, e.g. llm=400,tts=300,image=800,render=200 (env REELFARM_SIM_LATENCY)."
    )
    var simLatency: String?

    @Option(
        name: .customLong("sim-failure-rate"),
        help: "Simulated failure rates 0…1, e.g. image=0.1 (env REELFARM_SIM_FAILURE_RATE)."
    )
    var simFailureRate: String?

    @Option(
        name: .customLong("sim-fail"),
        help: "Calls that always fail, e.g. llm:episode_3,episode_7;image:episode_1 (env REELFARM_SIM_FAIL)."
    )
    var simFail: String?

    @Option(
        name: .customLong("sim-seed"),
        parsing: .unconditional,
        help: "Seed of the simulation's pseudo-random choices (env REELFARM_SIM_SEED, default 1)."
    )
    var simSeed: String?

    @Option(
        name: .customLong("on-coordinator-loss"),
        help:
            "When the coordinator is unreachable and the leases have run out: wait (start no budgeted call; default) or local (go on alone at budget ÷ fleet size). Env REELFARM_ON_COORDINATOR_LOSS; file: leases.on_coordinator_loss."
    )
    var onCoordinatorLoss: String?

    @Option(
        name: .customLong("shutdown-grace"),
        parsing: .unconditional,
        help:
            "Seconds the running episodes may take to finish after SIGTERM/SIGINT before they are handed back (env REELFARM_SHUTDOWN_GRACE, default 30; 0 hands them back at once). A second signal exits at once."
    )
    var shutdownGrace: String?

    @Option(
        name: .customLong("curve-server-key"),
        help:
            "The coordinator's CURVE public key, or its .key file: connect encrypted and authenticated (env REELFARM_CURVE_SERVER_KEY). Needs --curve-secret."
    )
    var curveServerKey: String?

    @Option(
        name: .customLong("curve-secret"),
        help:
            "This worker's CURVE key pair (a .key_secret file from `coordinator keygen`); its public key must be on the coordinator's allow-list (env REELFARM_CURVE_SECRET)."
    )
    var curveSecret: String?

    @OptionGroup var settings: ProviderOptions

    @Flag(
        name: .customLong("no-check"),
        help: "Skip the start-up check of the hosted providers (env REELFARM_NO_CHECK=1)."
    )
    var noCheck = false

    @Option(
        name: .customLong("log-level"),
        help: "trace, debug, info, notice, warning, error or critical (env LOG_LEVEL, default info)."
    )
    var logLevel: String?

    @Option(
        name: .customLong("log-format"),
        help: "text (for people, default) or json (one object per line, for log shippers) (env LOG_FORMAT)."
    )
    var logFormat: String?

    func run() async throws {
        let (environment, sources) = try await settings.load()
        let level = try LoggingSetup.level(logLevel ?? environment.value("LOG_LEVEL")?.value ?? "info")
        let format = try LoggingSetup.format(logFormat ?? environment.value("LOG_FORMAT")?.value ?? "text")
        LoggingSetup.bootstrap(level: level, format: format)
        var logger = Logger(label: "worker")

        guard let endpoint = connect ?? environment.value("REELFARM_CONNECT")?.value else {
            throw ConfigurationError("give --connect ENDPOINT (e.g. tcp://127.0.0.1:5555) or set REELFARM_CONNECT")
        }
        // What can never work (port 99999, a name that does not resolve) stops here with exit 2 instead of
        // being retried forever.
        if let warning = try Endpoints.checkConnect(endpoint, flag: connect != nil ? "--connect" : "REELFARM_CONNECT") {
            logger.warning("\(warning)")
        }
        let parallelism = try ParallelismSettings.resolve(
            episodesFlag: maxParallelEpisodes,
            apiCallsFlag: maxParallelAPICalls,
            environment: environment
        )
        let renders = try ParallelismSettings.positiveInt(
            flag: maxParallelRenders,
            flagName: "--max-parallel-renders",
            environment: environment,
            key: "MAX_PARALLEL_RENDERS",
            default: WorkerLimits.defaultRenders
        )
        let workerCap: Int? =
            (maxWorkerAPICalls != nil || environment.value("MAX_WORKER_API_CALLS") != nil)
            ? try ParallelismSettings.positiveInt(
                flag: maxWorkerAPICalls,
                flagName: "--max-worker-api-calls",
                environment: environment,
                key: "MAX_WORKER_API_CALLS",
                default: 0
            )
            : nil
        let simulation: SimulationSettings
        do {
            simulation = try SimulationSettings.parse(
                latency: simLatency ?? environment.value("REELFARM_SIM_LATENCY")?.value,
                failureRate: simFailureRate ?? environment.value("REELFARM_SIM_FAILURE_RATE")?.value,
                fail: simFail ?? environment.value("REELFARM_SIM_FAIL")?.value,
                seed: simSeed ?? environment.value("REELFARM_SIM_SEED")?.value
            )
        } catch {
            throw ConfigurationError("\(error)")
        }

        let pid = Int(getpid())
        let host = ProcessInfo.processInfo.hostName
        let id = workerId ?? "\(host.split(separator: ".").first.map(String.init) ?? host)-\(pid)"
        do {
            try EpisodeSpec(topic: "x", id: id).validate()
        } catch {
            throw ConfigurationError("--worker-id \(error.detail)")
        }
        logger = Logger(label: id)
        let hello = WorkerHello.identity(
            workerId: id,
            host: host,
            pid: pid,
            capacity: Capacity(episodes: parallelism.maxParallelEpisodes, apiCalls: parallelism.maxParallelAPICalls)
        )
        let limits = WorkerLimits(
            apiCallsPerEpisode: parallelism.maxParallelAPICalls,
            renders: renders,
            workerAPICalls: workerCap
        )
        let providerConfig = try ProviderConfiguration.resolve(
            providersFlag: settings.providers,
            presetFlag: settings.renderPreset,
            sources: sources
        )
        if providerConfig.writesFiles {
            do {
                try ProviderSet.checkOfflineTools()
            } catch {
                throw ConfigurationError("\(error)")
            }
        }
        let skipCheck = try noCheck || sources.flag(env: "REELFARM_NO_CHECK", key: nil, default: false)
        if !skipCheck, providerConfig.usesHostedProviders {
            let results = await Preflight(configuration: providerConfig).run()
            for result in results {
                if result.status == .failed {
                    logger.error("provider check: \(result)")
                } else {
                    logger.info("provider check: \(result)")
                }
            }
            guard Preflight.passed(results) else {
                // A setting to change is a configuration error (exit 2: systemd and the like do not restart
                // into the same failure); a provider out of reach may come back (exit 1: restarted).
                let failed = results.filter { $0.status == .failed }
                let transient = failed.allSatisfy { $0.problem == .unreachable }
                logger.error("a provider is misconfigured (above); fix it, or start with --no-check to go on anyway")
                throw ExitCode(transient ? 1 : 2)
            }
        }
        let outputRoot = URL(fileURLWithPath: output).standardizedFileURL
        logger.info(
            "providers",
            metadata: [
                "providers": "\(providerConfig.summary)",
                "output": "\(providerConfig.writesFiles ? outputRoot.path : "none (simulated)")",
                "artifacts": "\(artifacts ?? "default")",
            ]
        )
        let lossPolicy: LeaseClient.LossPolicy
        if let flag = onCoordinatorLoss {
            guard let policy = LeaseClient.LossPolicy(rawValue: flag) else {
                throw ConfigurationError("--on-coordinator-loss must be wait or local, got \"\(flag)\"")
            }
            lossPolicy = policy
        } else {
            let text = try sources.choice(
                env: "REELFARM_ON_COORDINATOR_LOSS",
                key: "leases.on_coordinator_loss",
                default: "wait",
                allowed: LeaseClient.LossPolicy.allCases.map(\.rawValue)
            )
            lossPolicy = LeaseClient.LossPolicy(rawValue: text) ?? .wait
        }
        let leases = LeaseClient(lossPolicy: lossPolicy)
        let delivery: ArtifactDelivery
        if let flag = artifacts {
            guard let mode = ArtifactDelivery(rawValue: flag) else {
                throw ConfigurationError("--artifacts must be transfer or shared, got \"\(flag)\"")
            }
            delivery = mode
        } else {
            let text = try sources.choice(
                env: "REELFARM_ARTIFACTS",
                key: "artifacts",
                default: ArtifactDelivery.transfer.rawValue,
                allowed: ArtifactDelivery.allCases.map(\.rawValue)
            )
            delivery = ArtifactDelivery(rawValue: text) ?? .transfer
        }
        // The coordinator's asset store, when it keeps one (WELCOME asset_reuse) and this worker may use it.
        let reuseOff = ["1", "true", "yes"].contains(environment.value("REELFARM_NO_REUSE")?.value ?? "")
        let assets = AssetExchange(settings: .init(enabled: !reuseOff))
        let pipeline = EpisodePipeline(
            providers: providerConfig.makeProviderSet(simulation: simulation),
            limits: limits,
            trace: TraceRecorder(),
            logger: logger,
            outputRoot: providerConfig.writesFiles ? outputRoot : nil,
            gate: leases,
            delivery: delivery,
            reuse: assets
        )
        let grace = try ParallelismSettings.positiveInt(
            flag: shutdownGrace,
            flagName: "--shutdown-grace",
            environment: environment,
            key: "REELFARM_SHUTDOWN_GRACE",
            default: 30,
            range: 0...86_400
        )
        let orphanGrace = try ParallelismSettings.positiveInt(
            flag: nil,
            flagName: "REELFARM_ORPHAN_GRACE",
            environment: environment,
            key: "REELFARM_ORPHAN_GRACE",
            default: 30,
            range: 0...86_400
        )
        let parentPid = environment.value("REELFARM_PARENT_PID").flatMap { Int32($0.value) }.flatMap {
            $0 > 1 ? $0 : nil
        }
        let curve = try Self.curve(
            serverKey: curveServerKey ?? environment.value("REELFARM_CURVE_SERVER_KEY")?.value,
            secretPath: curveSecret ?? environment.value("REELFARM_CURVE_SECRET")?.value,
            keyPair: environment.value("REELFARM_CURVE_KEYPAIR")?.value
        )
        if let curve {
            logger.info(
                "CURVE: the coordinator's public key",
                metadata: ["from": "\(curve.serverKeySource)", "key": "\(curve.serverKey)"]
            )
        }
        if curve == nil, !Endpoints.isLocal(endpoint) {
            logger.warning(
                "connecting without CURVE: jobs, results and files cross the network in the clear",
                metadata: ["endpoint": "\(endpoint)", "hint": "give --curve-server-key and --curve-secret"]
            )
        }
        let agent = WorkerAgent(
            settings: .init(
                endpoint: endpoint,
                hello: hello,
                shutdownGrace: .seconds(grace),
                curve: curve,
                parentPid: parentPid,
                orphanGrace: .seconds(orphanGrace)
            ),
            pipeline: pipeline,
            leases: leases,
            assets: assets,
            logger: logger
        )
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: agent, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: Logger(label: "lifecycle")
            )
        )
        do {
            try await group.run()
        } catch let error as ZMQError {
            throw ConfigurationError("cannot connect to \(endpoint): \(error)")
        }
    }

    /// The CURVE settings from the flags, the environment, or (local workers) the key pair their coordinator
    /// passed in `REELFARM_CURVE_KEYPAIR` ("PUBLIC SECRET").
    static func curve(
        serverKey: String?,
        secretPath: String?,
        keyPair: String?
    ) throws(ConfigurationError) -> WorkerAgent.Curve? {
        guard let serverKey else {
            if secretPath != nil {
                throw ConfigurationError("--curve-secret needs --curve-server-key (the coordinator's public key)")
            }
            return nil
        }
        let (server, source) = try CurveKeyPair.publicKeyAndSource(keyOrPath: serverKey)
        let own: CurveKeyPair
        if let secretPath {
            own = try CurveKeyPair.load(path: secretPath, needSecret: true)
        } else if let keyPair {
            let parts = keyPair.split(separator: " ").map(String.init)
            guard parts.count == 2, CurveKeyPair.decode(parts[0]) != nil, CurveKeyPair.decode(parts[1]) != nil else {
                throw ConfigurationError("REELFARM_CURVE_KEYPAIR must be \"PUBLIC SECRET\" (two Z85 keys)")
            }
            own = CurveKeyPair(publicKey: parts[0], secretKey: parts[1])
        } else {
            throw ConfigurationError(
                "--curve-server-key needs --curve-secret: this worker's key pair (`coordinator keygen --name NAME`), whose public key is on the coordinator's allow-list"
            )
        }
        return WorkerAgent.Curve(
            serverKey: server,
            publicKey: own.publicKey,
            secretKey: own.secretKey ?? "",
            serverKeySource: source
        )
    }
}

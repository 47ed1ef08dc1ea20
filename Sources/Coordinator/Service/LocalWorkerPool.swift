import Foundation
import Logging
import Shared
import Subprocess

#if canImport(System)
import System
#else
import SystemPackage
#endif

/// `coordinator --workers N`: starts N `worker` processes on this machine, connected to the
/// coordinator's endpoint, restarts one that exits while the batch runs (with backoff), and stops
/// them all (SIGTERM, then SIGKILL after a grace period) when its task is cancelled.
struct LocalWorkerPool: Sendable {
    struct Settings: Sendable {
        var count: Int
        var executable: String
        var endpoint: String
        /// Extra arguments for every worker (parallelism settings, log level).
        var arguments: [String]
        /// Time a worker gets to exit after SIGTERM before SIGKILL. The default is 5 s.
        var stopGrace: Duration = .seconds(5)
    }

    let settings: Settings
    let logger: Logger

    init(settings: Settings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    /// Supervises every slot until cancelled.
    func run() async {
        await withTaskGroup(of: Void.self) { group in
            for slot in 1...max(1, settings.count) where settings.count > 0 {
                group.addTask { await supervise(slot: slot) }
            }
        }
    }

    private func supervise(slot: Int) async {
        var backoff: Duration = .seconds(1)
        var restarts = 0
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "local"
        while !Task.isCancelled {
            let started = ContinuousClock.now
            var options = PlatformOptions()
            options.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: settings.stopGrace)]
            let arguments =
                ["--connect", settings.endpoint, "--worker-id", "\(host)-local-\(slot)"] + settings.arguments
            do {
                let status: TerminationStatus
                if StatusLine.isActive {
                    // A progress bar is drawn on this terminal: the worker's log lines are written above
                    // it, line by line, instead of straight over it.
                    status = try await Subprocess.run(
                        .path(FilePath(settings.executable)),
                        arguments: Arguments(arguments),
                        platformOptions: options,
                        input: .none,
                        output: .currentStandardOutput,
                        error: .sequence
                    ) { execution in
                        logStarted(slot: slot, pid: execution.processIdentifier.value, restarts: restarts)
                        try await Self.relayLines(execution.standardError)
                    }.terminationStatus
                } else {
                    status = try await Subprocess.run(
                        .path(FilePath(settings.executable)),
                        arguments: Arguments(arguments),
                        platformOptions: options,
                        input: .none,
                        output: .currentStandardOutput,
                        error: .currentStandardError
                    ) { execution in
                        logStarted(slot: slot, pid: execution.processIdentifier.value, restarts: restarts)
                    }.terminationStatus
                }
                if Task.isCancelled { return }
                let ran = ContinuousClock.now - started
                if ran > .seconds(30) { backoff = .seconds(1) }
                restarts += 1
                logger.warning(
                    "local worker exited; restarting",
                    metadata: [
                        "slot": "\(slot)", "status": "\(status)",
                        "ran.s": "\(ran.shortDescription)", "restart.in": "\(backoff.shortDescription)",
                    ]
                )
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                logger.error(
                    "cannot start local worker",
                    metadata: ["slot": "\(slot)", "executable": "\(settings.executable)", "error": "\(error)"]
                )
            }
            do {
                try await Task.sleep(for: backoff)
            } catch {
                return
            }
            backoff = min(backoff * 2, .seconds(30))
        }
    }

    private func logStarted(slot: Int, pid: some CustomStringConvertible, restarts: Int) {
        logger.info("local worker started", metadata: ["slot": "\(slot)", "pid": "\(pid)", "restarts": "\(restarts)"])
    }

    /// Writes a child's output through ``StatusLine`` one whole line at a time.
    private static func relayLines(_ output: SubprocessOutputSequence) async throws {
        var pending: [UInt8] = []
        for try await buffer in output {
            buffer.withUnsafeBytes { pending.append(contentsOf: $0) }
            if let last = pending.lastIndex(of: 0x0A) {
                StatusLine.write(Array(pending[...last]))
                pending.removeSubrange(...last)
            }
        }
        if !pending.isEmpty { StatusLine.write(pending + [0x0A]) }
    }

    /// Finds the `worker` executable: an explicit path, `REELFARM_WORKER_BIN`, the coordinator's own
    /// folder, then `PATH`.
    static func locateWorker(
        explicit: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigurationError) -> String {
        let fm = FileManager.default
        if let explicit {
            guard fm.isExecutableFile(atPath: explicit) else {
                throw ConfigurationError("--worker-binary \(explicit) is not an executable file")
            }
            return explicit
        }
        if let env = environment["REELFARM_WORKER_BIN"], !env.isEmpty {
            guard fm.isExecutableFile(atPath: env) else {
                throw ConfigurationError("REELFARM_WORKER_BIN=\(env) is not an executable file")
            }
            return env
        }
        if let own = try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            let sibling = URL(fileURLWithPath: own).deletingLastPathComponent().appendingPathComponent("worker").path
            if fm.isExecutableFile(atPath: sibling) { return sibling }
        }
        for dir in (environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(dir)/worker"
            if fm.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw ConfigurationError(
            "cannot find the worker executable next to the coordinator or on PATH; give --worker-binary PATH"
        )
    }
}

import Foundation
import Logging
import Shared
import Subprocess
import Synchronization

#if canImport(System)
import System
#else
import SystemPackage
#endif

/// `coordinator --workers N`: starts N `worker` processes on this machine, connected to the
/// coordinator's endpoint, restarts one that exits (with backoff), grows or shrinks with ``resize(to:)``
/// (`coordinator scale`), and stops them all (SIGTERM, then SIGKILL after a grace period) when its task is
/// cancelled.
///
/// Each slot is supervised by its own task; the slot table is behind a lock because ``resize(to:)`` and
/// ``stop(slot:)`` are called from the coordinator's loop while ``run()`` waits on another task. Shrinking
/// does not kill anything by itself: it returns the slots to retire, the coordinator stops sending them
/// jobs, waits until their attempts and files are done, then calls ``stop(slot:)`` (a graceful drain).
final class LocalWorkerPool: Sendable {
    struct Settings: Sendable {
        var count: Int
        var executable: String
        var endpoint: String
        /// Extra arguments for every worker (parallelism settings, log level).
        var arguments: [String]
        /// Variables added to the inherited environment of every worker.
        var environment: [String: String] = [:]
        /// Time a worker gets to exit after SIGTERM before SIGKILL. The default is 5 s.
        var stopGrace: Duration = .seconds(5)
    }

    /// What the pool looks like now (for the status API and `coordinator scale`).
    struct Snapshot: Sendable, Equatable, Codable {
        /// Worker processes wanted.
        var target: Int
        /// Slots supervised and not being retired.
        var active: Int
        /// Slots being drained before they stop.
        var retiring: Int
    }

    private struct Slot {
        var task: Task<Void, Never>?
        var retiring = false
    }

    private struct State {
        var target = 0
        var slots: [Int: Slot] = [:]
        var stopped = false
    }

    let settings: Settings
    let logger: Logger
    private let state = Mutex(State())
    private let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "local"

    init(settings: Settings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    /// The worker id of a slot: `HOST-local-N`.
    func workerId(slot: Int) -> String { "\(host)-local-\(slot)" }

    var snapshot: Snapshot {
        state.withLock { s in
            let retiring = s.slots.values.count { $0.retiring }
            return Snapshot(target: s.target, active: s.slots.count - retiring, retiring: retiring)
        }
    }

    /// Supervises the slots until cancelled, then stops every worker and waits for them to exit.
    func run() async {
        resize(to: settings.count)
        while !Task.isCancelled {
            do { try await Task.sleep(for: .seconds(3600)) } catch { break }
        }
        let tasks = state.withLock { s in
            s.stopped = true
            return s.slots.values.compactMap(\.task)
        }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }

    /// Sets how many workers should run. Growing starts new slots at once (the lowest free numbers);
    /// shrinking marks the highest-numbered slots as retiring and returns them, for the caller to drain.
    @discardableResult
    func resize(to count: Int) -> [Int] {
        let (started, retired): ([Int], [Int]) = state.withLock { s in
            guard !s.stopped else { return ([], []) }
            s.target = count
            let active = s.slots.filter { !$0.value.retiring }.keys.sorted()
            if active.count > count {
                let retire = Array(active.suffix(active.count - count))
                for slot in retire { s.slots[slot]?.retiring = true }
                return ([], retire)
            }
            var started: [Int] = []
            var candidate = 1
            while active.count + started.count < count {
                if s.slots[candidate] == nil {
                    let slot = candidate
                    s.slots[slot] = Slot(task: Task { await self.supervise(slot: slot) })
                    started.append(slot)
                }
                candidate += 1
            }
            return (started, [])
        }
        if !started.isEmpty || !retired.isEmpty {
            logger.info(
                "local worker pool resized",
                metadata: ["target": "\(count)", "starting": "\(started)", "retiring": "\(retired)"]
            )
        }
        return retired
    }

    /// Stops a retiring slot's worker (SIGTERM, SIGKILL after the grace) and forgets the slot.
    func stop(slot: Int) {
        let task = state.withLock { s in s.slots[slot]?.task }
        task?.cancel()
    }

    private func isRetiring(_ slot: Int) -> Bool {
        state.withLock { $0.slots[slot]?.retiring ?? true }
    }

    private func supervise(slot: Int) async {
        defer { _ = state.withLock { $0.slots.removeValue(forKey: slot) } }
        await superviseProcess(slot: slot)
    }

    private func superviseProcess(slot: Int) async {
        var backoff: Duration = .seconds(1)
        var restarts = 0
        while !Task.isCancelled {
            let started = ContinuousClock.now
            var options = PlatformOptions()
            options.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: settings.stopGrace)]
            var environment = Dictionary(
                uniqueKeysWithValues: settings.environment.map {
                    (Environment.Key(rawValue: $0.key)!, Optional($0.value))
                }
            )
            // The worker watches this process: if the coordinator dies without stopping it (SIGKILL, a
            // crash), it finishes what it holds for a coordinator that comes back, or exits.
            environment[Environment.Key(rawValue: "REELFARM_PARENT_PID")!] = String(
                ProcessInfo.processInfo.processIdentifier
            )
            let arguments =
                ["--connect", settings.endpoint, "--worker-id", workerId(slot: slot)] + settings.arguments
            do {
                let status: TerminationStatus
                if StatusLine.isActive {
                    // A progress bar is drawn on this terminal: the worker's log lines are written above
                    // it, line by line, instead of straight over it.
                    status = try await Subprocess.run(
                        .path(FilePath(settings.executable)),
                        arguments: Arguments(arguments),
                        environment: .inherit.updating(environment),
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
                        environment: .inherit.updating(environment),
                        platformOptions: options,
                        input: .none,
                        output: .currentStandardOutput,
                        error: .currentStandardError
                    ) { execution in
                        logStarted(slot: slot, pid: execution.processIdentifier.value, restarts: restarts)
                    }.terminationStatus
                }
                if Task.isCancelled || isRetiring(slot) { return }
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

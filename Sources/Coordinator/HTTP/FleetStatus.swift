import Foundation
import Protocol
import Shared
import Synchronization

/// What `GET /api/status` answers and the dashboard draws: the batch, its episodes, the workers and the
/// budgets, as the coordinator's loop last published them (at most 250 ms old). snake_case JSON.
struct FleetStatus: Codable, Sendable, Equatable {
    struct Progress: Codable, Sendable, Equatable {
        var total: Int
        var succeeded: Int
        var failed: Int
        var running: Int
        var saving: Int
        var pending: Int
        var elapsedSeconds: Double?
        var etaSeconds: Double?
    }

    struct Worker: Codable, Sendable, Equatable {
        var id: String
        var host: String
        var slots: Int
        var running: Int
        var completed: Int
        var heartbeatAgeMs: Int
        var draining: Bool
    }

    struct Budget: Codable, Sendable, Equatable {
        var provider: String
        var inWindow: Int
        var limit: Int?
        var inFlight: Int
        var maxConcurrent: Int?
        var waiting: Int
        var paused: Bool
        var granted: Int
        var started: Int
        /// Provider signals reported by workers (429s and the like), by kind.
        var signals: [String: Int]
    }

    struct Episode: Codable, Sendable, Equatable {
        var id: String
        var status: String
        var attempts: Int
        var worker: String?
        var dispatchedAfterSeconds: Double?
        var finishedAfterSeconds: Double?
    }

    /// `batch` (one-shot `coordinator`) or `serve`.
    var mode = "batch"
    /// The batch being dispatched (empty while `serve` is idle).
    var batchId: String
    /// `running`, `idle` (serve, no batch), `completed` (one-shot, done), `interrupted` or `stopped`.
    var state: String
    var updatedAt: String
    var progress: Progress
    var workers: [Worker]
    var budgets: [Budget]
    var episodes: [Episode]
    var counters: DispatchCounters
    /// Every batch this coordinator knows: queued, running, finished (`coordinator serve`).
    var batches: [BatchListing] = []
    /// The local worker pool (`--workers`, `coordinator scale`), when this coordinator can start workers.
    var localWorkers: LocalWorkerPool.Snapshot?
    /// CURVE and the allow-list: keys allowed, connections accepted and refused.
    var security: WorkerAuthenticator.Status?

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.sortedKeys]
        return e
    }()
}

extension Dispatcher {
    /// The fleet as the status API shows it.
    func fleetStatus(state: String, now: ContinuousClock.Instant) -> FleetStatus {
        let p = progress(now: now)
        let first = episodes.compactMap(\.firstDispatchedAt).min()
        func after(_ t: ContinuousClock.Instant?) -> Double? {
            guard let t, let first else { return nil }
            return ((t - first).secondsDouble * 1000).rounded() / 1000
        }
        let stats = leases.stats
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return FleetStatus(
            batchId: batchId,
            state: state,
            updatedAt: formatter.string(from: Date()),
            progress: .init(
                total: p.total,
                succeeded: p.succeeded,
                failed: p.failed,
                running: p.running,
                saving: p.collecting,
                pending: p.pending,
                elapsedSeconds: p.elapsed.map { ($0.secondsDouble * 1000).rounded() / 1000 },
                etaSeconds: p.eta.map { $0.secondsDouble.rounded() }
            ),
            workers: workers.values.sorted { $0.joinOrder < $1.joinOrder }.map {
                FleetStatus.Worker(
                    id: $0.hello.workerId,
                    host: $0.hello.host,
                    slots: $0.hello.capacity.episodes,
                    running: $0.inflight.count,
                    completed: $0.completed,
                    heartbeatAgeMs: max(0, (now - $0.lastHeard).wholeMilliseconds),
                    draining: $0.draining
                )
            },
            budgets: p.budgets.map { u in
                let s = stats[u.provider] ?? LeaseManager.ProviderStats()
                return FleetStatus.Budget(
                    provider: u.provider,
                    inWindow: u.inWindow,
                    limit: u.limit,
                    inFlight: u.inFlight,
                    maxConcurrent: u.maxConcurrent,
                    waiting: u.waiting,
                    paused: u.held,
                    granted: s.granted,
                    started: s.started,
                    signals: s.signals
                )
            },
            episodes: episodes.map {
                FleetStatus.Episode(
                    id: $0.id,
                    status: collector(isCollecting: $0.id) ? "saving" : $0.status.rawValue,
                    attempts: $0.attemptsUsed,
                    worker: $0.workerId,
                    dispatchedAfterSeconds: after($0.firstDispatchedAt),
                    finishedAfterSeconds: after($0.finishedAt)
                )
            },
            counters: counters
        )
    }
}

/// The latest ``FleetStatus`` and its JSON, published by the coordinator's loop and read by HTTP
/// handlers on other threads (hence the lock; the loop never waits on a reader for long).
final class StatusBoard: Sendable {
    private let latest = Mutex<(status: FleetStatus?, json: [UInt8])>((nil, Array("{}".utf8)))

    func publish(_ status: FleetStatus) {
        let json = (try? FleetStatus.encoder.encode(status)).map(Array.init) ?? Array("{}".utf8)
        latest.withLock { $0 = (status, json) }
    }

    var status: FleetStatus? { latest.withLock { $0.status } }
    var json: [UInt8] { latest.withLock { $0.json } }
}

import Foundation
import Protocol
import Shared
import Synchronization

/// What the coordinator is doing, as the status document's `state` says it.
enum CoordinatorState: String, Codable, Sendable {
    /// Dispatching a batch.
    case running
    /// `serve` with no batch to run: waiting for `coordinator submit`.
    case idle
    /// The one-shot batch ended (every episode succeeded, failed or was capped).
    case completed
    /// The batch was stopped half-way (signal, a journal that cannot be written); it is resumed by the next start.
    case interrupted
    /// `serve` stopped, or the coordinator stopped before its batch ended.
    case stopped
}

/// What `GET /api/status` answers and the dashboard draws: the batch, the workers, the budgets and some
/// of the episodes (``EpisodeSelection``). snake_case JSON.
///
/// The usual document (in flight, latest finished, next queued: at most 100 episodes) is the one the
/// coordinator's loop publishes every 250 ms; any other selection of episodes is made by the loop when
/// asked. Either costs the loop what it lists, never a pass over a batch of 100,000.
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
        /// Set when a billing, quota or auth error opened the provider's circuit (a provider without a
        /// budget is listed only then); absent otherwise.
        var circuitOpen: Bool?
        /// The configured budget in words (`--budget`); absent when none.
        var configured: String?
        /// What the provider told of its limits (headers, 429s), in words; absent when nothing was learned.
        /// `limit` and `max_concurrent` are what is leased: the lower of the two.
        var learned: String?
    }

    struct Episode: Codable, Sendable, Equatable {
        var id: String
        var status: String
        var attempts: Int
        var worker: String?
        var dispatchedAfterSeconds: Double?
        var finishedAfterSeconds: Double?
        /// What its attempts' calls cost, in micro-dollars; absent when nothing was spent.
        var costMicros: Int?
    }

    /// What the batch's reported calls cost, in this run of the coordinator.
    struct Spend: Codable, Sendable, Equatable {
        var totalMicros: Int
        /// For people, e.g. `$0.1342`.
        var total: String
        var byProviderMicros: [String: Int]
        /// Calls of models without a price (not in the total).
        var unpricedCalls: Int
        /// `--max-spend`, for people (absent without a cap), and what is neither spent nor leased out.
        var cap: String? = nil
        var freeMicros: Int? = nil
        /// Calls answered from the asset store, and what they would have cost (absent when none).
        var reusedCalls: Int? = nil
        var savedMicros: Int? = nil
        var saved: String? = nil
    }

    struct EpisodeList: Codable, Sendable, Equatable {
        /// `recent`, `page`, `all` or `none` (see ``EpisodeSelection``).
        var view: String
        /// Episodes listed, and in the batch.
        var listed: Int
        var total: Int
        var limit: Int?
        /// A page's first position (0-based), and the next page's when there is one.
        var offset: Int?
        var nextOffset: Int?
    }

    /// `batch` (one-shot `coordinator`) or `serve`.
    var mode = "batch"
    /// The batch being dispatched (empty while `serve` is idle).
    var batchId: String
    var state: CoordinatorState
    var updatedAt: String
    var progress: Progress
    var workers: [Worker]
    var budgets: [Budget]
    /// The episodes ``episodeList`` describes, in batch order.
    var episodes: [Episode]
    /// Which episodes ``episodes`` holds, of how many (absent from coordinators before it was added).
    var episodeList: EpisodeList?
    var counters: DispatchCounters
    /// Every batch this coordinator knows: queued, running, finished (`coordinator serve`).
    var batches: [BatchListing] = []
    /// The local worker pool (`--workers`, `coordinator scale`), when this coordinator can start workers.
    var localWorkers: LocalWorkerPool.Snapshot?
    /// CURVE and the allow-list: keys allowed, connections accepted and refused.
    var security: WorkerAuthenticator.Status?
    /// Set while storing episode files is paused because the coordinator's disk is full: no new attempt is
    /// dispatched, the workers keep their finished files, and storing is retried every few seconds.
    var diskFull: DiskFull?
    /// What the batch's calls cost so far (absent from coordinators before it was counted).
    var spend: Spend?

    struct DiskFull: Codable, Sendable, Equatable {
        var pausedForSeconds: Double
        var error: String
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.sortedKeys]
        return e
    }()

    /// The JSON document (`{}` if it cannot be encoded, which does not happen).
    var json: [UInt8] { (try? Self.encoder.encode(self)).map(Array.init) ?? Array("{}".utf8) }
}

/// Which episodes a status document lists: `GET /api/status?episodes=recent|all|none`, or a page with
/// `?offset=N` (and `&limit=M` for either a page or the recent view).
enum EpisodeSelection: Sendable, Equatable {
    /// Those in flight, then the latest to finish, then the next in the queue: at most `limit`, in batch
    /// order. A batch of at most `limit` episodes is listed whole.
    case recent(limit: Int)
    /// At most `limit` episodes from position `offset` (0-based), in batch order.
    case page(offset: Int, limit: Int)
    /// Every episode, in batch order: about 130 bytes of JSON each, megabytes for a big batch.
    case all
    /// No episodes: the fleet-wide figures only.
    case none

    static let defaultLimit = 100
    static let maxLimit = 1000
    /// What `GET /api/status` lists when not asked otherwise, and the loop publishes every 250 ms.
    static let standard = EpisodeSelection.recent(limit: defaultLimit)

    /// The selection a request's query names (`nil` for a parameter not given).
    static func parse(episodes: String?, offset: String?, limit: String?) throws(ControlError) -> EpisodeSelection {
        var count = defaultLimit
        if let limit {
            guard let n = Int(limit), (1...maxLimit).contains(n) else {
                throw .badRequest("limit must be from 1 to \(maxLimit), got \"\(limit)\"")
            }
            count = n
        }
        var start: Int?
        if let offset {
            guard let n = Int(offset), n >= 0 else {
                throw .badRequest("offset must be a position from 0, got \"\(offset)\"")
            }
            start = n
        }
        switch episodes {
        case nil:
            return start.map { .page(offset: $0, limit: count) } ?? .recent(limit: count)
        case "recent" where start == nil:
            return .recent(limit: count)
        case "all" where start == nil && limit == nil:
            return .all
        case "none" where start == nil && limit == nil:
            return .none
        case "recent", "all", "none":
            throw .badRequest("episodes=\(episodes ?? "") takes no offset\(episodes == "recent" ? "" : " or limit")")
        default:
            throw .badRequest("episodes must be recent, all or none, got \"\(episodes ?? "")\"")
        }
    }
}

extension Dispatcher {
    /// The fleet as the status API shows it, with the episodes `selection` names. Costs what it lists:
    /// the counts are kept as episodes change.
    func fleetStatus(
        state: CoordinatorState,
        now: ContinuousClock.Instant,
        episodes selection: EpisodeSelection = .standard
    ) -> FleetStatus {
        let p = progress(now: now)
        let first = episodes.firstDispatchedAt
        func after(_ t: ContinuousClock.Instant?) -> Double? {
            guard let t, let first else { return nil }
            return ((t - first).secondsDouble * 1000).rounded() / 1000
        }
        let stats = leases.stats
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let collecting = collectingEpisodes
        let listed = positions(selection).map { episodes[$0] }
        var status = FleetStatus(
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
                    signals: s.signals,
                    circuitOpen: u.circuitOpen ? true : nil,
                    configured: u.configured,
                    learned: u.learned
                )
            },
            episodes: listed.map {
                FleetStatus.Episode(
                    id: $0.id,
                    status: collecting.contains($0.id) ? "saving" : $0.status.rawValue,
                    attempts: $0.attemptsUsed,
                    worker: $0.workerId,
                    dispatchedAfterSeconds: after($0.firstDispatchedAt),
                    finishedAfterSeconds: after($0.finishedAt),
                    costMicros: $0.costMicros > 0 ? $0.costMicros : nil
                )
            },
            episodeList: Self.describe(selection, listed: listed.count, total: episodes.count),
            counters: counters
        )
        status.spend = FleetStatus.Spend(
            totalMicros: spend.totalMicros,
            total: PriceTable.dollars(spend.totalMicros),
            byProviderMicros: spend.byProvider,
            unpricedCalls: spend.unpricedCalls,
            cap: spendCap.map { PriceTable.dollars($0.capMicros) },
            freeMicros: spendCap?.freeMicros,
            reusedCalls: spend.reusedCalls > 0 ? spend.reusedCalls : nil,
            savedMicros: spend.reusedCalls > 0 ? spend.savedMicros : nil,
            saved: spend.reusedCalls > 0 ? PriceTable.dollars(spend.savedMicros) : nil
        )
        if let full = diskFull {
            status.diskFull = FleetStatus.DiskFull(
                pausedForSeconds: ((now - full.since).secondsDouble * 10).rounded() / 10,
                error: full.error
            )
        }
        return status
    }

    /// The positions of the episodes `selection` names, in batch order.
    func positions(_ selection: EpisodeSelection) -> [Int] {
        let total = episodes.count
        switch selection {
        case .all:
            return Array(0..<total)
        case .none:
            return []
        case .page(let offset, let limit):
            return offset < total ? Array(offset..<min(total, offset + limit)) : []
        case .recent(let limit) where total <= limit:
            return Array(0..<total)
        case .recent(let limit):
            var chosen = Set<Int>(minimumCapacity: limit)
            for p in episodes.running.sorted().prefix(limit) { chosen.insert(Int(p)) }
            for p in episodes.recentlyFinished.reversed() where chosen.count < limit { chosen.insert(Int(p)) }
            for p in nextQueued(limit) where chosen.count < limit { chosen.insert(p) }
            return chosen.sorted()
        }
    }

    private static func describe(_ selection: EpisodeSelection, listed: Int, total: Int) -> FleetStatus.EpisodeList {
        switch selection {
        case .recent(let limit):
            return .init(view: "recent", listed: listed, total: total, limit: limit)
        case .page(let offset, let limit):
            return .init(
                view: "page",
                listed: listed,
                total: total,
                limit: limit,
                offset: offset,
                // Not `offset + limit < total`: the offset is the client's, up to Int.max.
                nextOffset: offset < total - limit ? offset + limit : nil
            )
        case .all:
            return .init(view: "all", listed: listed, total: total)
        case .none:
            return .init(view: "none", listed: listed, total: total)
        }
    }
}

/// The latest ``FleetStatus``, published by the coordinator's loop and read by HTTP handlers on other
/// threads (hence the lock; the loop never waits on a reader for long). Its JSON is encoded by the first
/// reader after each publish, not by the loop, and only when someone reads it.
final class StatusBoard: Sendable {
    private struct Latest {
        var status: FleetStatus?
        var json: [UInt8]?
        var generation = 0
    }

    private let latest = Mutex(Latest())

    func publish(_ status: FleetStatus) {
        latest.withLock {
            $0.status = status
            $0.json = nil
            $0.generation &+= 1
        }
    }

    var status: FleetStatus? { latest.withLock { $0.status } }

    var json: [UInt8] {
        let (status, cached, generation) = latest.withLock { ($0.status, $0.json, $0.generation) }
        if let cached { return cached }
        guard let status else { return Array("{}".utf8) }
        let json = status.json
        latest.withLock { if $0.generation == generation { $0.json = json } }
        return json
    }
}

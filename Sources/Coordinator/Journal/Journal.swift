import Foundation
import GRDB
import Protocol
import Shared

/// The coordinator's durable record of a batch (`--state DIR` → `DIR/journal.sqlite`): SQLite through
/// GRDB in WAL mode, so that a coordinator killed at any moment and started again with the same command
/// carries on where it stopped.
///
/// - `batch`: one row per batch, its status (`queued` when submitted to `coordinator serve` and not
///   started, `running` until it ends, then `completed`) and the dispatch counters.
/// - `episode`: one row per episode with its spec and latest state (status, attempts, worker, result).
/// - `attempt_event`: an append-only log (dispatched, succeeded, failed, lost, re-adopted…).
/// - `artifact`: the files of each succeeded episode with their size and SHA-256, written in the same
///   transaction that records the success, after the files themselves are durable.
/// - `lease_start`: when budgeted calls started (a restarted coordinator counts them in its windows).
///
/// **Batched writes.** Changes are buffered (an episode's latest snapshot wins) and written in one
/// transaction by ``flush()``, which the service calls every 100 ms and at the end; the journal is never
/// the bottleneck of dispatch. A crash loses at most the last 100 ms of changes, which the protocol
/// already tolerates: an episode recorded as running is requeued or re-adopted, and a result recorded
/// after a crash is fenced by its attempt number (attempt numbers survive restarts).
///
/// **Ownership.** Opened by the command, then handed to ``CoordinatorService`` and used only by the task
/// that runs its `run()`: one owner at a time, hence `@unchecked Sendable` (the buffers are not locked).
final class Journal: @unchecked Sendable {
    /// A batch read back from the journal.
    struct StoredBatch: Sendable {
        var id: String
        var episodes: [EpisodeRecord]
        var counters: DispatchCounters
    }

    /// What the journal wrote, for logs and the closing figures.
    struct Stats: Sendable, Equatable {
        var flushes = 0
        var episodeWrites = 0
        var events = 0
        var flushTime = Duration.zero
    }

    let url: URL
    private let pool: DatabasePool
    private var dirty: [String: EpisodeRecord] = [:]
    private var events: [(episode: String, attempt: Int, event: String, worker: String?)] = []
    private var batchId: String?
    private var starts: [(provider: String, at: Double)] = []
    private(set) var stats = Stats()

    /// Opens (creating if needed) `directory/journal.sqlite`.
    /// - Throws: ``ConfigurationError``-style errors naming the file when it cannot be opened or migrated.
    init(directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        url = directory.appendingPathComponent("journal.sqlite")
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        // WAL with NORMAL sync: a commit survives a process crash (SIGKILL); only a power loss may lose
        // the last transactions, which the protocol tolerates (see the type's documentation).
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        pool = try DatabasePool(path: url.path, configuration: configuration)
        try Self.migrator.migrate(pool)
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE batch (
                        id TEXT PRIMARY KEY NOT NULL,
                        status TEXT NOT NULL,
                        created_at TEXT NOT NULL,
                        updated_at TEXT NOT NULL,
                        counters TEXT NOT NULL
                    );
                    CREATE TABLE episode (
                        batch_id TEXT NOT NULL REFERENCES batch(id),
                        id TEXT NOT NULL,
                        position INTEGER NOT NULL,
                        spec TEXT NOT NULL,
                        status TEXT NOT NULL,
                        attempts INTEGER NOT NULL,
                        worker TEXT,
                        duration_ms INTEGER,
                        api_calls INTEGER NOT NULL,
                        errors TEXT NOT NULL,
                        placeholders TEXT NOT NULL,
                        PRIMARY KEY (batch_id, id)
                    );
                    CREATE TABLE attempt_event (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        batch_id TEXT NOT NULL,
                        episode_id TEXT NOT NULL,
                        attempt INTEGER NOT NULL,
                        event TEXT NOT NULL,
                        worker TEXT,
                        at TEXT NOT NULL
                    );
                    CREATE INDEX attempt_event_episode ON attempt_event (batch_id, episode_id);
                    """
            )
        }
        migrator.registerMigration("v2-lease-starts") { db in
            // When budgeted calls started (wall clock, seconds since 1970): a restarted coordinator counts
            // the recent ones in its windows, so it grants no burst on top of them.
            try db.execute(sql: "CREATE TABLE lease_start (provider TEXT NOT NULL, at REAL NOT NULL)")
            try db.execute(sql: "CREATE INDEX lease_start_at ON lease_start (at)")
        }
        migrator.registerMigration("v3-artifacts") { db in
            try db.execute(
                sql: """
                    CREATE TABLE artifact (
                        batch_id TEXT NOT NULL,
                        episode_id TEXT NOT NULL,
                        attempt INTEGER NOT NULL,
                        name TEXT NOT NULL,
                        size INTEGER NOT NULL,
                        sha256 TEXT NOT NULL,
                        PRIMARY KEY (batch_id, episode_id, name)
                    )
                    """
            )
        }
        migrator.registerMigration("v4-serve") { db in
            // Attempt numbers continue across batches with episodes of the same id (EpisodeRecord.attemptBase).
            try db.execute(sql: "ALTER TABLE episode ADD COLUMN attempt_base INTEGER NOT NULL DEFAULT 0")
        }
        migrator.registerMigration("v5-spend") { db in
            // What each episode's calls cost (issue 16), so that a resumed batch's summary keeps it.
            try db.execute(sql: "ALTER TABLE episode ADD COLUMN cost_micros INTEGER NOT NULL DEFAULT 0")
        }
        return migrator
    }

    // MARK: - Reading

    /// The batch left unfinished by an earlier run (status `running`), if any: the newest one.
    func unfinishedBatch() throws -> StoredBatch? {
        try pool.read { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: "SELECT id, counters FROM batch WHERE status = 'running' ORDER BY created_at DESC LIMIT 1"
                )
            else { return nil }
            return try Self.storedBatch(row: row, db: db)
        }
    }

    /// One batch of the journal, whatever its status (`coordinator summary` rewrites a finished one's files
    /// from it).
    func storedBatch(id: String) throws -> StoredBatch? {
        try pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT id, counters FROM batch WHERE id = ?", arguments: [id])
            else { return nil }
            return try Self.storedBatch(row: row, db: db)
        }
    }

    private static func storedBatch(row: Row, db: Database) throws -> StoredBatch {
        let id: String = row["id"]
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let counters =
            (try? decoder.decode(DispatchCounters.self, from: Data((row["counters"] as String).utf8)))
            ?? DispatchCounters()
        let rows = try Row.fetchAll(
            db,
            sql: "SELECT * FROM episode WHERE batch_id = ? ORDER BY position",
            arguments: [id]
        )
        var episodes: [EpisodeRecord] = []
        for (index, r) in rows.enumerated() {
            let spec = try decoder.decode(EpisodeSpec.self, from: Data((r["spec"] as String).utf8))
            var e = EpisodeRecord(index: index, id: r["id"], spec: spec)
            e.status = EpisodeRecord.Status(rawValue: r["status"]) ?? .pending
            e.attempts = r["attempts"]
            e.attemptBase = r["attempt_base"]
            e.workerId = r["worker"]
            e.durationMs = r["duration_ms"]
            e.apiCalls = r["api_calls"]
            e.costMicros = r["cost_micros"]
            e.errors = (try? decoder.decode([String].self, from: Data((r["errors"] as String).utf8))) ?? []
            e.placeholders =
                (try? decoder.decode([Placeholder].self, from: Data((r["placeholders"] as String).utf8))) ?? []
            episodes.append(e)
        }
        let files = try Self.artifacts(batchId: id, db: db)
        for i in episodes.indices { episodes[i].artifacts = files[episodes[i].id] ?? [] }
        return StoredBatch(id: id, episodes: episodes, counters: counters)
    }

    /// Every batch's status by id (`queued`, `running`, `completed`).
    func batchStatuses() throws -> [String: String] {
        try pool.read { db in
            Dictionary(
                try Row.fetchAll(db, sql: "SELECT id, status FROM batch").map { ($0["id"], $0["status"]) },
                uniquingKeysWith: { a, _ in a }
            )
        }
    }

    /// What the episodes of the batches completed on `day` (UTC, `YYYY-MM-DD`, by when their end was
    /// recorded) cost, in micro-dollars: what `serve --max-spend-per-day` counts as spent earlier that day
    /// after a restart. A batch that ran across midnight counts whole on the day it ended.
    func spentByBatchesCompleted(on day: String) throws -> Int {
        try pool.read { db in
            try Int.fetchOne(
                db,
                sql: """
                    SELECT COALESCE(SUM(e.cost_micros), 0) FROM episode e JOIN batch b ON b.id = e.batch_id
                    WHERE b.status = 'completed' AND substr(b.updated_at, 1, 10) = ?
                    """,
                arguments: [day]
            ) ?? 0
        }
    }

    /// When a batch was recorded and last written (ISO 8601), for a summary rewritten from the journal.
    func batchTimes(id: String) throws -> (created: String, updated: String)? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT created_at, updated_at FROM batch WHERE id = ?", arguments: [id]).map {
                ($0["created_at"], $0["updated_at"])
            }
        }
    }

    /// Records finished episodes found on disk (`--rebuild-journal`): each row and its files at once, with
    /// an `adopted` event, so that the batch they belong to does not run them again.
    func adopt(batchId: String, episodes: [EpisodeRecord]) throws {
        let now = Self.timestamp()
        try pool.write { db in
            for e in episodes {
                try Self.upsert(e, batchId: batchId, db: db)
                try db.execute(
                    sql:
                        "INSERT INTO attempt_event (batch_id, episode_id, attempt, event, worker, at) VALUES (?, ?, ?, 'adopted', NULL, ?)",
                    arguments: [batchId, e.id, e.attempts, now]
                )
            }
        }
    }

    /// Batches submitted to `coordinator serve` and not started yet, oldest first, with their episodes.
    func queuedBatches() throws -> [Batch] {
        try pool.read { db in
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            return try Row.fetchAll(
                db,
                sql: "SELECT id FROM batch WHERE status = 'queued' ORDER BY created_at, rowid"
            ).map { row in
                let id: String = row["id"]
                let specs = try Row.fetchAll(
                    db,
                    sql: "SELECT spec FROM episode WHERE batch_id = ? ORDER BY position",
                    arguments: [id]
                ).map { try decoder.decode(EpisodeSpec.self, from: Data(($0["spec"] as String).utf8)) }
                return Batch(id: id, episodes: specs)
            }
        }
    }

    /// Per episode id, the highest attempt number any other batch of this journal gave it (the floor of
    /// a new batch's attempt numbers: see ``EpisodeRecord/attemptBase``).
    func attemptFloors(excluding batchId: String) throws -> [String: Int] {
        try pool.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: "SELECT id, MAX(attempts) AS n FROM episode WHERE batch_id != ? GROUP BY id",
                arguments: [batchId]
            )
            return Dictionary(uniqueKeysWithValues: rows.map { ($0["id"], $0["n"]) })
        }
    }

    /// Finished batches (`completed`), oldest first, with their episode counts: what `coordinator serve`
    /// lists after a restart.
    func finishedBatches(limit: Int = 1000) throws -> [BatchListing] {
        try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM (
                        SELECT b.id, b.created_at, b.updated_at, COUNT(e.id) AS episodes,
                            SUM(e.status = 'succeeded') AS succeeded, SUM(e.status = 'failed') AS failed
                        FROM batch b LEFT JOIN episode e ON e.batch_id = b.id
                        WHERE b.status = 'completed' GROUP BY b.id ORDER BY b.created_at DESC, b.rowid DESC LIMIT ?
                    ) ORDER BY created_at, id
                    """,
                arguments: [limit]
            ).map { row in
                BatchListing(
                    id: row["id"],
                    state: .completed,
                    episodes: row["episodes"],
                    succeeded: row["succeeded"] ?? 0,
                    failed: row["failed"] ?? 0,
                    submittedAt: row["created_at"],
                    finishedAt: row["updated_at"]
                )
            }
        }
    }

    /// Every batch id with its status, newest first (for error messages).
    func batches() throws -> [(id: String, status: String)] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT id, status FROM batch ORDER BY created_at DESC").map {
                ($0["id"], $0["status"])
            }
        }
    }

    /// Episode statuses of a batch as stored now (tests and the chaos checks read this).
    func episodeStatuses(batchId: String) throws -> [String: String] {
        try pool.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: "SELECT id, status FROM episode WHERE batch_id = ?",
                arguments: [batchId]
            )
            return Dictionary(uniqueKeysWithValues: rows.map { ($0["id"], $0["status"]) })
        }
    }

    /// How many times each episode of a batch has this event in the log (e.g. `succeeded`).
    func eventCounts(batchId: String, event: String) throws -> [String: Int] {
        try pool.read { db in
            let rows = try Row.fetchAll(
                db,
                sql:
                    "SELECT episode_id, COUNT(*) AS n FROM attempt_event WHERE batch_id = ? AND event = ? GROUP BY episode_id",
                arguments: [batchId, event]
            )
            return Dictionary(uniqueKeysWithValues: rows.map { ($0["episode_id"], $0["n"]) })
        }
    }

    /// The recorded files of every succeeded episode of a batch, by episode id, in name order.
    func artifacts(batchId: String) throws -> [String: [ArtifactFile]] {
        try pool.read { db in try Self.artifacts(batchId: batchId, db: db) }
    }

    private static func artifacts(batchId: String, db: Database) throws -> [String: [ArtifactFile]] {
        var out: [String: [ArtifactFile]] = [:]
        for row in try Row.fetchAll(
            db,
            sql: "SELECT episode_id, name, size, sha256 FROM artifact WHERE batch_id = ? ORDER BY episode_id, name",
            arguments: [batchId]
        ) {
            out[row["episode_id"], default: []].append(
                ArtifactFile(name: row["name"], size: row["size"], sha256: row["sha256"])
            )
        }
        return out
    }

    // MARK: - Writing

    /// Records a batch submitted to `coordinator serve` and its episodes, to be started later (status
    /// `queued`): a coordinator restarted with the same `--state` still runs it.
    func enqueue(_ batch: Batch) throws {
        let now = Self.timestamp()
        try pool.write { db in
            try db.execute(
                sql:
                    "INSERT INTO batch (id, status, created_at, updated_at, counters) VALUES (?, 'queued', ?, ?, '{}')",
                arguments: [batch.id, now, now]
            )
            for (i, spec) in batch.episodes.enumerated() {
                let record = EpisodeRecord(index: i, id: spec.id ?? "episode_\(i + 1)", spec: spec)
                try Self.upsert(record, batchId: batch.id, db: db)
            }
        }
    }

    /// Records a new batch (or starts a queued one) with all its episodes (pending), at once; the
    /// journal's writes go to this batch from now on.
    func begin(batchId: String, episodes: [EpisodeRecord]) throws {
        self.batchId = batchId
        let now = Self.timestamp()
        try pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO batch (id, status, created_at, updated_at, counters) VALUES (?, 'running', ?, ?, '{}')
                    ON CONFLICT (id) DO UPDATE SET status = 'running', updated_at = excluded.updated_at
                    """,
                arguments: [batchId, now, now]
            )
            for e in episodes {
                try Self.upsert(e, batchId: batchId, db: db)
            }
        }
    }

    /// Continues a batch read by ``unfinishedBatch()``.
    func resume(batchId: String) {
        self.batchId = batchId
    }

    /// Buffers an episode's current state; the latest one per episode is written at the next flush.
    func record(_ episode: EpisodeRecord) {
        dirty[episode.id] = episode
    }

    /// Buffers one attempt event (`dispatched`, `succeeded`, `failed`, `lost`, `readopted`, …).
    func event(_ event: AttemptEvent, episode: String, attempt: Int, worker: String?) {
        events.append((episode, attempt, event.rawValue, worker))
    }

    /// Buffers the start of `count` budgeted calls to `provider`, now.
    func leaseStarted(provider: String, count: Int, at date: Date = Date()) {
        for _ in 0..<count { starts.append((provider, date.timeIntervalSince1970)) }
    }

    /// Per provider, how many milliseconds ago each recorded call started, within `window` (the shape of
    /// HELLO's `recent_calls`).
    func recentStarts(within window: Duration, now: Date = Date()) throws -> [String: [Int]] {
        let since = now.timeIntervalSince1970 - window.secondsDouble
        return try pool.read { db in
            var out: [String: [Int]] = [:]
            for row in try Row.fetchAll(
                db,
                sql: "SELECT provider, at FROM lease_start WHERE at > ?",
                arguments: [since]
            ) {
                let ago = max(0, Int(((now.timeIntervalSince1970 - (row["at"] as Double)) * 1000).rounded(.down)))
                out[row["provider"], default: []].append(ago)
            }
            return out
        }
    }

    var hasPendingWrites: Bool { !dirty.isEmpty || !events.isEmpty || !starts.isEmpty }

    /// Writes everything buffered, plus the counters, in one transaction. The counters go with every
    /// flush: a resumed batch continues from them (the chaos test kills the coordinator and counts the
    /// stored episodes across the restart).
    func flush(counters: DispatchCounters, status: BatchState? = nil) throws {
        guard let batchId else { return }
        guard hasPendingWrites || status != nil else { return }
        let started = ContinuousClock.now
        let episodes = Array(dirty.values)
        let pendingEvents = events
        let pendingStarts = starts
        dirty = [:]
        events = []
        starts = []
        let now = Self.timestamp()
        let countersJSON = Self.json(counters, fallback: "{}")
        try pool.write { db in
            for e in episodes {
                try Self.update(e, batchId: batchId, db: db)
            }
            for ev in pendingEvents {
                try db.cachedStatement(
                    sql:
                        "INSERT INTO attempt_event (batch_id, episode_id, attempt, event, worker, at) VALUES (?, ?, ?, ?, ?, ?)"
                ).execute(arguments: [batchId, ev.episode, ev.attempt, ev.event, ev.worker, now])
            }
            for start in pendingStarts {
                try db.execute(
                    sql: "INSERT INTO lease_start (provider, at) VALUES (?, ?)",
                    arguments: [start.provider, start.at]
                )
            }
            if !pendingStarts.isEmpty {
                // Only the last hour can matter to any window.
                try db.execute(
                    sql: "DELETE FROM lease_start WHERE at < ?",
                    arguments: [Date().timeIntervalSince1970 - 3600]
                )
            }
            try db.cachedStatement(
                sql: "UPDATE batch SET counters = ?, updated_at = ?, status = COALESCE(?, status) WHERE id = ?"
            ).execute(arguments: [countersJSON, now, status?.rawValue, batchId])
        }
        stats.flushes += 1
        stats.episodeWrites += episodes.count
        stats.events += pendingEvents.count
        stats.flushTime += ContinuousClock.now - started
    }

    private static func upsert(_ e: EpisodeRecord, batchId: String, db: Database) throws {
        // A running episode is stored as running: after a crash it is requeued or re-adopted. The
        // statement is compiled once per connection (`cachedStatement`): this runs for every episode.
        try db.cachedStatement(
            sql: """
                INSERT INTO episode (batch_id, id, position, spec, status, attempts, attempt_base, worker, duration_ms, api_calls, errors, placeholders, cost_micros)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (batch_id, id) DO UPDATE SET
                    status = excluded.status, attempts = excluded.attempts, attempt_base = excluded.attempt_base,
                    worker = excluded.worker,
                    duration_ms = excluded.duration_ms, api_calls = excluded.api_calls, errors = excluded.errors,
                    placeholders = excluded.placeholders, cost_micros = excluded.cost_micros
                """
        ).execute(
            arguments: [
                batchId, e.id, e.index, json(e.spec), e.status.rawValue, e.attempts, e.attemptBase, e.workerId,
                e.durationMs,
                e.apiCalls, json(e.errors), json(e.placeholders), e.costMicros,
            ]
        )
        if e.status == .succeeded, !e.artifacts.isEmpty {
            try storeArtifacts(e, batchId: batchId, db: db)
        }
    }

    private static func storeArtifacts(_ e: EpisodeRecord, batchId: String, db: Database) throws {
        try db.execute(
            sql: "DELETE FROM artifact WHERE batch_id = ? AND episode_id = ?",
            arguments: [batchId, e.id]
        )
        for file in e.artifacts {
            try db.execute(
                sql:
                    "INSERT INTO artifact (batch_id, episode_id, attempt, name, size, sha256) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [batchId, e.id, e.attempts, file.name, file.size, file.sha256]
            )
        }
    }

    /// A change of an episode `begin` or `enqueue` stored: its state only (the spec never changes), or
    /// the whole row if it is missing.
    private static func update(_ e: EpisodeRecord, batchId: String, db: Database) throws {
        try db.cachedStatement(
            sql: """
                UPDATE episode SET status = ?, attempts = ?, attempt_base = ?, worker = ?, duration_ms = ?,
                    api_calls = ?, errors = ?, placeholders = ?, cost_micros = ?
                WHERE batch_id = ? AND id = ?
                """
        ).execute(
            arguments: [
                e.status.rawValue, e.attempts, e.attemptBase, e.workerId, e.durationMs, e.apiCalls,
                e.errors.isEmpty ? "[]" : json(e.errors), e.placeholders.isEmpty ? "[]" : json(e.placeholders),
                e.costMicros, batchId, e.id,
            ]
        )
        if db.changesCount == 0 {
            try upsert(e, batchId: batchId, db: db)
        } else if e.status == .succeeded, !e.artifacts.isEmpty {
            try storeArtifacts(e, batchId: batchId, db: db)
        }
    }

    /// Columns hold JSON with snake_case, sorted keys (what Foundation's encoder wrote before; read back
    /// with `.convertFromSnakeCase`).
    private static func json(_ value: some Encodable, fallback: String = "null") -> String {
        JSONText.string(value, fallback: fallback)
    }

    private static func timestamp() -> String {
        Timestamp.now()
    }
}

import CoreMetrics
import Metrics
import Prometheus
import Shared

/// The coordinator's Prometheus metrics, through swift-metrics with the swift-prometheus backend.
/// ``update(_:)`` is called with every published ``FleetStatus``; counters advance by what changed since.
/// ``episodeFinished(after:)`` records each episode that succeeded (``CoordinatorCore/Effect/episodeTimed(_:)``).
///
/// | metric | type | labels |
/// |---|---|---|
/// | `reelfarm_episodes` | gauge | `state` = pending, running, saving, succeeded, failed |
/// | `reelfarm_queue_depth` | gauge | episodes waiting for a worker (the autoscaling signal) |
/// | `reelfarm_messages_rejected_total` | counter | `reason`: protocol messages refused (a decode error code, `unknown_session`, `out_of_order`, `stale_result`, a lease reason…) |
/// | `reelfarm_allowed_worker_keys` | gauge | public keys on the allow-list (CURVE) |
/// | `reelfarm_connections_refused_total` | counter | `reason` = key (not on the allow-list), handshake (plaintext, wrong server key) |
/// | `reelfarm_batches` | gauge | `state` = queued, running, completed, interrupted (`coordinator serve`) |
/// | `reelfarm_local_workers_target` | gauge | local worker processes wanted (`--workers`, `coordinator scale`) |
/// | `reelfarm_workers`, `reelfarm_slots` | gauge | connected workers and their episode slots |
/// | `reelfarm_budget_calls_in_window`, `reelfarm_budget_limit`, `reelfarm_budget_waiting` | gauge | `provider` |
/// | `reelfarm_permits_granted_total`, `reelfarm_calls_started_total` | counter | `provider` |
/// | `reelfarm_provider_signals_total` | counter | `provider`, `kind` (`rate_limited` … : the 429s) |
/// | `reelfarm_episodes_finished_total` | counter | `outcome` = succeeded, failed; over every batch this process ran |
/// | `reelfarm_episode_duration_seconds` | histogram | first dispatch to the end, succeeded episodes |
/// | `reelfarm_spend_total` | counter | `provider` (`llm`, `tts`, `image`): US dollars the workers reported spent, at their price tables |
/// | `reelfarm_attempts_requeued_total`, `reelfarm_duplicate_results_total`, `reelfarm_workers_lost_total` | counter | |
final class FleetMetrics: @unchecked Sendable {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    // Only touched by the coordinator's loop (one caller at a time).
    private var seen: [String: Int] = [:]

    init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [1, 2, 5, 10, 20, 30, 60, 120, 300, 600].map { .seconds($0) }
        self.factory = factory
    }

    /// A new batch starts (`coordinator serve`): its counts start from zero, so the counters go on from
    /// what they reached (Prometheus counters never go down).
    func batchStarted() {
        seen = [:]
    }

    /// Records the duration (first dispatch to end) of each episode `actions` report succeeded.
    func episodeFinished(after duration: Duration) {
        CoreMetrics.Timer(label: "reelfarm_episode_duration_seconds", factory: factory).recordNanoseconds(
            Int64(duration.secondsDouble * 1e9)
        )
    }

    /// The text exposition format for `GET /metrics`.
    func exposition() -> [UInt8] { registry.emitToBuffer() }

    func update(_ status: FleetStatus) {
        let p = status.progress
        for (state, n) in [
            ("pending", p.pending), ("running", p.running), ("saving", p.saving), ("succeeded", p.succeeded),
            ("failed", p.failed),
        ] {
            gauge("reelfarm_episodes", ["state": state]).record(n)
        }
        gauge("reelfarm_queue_depth").record(p.pending)
        for state in BatchState.allCases {
            gauge("reelfarm_batches", ["state": state.rawValue]).record(status.batches.count { $0.state == state })
        }
        let c = status.counters
        var rejected = c.decodeErrors.merging(c.leaseRejected) { $0 + $1 }
        rejected["unknown_session"] = c.unknownSession
        rejected["out_of_order"] = c.outOfOrder
        rejected["stale_result"] = c.staleResults
        rejected["stale_progress"] = c.staleProgress
        rejected["stale_chunk"] = c.artifacts.staleChunks
        for (reason, n) in rejected where n > 0 {
            advance("reelfarm_messages_rejected_total", ["reason": reason], to: n)
        }
        if let security = status.security {
            gauge("reelfarm_allowed_worker_keys").record(security.allowedKeys)
            // Not reset per batch: these live as long as the process.
            advanceForever("reelfarm_connections_refused_total", ["reason": "key"], to: security.denied)
            advanceForever(
                "reelfarm_connections_refused_total",
                ["reason": "handshake"],
                to: security.handshakeFailures
            )
        }
        if let pool = status.localWorkers {
            gauge("reelfarm_local_workers_target").record(pool.target)
        }
        gauge("reelfarm_workers").record(status.workers.count)
        gauge("reelfarm_slots").record(status.workers.reduce(0) { $0 + $1.slots })
        for b in status.budgets {
            let labels = ["provider": b.provider]
            gauge("reelfarm_budget_calls_in_window", labels).record(b.inWindow)
            if let limit = b.limit { gauge("reelfarm_budget_limit", labels).record(limit) }
            gauge("reelfarm_budget_waiting", labels).record(b.waiting)
            advance("reelfarm_permits_granted_total", labels, to: b.granted)
            advance("reelfarm_calls_started_total", labels, to: b.started)
            for (kind, n) in b.signals {
                advance("reelfarm_provider_signals_total", ["provider": b.provider, "kind": kind], to: n)
            }
        }
        advance("reelfarm_episodes_finished_total", ["outcome": "succeeded"], to: p.succeeded)
        advance("reelfarm_episodes_finished_total", ["outcome": "failed"], to: p.failed)
        advance("reelfarm_attempts_requeued_total", [:], to: status.counters.attemptsRequeued)
        advance("reelfarm_duplicate_results_total", [:], to: status.counters.duplicateResults)
        advance("reelfarm_workers_lost_total", [:], to: status.counters.workersLost)
        for (provider, micros) in status.spend?.byProviderMicros ?? [:] {
            let key = "reelfarm_spend_total|provider=\(provider)"
            let delta = micros - seen[key, default: 0]
            guard delta > 0 else { continue }
            seen[key] = micros
            factory.makeFloatingPointCounter(label: "reelfarm_spend_total", dimensions: [("provider", provider)])
                .increment(by: Double(delta) / 1_000_000)
        }
        advance("reelfarm_assets_reused_total", [:], to: status.spend?.reusedCalls ?? 0)
        let savedNow = status.spend?.savedMicros ?? 0
        if savedNow > seen["reelfarm_spend_saved_total", default: 0] {
            let delta = savedNow - seen["reelfarm_spend_saved_total", default: 0]
            seen["reelfarm_spend_saved_total"] = savedNow
            factory.makeFloatingPointCounter(label: "reelfarm_spend_saved_total", dimensions: [])
                .increment(by: Double(delta) / 1_000_000)
        }
    }

    private func gauge(_ name: String, _ labels: [String: String] = [:]) -> CoreMetrics.Gauge {
        CoreMetrics.Gauge(
            label: name,
            dimensions: labels.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
            factory: factory
        )
    }

    /// Totals that do not start again with a batch (connections refused live as long as the process).
    private var seenForever: [String: Int] = [:]

    /// ``advance(_:_:to:)`` for totals that do not start again with a batch.
    private func advanceForever(_ name: String, _ labels: [String: String], to total: Int) {
        advance(name, labels, to: total, seen: &seenForever)
    }

    private func advance(_ name: String, _ labels: [String: String], to total: Int) {
        advance(name, labels, to: total, seen: &seen)
    }

    /// Increments the counter by how far `total` moved past what `seen` last recorded for it.
    private func advance(_ name: String, _ labels: [String: String], to total: Int, seen: inout [String: Int]) {
        let dimensions = labels.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let key = name + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        let delta = total - seen[key, default: 0]
        guard delta > 0 else { return }
        seen[key] = total
        CoreMetrics.Counter(label: name, dimensions: dimensions, factory: factory).increment(by: delta)
    }
}

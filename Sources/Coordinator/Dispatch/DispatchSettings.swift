import Shared

/// Timing and retry rules of the dispatcher. Defaults follow the ZeroMQ Guide's Paranoid Pirate:
/// 1 s heartbeats, a peer is dead after 3 silent intervals.
struct DispatchSettings: Sendable, Equatable {
    /// How often each side sends a heartbeat when it has nothing else to send. The default is 1 s.
    var heartbeatInterval: Duration = .seconds(1)
    /// Silent intervals after which a worker is declared dead. The default is 3.
    var liveness: Int = 3
    /// Attempts an episode gets (first run, retries and re-dispatches after a worker death). The default is 3.
    var maxAttempts: Int = 3
    /// The coordinator's software version, sent in WELCOME.
    var softwareVersion: String = ReelfarmVersion.current
    /// How episode files are pulled from workers.
    var artifacts = ArtifactSettings()
    /// Whether a tick that comes more than a heartbeat interval after the previous one means the loop stood
    /// still, and gives every worker a fresh liveness window (see ``Dispatcher/onTick(now:)``). The
    /// coordinator turns it on (its loop ticks every 50 ms); the default, off, takes stepped time as it
    /// comes, for tests that step seconds at a time.
    var freshWindowAfterStall = false
    /// The longest delay a worker waits before greeting again (PROTOCOL §7.3: 32 s). After a stall of the
    /// loop, workers get up to this much more than a liveness window to come back.
    var maxReconnectBackoff: Duration = .seconds(32)

    /// `--max-spend` in micro-dollars: the most each batch's paid calls may cost (``SpendCap``); `nil`: no cap.
    var spendCapMicros: Int?
    /// `--expected-episode-cost` in micro-dollars: what an episode is expected to cost before one finished
    /// (without it, the first attempt of a capped batch runs alone until its cost is known).
    var expectedEpisodeCostMicros: Int?
    /// `serve --max-spend-per-day` in micro-dollars: what the batches of one UTC day may cost together. A
    /// batch's cap is what is left of the day's when it starts (or `--max-spend`, if lower); `nil`: none.
    var dailySpendCapMicros: Int?
    /// The coordinator keeps an asset store (PROTOCOL §18; off with `--no-reuse`): WELCOME says so to
    /// workers of minor 5 and later, and their ASSET_GET and ASSET_PUT go to the store.
    var assetReuse = false

    /// Silence after which a worker is declared dead.
    var deadAfter: Duration { heartbeatInterval * liveness }
}

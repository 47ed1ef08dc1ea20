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

    /// Silence after which a worker is declared dead.
    var deadAfter: Duration { heartbeatInterval * liveness }
}

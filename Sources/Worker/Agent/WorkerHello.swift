import Protocol
import Shared

import struct Foundation.UUID

/// The worker's HELLO (PROTOCOL §4.3), made here and nowhere else.
///
/// ``identity(workerId:host:pid:capacity:instance:)`` makes the fields fixed for the life of the process
/// (``WorkerCommand``, once at start; the result is ``WorkerCore/Settings/hello``).
/// ``hello(_:running:recentCalls:)`` makes each HELLO ``WorkerCore`` sends from them: the attempts the
/// worker still runs or holds (`running`, §6.5) and the calls it started within each budgeted provider's
/// last window (`recent_calls`, §16.6, which the agent reads from the ``LeaseClient``).
enum WorkerHello {
    /// What identifies this worker process: its name, a fresh `instance` per process start, host, pid,
    /// capacity, this software's version and the highest protocol minor it speaks. `running` and
    /// `recent_calls` are empty: ``hello(_:running:recentCalls:)`` fills them at each greeting.
    static func identity(
        workerId: String,
        host: String,
        pid: Int,
        capacity: Capacity,
        instance: String = UUID().uuidString.lowercased()
    ) -> Hello {
        Hello(
            workerId: workerId,
            instance: instance,
            host: host,
            pid: pid,
            capacity: capacity,
            softwareVersion: ReelfarmVersion.current,
            protocolMinor: WireProtocol.minorVersion
        )
    }

    /// The HELLO to send now: `identity`'s fields with `running` (each attempt once, in a stable order) and
    /// `recentCalls`.
    static func hello(_ identity: Hello, running: some Sequence<JobRef>, recentCalls: [String: [Int]]) -> Hello {
        var hello = identity
        hello.running = Set(running).sorted { ($0.episodeId, $0.attempt) < ($1.episodeId, $1.attempt) }
        hello.recentCalls = recentCalls
        return hello
    }
}

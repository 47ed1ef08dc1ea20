import Synchronization

extension ZMQSocketThread {
    /// Feeds one event loop from two child tasks of `group`: every event of this socket thread, wrapped by
    /// `wrap`, and `tick` every `interval` (the loop's clock, which drives heartbeats and liveness).
    /// With a `gate`, a tick is skipped while the previous one waits in the stream unconsumed: a loop
    /// that falls behind then finds one tick when it catches up, not a pile of them ahead of its messages.
    ///
    /// Both tasks end when `group` is cancelled; the socket feed also ends when the thread stops.
    public func feed<Input: Sendable>(
        _ continuation: AsyncStream<Input>.Continuation,
        in group: inout TaskGroup<Void>,
        wrap: @escaping @Sendable (Event) -> Input,
        tick: Input,
        every interval: Duration,
        gate: TickGate? = nil
    ) {
        let events = self.events
        group.addTask {
            for await event in events { continuation.yield(wrap(event)) }
        }
        group.addTask {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if gate?.open() ?? true { continuation.yield(tick) }
            }
        }
    }
}

/// At most one clock tick waiting in an event loop's input stream (see ``ZMQSocketThread/feed(_:in:wrap:tick:every:gate:)``):
/// the producer yields a tick only when ``open()`` says none is waiting; the loop calls ``consumed()``
/// when it takes one.
public final class TickGate: Sendable {
    private let waiting = Atomic<Bool>(false)

    public init() {}

    /// Whether a tick may be yielded now (none is waiting); if so, one is waiting from now on.
    public func open() -> Bool {
        waiting.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }

    /// The loop took the waiting tick.
    public func consumed() {
        waiting.store(false, ordering: .releasing)
    }
}

extension ZMQSocketThread {
    /// Feeds one event loop from two child tasks of `group`: every event of this socket thread, wrapped by
    /// `wrap`, and `tick` every `interval` (the loop's clock, which drives heartbeats and liveness).
    ///
    /// Both tasks end when `group` is cancelled; the socket feed also ends when the thread stops.
    public func feed<Input: Sendable>(
        _ continuation: AsyncStream<Input>.Continuation,
        in group: inout TaskGroup<Void>,
        wrap: @escaping @Sendable (Event) -> Input,
        tick: Input,
        every interval: Duration
    ) {
        let events = self.events
        group.addTask {
            for await event in events { continuation.yield(wrap(event)) }
        }
        group.addTask {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                continuation.yield(tick)
            }
        }
    }
}

extension Duration {
    /// The duration as libzmq milliseconds: rounded **up** to a whole millisecond (so 1 µs is 1 ms, never a
    /// surprising 0), negative durations are 0, and the result is clamped to `0...limit`.
    func zmqMilliseconds(limit: Int64) -> Int64 {
        guard self > .zero else {
            return 0
        }
        let (seconds, attoseconds) = components
        let attosecondsPerMillisecond: Int64 = 1_000_000_000_000_000
        // `seconds * 1000` must not overflow before it is clamped.
        guard seconds < limit / 1000 else {
            return limit
        }
        let milliseconds =
            seconds * 1000 + (attoseconds + attosecondsPerMillisecond - 1) / attosecondsPerMillisecond
        return Swift.min(milliseconds, limit)
    }

    /// For the `int` millisecond socket options (`ZMQ_LINGER`, `ZMQ_RECONNECT_IVL`, `ZMQ_HEARTBEAT_IVL`, ...).
    var zmqOptionMilliseconds: Int32 {
        Int32(zmqMilliseconds(limit: Int64(Int32.max)))
    }

    /// For `zmq_poll`'s `long` millisecond timeout. Non-negative; an infinite wait is expressed by the caller
    /// as -1, never by a duration.
    var zmqPollMilliseconds: Int {
        Int(zmqMilliseconds(limit: Int64(Int.max)))
    }
}

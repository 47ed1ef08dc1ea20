import Shared
import Synchronization
import Testing

/// A safety net ran out. Never a measurement: tests wait for events, and only fail here if they never come.
struct ZMQTestTimedOut: Error, CustomStringConvertible {
    let what: String
    let limit: Duration

    var description: String { "timed out after \(limit) waiting for \(what)" }
}

/// The event stream ended while a test still expected events.
struct ZMQTestStreamEnded: Error, CustomStringConvertible {
    let what: String

    var description: String { "events finished while waiting for \(what)" }
}

/// A setup failure the tests provoke on purpose.
struct ZMQTestSetupFailure: Error, Equatable {}

/// The generous limit every wait in these tests gets.
let zmqTestLimit = Duration.seconds(10)

/// Runs `body`, failing with ``ZMQTestTimedOut`` if it has not finished within `limit`.
func withinLimit<T: Sendable>(
    _ what: String,
    limit: Duration = zmqTestLimit,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask {
            try await body()
        }
        group.addTask {
            try await Task.sleep(for: limit)
            throw ZMQTestTimedOut(what: what, limit: limit)
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else {
            throw ZMQTestTimedOut(what: what, limit: limit)
        }
        return first
    }
}

/// The next event of `thread`, within the limit.
func nextEvent(_ thread: ZMQSocketThread, _ what: String = "an event") async throws -> ZMQSocketThread.Event {
    let events = thread.events
    return try await withinLimit(what) {
        var iterator = events.makeAsyncIterator()
        guard let event = await iterator.next() else {
            throw ZMQTestStreamEnded(what: what)
        }
        return event
    }
}

/// The next event of `thread`, which must be a message.
func nextMessage(_ thread: ZMQSocketThread, _ what: String = "a message") async throws -> [[UInt8]] {
    let event = try await nextEvent(thread, what)
    guard case .message(let frames) = event else {
        Issue.record("expected \(what), got \(event)")
        throw ZMQTestStreamEnded(what: what)
    }
    return frames
}

/// Waits, within the limit, until `thread.events` has finished. Returns the events that came before the end.
@discardableResult
func drainUntilFinished(_ thread: ZMQSocketThread) async throws -> [ZMQSocketThread.Event] {
    let events = thread.events
    return try await withinLimit("the end of the events") {
        var seen: [ZMQSocketThread.Event] = []
        for await event in events {
            seen.append(event)
        }
        return seen
    }
}

/// A ROUTER bound to a free loopback port, on its own thread.
func makeRouterThread(
    _ context: ZMQContext,
    name: String = "test-router",
    configure: @escaping @Sendable (borrowing ZMQSocket) throws -> Void = { _ in }
) async throws -> ZMQSocketThread {
    try await ZMQSocketThread(name: name, context: context) { context in
        let socket = try ZMQSocket(context: context, type: .router)
        try configure(socket)
        try socket.bind("tcp://127.0.0.1:*")
        return socket
    }
}

/// A DEALER connected to `endpoint`, on its own thread.
func makeDealerThread(
    _ context: ZMQContext,
    endpoint: String,
    name: String = "test-dealer",
    configure: @escaping @Sendable (borrowing ZMQSocket) throws -> Void = { _ in }
) async throws -> ZMQSocketThread {
    try await ZMQSocketThread(name: name, context: context) { context in
        let socket = try ZMQSocket(context: context, type: .dealer)
        try configure(socket)
        try socket.connect(endpoint)
        return socket
    }
}

/// Bytes of a string, for readable frames.
func bytes(_ text: String) -> [UInt8] {
    Array(text.utf8)
}

/// A thread-safe counter for `@Sendable` setup closures.
final class ZMQTestCounter: Sendable {
    private let value = Mutex(0)

    /// Adds one and returns the new value.
    func next() -> Int {
        value.withLock { value in
            value += 1
            return value
        }
    }
}

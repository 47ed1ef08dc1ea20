import CZMQ
import Foundation
import Synchronization

/// The bridge between async code and one libzmq socket.
///
/// **Ownership: the dedicated thread owns the socket.** Each `ZMQSocketThread` starts one OS thread that creates the
/// socket (by running `setup`), is the only thread that ever touches it, and closes it. Tasks never see the socket;
/// they talk to the thread:
///
/// - **Inbound:** every received message becomes an ``Event/message(_:)`` on ``events``. The stream's buffer is
///   **unbounded**: the thread never blocks on a slow consumer, so a consumer that falls behind a fast peer costs
///   memory. Bound it with flow control in the protocol (credits, `ZMQ_RCVHWM` only limits libzmq's own queue).
/// - **Outbound:** ``send(_:)`` appends to a `Mutex`-protected queue and wakes the thread through an eventfd that is
///   polled together with the socket, so it never blocks the caller. The thread sends everything queued with
///   `ZMQ_DONTWAIT`; a failure becomes an ``Event/sendFailed(frames:error:)`` event.
///
/// The thread waits in `zmq_poll` on the socket and the eventfd, with a 250 ms timeout as a safety net only
/// (wake-ups come from the eventfd). Per wake-up it sends everything queued, then receives what is waiting (up to
/// 1,024 messages, so a flood of input cannot starve the sends; the rest is taken on the next, immediate, poll).
///
/// Waiting for the thread (start, ``renewSocket()``, ``close()``) uses continuations, so no cooperative-pool thread
/// is ever blocked. The thread stops on ``close()``, when the object is released, or by itself when the context is
/// shut down (`ETERM`) or libzmq reports an error it cannot go on from (see ``stopError``). In every case it closes
/// the socket and finishes ``events``.
public final class ZMQSocketThread: Sendable {
    /// What the thread reports.
    public enum Event: Sendable {
        /// A whole message. For a ROUTER, `frames[0]` is the sender's routing id.
        case message([[UInt8]])
        /// A queued message could not be sent, e.g. ``ZMQError/Code/hostUnreachable`` (ROUTER with
        /// `ZMQ_ROUTER_MANDATORY`, unknown peer) or ``ZMQError/Code/wouldBlock`` (high-water mark reached).
        case sendFailed(frames: [[UInt8]], error: ZMQError)
    }

    /// Inbound messages and send failures, in the order the thread saw them. Finishes when the thread stops.
    /// Unbounded buffer (see the type's documentation). Iterate it from one task.
    public let events: AsyncStream<Event>
    private let core: Core

    /// Starts the thread and runs `setup` on it: `setup` creates, configures and binds or connects the socket and
    /// returns it (it is also run again by ``renewSocket()``).
    ///
    /// Returns once `setup` has run. If it throws, the error is rethrown here and the thread is gone.
    /// - Parameter name: the thread's name, for debuggers and `top -H` (Linux shows its first 15 bytes).
    public init(
        name: String,
        context: ZMQContext,
        setup: @escaping @Sendable (ZMQContext) throws -> ZMQSocket
    ) async throws {
        let (events, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .unbounded)
        let core: Core
        do {
            core = try Core(context: context, setup: setup, continuation: continuation)
        } catch {
            continuation.finish()
            throw error
        }
        try await withCheckedThrowingContinuation { (started: CheckedContinuation<Void, any Error>) in
            let thread = Thread { core.run(started: started) }
            thread.name = name
            thread.start()
        }
        self.events = events
        self.core = core
    }

    deinit {
        // Released without close(): let the thread close the socket and end. Never blocks.
        core.requestStop()
    }

    /// `ZMQ_LAST_ENDPOINT` of the socket after the last `setup` (for a bind to `tcp://host:*`, the real port);
    /// `nil` if it has none, if the last setup failed, or once the thread has stopped.
    public var lastEndpoint: String? {
        core.state.withLock { $0.lastEndpoint }
    }

    /// Why the thread stopped by itself: ``ZMQError/Code/terminated`` after the context was shut down, or an
    /// unexpected libzmq error. `nil` while it runs, and if ``close()`` (or releasing the object) stopped it.
    public var stopError: ZMQError? {
        core.state.withLock { $0.stopError }
    }

    /// Queues a message for sending and wakes the thread. Never blocks.
    ///
    /// The thread sends it with `ZMQ_DONTWAIT`; if that fails, an ``Event/sendFailed(frames:error:)`` follows on
    /// ``events``. Messages sent after ``close()`` (or after the thread stopped) are dropped.
    public func send(_ frames: [[UInt8]]) {
        core.enqueue(frames)
    }

    /// Closes the current socket and runs `setup` again on the owning thread: a new socket, hence a new connection
    /// and (for a DEALER with an automatic id) a new routing id, as in the Paranoid Pirate reconnect.
    ///
    /// Messages still queued for sending are dropped, without ``Event/sendFailed(frames:error:)`` events. Returns
    /// once the new socket is set up. If `setup` throws, the error is rethrown and the thread carries on without a
    /// socket: sends fail with ``Event/sendFailed(frames:error:)`` until a later `renewSocket()` succeeds. After
    /// ``close()`` this throws ``ZMQError/Code/terminated``.
    public func renewSocket() async throws {
        try await withCheckedThrowingContinuation { (renewed: CheckedContinuation<Void, any Error>) in
            core.requestRenew(renewed)
        }
    }

    /// Stops the thread: closes the socket (unsent messages linger for its `ZMQ_LINGER`), finishes ``events`` and
    /// returns once the thread is done with both. Idempotent, and safe to call from several tasks at once.
    public func close() async {
        await withCheckedContinuation { (closed: CheckedContinuation<Void, Never>) in
            core.requestClose(closed)
        }
    }
}

extension ZMQSocketThread {
    /// The state shared by the owning thread and everyone else. The socket itself is not here: it is a local of
    /// ``run(started:)`` on the owning thread.
    final class Core: Sendable {
        struct State {
            var stopped = false
            var stopRequested = false
            var outbound: [[[UInt8]]] = []
            var renewWaiters: [CheckedContinuation<Void, any Error>] = []
            var closeWaiters: [CheckedContinuation<Void, Never>] = []
            var lastEndpoint: String?
            var stopError: ZMQError?
        }

        /// What the thread found to do after a wake-up.
        private enum Work {
            case stop
            case renew([CheckedContinuation<Void, any Error>])
            case send([[[UInt8]]])
        }

        /// The longest `zmq_poll` wait. Only a safety net: the eventfd wakes the thread for everything it must do.
        static let pollTimeout = Duration.milliseconds(250)
        /// The most messages received per wake-up before the thread looks at its send queue again.
        static let receiveBatch = 1024

        let state = Mutex(State())
        let wakeup: ZMQWakeup
        let context: ZMQContext
        let setup: @Sendable (ZMQContext) throws -> ZMQSocket
        let continuation: AsyncStream<Event>.Continuation

        init(
            context: ZMQContext,
            setup: @escaping @Sendable (ZMQContext) throws -> ZMQSocket,
            continuation: AsyncStream<Event>.Continuation
        ) throws(ZMQError) {
            self.wakeup = try ZMQWakeup()
            self.context = context
            self.setup = setup
            self.continuation = continuation
        }

        // MARK: Called from any thread

        func enqueue(_ frames: [[UInt8]]) {
            let mustWake = state.withLock { state in
                guard !state.stopped, !state.stopRequested else {
                    return false
                }
                state.outbound.append(frames)
                // The thread drains the eventfd before it takes the queue, so a non-empty queue has a wake-up coming.
                return state.outbound.count == 1
            }
            if mustWake {
                wakeup.signal()
            }
        }

        func requestRenew(_ renewed: CheckedContinuation<Void, any Error>) {
            let accepted = state.withLock { state in
                guard !state.stopped, !state.stopRequested else {
                    return false
                }
                state.renewWaiters.append(renewed)
                return true
            }
            if accepted {
                wakeup.signal()
            } else {
                renewed.resume(throwing: ZMQError.threadStopped("renewSocket"))
            }
        }

        func requestClose(_ closed: CheckedContinuation<Void, Never>) {
            let alreadyStopped = state.withLock { state in
                if state.stopped {
                    return true
                }
                state.stopRequested = true
                state.closeWaiters.append(closed)
                return false
            }
            if alreadyStopped {
                closed.resume()
            } else {
                wakeup.signal()
            }
        }

        func requestStop() {
            let mustWake = state.withLock { state in
                guard !state.stopped, !state.stopRequested else {
                    return false
                }
                state.stopRequested = true
                return true
            }
            if mustWake {
                wakeup.signal()
            }
        }

        // MARK: The owning thread

        /// The whole life of the owning thread.
        func run(started: CheckedContinuation<Void, any Error>) {
            var socket: ZMQSocket?
            do {
                socket = try makeSocket()
            } catch {
                finish(stopError: nil)
                started.resume(throwing: error)
                return
            }
            started.resume()
            let stopError = serve(&socket)
            socket.take()?.close()
            finish(stopError: stopError)
        }

        /// Runs `setup` and records the new socket's endpoint.
        private func makeSocket() throws -> ZMQSocket {
            let socket = try setup(context)
            let endpoint = (try? socket.lastEndpoint()).flatMap { $0.isEmpty ? nil : $0 }
            state.withLock { $0.lastEndpoint = endpoint }
            return socket
        }

        /// The poll loop. Returns when asked to stop (`nil`) or on an error it cannot go on from.
        private func serve(_ socket: inout ZMQSocket?) -> ZMQError? {
            var pollSet = makePollSet(for: socket)
            while true {
                do {
                    try pollSet.poll(timeout: Self.pollTimeout)
                } catch {
                    return error
                }
                wakeup.drain()

                switch takeWork() {
                case .stop:
                    return nil
                case .renew(let waiters):
                    // The poll set refers to the old socket: drop it before that socket is closed.
                    pollSet.removeAll()
                    socket.take()?.close()
                    let result: Result<Void, any Error>
                    do {
                        socket = try makeSocket()
                        result = .success(())
                    } catch {
                        state.withLock { $0.lastEndpoint = nil }
                        result = .failure(error)
                    }
                    pollSet = makePollSet(for: socket)
                    for waiter in waiters {
                        waiter.resume(with: result)
                    }
                    // Without a socket nothing would report ETERM: after a shutdown, stop here.
                    if socket == nil, context.isShutdown {
                        return ZMQError.threadStopped("zmq_socket")
                    }
                case .send(let outbound):
                    switch socket {
                    case .some(let live):
                        if let error = sendAll(outbound, on: live) ?? receiveAll(from: live) {
                            return error
                        }
                    case .none:
                        for frames in outbound {
                            continuation.yield(.sendFailed(frames: frames, error: .noSocket("zmq_msg_send")))
                        }
                    }
                }
            }
        }

        private func makePollSet(for socket: borrowing ZMQSocket?) -> ZMQPollSet {
            var pollSet = ZMQPollSet()
            pollSet.add(fileDescriptor: wakeup.fileDescriptor, events: .readable)
            switch socket {
            case .some(let live):
                pollSet.add(live, events: .readable)
            case .none:
                break
            }
            return pollSet
        }

        /// Takes what the other threads asked for since the last wake-up. A renew drops the queued sends.
        private func takeWork() -> Work {
            state.withLock { state in
                if state.stopRequested {
                    return .stop
                }
                if !state.renewWaiters.isEmpty {
                    let waiters = state.renewWaiters
                    state.renewWaiters = []
                    state.outbound = []
                    return .renew(waiters)
                }
                let outbound = state.outbound
                state.outbound = []
                return .send(outbound)
            }
        }

        /// Sends every queued message without waiting. Returns an error only if the thread must stop (`ETERM`).
        private func sendAll(_ outbound: [[[UInt8]]], on socket: borrowing ZMQSocket) -> ZMQError? {
            for frames in outbound {
                do {
                    try socket.send(frames, dontWait: true)
                } catch {
                    if error.code == .terminated {
                        return error
                    }
                    continuation.yield(.sendFailed(frames: frames, error: error))
                }
            }
            return nil
        }

        /// Receives what is waiting, up to ``receiveBatch`` messages. Returns an error if the thread must stop.
        private func receiveAll(from socket: borrowing ZMQSocket) -> ZMQError? {
            for _ in 0..<Self.receiveBatch {
                do {
                    guard let frames = try socket.receive(dontWait: true) else {
                        return nil
                    }
                    continuation.yield(.message(frames))
                } catch {
                    return error
                }
            }
            return nil
        }

        /// The end of the thread's work: the socket is closed. Finishes `events`, then wakes every waiter.
        private func finish(stopError: ZMQError?) {
            let (closeWaiters, renewWaiters) = state.withLock { state in
                state.stopped = true
                state.stopError = stopError
                state.lastEndpoint = nil
                state.outbound = []
                let waiters = (state.closeWaiters, state.renewWaiters)
                state.closeWaiters = []
                state.renewWaiters = []
                return waiters
            }
            continuation.finish()
            for waiter in renewWaiters {
                waiter.resume(throwing: ZMQError.threadStopped("renewSocket"))
            }
            for waiter in closeWaiters {
                waiter.resume()
            }
        }
    }
}

import Shared
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The async bridge end to end, over loopback TCP. Serialized: every test binds a port.
@Suite("ZMQSocketThread over TCP", .serialized)
struct ZMQWrapperTests {
    @Test("DEALER → ROUTER → DEALER round trip keeps every frame")
    func roundTrip() async throws {
        let context = try ZMQContext()
        let router = try await makeRouterThread(context)
        let endpoint = try #require(router.lastEndpoint)
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:"))
        let port = try #require(Int(endpoint.dropFirst("tcp://127.0.0.1:".count)))
        #expect(port > 0 && port < 65536)

        let dealer = try await makeDealerThread(context, endpoint: endpoint)
        let request: [[UInt8]] = [bytes("EPW1"), [0x01], [], bytes("{\"seq\":1}"), [0x00, 0xFF, 0x7F]]
        dealer.send(request)

        let received = try await nextMessage(router, "the request at the ROUTER")
        #expect(received.count == request.count + 1)
        let routingId = try #require(received.first)
        #expect(!routingId.isEmpty)
        #expect(Array(received.dropFirst()) == request)

        let reply: [[UInt8]] = [bytes("EPW1"), [0x02], [], bytes("reply")]
        router.send([routingId] + reply)
        let answer = try await nextMessage(dealer, "the reply at the DEALER")
        #expect(answer == reply)

        await dealer.close()
        await router.close()
    }

    @Test("A 1 MiB frame arrives intact")
    func largeFrame() async throws {
        let context = try ZMQContext()
        let router = try await makeRouterThread(context)
        let dealer = try await makeDealerThread(context, endpoint: try #require(router.lastEndpoint))

        var large = [UInt8](repeating: 0, count: 1 << 20)
        var state: UInt32 = 0x1234_5678
        for index in large.indices {
            // xorshift32, so that a shifted or truncated copy cannot match by accident.
            state ^= state << 13
            state ^= state >> 17
            state ^= state << 5
            large[index] = UInt8(truncatingIfNeeded: state)
        }
        dealer.send([bytes("head"), large, bytes("tail")])

        let received = try await nextMessage(router, "the large message")
        #expect(received.count == 4)
        #expect(received.dropFirst().first == bytes("head"))
        #expect(received.dropFirst(2).first?.count == large.count)
        #expect(received.dropFirst(2).first == large)
        #expect(received.last == bytes("tail"))

        router.send([received[0], large])
        let echoed = try await nextMessage(dealer, "the large echo")
        #expect(echoed == [large])

        await dealer.close()
        await router.close()
    }

    @Test("A frame above ZMQ_MAXMSGSIZE is never delivered")
    func maxMessageSize() async throws {
        let context = try ZMQContext()
        let limit = 1024
        let router = try await makeRouterThread(context) { socket in
            try socket.setMaxMessageSize(Int64(limit))
        }
        let dealer = try await makeDealerThread(context, endpoint: try #require(router.lastEndpoint)) { socket in
            try socket.setReconnectInterval(.milliseconds(20), max: .milliseconds(100))
        }

        // Control: a frame at the limit is delivered.
        dealer.send([bytes("fits"), [UInt8](repeating: 1, count: limit - 4)])
        let fits = try await nextMessage(router, "the message within the limit")
        #expect(fits.dropFirst().first == bytes("fits"))

        // Above the limit: the ROUTER drops the connection instead. The DEALER reconnects, so keep sending small
        // markers (those sent into the dropped connection are lost with it) until one arrives.
        dealer.send([bytes("too big"), [UInt8](repeating: 2, count: 4 * limit)])
        let pinger = Task {
            while !Task.isCancelled {
                dealer.send([bytes("marker")])
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        defer { pinger.cancel() }

        var seen: [[[UInt8]]] = []
        while true {
            let message = try await nextMessage(router, "a marker after the reconnect")
            seen.append(message)
            if message.dropFirst().first == bytes("marker") {
                break
            }
        }
        for message in seen {
            #expect(message.dropFirst().first != bytes("too big"))
            #expect(message.dropFirst().allSatisfy { $0.count <= limit })
        }

        pinger.cancel()
        await dealer.close()
        await router.close()
    }

    @Test("ROUTER_MANDATORY: sending to an unknown peer reports .hostUnreachable")
    func routerMandatoryUnknownPeer() async throws {
        let context = try ZMQContext()
        let router = try await makeRouterThread(context) { socket in
            try socket.setRouterMandatory(true)
        }
        let frames: [[UInt8]] = [[0x00, 0xDE, 0xAD, 0xBE, 0xEF], bytes("JOB")]
        router.send(frames)

        let event = try await nextEvent(router, "the send failure")
        guard case .sendFailed(let failedFrames, let error) = event else {
            Issue.record("expected .sendFailed, got \(event)")
            return
        }
        #expect(failedFrames == frames)
        #expect(error.code == .hostUnreachable)
        #expect(error.errno == EHOSTUNREACH)
        #expect(error.function == "zmq_msg_send")

        await router.close()
    }

    @Test("renewSocket() opens a new connection that works")
    func renewSocket() async throws {
        let context = try ZMQContext()
        let router = try await makeRouterThread(context)
        let dealer = try await makeDealerThread(context, endpoint: try #require(router.lastEndpoint))

        dealer.send([bytes("HELLO"), [1]])
        let first = try await nextMessage(router, "the first HELLO")
        #expect(Array(first.dropFirst()) == [bytes("HELLO"), [1]])
        router.send([first[0], bytes("WELCOME"), [1]])
        #expect(try await nextMessage(dealer, "the first WELCOME") == [bytes("WELCOME"), [1]])

        try await dealer.renewSocket()
        #expect(dealer.lastEndpoint != nil)

        dealer.send([bytes("HELLO"), [2]])
        let second = try await nextMessage(router, "the second HELLO")
        #expect(Array(second.dropFirst()) == [bytes("HELLO"), [2]])
        // A new socket is a new connection, with a new automatic routing id.
        #expect(second[0] != first[0])
        router.send([second[0], bytes("WELCOME"), [2]])
        #expect(try await nextMessage(dealer, "the second WELCOME") == [bytes("WELCOME"), [2]])

        await dealer.close()
        await router.close()
    }

    @Test("renewSocket() rethrows setup's error; the thread carries on without a socket until the next renew")
    func renewSocketFailure() async throws {
        let context = try ZMQContext()
        let router = try await makeRouterThread(context)
        let endpoint = try #require(router.lastEndpoint)
        let setups = ZMQTestCounter()
        let dealer = try await ZMQSocketThread(name: "test-flaky-dealer", context: context) { context in
            if setups.next() == 2 {
                throw ZMQTestSetupFailure()
            }
            let socket = try ZMQSocket(context: context, type: .dealer)
            try socket.connect(endpoint)
            return socket
        }

        await #expect(throws: ZMQTestSetupFailure.self) {
            try await dealer.renewSocket()
        }
        #expect(dealer.lastEndpoint == nil)

        dealer.send([bytes("lost")])
        let event = try await nextEvent(dealer, "the send failure without a socket")
        guard case .sendFailed(let frames, let error) = event else {
            Issue.record("expected .sendFailed, got \(event)")
            return
        }
        #expect(frames == [bytes("lost")])
        #expect(error.errno == ENOTSOCK)

        try await dealer.renewSocket()
        dealer.send([bytes("back")])
        let message = try await nextMessage(router, "the message after the third setup")
        #expect(Array(message.dropFirst()) == [bytes("back")])

        await dealer.close()
        await router.close()
    }

    @Test("init rethrows setup's error")
    func setupErrorFromInit() async throws {
        let context = try ZMQContext()
        let error = await #expect(throws: ZMQError.self) {
            _ = try await ZMQSocketThread(name: "test-bad-bind", context: context) { context in
                let socket = try ZMQSocket(context: context, type: .router)
                try socket.bind("nonsense://nowhere")
                return socket
            }
        }
        #expect(error?.function == "zmq_bind")
        #expect(error?.code == .invalidEndpoint)
    }

    @Test("A socket that neither bound nor connected has no last endpoint")
    func noLastEndpoint() async throws {
        let context = try ZMQContext()
        let thread = try await ZMQSocketThread(name: "test-idle", context: context) { context in
            try ZMQSocket(context: context, type: .dealer)
        }
        #expect(thread.lastEndpoint == nil)
        await thread.close()
    }

    @Test("close() is idempotent, finishes events, and later calls are harmless")
    func closeIsIdempotent() async throws {
        let context = try ZMQContext()
        let router = try await makeRouterThread(context)
        #expect(router.lastEndpoint != nil)

        async let first: Void = router.close()
        async let second: Void = router.close()
        _ = await (first, second)
        await router.close()

        let remaining = try await drainUntilFinished(router)
        #expect(remaining.isEmpty)
        #expect(router.lastEndpoint == nil)
        #expect(router.stopError == nil)

        router.send([bytes("into the void")])
        let error = await #expect(throws: ZMQError.self) {
            try await router.renewSocket()
        }
        #expect(error?.code == .terminated)
    }

    @Test("Shutting the context down stops the thread and finishes events")
    func contextShutdown() async throws {
        let context = try ZMQContext()
        let router = try await makeRouterThread(context)
        context.shutdown()
        context.shutdown()
        #expect(context.isShutdown)

        try await drainUntilFinished(router)
        #expect(router.stopError?.code == .terminated)
        await router.close()
    }

    @Test("renewSocket() after a context shutdown throws .terminated and the thread stops")
    func renewAfterShutdown() async throws {
        let context = try ZMQContext()
        let dealer = try await makeDealerThread(context, endpoint: "tcp://127.0.0.1:9")
        context.shutdown()
        // Whether the thread saw ETERM first or the new setup failed with it, the answer is the same.
        let error = await #expect(throws: ZMQError.self) {
            try await dealer.renewSocket()
        }
        #expect(error?.code == .terminated)
        try await drainUntilFinished(dealer)
        #expect(dealer.stopError?.code == .terminated)
    }

    @Test("Many concurrent senders: every message arrives")
    func concurrentSenders() async throws {
        let context = try ZMQContext()
        let router = try await makeRouterThread(context) { socket in
            try socket.setReceiveHighWaterMark(0)
        }
        let dealer = try await makeDealerThread(context, endpoint: try #require(router.lastEndpoint)) { socket in
            try socket.setSendHighWaterMark(0)
        }

        let senders = 8
        let perSender = 250
        await withTaskGroup(of: Void.self) { group in
            for sender in 0..<senders {
                group.addTask {
                    for sequence in 0..<perSender {
                        dealer.send([[UInt8(sender)], [UInt8(sequence >> 8), UInt8(sequence & 0xFF)]])
                        if sequence % 16 == 0 {
                            await Task.yield()
                        }
                    }
                }
            }
        }

        let events = router.events
        let perSenderSeen = try await withinLimit("all \(senders * perSender) messages") {
            var seen = [[Int]](repeating: [], count: senders)
            var total = 0
            for await event in events {
                guard case .message(let frames) = event, frames.count == 3 else {
                    Issue.record("unexpected event \(event)")
                    continue
                }
                seen[Int(frames[1][0])].append(Int(frames[2][0]) << 8 | Int(frames[2][1]))
                total += 1
                if total == senders * perSender {
                    break
                }
            }
            return seen
        }
        for sequences in perSenderSeen {
            // One DEALER connection keeps each sender's order.
            #expect(sequences == Array(0..<perSender))
        }

        await dealer.close()
        await router.close()
    }
}

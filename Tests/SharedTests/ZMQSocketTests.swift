import CZMQ
import Testing

@testable import Shared

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The synchronous layer: errors, sockets over inproc, poll, conversions. Serialized: some tests bind TCP ports.
@Suite("ZMQ sockets, poll and errors", .serialized)
struct ZMQSocketTests {
    // MARK: Errors

    @Test("An error's description names the function and errno")
    func errorDescription() {
        let error = ZMQError(code: .other, errno: EADDRINUSE, function: "zmq_bind")
        #expect(error.description == "zmq_bind failed: Address already in use (errno \(EADDRINUSE))")
        let withDetail = ZMQError(code: .other, errno: EINVAL, function: "zmq_setsockopt", detail: "ZMQ_LINGER")
        #expect(withDetail.description == "zmq_setsockopt failed: Invalid argument (errno \(EINVAL)) [ZMQ_LINGER]")
    }

    @Test("Binding a bad endpoint throws an error naming zmq_bind and errno")
    func badEndpoint() throws {
        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, type: .router)
        for endpoint in ["nonsense://nowhere", "tcp://", "tcp://127.0.0.1:notaport"] {
            let error = #expect(throws: ZMQError.self) {
                try socket.bind(endpoint)
            }
            #expect(error?.code == .invalidEndpoint, "\(endpoint): \(String(describing: error))")
            #expect(error?.function == "zmq_bind")
            #expect(error?.description.hasPrefix("zmq_bind failed: ") == true)
            #expect(error?.description.contains("(errno \(error?.errno ?? 0))") == true)
            #expect(error?.detail == endpoint)
        }
        socket.close()
    }

    @Test("Binding a port in use throws EADDRINUSE")
    func addressInUse() throws {
        let context = try ZMQContext()
        let first = try ZMQSocket(context: context, type: .router)
        let endpoint = try first.bind("tcp://127.0.0.1:*")
        let second = try ZMQSocket(context: context, type: .router)
        let error = #expect(throws: ZMQError.self) {
            try second.bind(endpoint)
        }
        #expect(error?.code == .other)
        #expect(error?.errno == EADDRINUSE)
        #expect(error?.description.hasPrefix("zmq_bind failed: Address already in use (errno \(EADDRINUSE))") == true)
        second.close()
        first.close()
    }

    @Test("Connecting to an unknown transport is an invalid endpoint")
    func connectInvalid() throws {
        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, type: .dealer)
        let error = #expect(throws: ZMQError.self) {
            try socket.connect("carrier-pigeon://coop")
        }
        #expect(error?.code == .invalidEndpoint)
        #expect(error?.function == "zmq_connect")
    }

    // MARK: Sockets

    @Test("PAIR over inproc: multipart with empty frames, nil when nothing waits")
    func pairRoundTrip() throws {
        let context = try ZMQContext()
        let server = try ZMQSocket(context: context, type: .pair)
        #expect(try server.bind("inproc://pair-round-trip") == "inproc://pair-round-trip")
        let client = try ZMQSocket(context: context, type: .pair)
        try client.connect("inproc://pair-round-trip")

        #expect(try server.receive() == nil)
        let message: [[UInt8]] = [[], bytes("a"), [], [0, 1, 2, 3]]
        try client.send(message)
        // inproc delivers on send, so the message is already waiting.
        #expect(try server.receive() == message)
        #expect(try server.receive() == nil)

        try server.send([[]])
        #expect(try client.receive(dontWait: false) == [[]])

        client.close()
        server.close()
    }

    @Test("Sending no frames is an error, not a crash")
    func sendNothing() throws {
        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, type: .pair)
        let error = #expect(throws: ZMQError.self) {
            try socket.send([])
        }
        #expect(error?.errno == EINVAL)
    }

    @Test("A fixed routing id is what the ROUTER sees")
    func routingId() throws {
        let context = try ZMQContext()
        let router = try ZMQSocket(context: context, type: .router)
        try router.bind("inproc://routing-id")
        let dealer = try ZMQSocket(context: context, type: .dealer)
        try dealer.setRoutingId(bytes("worker-7"))
        try dealer.connect("inproc://routing-id")

        try dealer.send([bytes("hi")])
        #expect(try router.receive(dontWait: false) == [bytes("worker-7"), bytes("hi")])

        let error = #expect(throws: ZMQError.self) {
            try dealer.setRoutingId([])
        }
        #expect(error?.function == "zmq_setsockopt")
        #expect(error?.detail == "ZMQ_ROUTING_ID")
    }

    @Test("Every typed option is accepted")
    func options() throws {
        let context = try ZMQContext()
        let router = try ZMQSocket(context: context, type: .router, linger: .seconds(2))
        try router.setLinger(.milliseconds(500))
        try router.setSendHighWaterMark(10_000)
        try router.setReceiveHighWaterMark(10_000)
        try router.setMaxMessageSize(16 << 20)
        try router.setRouterMandatory(true)
        try router.setRouterHandover(true)
        try router.setHandshakeInterval(.seconds(5))
        try router.setHeartbeat(interval: .seconds(1), timeout: .seconds(3), ttl: .seconds(3))
        let dealer = try ZMQSocket(context: context, type: .dealer)
        try dealer.setImmediate(true)
        try dealer.setReconnectInterval(.milliseconds(250), max: .seconds(30))
        try dealer.setRoutingId([1, 2, 3])

        let error = #expect(throws: ZMQError.self) {
            // Above libzmq's limit of 6553599 ms.
            try router.setHeartbeat(interval: .seconds(1), timeout: .seconds(3), ttl: .seconds(7000))
        }
        #expect(error?.detail == "ZMQ_HEARTBEAT_TTL")
    }

    @Test("After the context shuts down, socket calls report .terminated")
    func terminated() throws {
        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, type: .pull)
        context.shutdown()
        let error = #expect(throws: ZMQError.self) {
            _ = try socket.receive(dontWait: false)
        }
        #expect(error?.code == .terminated)
        #expect(error?.function == "zmq_msg_recv")
        socket.close()

        let creation = #expect(throws: ZMQError.self) {
            _ = try ZMQSocket(context: context, type: .push)
        }
        #expect(creation?.code == .terminated)
    }

    // MARK: Poll and wake-up

    @Test("zmq_poll sees an eventfd signal and a waiting message")
    func pollWakeupAndSocket() throws {
        let context = try ZMQContext()
        let wakeup = try ZMQWakeup()
        let server = try ZMQSocket(context: context, type: .pair)
        try server.bind("inproc://poll")
        let client = try ZMQSocket(context: context, type: .pair)
        try client.connect("inproc://poll")

        var pollSet = ZMQPollSet()
        let wakeIndex = pollSet.add(fileDescriptor: wakeup.fileDescriptor)
        let socketIndex = pollSet.add(server)
        #expect(pollSet.count == 2)

        #expect(try pollSet.poll(timeout: .zero) == 0)

        wakeup.signal()
        wakeup.signal()
        #expect(try pollSet.poll(timeout: zmqTestLimit) == 1)
        #expect(pollSet.returnedEvents(at: wakeIndex).contains(.readable))
        #expect(pollSet.returnedEvents(at: socketIndex).isEmpty)
        wakeup.drain()
        #expect(try pollSet.poll(timeout: .zero) == 0)

        try client.send([bytes("ready")])
        #expect(try pollSet.poll(timeout: zmqTestLimit) == 1)
        #expect(pollSet.returnedEvents(at: socketIndex).contains(.readable))
        #expect(try server.receive() == [bytes("ready")])

        // A short timeout with nothing ready returns 0 ready items (how long it took is not the point).
        #expect(try pollSet.poll(timeout: .milliseconds(5)) == 0)
    }

    // MARK: Durations

    @Test(
        "Durations become libzmq milliseconds, rounded up and clamped",
        arguments: [
            (Duration.zero, Int32(0)),
            (.nanoseconds(1), 1),
            (.microseconds(999), 1),
            (.milliseconds(1), 1),
            (.microseconds(1500), 2),
            (.milliseconds(250), 250),
            (.seconds(30), 30_000),
            (.milliseconds(-5), 0),
            (.seconds(Int64.max / 2), Int32.max),
        ]
    )
    func optionMilliseconds(duration: Duration, expected: Int32) {
        #expect(duration.zmqOptionMilliseconds == expected)
    }

    @Test("Poll timeouts are long milliseconds")
    func pollMilliseconds() {
        #expect(Duration.milliseconds(250).zmqPollMilliseconds == 250)
        #expect(Duration.seconds(3_000_000).zmqPollMilliseconds == 3_000_000_000)
        #expect(Duration.microseconds(1).zmqPollMilliseconds == 1)
        #expect(Duration.seconds(-1).zmqPollMilliseconds == 0)
    }
}

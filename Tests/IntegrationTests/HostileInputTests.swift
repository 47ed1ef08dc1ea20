import Foundation
import Protocol
import Shared
import Testing

/// A peer that sends garbage to a running coordinator: every bad message is counted and dropped, the
/// peers that can be told why are told, and the batch still finishes with a real worker.
@Suite(.serialized) struct HostileInputTests {
    @Test func garbageIsCountedRefusedAndTheBatchStillFinishes() async throws {
        let dir = try Harness.tempDir("hostile")
        let out = dir.appendingPathComponent("output")
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--episodes", "3", "--bind", "tcp://127.0.0.1:*", "--output", out.path, "--batch-id", "hostile",
            ],
            environment: Harness.fastSimulation,
            cwd: dir
        )
        guard let endpoint = await coordinator.boundEndpoint() else { return }

        let context = try ZMQContext()
        let attacker = try await ZMQSocketThread(name: "attacker", context: context) { ctx in
            let socket = try ZMQSocket(context: ctx, type: .dealer, linger: .zero)
            // Room for the whole flood: at the default high-water mark (1000) libzmq would refuse part of it.
            try socket.setSendHighWaterMark(100_000)
            try socket.connect(endpoint)
            return socket
        }
        let proto = WireProtocol.identifier
        let badHello =
            #"{"worker_id":"w","instance":"i","host":"h","pid":1,"capacity":{"episodes":0,"api_calls":1},"software_version":"1"}"#
        let bad: [[[UInt8]]] = [
            [Array("hello?".utf8)],  // not us
            [Array("reelfarm/2".utf8), [0x01], [], Array("{}".utf8)],  // another major version
            [proto, [0x01], [], Array(badHello.utf8)],  // a HELLO with capacity 0
            [proto, [0x7F], [], Array("{}".utf8)],  // unknown kind
            [proto, [0x05], Array("s".utf8), Array("not json".utf8)],  // malformed body
            Codec.encode(Envelope(session: "nosuchsession", .heartbeat(Heartbeat()))),  // unknown session
            [proto, [0x06], [0x00, 0x01], Array("{}".utf8)],  // bad session bytes
        ]
        // A flood of random junk first, then the messages that get answers: one connection keeps its order,
        // so once the answers are in, the coordinator has been through the whole flood.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let frames = (0..<Int.random(in: 1...6, using: &rng)).map { _ in
                (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            }
            attacker.send(frames)
        }
        for message in bad { attacker.send(message) }

        // The attacker is told why twice (version, HELLO) and once about its unknown session.
        var replies: [Disconnect] = []
        // Safety net: closing the thread ends its event stream, so the loop below cannot hang.
        let watchdog = Task {
            try await Task.sleep(for: .seconds(20))
            await attacker.close()
        }
        var refusedSends = 0
        for await event in attacker.events {
            if case .message(let frames) = event, case .disconnect(let d) = (try? Codec.decode(frames))?.message {
                replies.append(d)
            }
            if case .sendFailed = event { refusedSends += 1 }
            if replies.count >= 3 { break }
        }
        watchdog.cancel()
        #expect(refusedSends == 0)
        #expect(replies.filter { $0.reason == .protocolError }.count == 2)
        #expect(replies.contains { $0.reason == .protocolError && $0.detail.contains("capacity.episodes") })
        #expect(replies.contains { $0.reason == .unknownSession })
        await attacker.close()
        context.shutdown()

        // A real worker still gets the whole batch done.
        let worker = try Child(
            name: "worker",
            executable: Harness.workerPath,
            arguments: ["--connect", endpoint, "--worker-id", "honest"],
            environment: Harness.fastSimulation,
            cwd: dir
        )
        #expect(await coordinator.wait(timeout: .seconds(60)) == 0, "log:\n\(coordinator.log.suffix(3000))")
        worker.signal(SIGTERM)
        await worker.wait(timeout: .seconds(30))

        let data = try Data(contentsOf: out.appendingPathComponent("hostile/summary.json"))
        let json = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let counters = json?["counters"] as? [String: Any]
        let decodeErrors = counters?["decode_errors"] as? [String: Int] ?? [:]
        #expect(decodeErrors["not_reelfarm", default: 0] >= 1)
        #expect(decodeErrors["unsupported_version"] == 1)
        #expect(decodeErrors["invalid_field", default: 0] >= 1)
        #expect(decodeErrors["unknown_kind", default: 0] >= 1)
        #expect(decodeErrors["malformed_body", default: 0] >= 1)
        #expect(decodeErrors["bad_session", default: 0] >= 1)
        #expect(decodeErrors.values.reduce(0, +) >= 2000)
        #expect(counters?["unknown_session"] as? Int ?? 0 >= 1)
        let totals = json?["totals"] as? [String: Any]
        #expect(totals?["succeeded"] as? Int == 3)
        // Logging was rate-limited: far fewer warnings than rejections.
        #expect(coordinator.log.components(separatedBy: "message rejected").count < 200)
    }
}

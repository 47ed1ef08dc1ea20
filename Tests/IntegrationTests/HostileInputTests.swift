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

    /// Resident memory of a process, from /proc (kB).
    static func rssKB(_ pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        return nil
    }

    @Test(
        "a hostile peer floods a running batch: it completes, every reject is counted in /metrics, memory stays bounded"
    )
    func hostilePeerDuringABatch() async throws {
        let dir = try Harness.tempDir("hostile-batch")
        let out = dir.appendingPathComponent("output")
        var env = Harness.fastSimulation
        env["REELFARM_SIM_LATENCY"] = "llm=300,tts=200,image=300,render=200"
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "serve", "--workers", "2", "--bind", "tcp://127.0.0.1:*", "--output", out.path, "--http",
                "127.0.0.1:0", "--budget", "image=20/s",
            ],
            environment: env,
            cwd: dir
        )
        defer { coordinator.signal(SIGKILL) }
        guard let endpoint = await coordinator.boundEndpoint(), let base = await coordinator.httpBase() else {
            return
        }

        let context = try ZMQContext()
        func attacker() async throws -> ZMQSocketThread {
            try await ZMQSocketThread(name: "attacker", context: context) { ctx in
                let socket = try ZMQSocket(context: ctx, type: .dealer, linger: .zero)
                try socket.setSendHighWaterMark(100_000)
                try socket.connect(endpoint)
                return socket
            }
        }
        let noise = try await attacker()
        // A registered peer: its session is valid, so its wrong-but-well-formed messages reach the dispatcher.
        // It registers while no batch runs and says at once that it is draining, so it is never given a job.
        let impostor = try await attacker()
        impostor.send(
            Codec.encode(
                Envelope(
                    .hello(
                        Hello(
                            workerId: "impostor",
                            instance: "impostor-1",
                            host: "evil",
                            pid: 1,
                            capacity: Capacity(episodes: 1, apiCalls: 1),
                            softwareVersion: "0",
                            protocolMinor: WireProtocol.minorVersion
                        )
                    )
                )
            )
        )
        var session = ""
        for await event in impostor.events {
            if case .message(let frames) = event, case .welcome(let w) = (try? Codec.decode(frames))?.message {
                session = w.session
                break
            }
        }
        #expect(!session.isEmpty)
        impostor.send(Codec.encode(Envelope(session: session, .heartbeat(Heartbeat(draining: true)))))
        // Keep the impostor's session alive (a silent peer is declared dead after 3 s) until the flood is over.
        let keepAlive = Task {
            while !Task.isCancelled {
                impostor.send(Codec.encode(Envelope(session: session, .heartbeat(Heartbeat(draining: true)))))
                try? await Task.sleep(for: .milliseconds(300))
            }
        }
        defer { keepAlive.cancel() }
        #expect(
            await coordinator.waitForLog(within: .seconds(10), "the impostor's draining") {
                $0.contains("worker draining") && $0.contains("worker=impostor")
            }
        )
        _ = try await EpisodeFileTests.http("POST", "\(base)api/batches?episodes=48&id=flood")
        #expect(
            await coordinator.waitForLog(within: .seconds(30), "the first episode") { $0.contains("completed (1/48)") }
        )
        let before = Self.rssKB(coordinator.pid) ?? 0

        var rng = SystemRandomNumberGenerator()
        let valid = Codec.encode(Envelope(session: session, .heartbeat(Heartbeat())))
        var sent = 0
        for round in 0..<5 {
            for _ in 0..<1000 {
                // Random frames.
                noise.send(
                    (0..<Int.random(in: 1...6, using: &rng)).map { _ in
                        (0..<Int.random(in: 0...96, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                    }
                )
                // A valid message cut short, or with its frames shuffled.
                var cut = valid
                let f = Int.random(in: 0..<cut.count, using: &rng)
                cut[f] = Array(cut[f].prefix(Int.random(in: 0...max(0, cut[f].count - 1), using: &rng)))
                noise.send(Bool.random(using: &rng) ? cut : valid.shuffled(using: &rng))
                sent += 2
            }
            // Well-formed but wrong, from the registered impostor: results, progress, lease and artifact
            // messages for jobs it was never given.
            for i in 0..<200 {
                let ref = (episode: "episode_\(i % 48 + 1)", attempt: Int.random(in: 1...3, using: &rng))
                let wrong: [Message] = [
                    .result(
                        EpisodeResult(episodeId: ref.episode, attempt: ref.attempt, status: .succeeded, durationMs: 1)
                    ),
                    .progress(Progress(episodeId: ref.episode, attempt: ref.attempt, stage: .render, state: .finished)),
                    .leaseStarted(LeaseStarted(leaseId: "nope-\(i)", calls: 1)),
                    .artifactChunk(
                        ArtifactChunk(episodeId: ref.episode, attempt: ref.attempt, name: "x", offset: 0, data: [1])
                    ),
                    .job(Job(batchId: "flood", episodeId: ref.episode, attempt: 1, spec: EpisodeSpec(topic: "t"))),
                ]
                for message in wrong { impostor.send(Codec.encode(Envelope(session: session, message))) }
                sent += wrong.count
            }
            // An oversized message: libzmq drops the connection (ZMQ_MAXMSGSIZE); the DEALER reconnects.
            if round == 2 { noise.send([Array(repeating: 0x41, count: WireProtocol.maxMessageBytes + 1)]) }
            try await Task.sleep(for: .milliseconds(200))
        }
        print("hostile peer: \(sent) messages sent during the batch")
        var state = ""
        for _ in 0..<1200 where state != "completed" {
            state = try await EpisodeFileTests.http("GET", "\(base)api/batches/flood")["state"] as? String ?? ""
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(state == "completed", "log:\n\(coordinator.log.suffix(3000))")
        // Every reject is counted in /metrics: wait until the coordinator has worked through the whole flood
        // (on a loaded machine it may still be at it when the batch ends): 1,000 stale results and 1,000 JOBs
        // from a worker, each counted.
        func count(_ metrics: String, _ reason: String) -> Double {
            StatusHTTPTests.metric(metrics, #"reelfarm_messages_rejected_total{reason="\#(reason)"}"#) ?? 0
        }
        var metrics = ""
        for _ in 0..<600 {
            metrics = try await StatusHTTPTests.text("\(base)metrics")
            if count(metrics, "stale_result") >= 1000 && count(metrics, "out_of_order") >= 1000 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let rejects = metrics.split(separator: "\n").filter { $0.hasPrefix("reelfarm_messages_rejected_total{") }
        let total = rejects.compactMap { Double($0.split(separator: " ").last ?? "") }.reduce(0, +)
        print("hostile peer: \(Int(total)) rejects counted in /metrics: \(rejects.joined(separator: ", "))")
        #expect(count(metrics, "stale_result") == 1000 && count(metrics, "out_of_order") == 1000, "\(rejects)")
        #expect(
            total >= 5000 && count(metrics, "malformed_body") > 0 && count(metrics, "unknown_kind") > 0,
            "\(rejects)"
        )
        let after = Self.rssKB(coordinator.pid) ?? 0
        print("hostile peer: coordinator RSS \(before) kB before the flood, \(after) kB after it")
        #expect(after < before + 200_000, "memory grew from \(before) kB to \(after) kB")
        coordinator.signal(SIGTERM)
        #expect(await coordinator.wait(timeout: .seconds(60)) == 0)
        await noise.close()
        await impostor.close()
        context.shutdown()
        let summary = try Summary.load(out, batch: "flood")
        #expect(summary.totals.succeeded == 48)
        #expect(summary.episodes.allSatisfy { $0.worker != "impostor" }, "a result for a job never given was recorded")
    }
}

import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Protocol
import Synchronization
import Testing

@testable import Coordinator

/// The HTTP control API (`/api/batches`, `/api/scale`, `/api/status` selections) in process, through the
/// coordinator's real router, with a stand-in for the coordinator's loop on the other end of the
/// ``ControlChannel``: what reaches the loop, what the client is answered, and what never gets that far.
@Suite("HTTP control API, in process")
struct ControlAPITests {
    /// A request as the stand-in loop received it.
    enum Seen: Equatable, Sendable {
        case submit(id: String?, topics: [String], ids: [String])
        case scale(Int)
        case status
    }

    /// Answers the channel's requests the way the coordinator's loop would, and records them.
    final class FakeLoop: Sendable {
        let control = ControlChannel()
        let board = StatusBoard()
        private let seenBox = Mutex<[Seen]>([])
        let t0 = ContinuousClock.now

        var seen: [Seen] { seenBox.withLock { $0 } }

        /// Serves requests until the channel is closed.
        func run() async {
            let dispatcher = DispatcherTests().makeDispatcher(5)
            let base = dispatcher.fleetStatus(state: .running, now: t0, episodes: .none)
            for await request in control.requests {
                switch request {
                case .submit(let id, let episodes, let reply):
                    seenBox.withLock {
                        $0.append(.submit(id: id, topics: episodes.map(\.topic), ids: episodes.compactMap(\.id)))
                    }
                    if id == "taken" {
                        reply(.failure(.conflict("batch id taken is already taken")))
                    } else {
                        reply(.success(BatchListing(id: id ?? "batch-1", state: .queued, episodes: episodes.count)))
                    }
                case .scale(let workers, let reply):
                    seenBox.withLock { $0.append(.scale(workers)) }
                    if (0...256).contains(workers) {
                        reply(.success(.init(target: workers, active: workers, retiring: 0)))
                    } else {
                        reply(.failure(.badRequest("workers must be from 0 to 256, got \(workers)")))
                    }
                case .status(let reply):
                    seenBox.withLock { $0.append(.status) }
                    reply(.success(StatusSource(base: base, dispatcher: dispatcher, now: t0)))
                }
            }
        }
    }

    /// Runs `body` against the coordinator's router (as `StatusServer` builds it) with `loop` answering.
    func withAPI(
        token: String? = nil,
        _ body: @Sendable (any TestClientProtocol, FakeLoop) async throws -> Void
    ) async throws {
        let loop = FakeLoop()
        let server = StatusServer(
            host: "127.0.0.1",
            port: 0,
            board: loop.board,
            metrics: FleetMetrics(),
            control: loop.control,
            token: token,
            logger: Logger(label: "test")
        )
        let app = Application(router: server.router())
        async let serving: Void = loop.run()
        do {
            try await app.test(.router) { client in try await body(client, loop) }
        } catch {
            loop.control.close()
            await serving
            throw error
        }
        loop.control.close()
        await serving
    }

    /// The response body as a JSON object.
    static func object(_ response: TestResponse) throws -> [String: Any] {
        let value = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))
        return try #require(value as? [String: Any], "\(String(buffer: response.body))")
    }

    /// The `error` of an error response.
    static func error(_ response: TestResponse) throws -> String {
        try #require(try object(response)["error"] as? String, "\(String(buffer: response.body))")
    }

    static func body(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    @Test("?episodes=N queues N generated topics under the given id: 202 and the loop's listing")
    func submitGenerated() async throws {
        try await withAPI { client, loop in
            let response = try await client.execute(uri: "/api/batches?episodes=3&id=promo", method: .post)
            #expect(response.status == .accepted)
            let listing = try Self.object(response)
            #expect(listing["id"] as? String == "promo" && listing["state"] as? String == "queued")
            #expect(listing["episodes"] as? Int == 3)
            guard case .submit(let id, let topics, let ids) = try #require(loop.seen.first) else {
                Issue.record("not a submission: \(loop.seen)")
                return
            }
            #expect(id == "promo" && topics.count == 3 && Set(topics).count == 3)
            #expect(ids == ["episode_1", "episode_2", "episode_3"])
            #expect(loop.seen.count == 1)
        }
    }

    @Test("a JSON or YAML batch file as the body is parsed and its episodes reach the loop in order")
    func submitFile() async throws {
        try await withAPI { client, loop in
            let json = #"{"episodes": [{"topic": "harbour cranes", "id": "cranes"}, {"topic": "night trains"}]}"#
            var response = try await client.execute(uri: "/api/batches?id=j", method: .post, body: Self.body(json))
            #expect(response.status == .accepted, "\(String(buffer: response.body))")
            let yaml = "- topic: lighthouses\n- topic: tide pools\n  id: pools\n"
            response = try await client.execute(uri: "/api/batches", method: .post, body: Self.body(yaml))
            #expect(response.status == .accepted, "\(String(buffer: response.body))")
            #expect(try Self.object(response)["id"] as? String == "batch-1", "the loop names an unnamed batch")
            #expect(loop.seen.count == 2)
            if case .submit(let id, let topics, let ids) = loop.seen.first {
                #expect(id == "j" && topics == ["harbour cranes", "night trains"])
                #expect(ids.first == "cranes")
            } else {
                Issue.record("\(loop.seen)")
            }
            if case .submit(let id, let topics, let ids) = loop.seen.last {
                #expect(id == nil && topics == ["lighthouses", "tide pools"] && ids.last == "pools")
            } else {
                Issue.record("\(loop.seen)")
            }
        }
    }

    @Test("malformed requests get 400 with the reason, and never reach the loop")
    func submitRefused() async throws {
        try await withAPI { client, loop in
            let cases: [(uri: String, body: String?, reason: String)] = [
                ("/api/batches", nil, "give ?episodes=N or a JSON or YAML batch file"),
                ("/api/batches?episodes=2", "- topic: x\n", "not both"),
                ("/api/batches?episodes=0", nil, "episodes must be from 1 to 100000"),
                ("/api/batches?episodes=100001", nil, "episodes must be from 1 to 100000"),
                ("/api/batches?episodes=many", nil, "got \"many\""),
                ("/api/batches", #"{"episodes": [{"topic": "unclosed"#, "in the request"),
                ("/api/batches", #"{"episodes": []}"#, "in the request has no episodes"),
            ]
            for c in cases {
                let response = try await client.execute(
                    uri: c.uri,
                    method: .post,
                    body: c.body.map { Self.body($0) }
                )
                #expect(response.status == .badRequest, "\(c.uri): \(String(buffer: response.body))")
                let message = try Self.error(response)
                #expect(message.contains(c.reason), "\(c.uri): \(message)")
            }
            #expect(loop.seen.isEmpty, "\(loop.seen)")
        }
    }

    @Test("a file of more episodes than the limit is refused with the limit")
    func tooManyEpisodes() async throws {
        try await withAPI { client, loop in
            let count = BatchFile.maxEpisodes + 1
            let json = "[" + Array(repeating: #"{"topic":"t"}"#, count: count).joined(separator: ",") + "]"
            let response = try await client.execute(uri: "/api/batches", method: .post, body: Self.body(json))
            #expect(response.status == .badRequest)
            let message = try Self.error(response)
            #expect(message.contains("\(count) episodes") && message.contains("\(BatchFile.maxEpisodes)"), "\(message)")
            #expect(loop.seen.isEmpty)
        }
    }

    @Test("a body over 10 MiB gets 413; an error message echoing a huge body is cut to 400 bytes")
    func bodyLimits() async throws {
        try await withAPI { client, loop in
            let big = ByteBuffer(repeating: UInt8(ascii: "x"), count: BatchFile.maxBytes + 1)
            var response = try await client.execute(uri: "/api/batches", method: .post, body: big)
            #expect(response.status == .contentTooLarge)
            #expect(try Self.error(response).contains("10 MiB"))
            // Under the limit: parsed, refused as a bad file, and the reply stays small.
            let junk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 1 << 20)
            response = try await client.execute(uri: "/api/batches", method: .post, body: junk)
            #expect(response.status == .badRequest)
            #expect(response.body.readableBytes < 600, "\(response.body.readableBytes) bytes")
            #expect(try Self.error(response).utf8.count <= ControlAPI.maxErrorBytes + "…".utf8.count)
            // /api/scale reads at most 4 KiB of body: a longer one counts as none.
            let padded = #"{"workers": 2, "pad": ""# + String(repeating: " ", count: 5000) + #""}"#
            response = try await client.execute(uri: "/api/scale", method: .post, body: Self.body(padded))
            #expect(response.status == .badRequest)
            #expect(loop.seen.isEmpty, "\(loop.seen)")
        }
    }

    @Test("a batch id the loop says is taken gets 409 with its message")
    func idConflict() async throws {
        try await withAPI { client, loop in
            let response = try await client.execute(uri: "/api/batches?episodes=1&id=taken", method: .post)
            #expect(response.status == .conflict)
            #expect(try Self.error(response) == "batch id taken is already taken")
            guard case .submit(let id, _, let ids) = try #require(loop.seen.first) else {
                Issue.record("not a submission: \(loop.seen)")
                return
            }
            #expect(id == "taken" && ids == ["episode_1"] && loop.seen.count == 1)
        }
    }

    @Test("scale: ?workers=N or {\"workers\": N}; the loop's refusal is a 400; no number is a 400")
    func scale() async throws {
        try await withAPI { client, loop in
            var response = try await client.execute(uri: "/api/scale?workers=4", method: .post)
            #expect(response.status == .ok)
            let pool = try #require(try Self.object(response)["local_workers"] as? [String: Any])
            #expect(pool["target"] as? Int == 4 && pool["active"] as? Int == 4 && pool["retiring"] as? Int == 0)
            response = try await client.execute(uri: "/api/scale", method: .post, body: Self.body(#"{"workers": 2}"#))
            #expect(response.status == .ok)
            response = try await client.execute(uri: "/api/scale?workers=999", method: .post)
            #expect(response.status == .badRequest)
            #expect(try Self.error(response) == "workers must be from 0 to 256, got 999")
            for bad in ["/api/scale?workers=two", "/api/scale"] {
                response = try await client.execute(uri: bad, method: .post)
                #expect(response.status == .badRequest, "\(bad)")
                #expect(try Self.error(response).contains("?workers=N"))
            }
            response = try await client.execute(uri: "/api/scale", method: .post, body: Self.body("workers=2"))
            #expect(response.status == .badRequest)
            #expect(loop.seen == [.scale(4), .scale(2), .scale(999)])
        }
    }

    @Test("status: a page or every episode is made from the loop's copy; the standard one never asks the loop")
    func status() async throws {
        try await withAPI { client, loop in
            var response = try await client.execute(uri: "/api/status?offset=1&limit=2", method: .get)
            #expect(response.status == .ok)
            var episodes = try #require(try Self.object(response)["episodes"] as? [[String: Any]])
            #expect(episodes.compactMap { $0["id"] as? String } == ["episode_2", "episode_3"])
            response = try await client.execute(uri: "/api/status?episodes=all", method: .get)
            episodes = try #require(try Self.object(response)["episodes"] as? [[String: Any]])
            #expect(episodes.count == 5)
            #expect(loop.seen == [.status, .status])
            // Nothing published yet: the standard document is {} and comes from the board alone.
            response = try await client.execute(uri: "/api/status", method: .get)
            #expect(response.status == .ok && String(buffer: response.body) == "{}")
            response = try await client.execute(uri: "/api/status?limit=0", method: .get)
            #expect(response.status == .badRequest)
            #expect(loop.seen.count == 2)
        }
    }

    @Test("the listings come from the published status: one batch, or 404 naming it")
    func listings() async throws {
        try await withAPI { client, loop in
            var published = DispatcherTests().makeDispatcher(1).fleetStatus(state: .running, now: loop.t0)
            published.batches = [BatchListing(id: "promo", state: .running, episodes: 1)]
            loop.board.publish(published)
            var response = try await client.execute(uri: "/api/batches", method: .get)
            let batches = try #require(try Self.object(response)["batches"] as? [[String: Any]])
            #expect(batches.map { $0["id"] as? String } == ["promo"])
            response = try await client.execute(uri: "/api/batches/promo", method: .get)
            #expect(response.status == .ok)
            #expect(try Self.object(response)["state"] as? String == "running")
            response = try await client.execute(uri: "/api/batches/other", method: .get)
            #expect(response.status == .notFound)
            #expect(try Self.error(response).contains("no batch other"))
            response = try await client.execute(uri: "/api/batches/promo/report", method: .get)
            #expect(response.status == .notFound, "no report until the batch has finished")
            #expect(loop.seen.isEmpty)
        }
    }

    @Test("a stopping coordinator (the channel closed) answers every control request with 503")
    func stopping() async throws {
        try await withAPI { client, loop in
            loop.control.close()
            let requests: [(String, HTTPRequest.Method)] = [
                ("/api/batches?episodes=1", .post), ("/api/scale?workers=1", .post),
                ("/api/status?episodes=all", .get), ("/api/status?offset=0", .get),
            ]
            for (uri, method) in requests {
                let response = try await client.execute(uri: uri, method: method)
                #expect(response.status == .serviceUnavailable, "\(uri)")
                #expect(try Self.error(response) == "the coordinator is stopping", "\(uri)")
            }
            // What needs no loop still answers.
            let health = try await client.execute(uri: "/health", method: .get)
            #expect(health.status == .ok)
            #expect(loop.seen.isEmpty)
        }
    }

    @Test("wrong methods are 404 (Hummingbird's answer for a path without that method) and reach nothing")
    func wrongMethods() async throws {
        try await withAPI { client, loop in
            let requests: [(String, HTTPRequest.Method)] = [
                ("/api/scale?workers=1", .get), ("/api/batches?episodes=1", .put), ("/api/batches/promo", .delete),
                ("/api/status", .post), ("/api/batches?episodes=1", .delete),
            ]
            for (uri, method) in requests {
                let response = try await client.execute(uri: uri, method: method)
                #expect(response.status == .notFound, "\(method) \(uri)")
            }
            #expect(loop.seen.isEmpty, "\(loop.seen)")
        }
    }

    @Test("with --http-token, control requests without it get 401 and never reach the loop")
    func token() async throws {
        let token = "0123456789abcdef-token"
        try await withAPI(token: token) { client, loop in
            var response = try await client.execute(uri: "/api/scale?workers=1", method: .post)
            #expect(response.status == .unauthorized)
            response = try await client.execute(
                uri: "/api/scale?workers=1",
                method: .post,
                headers: [.authorization: "Bearer wrong-wrong-wrong-wrong"]
            )
            #expect(response.status == .unauthorized)
            #expect(loop.seen.isEmpty)
            response = try await client.execute(
                uri: "/api/scale?workers=1",
                method: .post,
                headers: [.authorization: "Bearer \(token)"]
            )
            #expect(response.status == .ok)
            response = try await client.execute(uri: "/api/batches?episodes=1&token=\(token)", method: .post)
            #expect(response.status == .accepted)
            #expect(loop.seen.count == 2)
        }
    }
}

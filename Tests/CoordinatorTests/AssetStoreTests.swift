import Foundation
import Protocol
import Shared
import Testing

@testable import Coordinator

/// The coordinator's asset store (issue 16 part 3): answers kept by key, checked before they are
/// served, bounded with least-recently-used eviction, and kept across restarts.
@Suite struct AssetStoreTests {
    private static func folder() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("assets-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    private static func key(_ n: Int) -> String { DurableFiles.sha256(Data("request \(n)".utf8)) }

    /// Offers `body` in chunks of `chunk` bytes.
    @discardableResult
    private static func offer(
        _ store: AssetStore,
        _ key: String,
        _ body: [UInt8],
        chunk: Int = 4,
        session: String = "s1",
        sha256: String? = nil
    ) -> AssetStore.PutOutcome {
        var last = AssetStore.PutOutcome.receiving
        var offset = 0
        while offset < body.count {
            let end = min(offset + chunk, body.count)
            last = store.put(
                AssetPut(
                    key: key,
                    size: body.count,
                    sha256: sha256 ?? DurableFiles.sha256(body),
                    contentType: "audio/wav",
                    service: "openai speech",
                    offset: offset,
                    data: Array(body[offset..<end])
                ),
                session: session,
                now: .now
            )
            offset = end
        }
        return last
    }

    private static func fetch(_ store: AssetStore, _ key: String, chunk: Int = 3) -> [UInt8]? {
        var body: [UInt8] = []
        while true {
            let data = store.get(AssetGet(requestId: 1, key: key, offset: body.count, length: chunk))
            guard data.found else { return nil }
            body += data.data
            if body.count >= data.size { return body }
        }
    }

    @Test func anOfferedAnswerIsServedInChunksAndCountedOnce() throws {
        let store = try AssetStore(settings: .init(folder: try Self.folder()))
        let body = Array("a voice clip of some bytes".utf8)
        guard case .stored(let entry) = Self.offer(store, Self.key(1), body) else {
            Issue.record("not stored")
            return
        }
        #expect(entry.size == body.count && entry.contentType == "audio/wav")
        #expect(Self.fetch(store, Self.key(1)) == body)
        let first = store.get(AssetGet(requestId: 9, key: Self.key(1), length: 1 << 20))
        #expect(first.requestId == 9 && first.sha256 == DurableFiles.sha256(body) && first.contentType == "audio/wav")
        #expect(store.stats.hits == 2 && store.stats.stored == 1 && store.stats.entries == 1)
        #expect(!store.get(AssetGet(requestId: 1, key: Self.key(2), length: 10)).found)
        #expect(store.stats.misses == 1)
        // The same answer offered again is ignored.
        #expect(Self.offer(store, Self.key(1), body) == .known)
    }

    @Test func anOfferWhoseBytesDoNotMatchItsDigestOrComeOutOfOrderIsRefused() throws {
        let store = try AssetStore(settings: .init(folder: try Self.folder()))
        let body = Array("twelve bytes".utf8)
        guard case .refused = Self.offer(store, Self.key(1), body, sha256: DurableFiles.sha256(Data("other".utf8)))
        else {
            Issue.record("a wrong digest was kept")
            return
        }
        #expect(!store.get(AssetGet(requestId: 1, key: Self.key(1), length: 100)).found)
        // A chunk that skips bytes drops the answer being received.
        _ = store.put(
            AssetPut(
                key: Self.key(2),
                size: 12,
                sha256: DurableFiles.sha256(body),
                service: "x",
                offset: 0,
                data: Array(body[0..<4])
            ),
            session: "s1",
            now: .now
        )
        let skipped = store.put(
            AssetPut(
                key: Self.key(2),
                size: 12,
                sha256: DurableFiles.sha256(body),
                service: "x",
                offset: 8,
                data: Array(body[8...])
            ),
            session: "s1",
            now: .now
        )
        guard case .refused = skipped else {
            Issue.record("a chunk out of order was taken: \(skipped)")
            return
        }
        #expect(store.entry(Self.key(2)) == nil)
        #expect(store.stats.refused == 2)
        // Two workers offering the same answer at once do not mix their chunks.
        _ = store.put(
            AssetPut(
                key: Self.key(3),
                size: 12,
                sha256: DurableFiles.sha256(body),
                service: "x",
                offset: 0,
                data: Array(body[0..<6])
            ),
            session: "a",
            now: .now
        )
        #expect(Self.offer(store, Self.key(3), body, session: "b") != .receiving)
        #expect(Self.fetch(store, Self.key(3)) == body)
    }

    @Test func aDamagedFileIsDroppedNotServed() throws {
        let dir = try Self.folder()
        let store = try AssetStore(settings: .init(folder: dir))
        let body = Array("an image".utf8)
        Self.offer(store, Self.key(1), body)
        var damaged = body
        damaged[0] ^= 0xFF
        try Data(damaged).write(to: dir.appendingPathComponent("\(Self.key(1)).bin"))
        #expect(!store.get(AssetGet(requestId: 1, key: Self.key(1), length: 100)).found)
        #expect(store.stats.damaged == 1 && store.stats.entries == 0)
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("\(Self.key(1)).bin").path))
    }

    @Test func theLeastRecentlyUsedAnswersGoFirstWhenTheStoreIsFull() throws {
        let store = try AssetStore(settings: .init(folder: try Self.folder(), maxBytes: 30))
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        for n in 1...3 { Self.offer(store, Self.key(n), Array(repeating: UInt8(n), count: 10)) }
        #expect(store.stats.entries == 3 && store.stats.bytes == 30)
        // Answers 1 and 3 are used; 2 is the least recently used.
        _ = store.get(AssetGet(requestId: 1, key: Self.key(1), length: 10), now: t0.addingTimeInterval(1e6))
        _ = store.get(AssetGet(requestId: 1, key: Self.key(3), length: 10), now: t0.addingTimeInterval(2e6))
        Self.offer(store, Self.key(4), Array(repeating: 4, count: 10))
        #expect(store.entry(Self.key(2)) == nil)
        #expect(store.entry(Self.key(1)) != nil && store.entry(Self.key(3)) != nil && store.entry(Self.key(4)) != nil)
        #expect(store.stats.evicted == 1 && store.stats.bytes == 30)
        // An answer larger than the whole store is not taken.
        guard case .refused = Self.offer(store, Self.key(5), Array(repeating: 5, count: 31)) else {
            Issue.record("an answer larger than the store was taken")
            return
        }
    }

    @Test func theStoreIsKeptAcrossRestartsAndHalfReceivedAnswersAreDropped() throws {
        let dir = try Self.folder()
        do {
            let store = try AssetStore(settings: .init(folder: dir))
            Self.offer(store, Self.key(1), Array("kept".utf8))
            // Half an answer when the coordinator stops.
            _ = store.put(
                AssetPut(
                    key: Self.key(2),
                    size: 8,
                    sha256: DurableFiles.sha256(Data("halfhalf".utf8)),
                    service: "x",
                    data: Array("half".utf8)
                ),
                session: "s1",
                now: .now
            )
        }
        // A stray file and a record without its answer are ignored.
        try Data("junk".utf8).write(to: dir.appendingPathComponent("notes.txt"))
        try Data(#"{"key":"x"}"#.utf8).write(to: dir.appendingPathComponent("\(Self.key(3)).json"))
        let reopened = try AssetStore(settings: .init(folder: dir))
        #expect(reopened.stats.entries == 1)
        #expect(Self.fetch(reopened, Self.key(1)) == Array("kept".utf8))
        #expect(reopened.entry(Self.key(2)) == nil)
        let incoming = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent(".incoming").path)
        #expect(incoming.isEmpty)
    }
}

/// The dispatcher's part: WELCOME announces the store to workers that speak minor 5, their asset
/// messages go to the asset task, and what reused calls saved is counted once per attempt.
@Suite struct AssetDispatchTests {
    private static let key = String(repeating: "ab", count: 32)

    private func dispatcher(reuse: Bool) -> (DispatcherTests, Dispatcher) {
        let h = DispatcherTests()
        var settings = DispatchSettings()
        settings.assetReuse = reuse
        let counter = Counter()
        let d = Dispatcher(batchId: "b", specs: h.specs(2), settings: settings, makeSession: { counter.next() })
        return (h, d)
    }

    private func welcome(_ actions: [DispatchAction]) -> Welcome? {
        actions.lazy.compactMap { a -> Welcome? in
            if case .send(_, let env) = a, case .welcome(let w) = env.message { return w }
            return nil
        }.first
    }

    @Test func assetMessagesOfARegisteredSessionGoToTheStore() {
        let (h, d0) = dispatcher(reuse: true)
        var d = d0
        let (s, joined) = h.join(&d, [1], "w1", at: h.t0)
        #expect(welcome(joined)?.assetReuse == true)
        let get = Message.assetGet(AssetGet(requestId: 3, key: Self.key, length: 1024))
        let actions = d.onMessage(from: [1], Envelope(session: s, get), now: h.t0 + .seconds(1))
        #expect(actions == [.asset(.message(routingId: [1], session: s, get))])
        // An unregistered connection is told to say HELLO, and nothing reaches the store.
        let stranger = d.onMessage(from: [9], Envelope(session: "nope", get), now: h.t0 + .seconds(1))
        #expect(!stranger.contains { if case .asset = $0 { true } else { false } })
        // A worker that leaves: what it was sending to the store is dropped.
        let left = d.onMessage(
            from: [1],
            Envelope(session: s, .disconnect(Disconnect(reason: .shutdown, detail: "bye"))),
            now: h.t0 + .seconds(2)
        )
        #expect(left.contains(.asset(.sessionEnded(s))))
    }

    @Test func withoutAStoreAssetMessagesAreRefusedAndWelcomeSaysNothing() {
        let (h, d0) = dispatcher(reuse: false)
        var d = d0
        let (s, joined) = h.join(&d, [1], "w1", at: h.t0)
        #expect(welcome(joined)?.assetReuse == false)
        let put = Message.assetPut(AssetPut(key: Self.key, size: 1, sha256: Self.key, service: "x", data: [1]))
        let actions = d.onMessage(from: [1], Envelope(session: s, put), now: h.t0 + .seconds(1))
        #expect(!actions.contains { if case .asset = $0 { true } else { false } })
        #expect(d.counters.outOfOrder == 1)
    }

    @Test func aWorkerOfAnEarlierMinorIsNotToldOfTheStore() {
        let (h, d0) = dispatcher(reuse: true)
        var d = d0
        var hello = h.hello("old")
        hello.protocolMinor = 4
        let actions = d.onMessage(from: [1], Envelope(.hello(hello)), now: h.t0)
        #expect(welcome(actions)?.assetReuse == false)
    }

    @Test func reusedCallsAndWhatTheySavedAreCountedOncePerAttempt() throws {
        let (h, d0) = dispatcher(reuse: true)
        var d = d0
        let (s, joined) = h.join(&d, [1], "w1", at: h.t0)
        let job = try #require(h.jobs(joined).first)
        let result = Envelope(
            session: s,
            .result(
                EpisodeResult(
                    episodeId: job.episodeId,
                    attempt: job.attempt,
                    status: .succeeded,
                    durationMs: 10,
                    apiCalls: 2,
                    trace: [
                        TraceEvent(seq: 1, event: .callEnd, name: "llm:script", costMicros: 0, savedMicros: 1820),
                        TraceEvent(seq: 2, event: .callEnd, name: "tts:line_1", costMicros: 3000),
                    ]
                )
            )
        )
        _ = d.onMessage(from: [1], result, now: h.t0 + .seconds(1))
        _ = d.onMessage(from: [1], result, now: h.t0 + .seconds(1))
        #expect(d.spend.reusedCalls == 1)
        #expect(d.spend.savedMicros == 1820)
        #expect(d.spend.totalMicros == 3000)
        let status = d.fleetStatus(state: .running, now: h.t0 + .seconds(2))
        #expect(status.spend?.reusedCalls == 1 && status.spend?.saved == "$0.0018")
        let m = FleetMetrics()
        m.update(status)
        let text = String(decoding: m.exposition(), as: UTF8.self)
        #expect(text.contains("reelfarm_assets_reused_total 1"), "\(text)")
        #expect(text.contains("reelfarm_spend_saved_total 0.00182"), "\(text)")
    }
}

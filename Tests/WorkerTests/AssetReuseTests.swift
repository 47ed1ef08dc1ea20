import Foundation
import Protocol
import Shared
import Synchronization
import Testing

@testable import Worker

/// The worker's side of the asset store (issue 16 part 3): a call asks the store before it sends a
/// request, a stored answer costs nothing and takes no request, and a paid answer is offered only once
/// the provider accepted it.
@Suite struct AssetReuseTests {
    /// A coordinator in memory: answers ASSET_GET from `stored`, keeps what ASSET_PUT sends.
    final class FakeStore: Sendable {
        let stored = Mutex<[String: (body: [UInt8], type: String?)]>([:])
        let puts = Mutex<[AssetPut]>([])
        let gets = Mutex<[AssetGet]>([])
        /// Flip one byte of every answer served (a damaged store).
        let damage = Mutex(false)

        func connect(_ exchange: AssetExchange, assetReuse: Bool = true) {
            exchange.attach { [self] message in
                switch message {
                case .assetGet(let get):
                    gets.withLock { $0.append(get) }
                    guard let entry = stored.withLock({ $0[get.key] }) else {
                        exchange.receive(AssetData(requestId: get.requestId, key: get.key, found: false))
                        return
                    }
                    var bytes = Array(entry.body.dropFirst(get.offset).prefix(get.length))
                    if damage.withLock({ $0 }), !bytes.isEmpty { bytes[0] ^= 0xFF }
                    exchange.receive(
                        AssetData(
                            requestId: get.requestId,
                            key: get.key,
                            found: true,
                            size: entry.body.count,
                            sha256: DurableFiles.sha256(entry.body),
                            contentType: entry.type,
                            offset: get.offset,
                            data: bytes
                        )
                    )
                case .assetPut(let put):
                    puts.withLock { $0.append(put) }
                    var entry = stored.withLock { $0[put.key] } ?? (body: [], type: put.contentType)
                    entry.body += put.data
                    stored.withLock { $0[put.key] = entry }
                default:
                    break
                }
            }
            exchange.sessionStarted(
                AssetReuseTests.welcome(assetReuse: assetReuse)
            )
        }
    }

    /// A WELCOME from a coordinator that keeps an asset store, or not.
    static func welcome(assetReuse: Bool) -> Welcome {
        Welcome(
            session: "s",
            heartbeatIntervalMs: 1000,
            liveness: 3,
            maxMessageBytes: 1 << 20,
            softwareVersion: "t",
            assetReuse: assetReuse
        )
    }

    private func context(_ item: String, exchange: AssetExchange?, workspace: URL? = nil) -> CallContext {
        var context = makeContext(item: item, workspace: workspace)
        context.meter = CallMeter(prices: .defaults)
        context.reuse = exchange
        return context
    }

    private static let chat = """
        {"id":"c1","object":"chat.completion","created":1,"model":"gpt-6-luna",\
        "choices":[{"index":0,"message":{"role":"assistant","content":\
        \(String(data: try! JSONEncoder().encode(Fixture.script(scenes: 2)), encoding: .utf8)!)},"finish_reason":"stop"}],\
        "usage":{"prompt_tokens":1200,"completion_tokens":3400,"total_tokens":4600}}
        """

    @Test func aPaidAnswerIsOfferedAndTheNextIdenticalRequestIsAnsweredFromTheStoreForNothing() async throws {
        let store = FakeStore()
        let exchange = AssetExchange(settings: .init(chunkBytes: 100))
        store.connect(exchange)
        let transport = FakeTransport([.okJSON(Self.chat)])
        let provider = OpenAIScriptProvider(
            settings: OpenAISettings(baseURL: "http://127.0.0.1:9/v1", apiKey: "sk"),
            caller: makeCaller(transport)
        )
        let spec = EpisodeSpec(topic: "the harbour", scenes: 2)

        let first = context("script", exchange: exchange)
        let paid = try await provider.writeScript(for: spec, context: first)
        #expect(first.meter.costMicros == 1820)
        #expect(first.meter.savedMicros == nil)
        // Offered only once the call succeeded (the pipeline does it), in chunks of 100 bytes.
        #expect(store.puts.withLock { $0.isEmpty })
        for offer in first.meter.takeOffers() { exchange.offer(offer) }
        let puts = store.puts.withLock { $0 }
        #expect(puts.count == (Self.chat.utf8.count + 99) / 100)
        #expect(puts.map(\.offset) == Array(stride(from: 0, to: Self.chat.utf8.count, by: 100)))
        #expect(puts.first?.contentType == "application/json")

        // Another attempt (another worker, a re-run) of the same request: no request leaves, same script.
        let second = context("script", exchange: exchange)
        let reused = try await provider.writeScript(for: spec, context: second)
        #expect(reused == paid)
        #expect(transport.requests.count == 1)
        #expect(second.meter.costMicros == 0)
        #expect(second.meter.savedMicros == 1820)
        #expect(second.meter.takeOffers().isEmpty)
        #expect(exchange.stats.hits == 1)

        // Another topic is another key: it goes to the provider.
        let other = FakeTransport([.okJSON(Self.chat)])
        let otherProvider = OpenAIScriptProvider(
            settings: OpenAISettings(baseURL: "http://127.0.0.1:9/v1", apiKey: "sk"),
            caller: makeCaller(other)
        )
        _ = try await otherProvider.writeScript(
            for: EpisodeSpec(topic: "the mill", scenes: 2),
            context: context("script", exchange: exchange)
        )
        #expect(other.requests.count == 1)
    }

    @Test func aDamagedAnswerIsAMissAndTheProviderIsCalled() async throws {
        let store = FakeStore()
        let exchange = AssetExchange()
        store.connect(exchange)
        let request = ProviderRequest(url: "http://x/v1/audio/speech", body: Data("{}".utf8), maxResponseBytes: 1 << 20)
        store.stored.withLock { $0[AssetKey.of(request)] = (body: Array("stored".utf8), type: "audio/wav") }
        store.damage.withLock { $0 = true }
        #expect(await exchange.lookup(AssetKey.of(request)) == nil)
        #expect(exchange.stats.damaged == 1)
        store.damage.withLock { $0 = false }
        #expect(
            await exchange.lookup(AssetKey.of(request)) == .init(body: Data("stored".utf8), contentType: "audio/wav")
        )
    }

    @Test func withoutAStoreOrWithoutASessionNothingIsAskedOrOffered() async throws {
        let store = FakeStore()
        let exchange = AssetExchange()
        store.connect(exchange, assetReuse: false)
        #expect(!exchange.isActive)
        #expect(await exchange.lookup(String(repeating: "a", count: 64)) == nil)
        exchange.offer(.init(key: String(repeating: "a", count: 64), body: Data([1]), contentType: nil, service: "x"))
        #expect(store.gets.withLock { $0.isEmpty } && store.puts.withLock { $0.isEmpty })

        // `REELFARM_NO_REUSE=1` on the worker: off even when the coordinator keeps a store.
        let off = AssetExchange(settings: .init(enabled: false))
        store.connect(off)
        #expect(!off.isActive)
    }

    @Test func aGetWithoutAReplyIsAMissWhenItsSessionEndsOrItTimesOut() async throws {
        let exchange = AssetExchange(settings: .init(replyTimeout: .milliseconds(50)))
        let sent = Mutex(0)
        exchange.attach { _ in sent.withLock { $0 += 1 } }
        exchange.sessionStarted(
            AssetReuseTests.welcome(assetReuse: true)
        )
        #expect(await exchange.lookup(String(repeating: "b", count: 64)) == nil)
        #expect(sent.withLock { $0 } == 1)

        let slow = AssetExchange(settings: .init(replyTimeout: .seconds(600)))
        slow.attach { _ in }
        slow.sessionStarted(
            AssetReuseTests.welcome(assetReuse: true)
        )
        async let answer = slow.lookup(String(repeating: "c", count: 64))
        try await Task.sleep(for: .milliseconds(20))
        slow.sessionLost()
        #expect(await answer == nil)
    }

    @Test func theKeyIsTheRequestWithoutItsCredentials() {
        var a = ProviderRequest(
            url: "https://api.example/v1/audio/speech",
            headers: ["Authorization": "Bearer sk-one", "Accept": "audio/wav"],
            body: Data(#"{"input":"Hello","voice":"marin"}"#.utf8),
            maxResponseBytes: 1
        )
        let key = AssetKey.of(a)
        #expect(key.count == 64)
        a.headers.set("Authorization", "Bearer sk-two")
        #expect(AssetKey.of(a) == key)
        a.body = Data(#"{"input":"Hello!","voice":"marin"}"#.utf8)
        #expect(AssetKey.of(a) != key)
        var b = a
        b.headers.set("Accept", "audio/mpeg")
        #expect(AssetKey.of(b) != AssetKey.of(a))
    }
}

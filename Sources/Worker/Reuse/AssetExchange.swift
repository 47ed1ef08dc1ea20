import Foundation
import Protocol
import Shared
import Synchronization

/// The worker's side of the coordinator's asset store (PROTOCOL §18): asks the store for the answer to a
/// provider request before the request is sent (ASSET_GET / ASSET_DATA), and offers every paid answer
/// once the provider that asked for it accepted it (ASSET_PUT).
///
/// Best effort by design: with no session, a coordinator that keeps no store (WELCOME `asset_reuse`
/// absent), a lost reply or a damaged answer, ``lookup(_:)`` returns `nil` and the call goes to the
/// provider as it would without a store. Nothing here can fail an episode.
///
/// Messages leave through the closure given to ``attach(send:)``, which hands them to the agent's loop
/// (the socket's one owner); the agent passes ASSET_DATA and session events back in. Safe to call from
/// any task.
final class AssetExchange: Sendable {
    struct Settings: Sendable {
        /// A get that gets no ASSET_DATA this long counts as a miss.
        var replyTimeout: Duration = .seconds(10)
        /// Bytes asked for or offered per message (at most `WireProtocol.maxChunkBytes`).
        var chunkBytes = 1 << 20
        /// `false` (`REELFARM_NO_REUSE=1` on the worker): never ask, never offer.
        var enabled = true
    }

    /// A stored answer, checked against its SHA-256.
    struct Answer: Sendable, Equatable {
        var body: Data
        var contentType: String?
    }

    /// A paid answer to offer.
    struct Offer: Sendable, Equatable {
        var key: String
        var body: Data
        var contentType: String?
        var service: String
    }

    struct Stats: Sendable, Equatable {
        var hits = 0
        var misses = 0
        /// Answers whose bytes did not match the store's SHA-256, or came incomplete (counted as misses too).
        var damaged = 0
        var offered = 0
        var bytesFetched = 0
        var bytesOffered = 0
    }

    private struct State {
        var send: (@Sendable (Message) -> Void)?
        var active = false
        var nextId = 1
        var waiters: [Int: CheckedContinuation<AssetData?, Never>] = [:]
        var stats = Stats()
    }

    let settings: Settings
    private let state = Mutex(State())

    init(settings: Settings = Settings()) {
        self.settings = settings
    }

    func attach(send: @escaping @Sendable (Message) -> Void) {
        state.withLock { $0.send = send }
    }

    /// Whether the coordinator of the current session keeps a store.
    var isActive: Bool { state.withLock { $0.active } }

    var stats: Stats { state.withLock { $0.stats } }

    // MARK: - Session events (from the agent)

    func sessionStarted(_ welcome: Welcome) {
        state.withLock { $0.active = settings.enabled && welcome.assetReuse }
    }

    /// Gets waiting for a reply become misses.
    func sessionLost() {
        let waiters = state.withLock { s in
            s.active = false
            defer { s.waiters = [:] }
            return Array(s.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: nil) }
    }

    func receive(_ data: AssetData) {
        let waiter = state.withLock { $0.waiters.removeValue(forKey: data.requestId) }
        waiter?.resume(returning: data)
    }

    // MARK: - Use (from provider calls)

    /// The stored answer to the request of `key`, or `nil` (not stored, no store, no session, no reply in
    /// time, damaged).
    func lookup(_ key: String) async -> Answer? {
        guard isActive else { return nil }
        var body = Data()
        var expected: (size: Int, sha256: String, contentType: String?)?
        while true {
            let get = AssetGet(
                requestId: 0,
                key: key,
                offset: body.count,
                length: min(settings.chunkBytes, WireProtocol.maxChunkBytes)
            )
            guard let reply = await request(get), reply.found, reply.key == key, reply.offset == body.count,
                let sha256 = reply.sha256
            else {
                count { $0.misses += 1 }
                return nil
            }
            if expected == nil { expected = (reply.size, sha256, reply.contentType) }
            guard let expected, reply.size == expected.size, sha256 == expected.sha256,
                !reply.data.isEmpty || reply.size == 0
            else {
                count {
                    $0.damaged += 1
                    $0.misses += 1
                }
                return nil
            }
            body.append(contentsOf: reply.data)
            guard body.count < expected.size else { break }
        }
        guard let expected, body.count == expected.size,
            DurableFiles.sha256(body) == expected.sha256
        else {
            count {
                $0.damaged += 1
                $0.misses += 1
            }
            return nil
        }
        count {
            $0.hits += 1
            $0.bytesFetched += body.count
        }
        return Answer(body: body, contentType: expected.contentType)
    }

    /// Offers a paid answer to the store, in chunks. Answers that are empty or larger than
    /// `WireProtocol.maxAssetBytes` are not offered.
    func offer(_ offer: Offer) {
        guard !offer.body.isEmpty, offer.body.count <= WireProtocol.maxAssetBytes,
            let send = state.withLock({ $0.active ? $0.send : nil })
        else { return }
        let sha256 = DurableFiles.sha256(offer.body)
        let contentType = offer.contentType.flatMap { type in
            type.utf8.count <= 128 && type.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E } ? type : nil
        }
        let chunk = max(1, min(settings.chunkBytes, WireProtocol.maxChunkBytes))
        var offset = 0
        while offset < offer.body.count {
            let end = min(offset + chunk, offer.body.count)
            send(
                .assetPut(
                    AssetPut(
                        key: offer.key,
                        size: offer.body.count,
                        sha256: sha256,
                        contentType: contentType,
                        service: String(offer.service.prefix(64)),
                        offset: offset,
                        data: [UInt8](offer.body[offer.body.startIndex + offset..<offer.body.startIndex + end])
                    )
                )
            )
            offset = end
        }
        count {
            $0.offered += 1
            $0.bytesOffered += offer.body.count
        }
    }

    // MARK: - Helpers

    private func count(_ update: (inout Stats) -> Void) {
        state.withLock { update(&$0.stats) }
    }

    /// Sends one ASSET_GET (with a fresh request id) and waits for its ASSET_DATA, the timeout, the end of
    /// the session or the caller's cancellation, whichever comes first.
    private func request(_ get: AssetGet) async -> AssetData? {
        let id = state.withLock { s in
            defer { s.nextId = s.nextId >= Int(UInt32.max) ? 1 : s.nextId + 1 }
            return s.nextId
        }
        var get = get
        get.requestId = id
        let timeout = settings.replyTimeout
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            self?.expire(id)
        }
        defer { timer.cancel() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<AssetData?, Never>) in
                let send: (@Sendable (Message) -> Void)? = state.withLock { s in
                    guard s.active, let send = s.send, !Task.isCancelled else { return nil }
                    s.waiters[id] = continuation
                    return send
                }
                guard let send else {
                    continuation.resume(returning: nil)
                    return
                }
                send(.assetGet(get))
            }
        } onCancel: {
            expire(id)
        }
    }

    private func expire(_ id: Int) {
        let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
        waiter?.resume(returning: nil)
    }
}

import Foundation
import Logging
import Protocol
import Shared
import Synchronization

/// Runs the ``AssetStore`` off the coordinator's loop: the loop hands it the ASSET_GET and ASSET_PUT
/// messages the ``Dispatcher`` let through (from registered sessions only), and this task reads and
/// writes the store and queues each ASSET_DATA reply straight to the ROUTER's socket thread, so that
/// reading or hashing an image never delays a lease grant or a heartbeat.
///
/// The store is owned by the one task ``run(store:send:)`` runs in; ``stats`` is a copy published after
/// every command.
final class AssetService: Sendable {
    enum Command: Sendable, Equatable {
        case message(routingId: [UInt8], session: String, Message)
        case sessionEnded(String)
    }

    private let commands: AsyncStream<Command>
    private let queue: AsyncStream<Command>.Continuation
    private let published = Mutex(AssetStore.Stats())
    private let logger: Logger

    init(logger: Logger) {
        (commands, queue) = AsyncStream.makeStream(of: Command.self)
        self.logger = logger
    }

    /// What the store did so far.
    var stats: AssetStore.Stats { published.withLock { $0 } }

    func submit(_ command: Command) {
        queue.yield(command)
    }

    func finish() {
        queue.finish()
    }

    /// Carries out commands until ``finish()``. `send` queues frames to the ROUTER (thread-safe).
    func run(store: AssetStore, send: @Sendable ([[UInt8]]) -> Void) async {
        published.withLock { $0 = store.stats }
        for await command in commands {
            switch command {
            case .message(let routingId, let session, .assetGet(let get)):
                let data = store.get(get)
                send([routingId] + Codec.encode(Envelope(session: session, .assetData(data))))
            case .message(_, let session, .assetPut(let put)):
                switch store.put(put, session: session, now: .now) {
                case .receiving, .known:
                    break
                case .stored(let entry):
                    logger.debug(
                        "asset stored",
                        metadata: [
                            "key": "\(entry.key.prefix(12))", "bytes": "\(entry.size)", "service": "\(entry.service)",
                        ]
                    )
                case .refused(let why):
                    logger.warning(
                        "asset offer refused",
                        metadata: ["key": "\(put.key.prefix(12))", "reason": "\(why)"]
                    )
                }
            case .message:
                break
            case .sessionEnded(let session):
                store.sessionEnded(session)
            }
            let stats = store.stats
            published.withLock { $0 = stats }
        }
    }
}

import Foundation
import Logging
import Shared
import Synchronization

/// Which workers may connect: the ZAP handler's decisions (ZeroMQ RFC 27) against the allow-list of worker
/// public keys (`--allow-workers`), reloaded when the file or folder changes.
///
/// libzmq asks the handler about every new CURVE connection, after the client proved it holds the secret key
/// of the public key it presents; the handler answers 200 (let it in) or 400 (close the connection). The
/// decision logic is pure (``answer(_:)``) and shared by the ZAP socket's task and the reload task, hence
/// the lock.
final class WorkerAuthenticator: Sendable {
    /// What the coordinator shows of its security (`/api/status`, `/metrics`).
    struct Status: Codable, Sendable, Equatable {
        /// Whether connections are encrypted and authenticated (CURVE).
        var curve: Bool
        var allowedKeys = 0
        /// Connections let in and refused by the allow-list, and handshakes that failed before it (plaintext
        /// clients, wrong server key, garbage).
        var accepted = 0
        var denied = 0
        var handshakeFailures = 0
        var reloads = 0
    }

    static let domain = "reelfarm"

    let path: String
    /// Keys allowed whatever the file says: the coordinator's own local workers' (made at start, never written).
    private let builtin: [[UInt8]: String]
    private let state: Mutex<(list: CurveAllowList, status: Status, signature: String)>

    init(path: String, builtin: [[UInt8]: String] = [:]) throws(ConfigurationError) {
        self.path = path
        self.builtin = builtin
        let list = try CurveAllowList.load(path: path)
        state = Mutex((list, Status(curve: true, allowedKeys: list.keys.count), Self.signature(of: path)))
    }

    var status: Status { state.withLock { $0.status } }

    /// Answers one ZAP request (frames: version, request id, domain, address, identity, mechanism,
    /// credentials…). Returns the reply frames and what to log.
    func answer(
        _ frames: [[UInt8]]
    ) -> (reply: [[UInt8]], level: Logger.Level, message: String, metadata: Logger.Metadata) {
        func reply(_ code: String, _ text: String, user: String = "") -> [[UInt8]] {
            let id = frames.count > 1 ? frames[1] : []
            return [Array("1.0".utf8), id, Array(code.utf8), Array(text.utf8), Array(user.utf8), []]
        }
        guard frames.count >= 6, String(decoding: frames[0], as: UTF8.self) == "1.0" else {
            return (
                reply("500", "malformed ZAP request"), .error, "malformed ZAP request", ["frames": "\(frames.count)"]
            )
        }
        let address = String(decoding: frames[3].prefix(256), as: UTF8.self)
        let mechanism = String(decoding: frames[5].prefix(16), as: UTF8.self)
        guard mechanism == "CURVE", frames.count >= 7, frames[6].count == 32 else {
            state.withLock { $0.status.denied += 1 }
            return (
                reply("400", "CURVE required"), .warning, "connection refused: not CURVE",
                ["address": "\(address)", "mechanism": "\(mechanism)"]
            )
        }
        let key = frames[6]
        let z85 = CurveKeyPair.encode(key) ?? "?"
        let name: String? = state.withLock { s in
            let name = s.list.keys[key] ?? builtin[key]
            if name == nil { s.status.denied += 1 } else { s.status.accepted += 1 }
            return name
        }
        guard let name else {
            return (
                reply("400", "key not on the allow-list"), .warning,
                "worker refused: its public key is not on the allow-list",
                ["address": "\(address)", "public_key": "\(z85)", "allow_list": "\(path)"]
            )
        }
        return (
            reply("200", "OK", user: name), .info, "worker key accepted", ["address": "\(address)", "key": "\(name)"]
        )
    }

    /// A handshake failed before the allow-list was asked (socket monitor event).
    func noteHandshakeFailure() {
        state.withLock { $0.status.handshakeFailures += 1 }
    }

    /// Reloads the allow-list if its file or folder changed since the last look. Returns the new key count,
    /// or the error (the previous list stays in force); nil when nothing changed.
    func reloadIfChanged() -> Result<Int, ConfigurationError>? {
        let signature = Self.signature(of: path)
        guard state.withLock({ $0.signature != signature }) else { return nil }
        do throws(ConfigurationError) {
            let list = try CurveAllowList.load(path: path)
            state.withLock { s in
                s.list = list
                s.signature = signature
                s.status.allowedKeys = list.keys.count
                s.status.reloads += 1
            }
            return .success(list.keys.count)
        } catch {
            state.withLock { $0.signature = signature }  // logged once per change, not every poll
            return .failure(error)
        }
    }

    /// Names, sizes and modification times of the allow-list file, or of the folder's `*.key` files, each
    /// through its symlinks.
    static func signature(of path: String) -> String {
        let fm = FileManager.default
        func entry(_ file: String) -> String {
            // Through symlinks: a Kubernetes ConfigMap volume swaps its files by repointing links.
            let target = URL(fileURLWithPath: file).resolvingSymlinksInPath().path
            let a = try? fm.attributesOfItem(atPath: target)
            let modified = (a?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            return "\(file)->\(target):\(a?[.size] as? Int ?? -1):\(modified)"
        }
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else { return "missing" }
        guard isDirectory.boolValue else { return entry(path) }
        let names = ((try? fm.contentsOfDirectory(atPath: path)) ?? []).filter { $0.hasSuffix(".key") }.sorted()
        return names.map { entry(URL(fileURLWithPath: path).appendingPathComponent($0).path) }.joined(separator: "|")
    }
}

/// CURVE for the coordinator's ROUTER socket: its key pair and the allow-list of workers.
struct CoordinatorSecurity: Sendable {
    let keys: CurveKeyPair
    let authenticator: WorkerAuthenticator
    /// How often the allow-list is checked for changes. The default is 2 s.
    var reloadEvery: Duration = .seconds(2)

    static let zapEndpoint = "inproc://zeromq.zap.01"
    static let monitorEndpoint = "inproc://reelfarm.router.monitor"

    /// Binds the ZAP handler's socket; call it before the ROUTER socket is bound. It is a ROUTER, not the
    /// REP of the ZAP examples: the socket thread reads every waiting request at once, which a REP socket
    /// refuses before each reply (and libzmq lets every client in when its ZAP handler is gone).
    static func startZAP(context: ZMQContext) async throws -> ZMQSocketThread {
        try await ZMQSocketThread(name: "coordinator-zap", context: context) { ctx in
            let socket = try ZMQSocket(context: ctx, type: .router, linger: .zero)
            _ = try socket.bind(zapEndpoint)
            return socket
        }
    }

    /// Answers ZAP requests from `thread` (the ZAP socket's owner) until its events end. Each request comes
    /// as [routing id, empty delimiter, request frames…] and its reply goes back the same way.
    func serveZAP(_ thread: ZMQSocketThread, logger: Logger) async {
        var logged: [String: ContinuousClock.Instant] = [:]
        for await event in thread.events {
            guard case .message(let frames) = event, frames.count >= 2, frames[1].isEmpty else { continue }
            let answer = authenticator.answer(Array(frames.dropFirst(2)))
            thread.send([frames[0], []] + answer.reply)
            // At most one line per address and message every 10 s: a refused worker retries constantly.
            let key = answer.message + (answer.metadata["address"].map { "\($0)" } ?? "")
            let now = ContinuousClock.now
            if let last = logged[key], now - last < .seconds(10), answer.level != .error { continue }
            logged[key] = now
            if logged.count > 10_000 { logged = [:] }
            logger.log(level: answer.level, "\(answer.message)", metadata: answer.metadata)
        }
    }

    /// Reads the ROUTER's monitor events (handshakes that failed: plaintext clients, a wrong server key) and
    /// counts and logs them.
    func serveMonitor(context: ZMQContext, logger: Logger) async {
        guard
            let thread = try? await ZMQSocketThread(
                name: "coordinator-mon",
                context: context,
                setup: { ctx in
                    let socket = try ZMQSocket(context: ctx, type: .pair, linger: .zero)
                    try socket.connect(Self.monitorEndpoint)
                    return socket
                }
            )
        else {
            logger.warning("cannot watch the ZeroMQ handshakes; failed handshakes are not logged")
            return
        }
        var last = ContinuousClock.now - .seconds(60)
        var suppressed = 0
        for await event in thread.events {
            guard case .message(let frames) = event, let head = frames.first, head.count >= 6 else { continue }
            let kind = UInt16(head[0]) | UInt16(head[1]) << 8
            let value = UInt32(head[2]) | UInt32(head[3]) << 8 | UInt32(head[4]) << 16 | UInt32(head[5]) << 24
            // A key refused by the allow-list is counted and logged by the ZAP handler already.
            if kind == 0x4000 { continue }
            authenticator.noteHandshakeFailure()
            let now = ContinuousClock.now
            if now - last < .seconds(10) {
                suppressed += 1
                continue
            }
            last = now
            logger.warning(
                "connection refused: ZeroMQ handshake failed (\(Self.describe(kind: kind, value: value)))",
                metadata: [
                    "endpoint": "\(frames.count > 1 ? String(decoding: frames[1].prefix(256), as: UTF8.self) : "-")",
                    "similar_since_last_line": "\(suppressed)",
                    "hint":
                        "a worker needs --curve-server-key (this coordinator's public key) and its own --curve-secret",
                ]
            )
            suppressed = 0
        }
        await thread.close()
    }

    /// Polls the allow-list for changes and logs each reload.
    func watchAllowList(logger: Logger) async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: reloadEvery) } catch { return }
            switch authenticator.reloadIfChanged() {
            case .success(let count):
                logger.notice(
                    "worker allow-list reloaded",
                    metadata: ["keys": "\(count)", "path": "\(authenticator.path)"]
                )
            case .failure(let error):
                logger.error(
                    "worker allow-list not reloaded; the previous one stays in force",
                    metadata: ["error": "\(error.message)"]
                )
            case nil:
                break
            }
        }
    }

    static func describe(kind: UInt16, value: UInt32) -> String {
        let what: String
        switch kind {
        case 0x2000: what = "protocol error"
        case 0x4000: what = "authentication failed"
        default: what = "no detail"
        }
        let detail: String
        switch value {
        case 0x1100_0002: detail = "mechanism mismatch: the peer does not use CURVE (a plaintext client?)"
        case 0x1100_0001: detail = "cryptographic error: the peer has another server key, or is not CURVE-speaking"
        case 0x1000_0000...0x10FF_FFFF, 0x1100_0000...0x11FF_FFFF: detail = String(format: "ZMTP error 0x%08x", value)
        case 0x2000_0000...0x2FFF_FFFF: detail = String(format: "ZAP error 0x%08x", value)
        case 0x3000_0000...0x3FFF_FFFF: detail = String(format: "WebSocket error 0x%08x", value)
        default: detail = "code \(value)"
        }
        return "\(what): \(detail)"
    }
}

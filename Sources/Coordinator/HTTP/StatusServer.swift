import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle
import Shared
import Synchronization

/// The coordinator's HTTP side (`--http`, loopback by default): the dashboard at `/`, the JSON status at
/// `/api/status`, Prometheus metrics at `/metrics`, `/health`, and the control API of `coordinator
/// submit`, `status` and `scale` (`/api/batches`, `/api/scale`; see ``ControlAPI``).
///
/// Read handlers only read what the coordinator's loop last published (``StatusBoard``, ``FleetMetrics``);
/// they never touch the dispatcher. `/api/status` with another selection of episodes than the published
/// one (``EpisodeSelection``) and control handlers send their request to the loop through the
/// ``ControlChannel`` and wait for its answer. A one-shot coordinator whose port cannot be bound logs it
/// and goes on without HTTP (a dashboard must never stop a batch); `coordinator serve`, which takes its
/// batches over HTTP, stops with a configuration error instead (`required`).
struct StatusServer: Service {
    let host: String
    let port: Int
    let board: StatusBoard
    let metrics: FleetMetrics
    var control: ControlChannel?
    /// Required of every request but `/health` when set (`--http-token`).
    var token: String?
    var required = false
    /// Idle and header-read timeout and connection cap (`REELFARM_HTTP_IDLE_TIMEOUT`,
    /// `REELFARM_HTTP_MAX_CONNECTIONS`).
    var limits = Limits()
    let logger: Logger
    /// Called once: with the bound host and port when the server listens (port 0 resolved), or with nil
    /// when it could not listen and the coordinator goes on without HTTP (`--ready-file`).
    var onListening: @Sendable ((host: String, port: Int)?) -> Void = { _ in }

    /// What one HTTP client may hold. Unauthenticated clients reach the server before any token check, so
    /// these bound what anyone who can connect can tie up.
    struct Limits: Sendable, Equatable {
        /// A connection that has not sent a complete request head within this time of connecting, or of its
        /// previous response, is closed (bytes trickling in do not extend it: the clock restarts only on a
        /// whole request head or body part). The default is 10 s.
        var idleTimeout: Duration = .seconds(10)
        /// Connections open at once. Beyond it new connections wait in the kernel's listen backlog (no file
        /// descriptor is used) until one closes. Half the usual limit of 1,024 open files, so that the
        /// journal, `summary.json` and the ZeroMQ connections always find a descriptor, and high enough that
        /// a few hundred idle clients do not queue `/health` behind them. The default is 512.
        var maxConnections = 512
    }

    /// The port could not be bound and HTTP is required.
    struct CannotServe: Error, CustomStringConvertible {
        var description: String
    }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        if let token { router.add(middleware: TokenCheck(token: token)) }
        let board = self.board
        let metrics = self.metrics
        let control = self.control
        let everyEpisode = SharedDocument(maxAge: .seconds(1))
        router.get("/") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(string: DashboardPage.html))
            )
        }
        router.get("/api/status") { request, _ in
            await Self.status(request, board: board, control: control, everyEpisode: everyEpisode)
        }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.exposition()))
            )
        }
        if let control {
            ControlAPI(board: board, control: control).register(on: router)
        }
        router.get("/health") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#))
            )
        }
        return router
    }

    /// `GET /api/status[?episodes=recent|all|none][&offset=N][&limit=M]`: the published document, or one
    /// the loop makes now for another selection of episodes.
    private static func status(
        _ request: Request,
        board: StatusBoard,
        control: ControlChannel?,
        everyEpisode: SharedDocument
    ) async -> Response {
        let query = request.uri.queryParameters
        let json: [UInt8]
        do {
            let selection = try EpisodeSelection.parse(
                episodes: query.get("episodes").map { String($0) },
                offset: query.get("offset").map { String($0) },
                limit: query.get("limit").map { String($0) }
            )
            switch selection {
            case .standard:
                json = board.json
            case .none:
                guard var status = board.status else { return Self.json(board.json) }
                status.episodes = []
                status.episodeList = .init(view: "none", listed: 0, total: status.progress.total)
                json = status.json
            case .all:
                guard let control else {
                    throw ControlError.unavailable("this coordinator lists its recent episodes only")
                }
                // Megabytes for a big batch: concurrent requests share one document (at most 1 s old),
                // made off the coordinator's loop, and its memory goes back to the system after.
                let body = try await everyEpisode.get {
                    let source = try await control.status().get()
                    return ByteBuffer(bytes: source.status(.all).json)
                }
                return Response(
                    status: .ok,
                    headers: [.contentType: "application/json", .cacheControl: "no-store"],
                    body: .init(byteBuffer: body)
                )
            default:
                guard let control else {
                    throw ControlError.unavailable("this coordinator lists its recent episodes only")
                }
                json = try await control.status().get().status(selection).json
            }
        } catch let error as ControlError {
            return ControlAPI.error(error)
        } catch {
            return ControlAPI.error(.internalServerError, "\(error)")
        }
        return Self.json(json)
    }

    private static func json(_ bytes: [UInt8]) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes))
        )
    }

    func run() async throws {
        let logger = self.logger
        let onListening = self.onListening
        let app = Application(
            router: router(),
            server: .http1(configuration: .init(idleTimeout: TimeAmount(limits.idleTimeout))),
            configuration: .init(
                address: .hostname(host, port: port),
                serverName: "reelfarm-coordinator",
                availableConnectionsDelegate: MaximumAvailableConnections(limits.maxConnections, logger: logger)
            ),
            onServerRunning: { channel in
                let address = channel.localAddress
                logger.info(
                    "dashboard and status API on http://\(address?.ipAddress ?? host):\(address?.port ?? port)/",
                    metadata: [
                        "metrics": "/metrics", "status": "/api/status",
                        "idle_timeout": "\(limits.idleTimeout.shortDescription)",
                        "max_connections": "\(limits.maxConnections)",
                    ]
                )
                onListening((address?.ipAddress ?? host, address?.port ?? port))
            },
            logger: Logger(label: "http")
        )
        do {
            try await app.runService()
        } catch  where required {
            throw CannotServe(
                description:
                    "cannot serve HTTP on \(host):\(port) (\(error)); coordinator serve needs it: choose another --http HOST:PORT"
            )
        } catch {
            logger.warning(
                "HTTP disabled: cannot serve on \(host):\(port)",
                metadata: ["error": "\(error)", "hint": "choose another --http HOST:PORT, or --http off"]
            )
            onListening(nil)
            try? await gracefulShutdown()
        }
    }

    /// Parses `--http`: `off`, `PORT`, `HOST:PORT` (`127.0.0.1:8090` by default).
    static func parse(_ text: String) throws(ConfigurationError) -> (host: String, port: Int)? {
        if text == "off" { return nil }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        let host = parts.count == 2 ? String(parts[0]) : "127.0.0.1"
        guard let port = Int(parts.last ?? ""), (0...65535).contains(port), !host.isEmpty, parts.count <= 2 else {
            throw ConfigurationError("--http must be off, PORT or HOST:PORT (e.g. 127.0.0.1:8090), got \"\(text)\"")
        }
        return (host, port)
    }
}

/// Refuses every request but `GET /health` without the API token, given as `Authorization: Bearer TOKEN` or
/// `?token=TOKEN` (the dashboard page passes its own `?token=` on to the API). Compared in constant time.
struct TokenCheck<Context: RequestContext>: RouterMiddleware {
    let token: String

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        if request.uri.path == "/health" { return try await next(request, context) }
        var given = request.uri.queryParameters.get("token").map { String($0) }
        if let header = request.headers[.authorization], header.hasPrefix("Bearer ") {
            given = String(header.dropFirst("Bearer ".count))
        }
        guard let given, APIToken.matches(given, token) else {
            return ControlAPI.error(
                .unauthorized,
                "this coordinator's HTTP API needs its token: Authorization: Bearer TOKEN, ?token=TOKEN, or REELFARM_HTTP_TOKEN for the coordinator's client commands"
            )
        }
        return try await next(request, context)
    }

}

/// The HTTP API token's comparison.
enum APIToken {
    /// Whether `given` is the token, in time independent of where the first difference is.
    static func matches(_ given: String, _ token: String) -> Bool {
        let a = Array(given.utf8)
        let b = Array(token.utf8)
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in a.indices { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}

/// One expensive document shared by the requests that ask for it within `maxAge`: the first request makes
/// it, the others wait for the same result. It is dropped `maxAge` after it was made, and the C heap is
/// trimmed then, so that a burst of big answers does not leave the process holding their memory.
final class SharedDocument: Sendable {
    private struct Current {
        var task: Task<ByteBuffer, any Error>
        var started: ContinuousClock.Instant
        var generation: Int
    }

    let maxAge: Duration
    private let current = Mutex<Current?>(nil)
    private let generations = Mutex(0)

    init(maxAge: Duration) {
        self.maxAge = maxAge
    }

    func get(_ make: @escaping @Sendable () async throws -> ByteBuffer) async throws -> ByteBuffer {
        let maxAge = self.maxAge
        let task = current.withLock { c -> Task<ByteBuffer, any Error> in
            if let c, ContinuousClock.now - c.started < maxAge { return c.task }
            let generation = generations.withLock { g in
                g += 1
                return g
            }
            let task = Task { try await make() }
            c = Current(task: task, started: .now, generation: generation)
            Task { [weak self] in
                _ = try? await task.value
                try? await Task.sleep(for: maxAge)
                self?.drop(generation)
            }
            return task
        }
        return try await task.value
    }

    private func drop(_ generation: Int) {
        current.withLock { c in
            if c?.generation == generation { c = nil }
        }
        FreeHeap.release()
    }
}

import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Shared

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
    let logger: Logger

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
        router.get("/") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(string: DashboardPage.html))
            )
        }
        router.get("/api/status") { request, _ in
            await Self.status(request, board: board, control: control)
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
    private static func status(_ request: Request, board: StatusBoard, control: ControlChannel?) async -> Response {
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
            default:
                guard let control else {
                    throw ControlError.unavailable("this coordinator lists its recent episodes only")
                }
                json = try await control.status(selection).get().json
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
        let app = Application(
            router: router(),
            configuration: .init(address: .hostname(host, port: port), serverName: "reelfarm-coordinator"),
            onServerRunning: { channel in
                let address = channel.localAddress
                logger.info(
                    "dashboard and status API on http://\(address?.ipAddress ?? host):\(address?.port ?? port)/",
                    metadata: ["metrics": "/metrics", "status": "/api/status"]
                )
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

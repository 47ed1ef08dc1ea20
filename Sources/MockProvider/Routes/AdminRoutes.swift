import Hummingbird

/// `GET /health`, `GET /stats`, `GET /stats/requests`, `POST /stats/reset`, `GET /admin/config` and
/// `POST /admin/config`.
///
/// `GET /stats/requests[?since_ms=X]` answers the request log, oldest first, only the entries with `t_ms > X` when
/// `since_ms` is given; a `since_ms` that is not a finite number gets 400.
///
/// `POST /admin/config` takes the configuration JSON of ``MockConfig``: by default it is applied over the
/// configuration the server started with (CLI flags and `--config` file), with `?merge=true` over the current one.
/// It answers the resulting configuration, or 400 with an OpenAI-style error naming the bad field.
struct AdminRoutes {
    let engine: MockEngine
    /// What `POST /admin/config` starts from when it does not merge.
    let startupConfig: MockConfig

    private struct Status: Encodable {
        var status: String
    }

    func register(on router: Router<BasicRequestContext>) {
        router.get("/health") { _, _ in Response.json(.ok, Status(status: "ok")) }
        router.get("/stats") { _, _ in Response.json(.ok, engine.stats()) }
        router.get("/stats/requests") { request, _ in requestLog(request) }
        router.get("/stats/billed") { _, _ in Response.json(.ok, engine.billing()) }
        router.post("/stats/reset") { _, _ in
            engine.resetStats()
            return Response.json(.ok, engine.stats())
        }
        router.get("/admin/config") { _, _ in
            Response.bytes(.ok, Array(engine.config.jsonData()), contentType: "application/json")
        }
        router.post("/admin/config") { request, _ in try await postConfig(request) }
    }

    func requestLog(_ request: Request) -> Response {
        guard let value = request.uri.queryParameters.get("since_ms") else {
            return Response.json(.ok, engine.requestLog())
        }
        guard let sinceMs = Double(value), sinceMs.isFinite else {
            return ErrorReplies.openAI(
                .badRequest,
                message: "since_ms: expected a number of milliseconds",
                type: "invalid_request_error",
                param: "since_ms",
                code: nil
            )
        }
        return Response.json(.ok, engine.requestLog(sinceMs: sinceMs))
    }

    func postConfig(_ request: Request) async throws -> Response {
        let limit = engine.config.maxBodyBytes
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: limit)
        } catch {
            return ErrorReplies.openAIInvalidRequest(.tooLarge(limit: limit))
        }
        let merge = request.uri.queryParameters.get("merge") == "true"
        do {
            let config = try MockConfig.decode(body.readableBytesView, over: merge ? engine.config : startupConfig)
            engine.apply(config)
            return Response.bytes(.ok, Array(config.jsonData()), contentType: "application/json")
        } catch {
            return ErrorReplies.openAI(.badRequest, message: error.message, type: "invalid_request_error", code: nil)
        }
    }
}

import Hummingbird

/// `GET /health`, `GET /stats`, `POST /stats/reset`, `GET /admin/config` and `POST /admin/config`.
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
        router.post("/stats/reset") { _, _ in
            engine.resetStats()
            return Response.json(.ok, engine.stats())
        }
        router.get("/admin/config") { _, _ in
            Response.bytes(.ok, Array(engine.config.jsonData()), contentType: "application/json")
        }
        router.post("/admin/config") { request, _ in try await postConfig(request) }
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

import Hummingbird

/// `POST /hf/models/{org}/{model}` (also `/hf-inference/models/{org}/{model}`): Hugging Face text-to-image,
/// answering raw PNG bytes.
///
/// With `cold_start_requests: K`, the first K requests to each model get 503 `{"error":"Model org/model is currently
/// loading","estimated_time":…}`; a request with `X-Wait-For-Model: true` (or `"options":{"wait_for_model":true}`)
/// instead waits `estimated_time_s` and succeeds, and the model counts as loaded from then on.
///
/// Before admission: `api_keys` (401 `huggingface/invalid_token`), the body, then `known_models` (404
/// `huggingface/model_not_found`). A request refused there uses no limit.
struct HuggingFaceRoutes {
    struct TextToImageRequest: Decodable {
        struct Parameters: Decodable {
            var width: Int?
            var height: Int?
        }

        struct Options: Decodable {
            var waitForModel: Bool?

            private enum CodingKeys: String, CodingKey {
                case waitForModel = "wait_for_model"
            }
        }

        var inputs: String
        var parameters: Parameters?
        var options: Options?
    }

    let engine: MockEngine

    func register(on router: Router<BasicRequestContext>) {
        // `/hf-inference/models/…` mirrors the real router URL, so either base URL works.
        for path in ["/hf/models/:org/:model", "/hf-inference/models/:org/:model"] {
            router.post(RouterPath(path)) { request, context in
                let model = "\(context.parameters.get("org") ?? "")/\(context.parameters.get("model") ?? "")"
                return try await textToImage(request, model: model)
            }
        }
    }

    func textToImage(_ request: Request, model: String) async throws -> Response {
        let endpoint = Endpoint.textToImage
        let config = engine.config
        if !request.hasAPIKey(in: config.huggingface.apiKeys) {
            return refuse(.auth, fixture: "huggingface/invalid_token", model: model)
        }
        let body: TextToImageRequest
        switch await request.decodeJSONBody(TextToImageRequest.self, limit: config.maxBodyBytes) {
        case .failure(let error):
            _ = engine.recordBadRequest(endpoint)
            return ErrorReplies.huggingFaceInvalidRequest(error)
        case .success(let decoded):
            body = decoded
        }
        if let known = config.huggingface.knownModels, !known.contains(model) {
            return refuse(.notFound, fixture: "huggingface/model_not_found", model: model)
        }
        let size = PNGWriter.cappedSize(
            width: body.parameters?.width ?? 1_024,
            height: body.parameters?.height ?? 1_024,
            maxSide: config.imageMaxSide
        )
        let waitForModel =
            request.headers[.waitForModel]?.lowercased() == "true" || body.options?.waitForModel == true
        let admission = engine.admit(AdmissionRequest(endpoint: endpoint, model: model, waitForModel: waitForModel))
        let png = {
            PNGWriter.solid(width: size.width, height: size.height, color: PNGWriter.color(for: body.inputs))
        }
        return try await serve(
            admission,
            endpoint: endpoint,
            engine: engine,
            success: {
                engine.bill(.huggingface) {
                    $0.images += 1
                    $0.imagePixels += (body.parameters?.width ?? 1_024) * (body.parameters?.height ?? 1_024)
                }
                return .bytes(.ok, png(), contentType: "image/png")
            },
            malformed: { .bytes(.ok, PNGWriter.truncated(png()), contentType: "image/png") },
            rejected: { ErrorReplies.huggingFace($0, model: model) },
            forced: { FixtureReplies.forced($0, model: model) }
        )
    }

    /// Refuses a request before admission with fixture `name`, or the mock's own reply for `kind` without it.
    private func refuse(_ kind: FailureKind, fixture name: String, model: String) -> Response {
        FixtureReplies.refuse(name, engine: engine, endpoint: .textToImage, model: model) {
            (ErrorReplies.huggingFace(Rejection(kind: kind, window: .zero, model: model)), .failed(kind))
        }.0
    }
}

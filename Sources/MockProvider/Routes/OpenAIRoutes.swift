import Foundation
import Hummingbird
import Protocol
import ProviderFixtures

/// `POST /v1/chat/completions`, `/v1/audio/speech`, `/v1/images/generations`, `GET /v1/models` and
/// `GET /v1/models/{model}`.
///
/// Every reply, errors included, carries `x-ratelimit-{limit,remaining,reset}-requests` when the provider has a
/// request limit, and chat replies also the `-tokens` trio; only a fixture forced by `force_failures[].fixture` is
/// sent with exactly its recorded headers.
///
/// Before admission, a request is checked against the configuration in this order: `api_keys` (401
/// `openai/invalid_api_key`), the body, `known_models` (404 model not found), then the parameters the named model
/// refuses (`reasoning_models`, `gpt-image-*` options, sizes, `known_voices`). A request refused there uses no limit.
struct OpenAIRoutes {
    let engine: MockEngine

    /// What `GET /v1/models` lists when `known_models` is null.
    static let defaultModels = [
        "gpt-4o-mini", "gpt-6-luna", "gpt-image-1", "gpt-image-2.6-flare", "gpt-4o-mini-tts", "tts-1",
    ]

    func register(on router: Router<BasicRequestContext>) {
        router.post("/v1/chat/completions") { request, _ in try await chat(request) }
        router.post("/v1/audio/speech") { request, _ in try await speech(request) }
        router.post("/v1/images/generations") { request, _ in try await images(request) }
        router.get("/v1/models") { request, _ in try await listModels(request) }
        // Model ids may hold slashes (`org/model` on vLLM), so the rest of the path is the id.
        router.get("/v1/models/**") { request, context in
            try await retrieveModel(request, model: context.parameters.getCatchAll().joined(separator: "/"))
        }
    }

    // MARK: - Chat

    func chat(_ request: Request) async throws -> Response {
        let endpoint = Endpoint.chatCompletions
        let config = engine.config
        if let refusal = checkKey(request, endpoint: endpoint, config: config.openai) { return refusal }
        let chat: OpenAI.ChatRequest
        switch await request.decodeJSONBody(OpenAI.ChatRequest.self, limit: config.maxBodyBytes) {
        case .failure(let error): return refuse(error, endpoint: endpoint)
        case .success(let decoded): chat = decoded
        }
        guard !chat.messages.isEmpty else {
            return refuse(.invalid("'messages' must contain at least one message."), endpoint: endpoint)
        }
        if let refusal = checkModel(chat.model, endpoint: endpoint, config: config.openai) { return refusal }
        if let refusal = checkReasoningParameters(chat, config: config.openai) { return refusal }
        let admission = engine.admit(
            AdmissionRequest(
                endpoint: endpoint,
                tokenCost: chat.promptTokens + (chat.maxCompletionTokens ?? chat.maxTokens ?? 256)
            )
        )
        let response = try await serve(
            admission,
            endpoint: endpoint,
            engine: engine,
            success: { chatReply(chat, content: chatContent(chat, config: config)) },
            malformed: { malformedChatReply(chat, config: config, sequence: admission.sequence) },
            rejected: { ErrorReplies.openAI($0, endpoint: endpoint, model: chat.model ?? Self.defaultChatModel) },
            forced: { FixtureReplies.forced($0, model: chat.model) }
        )
        if admission.isForcedFixture { return response }
        return response.withOpenAIHeaders(admission.limits, tokens: true)
    }

    /// The model a chat reply names when the request names none.
    static let defaultChatModel = "gpt-4o-mini"

    /// A reasoning model (`reasoning_models`) refuses `max_tokens`, and a `temperature` other than 1, as OpenAI's do.
    private func checkReasoningParameters(_ chat: OpenAI.ChatRequest, config: ProviderConfig) -> Response? {
        guard let model = chat.model, config.reasoningModels.contains(model) else { return nil }
        if chat.maxTokens != nil {
            return refuse(
                fixture: "openai/chat_max_tokens_unsupported",
                endpoint: .chatCompletions,
                model: model,
                fallback: .init(
                    message: "Unsupported parameter: 'max_tokens' is not supported with this model. "
                        + "Use 'max_completion_tokens' instead.",
                    param: "max_tokens",
                    code: "unsupported_parameter"
                )
            )
        }
        if let temperature = chat.temperature, temperature != 1 {
            let value = temperature.rounded() == temperature ? String(Int(temperature)) : String(temperature)
            return refuse(
                fixture: "openai/chat_temperature_unsupported",
                endpoint: .chatCompletions,
                model: model,
                edit: { json in
                    json.editErrorMessage { $0.replace(#/support \S+ with/#, with: "support \(value) with") }
                },
                fallback: .init(
                    message: "Unsupported value: 'temperature' does not support \(value) with this model. "
                        + "Only the default (1) value is supported.",
                    param: "temperature",
                    code: "unsupported_value"
                )
            )
        }
        return nil
    }

    /// A script shaped by `config.scriptLines` and `config.scriptBroll` in JSON mode, plain text otherwise.
    private func chatContent(_ chat: OpenAI.ChatRequest, config: MockConfig) -> String {
        if chat.wantsJSON {
            return ScriptGenerator.json(
                for: chat.prompt,
                lines: config.scriptLines,
                broll: config.scriptBroll,
                narration: config.scriptNarration
            )
        }
        return "This is a mock reply to: \(chat.prompt.prefix(200))"
    }

    private func chatReply(_ chat: OpenAI.ChatRequest, content: String) -> Response {
        .json(.ok, completion(chat, content: content))
    }

    private func completion(_ chat: OpenAI.ChatRequest, content: String) -> OpenAI.ChatCompletion {
        let completionTokens = max(1, content.count / 4)
        engine.bill(.openai) {
            $0.promptTokens += chat.promptTokens
            $0.completionTokens += completionTokens
        }
        return OpenAI.ChatCompletion(
            id: "chatcmpl-mock\(String(StableHash.fnv1a(chat.prompt + content), radix: 16))",
            created: Int(Date().timeIntervalSince1970),
            model: chat.model ?? Self.defaultChatModel,
            choices: [.init(index: 0, message: .init(role: "assistant", content: content), finishReason: "stop")],
            usage: .init(
                promptTokens: chat.promptTokens,
                completionTokens: completionTokens,
                totalTokens: chat.promptTokens + completionTokens
            )
        )
    }

    /// Alternates between a reply cut off mid-JSON and a well-formed reply whose content is JSON but not a script.
    private func malformedChatReply(_ chat: OpenAI.ChatRequest, config: MockConfig, sequence: UInt64) -> Response {
        if sequence % 2 == 0 {
            return .truncatedJSON(completion(chat, content: chatContent(chat, config: config)))
        }
        return chatReply(chat, content: #"{"title":"The Missing Scenes","characters":[]}"#)
    }

    // MARK: - Speech

    func speech(_ request: Request) async throws -> Response {
        let endpoint = Endpoint.audioSpeech
        let config = engine.config.openai
        if let refusal = checkKey(request, endpoint: endpoint, config: config) { return refusal }
        let speech: OpenAI.SpeechRequest
        switch await request.decodeJSONBody(OpenAI.SpeechRequest.self, limit: engine.config.maxBodyBytes) {
        case .failure(let error): return refuse(error, endpoint: endpoint)
        case .success(let decoded): speech = decoded
        }
        guard !speech.input.isEmpty, speech.input.count <= 4_096 else {
            return refuse(.invalid("'input' must be between 1 and 4096 characters."), endpoint: endpoint)
        }
        if let refusal = checkModel(speech.model, endpoint: endpoint, config: config) { return refusal }
        if let voices = config.knownVoices, let voice = speech.voice, !voices.contains(voice) {
            // No recorded fixture for this one: OpenAI's invalid_value envelope, as for other enum parameters.
            let supported = voices.map { "'\($0)'" }
            let list =
                supported.count > 1
                ? supported.dropLast().joined(separator: ", ") + ", and " + supported.last! : supported.joined()
            return refuse(
                .invalid("Invalid value: '\(voice)'. Supported values are: \(list)."),
                endpoint: endpoint,
                param: "voice"
            )
        }
        let admission = engine.admit(AdmissionRequest(endpoint: endpoint))
        let response = try await serve(
            admission,
            endpoint: endpoint,
            engine: engine,
            success: {
                engine.bill(.openai) { $0.characters += speech.input.count }
                return .bytes(
                    .ok,
                    WAVWriter.tone(seconds: WAVWriter.duration(forText: speech.input)),
                    contentType: "audio/wav"
                )
            },
            malformed: { .bytes(.ok, WAVWriter.truncated(forText: speech.input), contentType: "audio/wav") },
            rejected: { ErrorReplies.openAI($0, endpoint: endpoint, model: speech.model) },
            forced: { FixtureReplies.forced($0, model: speech.model, voiceId: speech.voice) }
        )
        if admission.isForcedFixture { return response }
        return response.withOpenAIHeaders(admission.limits, tokens: false)
    }

    // MARK: - Images

    func images(_ request: Request) async throws -> Response {
        let endpoint = Endpoint.imagesGenerations
        let config = engine.config
        if let refusal = checkKey(request, endpoint: endpoint, config: config.openai) { return refusal }
        let image: OpenAI.ImageRequest
        switch await request.decodeJSONBody(OpenAI.ImageRequest.self, limit: config.maxBodyBytes) {
        case .failure(let error): return refuse(error, endpoint: endpoint)
        case .success(let decoded): image = decoded
        }
        if let refusal = checkModel(image.model, endpoint: endpoint, config: config.openai) { return refusal }
        let family = image.model.map(ImageModelFamily.init(model:))
        if family?.refusesResponseFormat == true, image.responseFormat != nil {
            return refuse(
                fixture: "openai/image_response_format_unsupported",
                endpoint: endpoint,
                model: image.model,
                fallback: .init(
                    message: "Unknown parameter: 'response_format'.",
                    param: "response_format",
                    code: "unknown_parameter"
                )
            )
        }
        if let family, let size = image.size, let message = family.sizeError(size) {
            return refuse(
                fixture: "openai/image_invalid_size",
                endpoint: endpoint,
                model: image.model,
                edit: { json in json.editErrorMessage { $0 = message } },
                fallback: .init(message: message, param: "size", code: "invalid_value")
            )
        }
        if image.responseFormat == "url" {
            return refuse(
                .invalid("The mock only returns images as b64_json; set 'response_format' to 'b64_json'."),
                endpoint: endpoint,
                param: "response_format"
            )
        }
        let count = image.n ?? 1
        guard (1...10).contains(count) else {
            return refuse(.invalid("'n' must be between 1 and 10."), endpoint: endpoint, param: "n")
        }
        let requested: (width: Int, height: Int)
        if let size = image.size, size != "auto" {
            guard let parsed = PNGWriter.parseSize(size) else {
                return refuse(.invalid("Invalid 'size': \(size)."), endpoint: endpoint, param: "size")
            }
            requested = parsed
        } else {
            requested = (1_024, 1_024)
        }
        let size = PNGWriter.cappedSize(width: requested.width, height: requested.height, maxSide: config.imageMaxSide)
        let admission = engine.admit(AdmissionRequest(endpoint: endpoint))
        let response = try await serve(
            admission,
            endpoint: endpoint,
            engine: engine,
            success: {
                engine.bill(.openai) {
                    $0.images += count
                    $0.imagePixels += count * requested.width * requested.height
                }
                return imagesReply(image, count: count, width: size.width, height: size.height)
            },
            malformed: {
                if admission.sequence % 2 == 0 {
                    return .truncatedJSON(imagesBody(image, count: count, width: size.width, height: size.height))
                }
                let notPNG = Data("this is not a PNG".utf8).base64EncodedString()
                let data = [OpenAI.ImagesResponse.Image(b64JSON: notPNG, revisedPrompt: image.prompt)]
                return .json(.ok, OpenAI.ImagesResponse(created: Int(Date().timeIntervalSince1970), data: data))
            },
            rejected: { ErrorReplies.openAI($0, endpoint: endpoint, model: image.model) },
            forced: { FixtureReplies.forced($0, model: image.model) }
        )
        if admission.isForcedFixture { return response }
        return response.withOpenAIHeaders(admission.limits, tokens: false)
    }

    private func imagesReply(_ image: OpenAI.ImageRequest, count: Int, width: Int, height: Int) -> Response {
        .json(.ok, imagesBody(image, count: count, width: width, height: height))
    }

    private func imagesBody(_ image: OpenAI.ImageRequest, count: Int, width: Int, height: Int) -> OpenAI.ImagesResponse
    {
        let data = (0..<count).map { index in
            let prompt = index == 0 ? image.prompt : "\(image.prompt) #\(index)"
            let png = PNGWriter.solid(width: width, height: height, color: PNGWriter.color(for: prompt))
            return OpenAI.ImagesResponse.Image(b64JSON: Data(png).base64EncodedString(), revisedPrompt: image.prompt)
        }
        return OpenAI.ImagesResponse(created: Int(Date().timeIntervalSince1970), data: data)
    }

    // MARK: - Models

    /// `GET /v1/models/{model}`: `openai/models_retrieve_success` naming `model`, or not found (`known_models`).
    func retrieveModel(_ request: Request, model: String) async throws -> Response {
        let endpoint = Endpoint.models
        let config = engine.config.openai
        if let refusal = checkKey(request, endpoint: endpoint, config: config) { return refusal }
        if let refusal = checkModel(model, endpoint: endpoint, config: config) { return refusal }
        let admission = engine.admit(AdmissionRequest(endpoint: endpoint))
        let response = try await serve(
            admission,
            endpoint: endpoint,
            engine: engine,
            success: { modelReply(model) },
            malformed: { .truncatedJSON(Self.modelObject(model)) },
            rejected: { ErrorReplies.openAI($0, endpoint: endpoint, model: model) },
            forced: { FixtureReplies.forced($0, model: model) }
        )
        if admission.isForcedFixture { return response }
        return response.withOpenAIHeaders(admission.limits, tokens: false)
    }

    /// `GET /v1/models`: `{"object":"list","data":[…]}` with `known_models`, or ``defaultModels`` when it is null.
    func listModels(_ request: Request) async throws -> Response {
        let endpoint = Endpoint.models
        let config = engine.config.openai
        if let refusal = checkKey(request, endpoint: endpoint, config: config) { return refusal }
        let list = JSONValue.object([
            "object": .string("list"),
            "data": .array((config.knownModels ?? Self.defaultModels).map(Self.modelObject)),
        ])
        let admission = engine.admit(AdmissionRequest(endpoint: endpoint))
        let response = try await serve(
            admission,
            endpoint: endpoint,
            engine: engine,
            success: { .bytes(.ok, Array(list.data), contentType: "application/json") },
            malformed: { .truncatedJSON(list) },
            rejected: { ErrorReplies.openAI($0, endpoint: endpoint, model: nil) },
            forced: { FixtureReplies.forced($0, model: nil) }
        )
        if admission.isForcedFixture { return response }
        return response.withOpenAIHeaders(admission.limits, tokens: false)
    }

    private func modelReply(_ model: String) -> Response {
        if let fixture = RecordedFixtures.servable("openai/models_retrieve_success") {
            return FixtureReplies.response(fixture, model: model)
        }
        return .bytes(.ok, Array(Self.modelObject(model).data), contentType: "application/json")
    }

    /// One model as `GET /v1/models/{model}` describes it: the recorded one, renamed.
    static func modelObject(_ model: String) -> JSONValue {
        if let fixture = RecordedFixtures.servable("openai/models_retrieve_success"),
            let json = fixture.substituting(model: model).json
        {
            return json
        }
        return .object([
            "id": .string(model), "object": .string("model"), "created": .integer(1_700_000_000),
            "owned_by": .string("system"),
        ])
    }

    // MARK: - Checks before admission

    /// `api_keys`: a request without one of them gets `openai/invalid_api_key`.
    private func checkKey(_ request: Request, endpoint: Endpoint, config: ProviderConfig) -> Response? {
        guard !request.hasAPIKey(in: config.apiKeys) else { return nil }
        return refuse(
            fixture: "openai/invalid_api_key",
            endpoint: endpoint,
            model: nil,
            fallback: .init(
                status: .unauthorized,
                message: "Incorrect API key provided. You can find your API key at "
                    + "https://platform.openai.com/account/api-keys.",
                param: nil,
                code: "invalid_api_key"
            )
        )
    }

    /// `known_models`: a request naming another model gets the endpoint's model-not-found fixture. A request naming
    /// no model is not checked.
    private func checkModel(_ model: String?, endpoint: Endpoint, config: ProviderConfig) -> Response? {
        guard let known = config.knownModels, let model, !known.contains(model) else { return nil }
        return refuse(
            fixture: ErrorReplies.openAIModelNotFound(endpoint),
            endpoint: endpoint,
            model: model,
            fallback: .init(
                status: .notFound,
                message: "The model `\(model)` does not exist or you do not have access to it.",
                param: nil,
                code: "model_not_found"
            )
        )
    }

    /// The OpenAI error sent when a fixture is missing.
    private struct Fallback {
        var status: HTTPResponse.Status = .badRequest
        var message: String
        var param: String?
        var code: String?
    }

    /// Refuses a request before admission with fixture `name` (or `fallback`), counted as the fixture's outcome.
    private func refuse(
        fixture name: String,
        endpoint: Endpoint,
        model: String?,
        edit: (inout JSONValue) -> Void = { _ in },
        fallback: Fallback
    ) -> Response {
        let (response, limits) = FixtureReplies.refuse(
            name,
            engine: engine,
            endpoint: endpoint,
            model: model,
            edit: edit
        ) {
            let response = ErrorReplies.openAI(
                fallback.status,
                message: fallback.message,
                type: "invalid_request_error",
                param: fallback.param,
                code: fallback.code
            )
            return (response, .ofFixture(status: fallback.status.code, body: fallback.message))
        }
        return response.withOpenAIHeaders(limits, tokens: endpoint == .chatCompletions)
    }

    // MARK: - Shared

    private func refuse(_ error: BodyError, endpoint: Endpoint, param: String? = nil) -> Response {
        let limits = engine.recordBadRequest(endpoint)
        var response = ErrorReplies.openAIInvalidRequest(error)
        if let param {
            response = ErrorReplies.openAI(
                error.status,
                message: error.message,
                type: "invalid_request_error",
                param: param,
                code: "invalid_value"
            )
        }
        return response.withOpenAIHeaders(limits, tokens: endpoint == .chatCompletions)
    }
}

extension Response {
    /// Adds OpenAI's rate-limit headers: the request trio when there is a request limit, the token trio for chat.
    func withOpenAIHeaders(_ limits: LimitState, tokens: Bool) -> Response {
        var response = self
        if let limit = limits.requestLimit {
            response.headers[.rateLimitLimitRequests] = String(limit)
            response.headers[.rateLimitRemainingRequests] = String(limits.remainingRequests)
            response.headers[.rateLimitResetRequests] = limits.resetRequests.goStyle
        }
        if tokens {
            response.headers[.rateLimitLimitTokens] = String(limits.tokenLimit)
            response.headers[.rateLimitRemainingTokens] = String(limits.remainingTokens)
            response.headers[.rateLimitResetTokens] = limits.resetTokens.goStyle
        }
        return response
    }
}

extension JSONValue {
    /// Changes `error.message` of an OpenAI error body, if it has one.
    mutating func editErrorMessage(_ edit: (inout String) -> Void) {
        guard var error = self["error"], var message = error["message"]?.string else { return }
        edit(&message)
        error["message"] = .string(message)
        self["error"] = error
    }
}

/// The image sizes an OpenAI image model takes, by family.
struct ImageModelFamily: Equatable {
    enum Sizes: Equatable {
        /// Only these (`gpt-image-1`, `-1-mini`, `-1.5`: also `auto`; `dall-e-3`).
        case fixed([String])
        /// `auto`, or any size whose sides are both multiples of 16 (`gpt-image-2` and later).
        case multiplesOf16
        /// Not checked (other models).
        case any
    }

    var sizes: Sizes
    /// GPT image models always answer base64 and refuse `response_format` (`openai/image_response_format_unsupported`).
    var refusesResponseFormat: Bool

    init(model: String) {
        if model.hasPrefix("gpt-image-") {
            refusesResponseFormat = true
            let version = model.dropFirst("gpt-image-".count).prefix { $0.isNumber || $0 == "." }
            let major = Int(version.prefix { $0.isNumber }) ?? 1
            sizes = major >= 2 ? .multiplesOf16 : .fixed(["1024x1024", "1536x1024", "1024x1536", "auto"])
        } else if model == "dall-e-3" {
            refusesResponseFormat = false
            sizes = .fixed(["1024x1024", "1792x1024", "1024x1792"])
        } else {
            refusesResponseFormat = false
            sizes = .any
        }
    }

    /// The error message for `size` when the family does not take it, `nil` when it does. For `gpt-image-2` and
    /// later it is the recorded one; for the fixed sets it is OpenAI's `invalid_value` wording for enum parameters.
    func sizeError(_ size: String) -> String? {
        switch sizes {
        case .any:
            return nil
        case .fixed(let allowed):
            guard !allowed.contains(size) else { return nil }
            let quoted = allowed.map { "'\($0)'" }
            return "Invalid value: '\(size)'. Supported values are: "
                + quoted.dropLast().joined(separator: ", ") + ", and " + quoted.last! + "."
        case .multiplesOf16:
            if size == "auto" { return nil }
            if let parsed = PNGWriter.parseSize(size), parsed.width % 16 == 0, parsed.height % 16 == 0 { return nil }
            return "Invalid size '\(size)'. Width and height must both be divisible by 16."
        }
    }
}

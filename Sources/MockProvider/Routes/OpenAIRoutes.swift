import Foundation
import Hummingbird

/// `POST /v1/chat/completions`, `/v1/audio/speech` and `/v1/images/generations`.
///
/// Every reply, errors included, carries `x-ratelimit-{limit,remaining,reset}-requests` when the provider has a
/// request limit, and chat replies also the `-tokens` trio.
struct OpenAIRoutes {
    let engine: MockEngine

    func register(on router: Router<BasicRequestContext>) {
        router.post("/v1/chat/completions") { request, _ in try await chat(request) }
        router.post("/v1/audio/speech") { request, _ in try await speech(request) }
        router.post("/v1/images/generations") { request, _ in try await images(request) }
    }

    // MARK: - Chat

    func chat(_ request: Request) async throws -> Response {
        let endpoint = Endpoint.chatCompletions
        let config = engine.config
        let chat: OpenAI.ChatRequest
        switch await request.decodeJSONBody(OpenAI.ChatRequest.self, limit: config.maxBodyBytes) {
        case .failure(let error): return refuse(error, endpoint: endpoint)
        case .success(let decoded): chat = decoded
        }
        guard !chat.messages.isEmpty else {
            return refuse(.invalid("'messages' must contain at least one message."), endpoint: endpoint)
        }
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
            rejected: ErrorReplies.openAI
        )
        return response.withOpenAIHeaders(admission.limits, tokens: true)
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
        return OpenAI.ChatCompletion(
            id: "chatcmpl-mock\(String(StableHash.fnv1a(chat.prompt + content), radix: 16))",
            created: Int(Date().timeIntervalSince1970),
            model: chat.model ?? "gpt-4o-mini",
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
        let speech: OpenAI.SpeechRequest
        switch await request.decodeJSONBody(OpenAI.SpeechRequest.self, limit: engine.config.maxBodyBytes) {
        case .failure(let error): return refuse(error, endpoint: endpoint)
        case .success(let decoded): speech = decoded
        }
        guard !speech.input.isEmpty, speech.input.count <= 4_096 else {
            return refuse(.invalid("'input' must be between 1 and 4096 characters."), endpoint: endpoint)
        }
        let admission = engine.admit(AdmissionRequest(endpoint: endpoint))
        let response = try await serve(
            admission,
            endpoint: endpoint,
            engine: engine,
            success: {
                .bytes(
                    .ok,
                    WAVWriter.tone(seconds: WAVWriter.duration(forText: speech.input)),
                    contentType: "audio/wav"
                )
            },
            malformed: { .bytes(.ok, WAVWriter.truncated(forText: speech.input), contentType: "audio/wav") },
            rejected: ErrorReplies.openAI
        )
        return response.withOpenAIHeaders(admission.limits, tokens: false)
    }

    // MARK: - Images

    func images(_ request: Request) async throws -> Response {
        let endpoint = Endpoint.imagesGenerations
        let config = engine.config
        let image: OpenAI.ImageRequest
        switch await request.decodeJSONBody(OpenAI.ImageRequest.self, limit: config.maxBodyBytes) {
        case .failure(let error): return refuse(error, endpoint: endpoint)
        case .success(let decoded): image = decoded
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
            success: { imagesReply(image, count: count, width: size.width, height: size.height) },
            malformed: {
                if admission.sequence % 2 == 0 {
                    return .truncatedJSON(imagesBody(image, count: count, width: size.width, height: size.height))
                }
                let notPNG = Data("this is not a PNG".utf8).base64EncodedString()
                let data = [OpenAI.ImagesResponse.Image(b64JSON: notPNG, revisedPrompt: image.prompt)]
                return .json(.ok, OpenAI.ImagesResponse(created: Int(Date().timeIntervalSince1970), data: data))
            },
            rejected: ErrorReplies.openAI
        )
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

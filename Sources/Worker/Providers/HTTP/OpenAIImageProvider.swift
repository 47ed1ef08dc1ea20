import Foundation

/// Draws images with OpenAI's `/images/generations`, as base64 in the JSON answer (providers.md §1).
///
/// Sends `response_format: b64_json` except to `gpt-image-*` models (they always answer base64 and
/// refuse the parameter). Writes `<workspace>/<item>.png` or `.jpg`, by the image's magic bytes.
struct OpenAIImageProvider: ImageProvider {
    var settings: OpenAISettings
    var caller: HTTPCaller

    static let service = "openai image"
    static let provider = "openai"

    /// - Parameter transport: `nil` uses the process-wide async-http-client transport.
    init(settings: OpenAISettings, call: HTTPCallSettings = .default, transport: (any HTTPTransport)? = nil) {
        self.init(settings: settings, caller: .standard(call, transport: transport))
    }

    init(settings: OpenAISettings, caller: HTTPCaller) {
        self.settings = settings
        self.caller = caller
    }

    func image(for request: ImageRequest, context: CallContext) async throws -> Image {
        guard context.workspace != nil else {
            throw ProviderError(.clientError, "\(Self.service): no workspace to write \(request.item) in")
        }
        let alwaysBase64 = settings.imageModel.lowercased().hasPrefix("gpt-image")
        let body = try ProviderJSON.encode(
            GenerationRequest(
                model: settings.imageModel,
                prompt: ImageReply.prompt(for: request),
                size: settings.imageSize,
                responseFormat: alwaysBase64 ? nil : "b64_json"
            )
        )
        let outgoing = ProviderRequest(
            url: ProviderURL.join(settings.baseURL, "images/generations"),
            headers: ProviderHeaders.json(bearer: settings.apiKey, accept: "application/json"),
            body: body,
            maxResponseBytes: HTTPBodyLimit.image
        )
        return try await ImageReply.fetch(
            outgoing,
            for: request,
            service: Self.service,
            provider: Self.provider,
            caller: caller,
            context: context
        )
    }

    private struct GenerationRequest: Encodable {
        var model: String
        var prompt: String
        var n = 1
        var size: String
        /// Left out of the JSON when `nil`.
        var responseFormat: String?

        init(model: String, prompt: String, size: String, responseFormat: String?) {
            self.model = model
            self.prompt = prompt
            self.size = size
            self.responseFormat = responseFormat
        }
    }
}

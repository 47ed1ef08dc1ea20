import Foundation
import Shared

/// Draws images with OpenAI's `/images/generations`, as base64 in the JSON answer (providers.md §1).
///
/// The request is shaped by the model's family (``OpenAIModels/ImageFamily``): GPT image models always
/// answer base64 and refuse `response_format`, so it is sent only to the others; `size` is one the family
/// takes; `quality` is always explicit where the family has it (it sets the price). Writes
/// `<workspace>/<item>.png` or `.jpg`, by the image's magic bytes.
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
        let body = try ProviderJSON.encode(Self.generationRequest(settings, prompt: ImageReply.prompt(for: request)))
        let outgoing = ProviderRequest(
            url: ProviderURL.join(settings.baseURL, "images/generations"),
            headers: ProviderHeaders.json(bearer: settings.apiKey, accept: "application/json"),
            body: body,
            maxResponseBytes: HTTPBodyLimit.image
        )
        let size = settings.resolvedImageSize.split(separator: "x").compactMap { Int($0) }
        let usage = PriceTable.Usage.image(
            model: settings.imageModel,
            width: size.count == 2 ? size[0] : 1024,
            height: size.count == 2 ? size[1] : 1024,
            quality: settings.resolvedImageQuality ?? ""
        )
        try context.meter.reserve(usage)
        let image = try await ImageReply.fetch(
            outgoing,
            for: request,
            service: Self.service,
            provider: Self.provider,
            caller: caller,
            context: context,
            target: settings.target(.image)
        )
        context.meter.charge(usage)
        return image
    }

    /// The body of one generation: `model`, `prompt`, `n: 1`, `size`, and `quality` and `response_format`
    /// where the family takes them.
    static func generationRequest(_ settings: OpenAISettings, prompt: String) -> GenerationRequest {
        let family = OpenAIModels.imageFamily(settings.imageModel)
        return GenerationRequest(
            model: settings.imageModel,
            prompt: prompt,
            size: settings.resolvedImageSize,
            quality: settings.resolvedImageQuality,
            responseFormat: OpenAIModels.refusesResponseFormat(family) ? nil : "b64_json"
        )
    }

    struct GenerationRequest: Encodable, Equatable {
        var model: String
        var prompt: String
        var n = 1
        var size: String
        /// Left out of the JSON when `nil`.
        var quality: String?
        /// Left out of the JSON when `nil`.
        var responseFormat: String?
    }
}

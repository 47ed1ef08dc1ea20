import Foundation
import Shared

/// Draws images with a Hugging Face text-to-image model (providers.md §2).
///
/// `POST {baseURL}/{org}/{model}` with `{"inputs": prompt, "parameters": {"width", "height"}}`. The answer
/// is the image itself (told by magic bytes or Content-Type), or `{"data":[{"b64_json"}]}`. A model that
/// is loading (503 with `estimated_time`) is waited for, up to `maxLoadingWait` in total, without using
/// up the retries.
struct HuggingFaceImageProvider: ImageProvider {
    var settings: HuggingFaceSettings
    var caller: HTTPCaller

    static let service = "huggingface image"
    static let provider = "huggingface"

    /// - Parameter transport: `nil` uses the process-wide async-http-client transport.
    init(settings: HuggingFaceSettings, call: HTTPCallSettings = .default, transport: (any HTTPTransport)? = nil) {
        self.init(
            settings: settings,
            caller: .standard(call, transport: transport, maxLoadingWait: settings.maxLoadingWait)
        )
    }

    /// The caller's policy should have `maxLoadingWait` set (``HTTPCaller/standard(_:transport:maxLoadingWait:)``
    /// does it for the other initialiser).
    init(settings: HuggingFaceSettings, caller: HTTPCaller) {
        self.settings = settings
        self.caller = caller
    }

    func image(for request: ImageRequest, context: CallContext) async throws -> Image {
        guard context.workspace != nil else {
            throw ProviderError(.clientError, "\(Self.service): no workspace to write \(request.item) in")
        }
        let body = try ProviderJSON.encode(
            TextToImageRequest(
                inputs: ImageReply.prompt(for: request),
                parameters: .init(width: settings.width, height: settings.height)
            )
        )
        let outgoing = ProviderRequest(
            url: ProviderURL.join(settings.baseURL, ProviderURL.path(settings.imageModel)),
            headers: ProviderHeaders.json(bearer: settings.token, accept: "image/png, image/jpeg, application/json"),
            body: body,
            maxResponseBytes: HTTPBodyLimit.image
        )
        let usage = PriceTable.Usage.image(
            model: settings.imageModel,
            width: settings.width,
            height: settings.height,
            quality: ""
        )
        try context.meter.reserve(usage)
        let image = try await ImageReply.fetch(
            outgoing,
            for: request,
            service: Self.service,
            provider: Self.provider,
            caller: caller,
            context: context,
            target: settings.target
        )
        context.meter.charge(usage)
        return image
    }

    private struct TextToImageRequest: Encodable {
        struct Parameters: Encodable {
            var width: Int
            var height: Int
        }

        var inputs: String
        var parameters: Parameters
    }
}

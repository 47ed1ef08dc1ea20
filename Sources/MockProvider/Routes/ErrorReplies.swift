import Hummingbird
import Protocol
import ProviderFixtures

/// The error replies of each provider.
///
/// Where a recorded fixture of the `ProviderFixtures` module shows the real reply for a failure kind, the reply is
/// that fixture (with the request's model or voice, and the retry and limit numbers the mock computed); otherwise it
/// is the shape described in shared/reference/providers.md §1–§3.
enum ErrorReplies {
    /// The fixture answering `kind` on `endpoint`, if one was recorded.
    static func fixtureName(for kind: FailureKind, endpoint: Endpoint) -> String? {
        switch (endpoint.provider, kind) {
        case (.openai, .rateLimit): "openai/rate_limit_requests"
        case (.openai, .billing): "openai/insufficient_quota"
        case (.openai, .auth): "openai/invalid_api_key"
        case (.openai, .notFound): openAIModelNotFound(endpoint)
        case (.huggingface, .billing): "huggingface/credits_exhausted"
        case (.huggingface, .modelLoading): "huggingface/model_loading"
        case (.huggingface, .auth): "huggingface/invalid_token"
        case (.huggingface, .notFound): "huggingface/model_not_found"
        case (.elevenlabs, .concurrency): "elevenlabs/too_many_concurrent_requests"
        case (.elevenlabs, .overload): "elevenlabs/system_busy"
        case (.elevenlabs, .billing): "elevenlabs/quota_exceeded"
        case (.elevenlabs, .auth): "elevenlabs/invalid_api_key"
        case (.elevenlabs, .notFound): "elevenlabs/voice_not_found"
        default: nil
        }
    }

    /// OpenAI's model-not-found fixture for `endpoint` (speech reuses chat's).
    static func openAIModelNotFound(_ endpoint: Endpoint) -> String {
        switch endpoint {
        case .imagesGenerations: "openai/image_model_not_found"
        case .models: "openai/models_retrieve_not_found"
        default: "openai/chat_model_not_found"
        }
    }

    /// The fixture reply for `rejection`, with the headers the mock computes (`retry-after`, `retry-after-ms`) over
    /// the recorded ones; `nil` when no fixture covers it.
    private static func fromFixture(
        _ rejection: Rejection,
        endpoint: Endpoint,
        model: String?,
        voiceId: String?
    ) -> Response? {
        guard let name = fixtureName(for: rejection.kind, endpoint: endpoint),
            let fixture = RecordedFixtures.servable(name)
        else { return nil }
        var response = FixtureReplies.response(fixture, model: model ?? rejection.model, voiceId: voiceId) { json in
            fillIn(&json, rejection: rejection)
        }
        response.setRetryAfter(for: rejection)
        return response
    }

    /// Puts the mock's own numbers into a recorded body: the limit and the wait in OpenAI's rate-limit message, the
    /// ceiling in ElevenLabs' concurrency message, `estimated_time_s` in Hugging Face's loading reply.
    private static func fillIn(_ json: inout JSONValue, rejection: Rejection) {
        switch rejection.kind {
        case .rateLimit:
            guard var error = json["error"], var message = error["message"]?.string else { return }
            if let limit = rejection.limit {
                message.replace(#/Limit \d+/#, with: "Limit \(limit)")
                message.replace(#/Used \d+/#, with: "Used \(limit)")
            }
            if let retryAfter = rejection.announcedRetryAfter {
                message.replace(
                    #/try again in (?:\d+(?:\.\d+)?(?:ms|h|m|s))+/#,
                    with: "try again in \(retryAfter.goStyle)"
                )
            }
            error["message"] = .string(message)
            json["error"] = error
        case .concurrency:
            guard let limit = rejection.limit, var detail = json["detail"], var message = detail["message"]?.string
            else { return }
            message.replace(#/maximum of \d+ concurrent/#, with: "maximum of \(limit) concurrent")
            detail["message"] = .string(message)
            json["detail"] = detail
        case .modelLoading:
            if json["estimated_time"] != nil, let estimatedTime = rejection.estimatedTime {
                json["estimated_time"] = .double(estimatedTime)
            }
        default:
            break
        }
    }

    /// OpenAI's reply to `rejection` on `endpoint` for a request naming `model`.
    static func openAI(_ rejection: Rejection, endpoint: Endpoint, model: String?) -> Response {
        fromFixture(rejection, endpoint: endpoint, model: model, voiceId: nil) ?? openAI(rejection)
    }

    /// Hugging Face's reply to `rejection` for a request to `model`.
    static func huggingFace(_ rejection: Rejection, model: String) -> Response {
        fromFixture(rejection, endpoint: .textToImage, model: model, voiceId: nil) ?? huggingFace(rejection)
    }

    /// ElevenLabs' reply to `rejection` for a request to voice `voiceId`.
    static func elevenLabs(_ rejection: Rejection, voiceId: String, model: String?) -> Response {
        fromFixture(rejection, endpoint: .textToSpeech, model: model, voiceId: voiceId) ?? elevenLabs(rejection)
    }

    // MARK: OpenAI: {"error":{"message","type","param","code"}}

    struct OpenAIError: Encodable {
        struct Detail: Encodable {
            var message: String
            var type: String
            var param: String?
            var code: String?

            func encode(to encoder: any Encoder) throws {
                // `param` and `code` are written as null rather than left out, as OpenAI does.
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(message, forKey: .message)
                try container.encode(type, forKey: .type)
                try container.encode(param, forKey: .param)
                try container.encode(code, forKey: .code)
            }

            private enum CodingKeys: String, CodingKey {
                case message, type, param, code
            }
        }

        var error: Detail
    }

    static func openAI(
        _ status: HTTPResponse.Status,
        message: String,
        type: String,
        param: String? = nil,
        code: String?
    ) -> Response {
        .json(status, OpenAIError(error: .init(message: message, type: type, param: param, code: code)))
    }

    static func openAIInvalidRequest(_ error: BodyError) -> Response {
        let code: String? = if case .tooLarge = error { "request_too_large" } else { nil }
        return openAI(error.status, message: error.message, type: "invalid_request_error", code: code)
    }

    static func openAI(_ rejection: Rejection) -> Response {
        switch rejection.kind {
        case .rateLimit:
            var message =
                "Rate limit reached for requests in organization org-mock on requests per "
                + "\(windowLabel(rejection.window))."
            if let limit = rejection.limit {
                message += " Limit: \(limit)/\(windowLabel(rejection.window))."
            }
            message += " Please try again in \((rejection.retryAfter ?? .zero).goStyle)."
            var response = openAI(.tooManyRequests, message: message, type: "requests", code: "rate_limit_exceeded")
            response.setRetryAfter(for: rejection)
            return response
        case .concurrency:
            let limit = rejection.limit.map(String.init) ?? "too many"
            return openAI(
                .tooManyRequests,
                message: "Too many concurrent requests: \(limit) are already in flight. Retry when one finishes.",
                type: "requests",
                code: "rate_limit_exceeded"
            )
        case .billing:
            return openAI(
                .tooManyRequests,
                message: "You exceeded your current quota, please check your plan and billing details. "
                    + "For more information on this error, read the docs: "
                    + "https://platform.openai.com/docs/guides/error-codes/api-errors.",
                type: "insufficient_quota",
                code: "insufficient_quota"
            )
        case .overload:
            return openAI(
                .serviceUnavailable,
                message: "The engine is currently overloaded, please try again later.",
                type: "server_error",
                code: nil
            )
        case .modelLoading:
            return openAI(
                .serviceUnavailable,
                message: "The model is currently loading, please try again later.",
                type: "server_error",
                code: nil
            )
        case .auth:
            return openAI(
                .unauthorized,
                message: "Incorrect API key provided. You can find your API key at "
                    + "https://platform.openai.com/account/api-keys.",
                type: "invalid_request_error",
                code: "invalid_api_key"
            )
        case .notFound:
            return openAI(
                .notFound,
                message: "The model `\(rejection.model ?? "unknown")` does not exist or you do not have access to it.",
                type: "invalid_request_error",
                code: "model_not_found"
            )
        case .serverError, .malformed, .timeout:
            return openAI(
                .internalServerError,
                message: "The server had an error while processing your request. Sorry about that!",
                type: "server_error",
                code: nil
            )
        }
    }

    // MARK: Hugging Face: {"error": "..."} (plus "estimated_time" while loading)

    struct HuggingFaceError: Encodable {
        var error: String
        var estimatedTime: Double?

        private enum CodingKeys: String, CodingKey {
            case error
            case estimatedTime = "estimated_time"
        }
    }

    static func huggingFaceInvalidRequest(_ error: BodyError) -> Response {
        .json(error.status, HuggingFaceError(error: error.message))
    }

    static func huggingFace(_ rejection: Rejection) -> Response {
        switch rejection.kind {
        case .modelLoading:
            return .json(
                .serviceUnavailable,
                HuggingFaceError(
                    error: "Model \(rejection.model ?? "unknown") is currently loading",
                    estimatedTime: rejection.estimatedTime ?? 20
                )
            )
        case .rateLimit:
            var response = Response.json(
                .tooManyRequests,
                HuggingFaceError(error: "Rate limit reached. You reached the request limit, please retry later.")
            )
            response.setRetryAfter(for: rejection)
            return response
        case .concurrency:
            let limit = rejection.limit.map(String.init) ?? "too many"
            return .json(
                .tooManyRequests,
                HuggingFaceError(error: "Too many concurrent requests: \(limit) are already in flight.")
            )
        case .billing:
            return .json(
                HTTPResponse.Status(code: 402, reasonPhrase: "Payment Required"),
                HuggingFaceError(
                    error: "You have exceeded your monthly included credits for Inference Providers. "
                        + "Subscribe to PRO to get 20x more monthly included credits."
                )
            )
        case .overload:
            return .json(.serviceUnavailable, HuggingFaceError(error: "Service Unavailable: the model is overloaded."))
        case .auth:
            return .json(.unauthorized, HuggingFaceError(error: "Invalid credentials in Authorization header"))
        case .notFound:
            return .json(.notFound, HuggingFaceError(error: "Repository not found"))
        case .serverError, .malformed, .timeout:
            return .json(.internalServerError, HuggingFaceError(error: "Internal Server Error"))
        }
    }

    // MARK: ElevenLabs: {"detail":{"status","message"}}

    struct ElevenLabsError: Encodable {
        struct Detail: Encodable {
            var status: String
            var message: String
        }

        var detail: Detail

        init(status: String, message: String) {
            detail = Detail(status: status, message: message)
        }
    }

    static func elevenLabsInvalidRequest(_ error: BodyError) -> Response {
        let status = if case .tooLarge = error { "request_too_large" } else { "invalid_request" }
        return .json(error.status, ElevenLabsError(status: status, message: error.message))
    }

    static func elevenLabs(_ rejection: Rejection) -> Response {
        switch rejection.kind {
        case .concurrency:
            let limit = rejection.limit.map(String.init) ?? "a limited number of"
            return .json(
                .tooManyRequests,
                ElevenLabsError(
                    status: "too_many_concurrent_requests",
                    message: "Too many concurrent requests. Your current subscription is associated with a maximum "
                        + "of \(limit) concurrent requests. Retry when a request finishes."
                )
            )
        case .overload:
            return .json(
                .tooManyRequests,
                ElevenLabsError(
                    status: "system_busy",
                    message: "Our services are experiencing high levels of traffic and your request could not be "
                        + "processed. Please try again shortly."
                )
            )
        case .rateLimit:
            var response = Response.json(
                .tooManyRequests,
                ElevenLabsError(status: "rate_limit_exceeded", message: "Too many requests. Please retry later.")
            )
            response.setRetryAfter(for: rejection)
            return response
        case .billing:
            return .json(
                .unauthorized,
                ElevenLabsError(
                    status: "quota_exceeded",
                    message: "This request exceeds your quota. You have 0 credits remaining."
                )
            )
        case .modelLoading:
            return .json(
                .serviceUnavailable,
                ElevenLabsError(status: "model_loading", message: "The model is loading, please retry shortly.")
            )
        case .auth:
            return .json(.unauthorized, ElevenLabsError(status: "invalid_api_key", message: "Invalid API key"))
        case .notFound:
            return .json(
                .badRequest,
                ElevenLabsError(status: "voice_not_found", message: "A voice with the voice_id was not found.")
            )
        case .serverError, .malformed, .timeout:
            return .json(
                .internalServerError,
                ElevenLabsError(status: "internal_server_error", message: "An internal error occurred.")
            )
        }
    }
}

import Hummingbird

/// `POST /elevenlabs/v1/text-to-speech/{voice_id}` (and `…/{voice_id}/stream`): ElevenLabs TTS.
///
/// Always answers WAV (`audio/wav`) whatever `output_format` says. Every reply carries
/// `current-concurrent-requests` and, when there is a ceiling, `maximum-concurrent-requests`. The `xi-api-key`
/// header is accepted and not checked.
struct ElevenLabsRoutes {
    struct TextToSpeechRequest: Decodable {
        var text: String
        var modelID: String?

        private enum CodingKeys: String, CodingKey {
            case text
            case modelID = "model_id"
        }
    }

    let engine: MockEngine

    func register(on router: Router<BasicRequestContext>) {
        router.post("/elevenlabs/v1/text-to-speech/:voice_id") { request, _ in try await textToSpeech(request) }
        router.post("/elevenlabs/v1/text-to-speech/:voice_id/stream") { request, _ in try await textToSpeech(request) }
    }

    func textToSpeech(_ request: Request) async throws -> Response {
        let endpoint = Endpoint.textToSpeech
        let speech: TextToSpeechRequest
        switch await request.decodeJSONBody(TextToSpeechRequest.self, limit: engine.config.maxBodyBytes) {
        case .failure(let error):
            let limits = engine.recordBadRequest(endpoint)
            return ErrorReplies.elevenLabsInvalidRequest(error).withElevenLabsHeaders(limits)
        case .success(let decoded):
            speech = decoded
        }
        guard !speech.text.isEmpty else {
            let limits = engine.recordBadRequest(endpoint)
            return ErrorReplies.elevenLabsInvalidRequest(.invalid("'text' must not be empty."))
                .withElevenLabsHeaders(limits)
        }
        let admission = engine.admit(AdmissionRequest(endpoint: endpoint))
        let response = try await serve(
            admission,
            endpoint: endpoint,
            engine: engine,
            success: {
                .bytes(.ok, WAVWriter.tone(seconds: WAVWriter.duration(forText: speech.text)), contentType: "audio/wav")
            },
            malformed: { .bytes(.ok, WAVWriter.truncated(forText: speech.text), contentType: "audio/wav") },
            rejected: ErrorReplies.elevenLabs
        )
        return response.withElevenLabsHeaders(admission.limits)
    }
}

extension Response {
    /// Adds `current-concurrent-requests` and, when there is a ceiling, `maximum-concurrent-requests`.
    func withElevenLabsHeaders(_ limits: LimitState) -> Response {
        var response = self
        response.headers[.currentConcurrentRequests] = String(limits.inFlight)
        if let maximum = limits.maxConcurrent {
            response.headers[.maximumConcurrentRequests] = String(maximum)
        }
        return response
    }
}

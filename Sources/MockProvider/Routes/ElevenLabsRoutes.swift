import Hummingbird

/// `POST /elevenlabs/v1/text-to-speech/{voice_id}` (and `…/{voice_id}/stream`): ElevenLabs TTS.
///
/// Always answers WAV (`audio/wav`) whatever `output_format` says. Every reply carries
/// `current-concurrent-requests` and, when there is a ceiling, `maximum-concurrent-requests`.
///
/// Before admission: `api_keys` against the `xi-api-key` header (401 `elevenlabs/invalid_api_key`), the body,
/// `known_voices` (`elevenlabs/voice_not_found`), then `paid_voices` (402 `elevenlabs/paid_plan_required`). A
/// request refused there uses no limit.
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
        for path in ["/elevenlabs/v1/text-to-speech/:voice_id", "/elevenlabs/v1/text-to-speech/:voice_id/stream"] {
            router.post(RouterPath(path)) { request, context in
                try await textToSpeech(request, voiceId: context.parameters.get("voice_id") ?? "")
            }
        }
    }

    func textToSpeech(_ request: Request, voiceId: String) async throws -> Response {
        let endpoint = Endpoint.textToSpeech
        let config = engine.config.elevenlabs
        if !request.hasAPIKey(in: config.apiKeys, header: .xiAPIKey) {
            return refuse(.auth, fixture: "elevenlabs/invalid_api_key", voiceId: voiceId, model: nil)
        }
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
        if let voices = config.knownVoices, !voices.contains(voiceId) {
            return refuse(.notFound, fixture: "elevenlabs/voice_not_found", voiceId: voiceId, model: speech.modelID)
        }
        if config.paidVoices.contains(voiceId) {
            return refuse(.billing, fixture: "elevenlabs/paid_plan_required", voiceId: voiceId, model: speech.modelID)
        }
        let admission = engine.admit(AdmissionRequest(endpoint: endpoint))
        let response = try await serve(
            admission,
            endpoint: endpoint,
            engine: engine,
            success: {
                engine.bill(.elevenlabs) { $0.characters += speech.text.count }
                return .bytes(
                    .ok,
                    WAVWriter.tone(seconds: WAVWriter.duration(forText: speech.text)),
                    contentType: "audio/wav"
                )
            },
            malformed: { .bytes(.ok, WAVWriter.truncated(forText: speech.text), contentType: "audio/wav") },
            rejected: { ErrorReplies.elevenLabs($0, voiceId: voiceId, model: speech.modelID) },
            forced: { FixtureReplies.forced($0, model: speech.modelID, voiceId: voiceId) }
        )
        if admission.isForcedFixture { return response }
        return response.withElevenLabsHeaders(admission.limits)
    }

    /// Refuses a request before admission with fixture `name`, or the mock's own reply for `kind` without it.
    private func refuse(_ kind: FailureKind, fixture name: String, voiceId: String, model: String?) -> Response {
        let (response, limits) = FixtureReplies.refuse(
            name,
            engine: engine,
            endpoint: .textToSpeech,
            model: model,
            voiceId: voiceId
        ) {
            (ErrorReplies.elevenLabs(Rejection(kind: kind, window: .zero)), .failed(kind))
        }
        return response.withElevenLabsHeaders(limits)
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

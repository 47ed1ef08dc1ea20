import Foundation
import Shared

/// Speaks lines with ElevenLabs text-to-speech (providers.md §3).
///
/// `POST {baseURL}/text-to-speech/{voice_id}?output_format=…` with `xi-api-key`. Writes
/// `<workspace>/<item>.mp3`, or `.wav` when the answer is WAV; `pcm_*` output formats (raw samples) are
/// wrapped in a WAV header. Duration: the WAV header's for WAV, else the speaking-time estimate.
struct ElevenLabsVoiceProvider: VoiceProvider {
    var settings: ElevenLabsSettings
    var caller: HTTPCaller

    static let service = "elevenlabs speech"
    static let provider = "elevenlabs"

    /// - Parameter transport: `nil` uses the process-wide async-http-client transport.
    init(settings: ElevenLabsSettings, call: HTTPCallSettings = .default, transport: (any HTTPTransport)? = nil) {
        self.init(settings: settings, caller: .standard(call, transport: transport))
    }

    init(settings: ElevenLabsSettings, caller: HTTPCaller) {
        self.settings = settings
        self.caller = caller
    }

    /// Without the cast, a character without a configured voice id gets one by a stable hash of its
    /// name (see ``voice(for:cast:context:)``).
    func voice(for line: Script.Line, context: CallContext) async throws -> VoiceClip {
        try await voice(for: line, cast: context.characters, context: context)
    }

    /// - Parameter cast: the script's characters; a character without an entry in
    ///   `settings.voiceIds` at position `i` speaks with `settings.defaultVoiceIds[i % count]`.
    func voice(for line: Script.Line, cast: [String], context: CallContext) async throws -> VoiceClip {
        guard context.workspace != nil else {
            throw ProviderError(.clientError, "\(Self.service): no workspace to write \(line.item) in")
        }
        guard let voiceId = voiceId(for: line.character, cast: cast) else {
            throw ProviderError(.clientError, "\(Self.service): no voice id for \(line.character)")
        }
        let accept = settings.outputFormat.hasPrefix("mp3") ? "audio/mpeg" : "audio/*"
        var headers: HTTPHeaderFields = ["Content-Type": "application/json", "Accept": accept]
        if let key = settings.apiKey, !key.isEmpty { headers.add("xi-api-key", key) }
        let path = "text-to-speech/\(ProviderURL.segment(voiceId))"
        let query = "?output_format=\(ProviderURL.segment(settings.outputFormat))"
        let request = ProviderRequest(
            url: ProviderURL.join(settings.baseURL, path) + query,
            headers: headers,
            body: try ProviderJSON.encode(SpeechRequest(text: line.text, modelId: settings.modelId)),
            maxResponseBytes: HTTPBodyLimit.audio
        )
        try context.meter.reserve(.characters(model: settings.modelId, count: line.text.count))
        var response: ProviderResponse
        do {
            response = try await caller.perform(
                request,
                service: Self.service,
                context: context,
                target: settings.target(voice: voiceId)
            )
        } catch let error as ProviderError {
            throw ProviderDiagnosis.annotate(error, target: settings.target(voice: voiceId))
        }
        // Billed per character of the text; the `character-cost` header, when sent, is what was charged.
        let characters = response.headers["character-cost"].flatMap { Int($0) }.map { max(0, $0) } ?? line.text.count
        context.meter.charge(.characters(model: settings.modelId, count: characters))
        if let rate = Self.pcmSampleRate(settings.outputFormat), !MediaFiles.isWAV(response.body),
            !response.body.isEmpty
        {
            response.body = WAVFile.wav(pcm16: response.body, sampleRate: rate, channels: 1)
        }
        return try VoiceClip.written(
            response,
            line: line,
            service: Self.service,
            provider: Self.provider,
            context: context
        )
    }

    /// The character's configured voice id, else a default one by its position in the cast.
    func voiceId(for character: String, cast: [String]) -> String? {
        if let id = settings.voiceIds[character], !id.isEmpty { return id }
        return VoiceCasting.voice(for: character, cast: cast, voices: settings.defaultVoiceIds)
    }

    /// `pcm_24000` → 24000; `nil` for other formats.
    static func pcmSampleRate(_ outputFormat: String) -> Int? {
        guard outputFormat.hasPrefix("pcm_") else { return nil }
        return Int(outputFormat.dropFirst(4)).flatMap { $0 > 0 ? $0 : nil }
    }

    private struct SpeechRequest: Encodable {
        var text: String
        var modelId: String
    }
}

import Foundation
import Shared

/// Speaks lines with OpenAI's `/audio/speech`, asking for WAV (providers.md §1).
///
/// Writes `<workspace>/<item>.wav` (or the extension of what actually came, should a compatible server
/// ignore `response_format`). The duration is read from the WAV header, else estimated from the text.
struct OpenAIVoiceProvider: VoiceProvider {
    var settings: OpenAISettings
    var caller: HTTPCaller

    static let service = "openai speech"
    static let provider = "openai"
    /// The API's limit on `input`.
    static let maxInputCharacters = 4_096

    /// - Parameter transport: `nil` uses the process-wide async-http-client transport.
    init(settings: OpenAISettings, call: HTTPCallSettings = .default, transport: (any HTTPTransport)? = nil) {
        self.init(settings: settings, caller: .standard(call, transport: transport))
    }

    init(settings: OpenAISettings, caller: HTTPCaller) {
        self.settings = settings
        self.caller = caller
    }

    /// Without the cast, the voice is picked by a stable hash of the character's name (see
    /// ``voice(for:cast:context:)``).
    func voice(for line: Script.Line, context: CallContext) async throws -> VoiceClip {
        try await voice(for: line, cast: context.characters, context: context)
    }

    /// - Parameter cast: the script's characters; the character at position `i` speaks with
    ///   `settings.voices[i % count]`.
    func voice(for line: Script.Line, cast: [String], context: CallContext) async throws -> VoiceClip {
        guard context.workspace != nil else {
            throw ProviderError(.clientError, "\(Self.service): no workspace to write \(line.item) in")
        }
        guard let voice = VoiceCasting.voice(for: line.character, cast: cast, voices: settings.voices) else {
            throw ProviderError(.clientError, "\(Self.service): no voices configured")
        }
        let body = try ProviderJSON.encode(
            SpeechRequest(
                model: settings.voiceModel,
                input: String(line.text.prefix(Self.maxInputCharacters)),
                voice: voice
            )
        )
        let request = ProviderRequest(
            url: ProviderURL.join(settings.baseURL, "audio/speech"),
            headers: ProviderHeaders.json(bearer: settings.apiKey, accept: "application/octet-stream"),
            body: body,
            maxResponseBytes: HTTPBodyLimit.audio
        )
        let characters = min(line.text.count, Self.maxInputCharacters)
        try context.meter.reserve(.characters(model: settings.voiceModel, count: characters))
        let response: ProviderResponse
        do {
            response = try await caller.perform(
                request,
                service: Self.service,
                context: context,
                target: settings.target(.voice, voice: voice)
            )
        } catch let error as ProviderError {
            throw ProviderDiagnosis.annotate(error, target: settings.target(.voice, voice: voice))
        }
        context.meter.charge(.characters(model: settings.voiceModel, count: characters))
        return try VoiceClip.written(
            response,
            line: line,
            service: Self.service,
            provider: Self.provider,
            context: context
        )
    }

    private struct SpeechRequest: Encodable {
        var model: String
        var input: String
        var voice: String
        var responseFormat = "wav"
    }
}

extension VoiceClip {
    /// Writes the audio of a speech answer as `<item>.<ext>` and describes it: the WAV header's
    /// duration when it is a WAV, else the speaking-time estimate (the renderer probes real durations).
    ///
    /// - Throws: ``ProviderError`` `invalidResponse` for an empty body, one that is not audio, or a WAV
    ///   cut off before the size its header declares.
    static func written(
        _ response: ProviderResponse,
        line: Script.Line,
        service: String,
        provider: String,
        context: CallContext
    ) throws -> VoiceClip {
        guard !response.body.isEmpty else {
            throw ProviderError(.invalidResponse, "\(service): empty audio for \(line.item)")
        }
        guard let format = AudioFormat.detect(response.body, mediaType: response.mediaType) else {
            let type = response.mediaType ?? "no content type"
            throw ProviderError(.invalidResponse, "\(service): the answer for \(line.item) is not audio (\(type))")
        }
        if format == .wav && WAVFile.isTruncated(response.body) {
            throw ProviderError(.invalidResponse, "\(service): the audio for \(line.item) is cut off")
        }
        let path = try MediaFiles.write(
            response.body,
            item: line.item,
            fileExtension: format.fileExtension,
            context: context
        )
        let duration =
            (format == .wav ? WAVFile.duration(of: response.body) : nil)
            ?? VoiceClip.estimatedSpeakingTime(line.text)
        return VoiceClip(item: line.item, path: path, duration: duration, provider: provider)
    }
}

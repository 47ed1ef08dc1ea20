import Foundation
import Protocol

extension HTTPCaller {
    /// The caller every provider uses unless a test injects one: the given transport, or the process-wide
    /// async-http-client one for `call.connectTimeout`; `Task.sleep` between retries.
    static func standard(
        _ call: HTTPCallSettings,
        transport: (any HTTPTransport)?,
        maxLoadingWait: Duration = .zero
    ) -> HTTPCaller {
        HTTPCaller(
            transport: transport ?? AsyncHTTPClientTransport.processWide(connectTimeout: call.connectTimeout),
            settings: call,
            policy: RetryPolicy(call, maxLoadingWait: maxLoadingWait)
        )
    }
}

/// Which voice speaks a character.
enum VoiceCasting {
    /// `voices[i % voices.count]` for the character at position `i` of `cast`, so each character of an
    /// episode (up to `voices.count`) gets its own voice. A character not in `cast` (or an empty cast)
    /// gets a voice picked by a stable hash of its name: the same in every process, though two
    /// characters may then share one. `nil` only when `voices` is empty.
    static func voice(for character: String, cast: [String], voices: [String]) -> String? {
        guard !voices.isEmpty else { return nil }
        if let index = cast.firstIndex(of: character) {
            return voices[index % voices.count]
        }
        let hash = StableHash.of(0, ["voice", character]).value
        return voices[Int(hash % UInt64(voices.count))]
    }
}

/// Audio formats providers answer with, told by magic bytes first, then by `Content-Type`.
enum AudioFormat: String, Sendable {
    case wav, mp3, ogg, flac, aac

    var fileExtension: String { rawValue }

    static func detect(_ data: Data, mediaType: String?) -> AudioFormat? {
        let head = [UInt8](data.prefix(12))
        if MediaFiles.isWAV(data) { return .wav }
        if head.starts(with: Array("ID3".utf8)) { return .mp3 }
        if head.starts(with: Array("OggS".utf8)) { return .ogg }
        if head.starts(with: Array("fLaC".utf8)) { return .flac }
        if head.count >= 2, head[0] == 0xFF {
            // MPEG audio frame sync (11 bits); layer bits 00 mean ADTS AAC.
            if head[1] & 0xF6 == 0xF0 { return .aac }
            if head[1] & 0xE0 == 0xE0 { return .mp3 }
        }
        switch mediaType {
        case "audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave": return .wav
        case "audio/mpeg", "audio/mp3": return .mp3
        case "audio/ogg", "audio/opus": return .ogg
        case "audio/flac", "audio/x-flac": return .flac
        case "audio/aac": return .aac
        default: return nil
        }
    }
}

enum ProviderJSON {
    /// Encodes a request body: keys in snake case, slashes unescaped, keys sorted (stable bytes).
    static func encode(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return try encoder.encode(value)
        } catch {
            throw ProviderError(.clientError, "cannot encode the request: \(error)")
        }
    }
}

enum ProviderHeaders {
    /// `Content-Type: application/json`, `Accept`, and `Authorization: Bearer <key>` when there is a key.
    static func json(bearer key: String?, accept: String) -> HTTPHeaderFields {
        var headers: HTTPHeaderFields = ["Content-Type": "application/json", "Accept": accept]
        if let key, !key.isEmpty { headers.add("Authorization", "Bearer \(key)") }
        return headers
    }
}

/// Getting image bytes out of the answer shapes image APIs use.
enum ImageReply {
    /// Sends an image-generation request, takes the image out of the reply (whatever its shape) and
    /// writes it into the attempt's workspace as `<item>.png|.jpg`.
    static func fetch(
        _ outgoing: ProviderRequest,
        for request: ImageRequest,
        service: String,
        provider: String,
        caller: HTTPCaller,
        context: CallContext,
        target: ProviderTarget? = nil
    ) async throws -> Image {
        let response: ProviderResponse
        do {
            response = try await caller.perform(outgoing, service: service, context: context, target: target)
        } catch let error as ProviderError {
            // An unknown model or a bad key: the message names the setting to change.
            throw target.map { ProviderDiagnosis.annotate(error, target: $0) } ?? error
        }
        let (data, format) = try await bytes(from: response, service: service, caller: caller, context: context)
        let path = try MediaFiles.write(data, item: request.item, fileExtension: format.fileExtension, context: context)
        return Image(
            item: request.item,
            path: path,
            duration: Image.defaultDuration(request.purpose),
            provider: provider
        )
    }

    /// An image from an answer that is either the image itself (by magic bytes or an `image/*`
    /// Content-Type) or JSON `{"data":[{"b64_json"}]}`, `{"data":[{"url"}]}` or `{"output":[url]}`. A URL
    /// is fetched with a plain GET (no credentials).
    ///
    /// - Throws: ``ProviderError`` `invalidResponse` when none of these gives a PNG, JPEG or WebP image.
    static func bytes(
        from response: ProviderResponse,
        service: String,
        caller: HTTPCaller,
        context: CallContext
    ) async throws -> (Data, MediaFiles.ImageFormat) {
        if let format = MediaFiles.imageFormat(response.body) {
            return (try complete(response.body, format, service: service), format)
        }
        guard let json = JSONValue(data: response.body, limit: HTTPBodyLimit.image) else {
            let type = response.mediaType ?? "no content type"
            throw ProviderError(.invalidResponse, "\(service): the answer is neither an image nor JSON (\(type))")
        }
        let first = json["data"]?.array?.first
        if let encoded = first?["b64_json"]?.string {
            guard let data = MediaFiles.decodeBase64(encoded, limit: HTTPBodyLimit.image) else {
                throw ProviderError(.invalidResponse, "\(service): b64_json is not base64 of at most 25 MiB")
            }
            guard let format = MediaFiles.imageFormat(data) else {
                throw ProviderError(.invalidResponse, "\(service): b64_json is not a PNG, JPEG or WebP image")
            }
            return (try complete(data, format, service: service), format)
        }
        if let url = first?["url"]?.string ?? json["output"]?.array?.first?.string, url.hasPrefix("http") {
            let request = ProviderRequest(
                method: "GET",
                url: url,
                headers: ["Accept": "image/*"],
                maxResponseBytes: HTTPBodyLimit.image
            )
            // Fetching the finished image from its URL is not a call against the provider's budget.
            var plain = context
            plain.gate = OpenGate()
            let download = try await caller.perform(request, service: "\(service) download", context: plain)
            guard let format = MediaFiles.imageFormat(download.body) else {
                throw ProviderError(.invalidResponse, "\(service): the image URL gave no PNG, JPEG or WebP image")
            }
            return (try complete(download.body, format, service: service), format)
        }
        if let error = json["error"] {
            let message = error["message"]?.string ?? error.string ?? "an error"
            throw ProviderError(.invalidResponse, "\(service): answered \(message.prefix(200)) with a success status")
        }
        throw ProviderError(.invalidResponse, "\(service): the answer has no image (no data[0].b64_json or url)")
    }

    private static func complete(_ data: Data, _ format: MediaFiles.ImageFormat, service: String) throws -> Data {
        guard MediaFiles.isComplete(data, format: format) else {
            throw ProviderError(.invalidResponse, "\(service): the \(format.rawValue) image is cut off")
        }
        return data
    }

    /// The prompt sent for an image: the request's prompt, B-roll framed as a cinematic cut-away, and the
    /// episode's style appended. At most `limit` characters.
    static func prompt(for request: ImageRequest, limit: Int = 3_900) -> String {
        var text = request.prompt.trimmingCharacters(in: .whitespacesAndNewlines)
        if request.purpose == .broll { text = "Cinematic B-roll shot: \(text)" }
        if let style = request.style?.trimmingCharacters(in: .whitespacesAndNewlines), !style.isEmpty {
            text += ". Visual style: \(style)"
        }
        text += ". 16:9, no text or captions in the image."
        return text.count > limit ? String(text.prefix(limit)) : text
    }
}

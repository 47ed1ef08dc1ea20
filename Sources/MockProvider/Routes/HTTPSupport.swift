import Foundation
import Hummingbird

/// Header names the providers use. (`HTTPFields.Element` is `HTTPField`, reached through Hummingbird's exports.)
extension HTTPFields.Element.Name {
    static let retryAfterMs = Self("retry-after-ms")!
    static let rateLimitLimitRequests = Self("x-ratelimit-limit-requests")!
    static let rateLimitRemainingRequests = Self("x-ratelimit-remaining-requests")!
    static let rateLimitResetRequests = Self("x-ratelimit-reset-requests")!
    static let rateLimitLimitTokens = Self("x-ratelimit-limit-tokens")!
    static let rateLimitRemainingTokens = Self("x-ratelimit-remaining-tokens")!
    static let rateLimitResetTokens = Self("x-ratelimit-reset-tokens")!
    static let currentConcurrentRequests = Self("current-concurrent-requests")!
    static let maximumConcurrentRequests = Self("maximum-concurrent-requests")!
    static let waitForModel = Self("x-wait-for-model")!
    static let xiAPIKey = Self("xi-api-key")!
}

extension Request {
    /// Whether the request carries one of `keys` (`nil` accepts anything): `Authorization: Bearer KEY`, or for
    /// ElevenLabs `xi-api-key: KEY`.
    func hasAPIKey(in keys: [String]?, header: HTTPFields.Element.Name = .authorization) -> Bool {
        guard let keys else { return true }
        guard var value = headers[header] else { return false }
        if header == .authorization {
            guard value.lowercased().hasPrefix("bearer ") else { return false }
            value = String(value.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)
        }
        return keys.contains(value)
    }
}

extension Response {
    /// A JSON reply with `Content-Type: application/json`.
    static func json(_ status: HTTPResponse.Status, _ body: some Encodable, headers: HTTPFields = [:]) -> Response {
        bytes(status, jsonBytes(body), contentType: "application/json", headers: headers)
    }

    /// A 200 JSON reply cut off halfway, as a dropped connection or a broken proxy would deliver it.
    static func truncatedJSON(_ body: some Encodable) -> Response {
        let whole = jsonBytes(body)
        return bytes(.ok, Array(whole.prefix(whole.count / 2)), contentType: "application/json")
    }

    private static func jsonBytes(_ body: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding the server's own plain value types cannot fail.
        return Array(try! encoder.encode(body))
    }

    /// A reply carrying `bytes` as they are.
    static func bytes(
        _ status: HTTPResponse.Status,
        _ bytes: [UInt8],
        contentType: String,
        headers: HTTPFields = [:]
    ) -> Response {
        var headers = headers
        headers[.contentType] = contentType
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// Adds the `retry-after` (whole seconds, rounded up) and `retry-after-ms` headers the rejection announces, if
    /// any (see ``Rejection/announcedRetryAfter``; `/stats/requests` logs the same `retry-after-ms`).
    mutating func setRetryAfter(for rejection: Rejection) {
        guard let retryAfter = rejection.announcedRetryAfter else { return }
        headers[.retryAfter] = String(max(1, retryAfter.secondsRoundedUp))
        headers[.retryAfterMs] = String(retryAfter.retryAfterHeaderMs)
    }
}

/// Why a request body could not be used.
enum BodyError: Error, Equatable {
    case tooLarge(limit: Int)
    case invalid(String)

    var status: HTTPResponse.Status {
        switch self {
        case .tooLarge: .contentTooLarge
        case .invalid: .badRequest
        }
    }

    var message: String {
        switch self {
        case .tooLarge(let limit): "Request body too large: the limit is \(limit) bytes."
        case .invalid(let reason): reason
        }
    }
}

extension Request {
    /// Reads the body, at most `limit` bytes, and decodes it as `T`.
    func decodeJSONBody<T: Decodable>(_ type: T.Type, limit: Int) async -> Result<T, BodyError> {
        var collected = ByteBuffer()
        do {
            for try await chunk in body {
                guard collected.readableBytes + chunk.readableBytes <= limit else {
                    return .failure(.tooLarge(limit: limit))
                }
                collected.writeImmutableBuffer(chunk)
            }
        } catch {
            return .failure(.invalid("The request body could not be read."))
        }
        do {
            return .success(try JSONDecoder().decode(T.self, from: Data(collected.readableBytesView)))
        } catch let DecodingError.keyNotFound(key, _) {
            return .failure(.invalid("Missing required parameter: '\(key.stringValue)'."))
        } catch let DecodingError.typeMismatch(_, context) {
            return .failure(.invalid("Invalid type for '\(context.codingPath.dottedPath)'."))
        } catch let DecodingError.valueNotFound(_, context) {
            return .failure(.invalid("Missing required parameter: '\(context.codingPath.dottedPath)'."))
        } catch {
            return .failure(
                .invalid("We could not parse the JSON body of your request. The body must be valid JSON.")
            )
        }
    }
}

extension [any CodingKey] {
    fileprivate var dottedPath: String {
        map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
}

/// Serves one admitted request: waits its delay, builds the reply, and frees its slot afterwards.
///
/// - Parameters:
///   - success: the normal reply (also what a `timeout` failure finally answers).
///   - malformed: the spoiled 200 reply of a `malformed` failure.
///   - rejected: the error reply of a refused request.
///   - forced: the reply of a `force_failures[].fixture` entry.
func serve(
    _ admission: Admission,
    endpoint: Endpoint,
    engine: MockEngine,
    success: () -> Response,
    malformed: () -> Response,
    rejected: (Rejection) -> Response,
    forced: (FixtureFailure) -> Response
) async throws -> Response {
    switch admission.outcome {
    case .accepted(let delay):
        defer { engine.finish(endpoint) }
        if delay > .zero {
            try await Task.sleep(for: delay)
        }
        return success()
    case .fault(let kind, let delay):
        if delay > .zero {
            try await Task.sleep(for: delay)
        }
        return kind == .malformed ? malformed() : success()
    case .rejected(let rejection):
        return rejected(rejection)
    case .fixture(let fixture):
        return forced(fixture)
    }
}

/// `60000 ms` → `1min`, `2000 ms` → `2s`, `1500 ms` → `1500ms`: how OpenAI names the window in its messages.
func windowLabel(_ window: Duration) -> String {
    let milliseconds = window.milliseconds
    if milliseconds % 60_000 == 0 { return "\(milliseconds / 60_000)min" }
    if milliseconds % 1_000 == 0 { return "\(milliseconds / 1_000)s" }
    return "\(milliseconds)ms"
}

import Foundation
import Hummingbird
import Protocol
import ProviderFixtures

/// Replies copied from the recorded fixtures of the `ProviderFixtures` module.
enum FixtureReplies {
    /// Recorded headers never copied: they describe the recorded transfer, not the body the mock sends.
    private static let transferHeaders: Set<String> = [
        "connection", "content-encoding", "content-length", "date", "keep-alive", "transfer-encoding",
    ]

    private static let statuses: [Int: HTTPResponse.Status] = Dictionary(
        uniqueKeysWithValues: [
            HTTPResponse.Status.ok, .badRequest, .unauthorized, .forbidden, .notFound, .contentTooLarge,
            .unprocessableContent, .tooManyRequests, .internalServerError, .badGateway, .serviceUnavailable,
            .gatewayTimeout, HTTPResponse.Status(code: 402, reasonPhrase: "Payment Required"),
        ].map { ($0.code, $0) }
    )

    /// The fixture's status, headers and body. In a JSON body the recorded request's model and voice id are replaced
    /// by `model` and `voiceId` (when given), then `edit` may change it further. Binary bodies are sent empty; the
    /// routes never choose such a fixture.
    static func response(
        _ fixture: ProviderFixture,
        model: String? = nil,
        voiceId: String? = nil,
        edit: (inout JSONValue) -> Void = { _ in }
    ) -> Response {
        let fixture = fixture.substituting(model: model, voiceId: voiceId)
        var headers = HTTPFields()
        for (name, value) in fixture.headers where !transferHeaders.contains(name.lowercased()) {
            if let field = HTTPFields.Element.Name(name) {
                headers.append(HTTPFields.Element(name: field, value: value))
            }
        }
        let bytes: [UInt8]
        switch fixture.body {
        case .json:
            var json = fixture.json ?? .null
            edit(&json)
            bytes = Array(json.data)
            if headers[.contentType] == nil { headers[.contentType] = "application/json" }
        case .text(let text):
            bytes = Array(text.utf8)
        case .binary:
            bytes = []
        }
        let status = statuses[fixture.status] ?? HTTPResponse.Status(code: fixture.status)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// The reply to a request refused before admission, from fixture `name` when it can be sent, else `fallback`
    /// (with the status and outcome it implies). Counts the request in `/stats` and the request log, and returns the
    /// limit state for the provider's headers.
    static func refuse(
        _ name: String,
        engine: MockEngine,
        endpoint: Endpoint,
        model: String? = nil,
        voiceId: String? = nil,
        edit: (inout JSONValue) -> Void = { _ in },
        fallback: () -> (Response, RequestOutcome)
    ) -> (Response, LimitState) {
        let response: Response
        let outcome: RequestOutcome
        if let fixture = RecordedFixtures.servable(name) {
            response = self.response(fixture, model: model, voiceId: voiceId, edit: edit)
            outcome = RecordedFixtures.outcome(of: fixture)
        } else {
            (response, outcome) = fallback()
        }
        return (response, engine.recordRefused(endpoint, outcome: outcome))
    }

    /// Exactly the fixture forced by `force_failures[].fixture`, with the request's model and voice id substituted.
    static func forced(_ failure: FixtureFailure, model: String?, voiceId: String? = nil) -> Response {
        guard let fixture = RecordedFixtures.servable(failure.name) else {
            // The configuration checked the fixture, so this cannot happen; answer something honest anyway.
            return ErrorReplies.openAI(
                .internalServerError,
                message: "The fixture \(failure.name) could not be read.",
                type: "server_error",
                code: nil
            )
        }
        return response(fixture, model: model, voiceId: voiceId)
    }
}

extension Admission {
    /// Whether the reply is a fixture forced by `force_failures[].fixture`, which is sent with exactly its recorded
    /// headers, without the rate-limit headers the mock computes.
    var isForcedFixture: Bool {
        if case .fixture = outcome { return true }
        return false
    }
}

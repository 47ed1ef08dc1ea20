import Foundation
import Protocol

/// One recorded answer of a real provider: what was asked and what came back (status, headers, body).
///
/// Read from `Fixtures/<service>/<case>.json`:
///
/// ```json
/// {"service": "openai", "case": "image_model_not_found", "summary": "…", "source": ["https://…"],
///  "request": {"method": "POST", "path": "/v1/images/generations", "model": "dall-e-3"},
///  "response": {"status": 404, "headers": {"content-type": "application/json"},
///               "json": {…}}}
/// ```
///
/// The response carries exactly one of `json` (any JSON value), `text` (a string) or `binary` (the media type
/// of a body not stored: `png`, `jpeg`, `wav`, `mp3`).
public struct ProviderFixture: Sendable, Equatable {
    public enum Body: Sendable, Equatable {
        /// The recorded JSON, re-serialised (keys sorted; the values are the recorded ones).
        case json(Data)
        case text(String)
        /// A binary body that is not stored, only named: `png`, `jpeg`, `wav` or `mp3`.
        case binary(String)
    }

    /// `openai`, `elevenlabs`, `huggingface`, `ollama` or `vllm`: the folder the fixture is in.
    public var service: String
    /// `<service>/<case>`, e.g. `openai/insufficient_quota`.
    public var name: String
    /// What the fixture shows and how it was recorded.
    public var summary: String
    /// Where the shape comes from: documentation pages, issue threads, SDK source files.
    public var sources: [String]
    /// The request that got this answer.
    public var method: String
    public var path: String
    /// The model the request named, if any; it may appear in the body (error messages quote it).
    public var model: String?
    /// The voice id the request named, if any (ElevenLabs voices in the path).
    public var voiceId: String?
    /// The HTTP status of the answer.
    public var status: Int
    /// The answer's headers as recorded, sorted by name.
    public var headers: [(String, String)]
    public var body: Body

    /// The part of `name` after the service, e.g. `insufficient_quota`.
    public var caseName: String {
        String(name.dropFirst(service.count + 1))
    }

    /// The value of header `name` (case-insensitive), if recorded.
    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    /// The body as JSON, `nil` unless it is a `json` body.
    public var json: JSONValue? {
        guard case .json(let data) = body else { return nil }
        return JSONValue(data: data)
    }

    /// The fixture with `json` as its body.
    public func withJSON(_ json: JSONValue) -> ProviderFixture {
        var fixture = self
        fixture.body = .json(json.data)
        return fixture
    }

    /// The fixture as if the request had named `model` and `voiceId`: where the recorded request's model or voice
    /// id appears in a string of the JSON body, it is replaced. A `nil` argument leaves that one as recorded.
    public func substituting(model: String? = nil, voiceId: String? = nil) -> ProviderFixture {
        var replacements: [(String, String)] = []
        if let recorded = self.model, let model, !recorded.isEmpty { replacements.append((recorded, model)) }
        if let recorded = self.voiceId, let voiceId, !recorded.isEmpty { replacements.append((recorded, voiceId)) }
        guard !replacements.isEmpty, let json else { return self }
        return withJSON(
            json.mappingStrings { value in
                replacements.reduce(value) { $0.replacingOccurrences(of: $1.0, with: $1.1) }
            }
        )
    }

    public static func == (lhs: ProviderFixture, rhs: ProviderFixture) -> Bool {
        lhs.name == rhs.name && lhs.summary == rhs.summary && lhs.sources == rhs.sources && lhs.method == rhs.method
            && lhs.path == rhs.path && lhs.model == rhs.model && lhs.voiceId == rhs.voiceId
            && lhs.status == rhs.status && lhs.headers.elementsEqual(rhs.headers, by: ==) && lhs.body == rhs.body
    }
}

/// A fixture that could not be found or read. The message names the file.
public struct ProviderFixtureError: Error, Equatable, CustomStringConvertible {
    private enum Code: Equatable {
        case notFound
        case malformed
        case badName
    }

    private let code: Code
    /// The fixture's file, relative to the fixtures folder (`openai/insufficient_quota.json`), or the name asked for.
    public let file: String
    /// What is wrong.
    public let message: String

    public var description: String { "\(file): \(message)" }

    /// No such fixture.
    public var isNotFound: Bool { code == .notFound }

    static func notFound(_ file: String) -> Self {
        Self(code: .notFound, file: file, message: "no such fixture")
    }

    static func malformed(_ file: String, _ message: String) -> Self {
        Self(code: .malformed, file: file, message: message)
    }

    static func badName(_ name: String) -> Self {
        Self(code: .badName, file: name, message: "expected a fixture name like openai/insufficient_quota")
    }
}

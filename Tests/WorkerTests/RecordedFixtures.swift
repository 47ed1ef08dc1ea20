import Foundation
import Testing

@testable import Worker

/// The recorded real response shapes under Sources/ProviderFixtures/Fixtures, read straight from the source
/// tree, as the worker's transport would hand them over.
enum RecordedFixture {
    static let folder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appending(path: "Sources/ProviderFixtures/Fixtures")

    struct Loaded {
        var name: String
        var status: Int
        var headers: HTTPHeaderFields
        var body: Data
        var model: String?
        var voiceId: String?
        var json: [String: Any]
    }

    /// `openai/image_model_not_found` → its status, headers and body. Records an issue when missing.
    static func load(_ name: String) throws -> Loaded {
        let url = folder.appending(path: "\(name).json")
        let data = try Data(contentsOf: url)
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "\(name) is no object")
        let response = try #require(root["response"] as? [String: Any], "\(name) has no response")
        let status = try #require(response["status"] as? Int, "\(name) has no status")
        var headers: HTTPHeaderFields = [:]
        for (key, value) in response["headers"] as? [String: String] ?? [:] { headers.add(key, value) }
        let body: Data
        if let json = response["json"] {
            body = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
        } else if let text = response["text"] as? String {
            body = Data(text.utf8)
        } else {
            switch response["binary"] as? String {
            case "png": body = Fixture.png
            case "jpeg": body = Fixture.jpeg
            case "wav": body = Fixture.wavOneSecond
            default: body = Fixture.mp3
            }
        }
        let request = root["request"] as? [String: Any] ?? [:]
        return Loaded(
            name: name,
            status: status,
            headers: headers,
            body: body,
            model: request["model"] as? String,
            voiceId: request["voice_id"] as? String,
            json: root
        )
    }

    /// The fixture as the classifier sees it.
    static func classify(_ name: String) throws -> HTTPFailure {
        let fixture = try load(name)
        return HTTPFailureClassifier.classify(
            status: fixture.status,
            headers: fixture.headers,
            body: fixture.body,
            now: Date(timeIntervalSince1970: 1_700_000_000)
        )
    }

    /// The fixture as a transport answer.
    static func answer(_ name: String) throws -> FakeTransport.Answer {
        let fixture = try load(name)
        return .response(ProviderResponse(status: fixture.status, headers: fixture.headers, body: fixture.body))
    }
}

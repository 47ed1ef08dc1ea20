import Foundation
import Protocol
import Testing

@testable import ProviderFixtures

/// The recorded provider answers of the `ProviderFixtures` module load, and every one is complete.
@Suite struct ProviderFixtureTests {
    static let services: Set<String> = ["openai", "elevenlabs", "huggingface", "ollama", "vllm"]

    @Test func everyFixtureLoadsWithServiceCaseSourceAndResponse() throws {
        let fixtures = try ProviderFixtures.all()
        #expect(!fixtures.isEmpty)
        #expect(fixtures.map(\.name) == ProviderFixtures.names())
        for fixture in fixtures {
            #expect(Self.services.contains(fixture.service), "\(fixture.name)")
            #expect(fixture.name == "\(fixture.service)/\(fixture.caseName)")
            #expect(!fixture.caseName.isEmpty, "\(fixture.name)")
            #expect(!fixture.sources.isEmpty, "\(fixture.name) has no source")
            #expect(fixture.sources.allSatisfy { !$0.isEmpty }, "\(fixture.name)")
            #expect(["GET", "POST"].contains(fixture.method), "\(fixture.name)")
            #expect(fixture.path.hasPrefix("/"), "\(fixture.name)")
            #expect((100...599).contains(fixture.status), "\(fixture.name)")
            #expect(fixture.header("content-type") != nil, "\(fixture.name) has no content-type")
            switch fixture.body {
            case .json: #expect(fixture.json != nil, "\(fixture.name)")
            case .text(let text): #expect(!text.isEmpty, "\(fixture.name)")
            case .binary(let kind): #expect(["png", "jpeg", "wav", "mp3"].contains(kind), "\(fixture.name)")
            }
        }
    }

    /// Key order may change when a JSON body is re-serialised; values may not.
    @Test func jsonBodiesKeepTheRecordedValues() throws {
        for name in ProviderFixtures.names() {
            let fixture = try ProviderFixtures.named(name)
            guard let json = fixture.json else { continue }
            let url = ProviderFixtures.folder.appending(path: "\(name).json")
            let raw = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any]
            let recorded = try #require((raw?["response"] as? [String: Any])?["json"])
            let served = try JSONSerialization.jsonObject(with: json.data, options: .fragmentsAllowed)
            #expect(
                NSDictionary(dictionary: ["v": recorded]).isEqual(to: ["v": served]),
                "\(name): the served JSON differs from the recorded one"
            )
        }
    }

    @Test func substitutingReplacesTheRecordedModelAndVoice() throws {
        let model = try ProviderFixtures.named("openai/image_model_not_found")
        let renamed = model.substituting(model: "gpt-image-9")
        #expect(
            renamed.json?["error"]?["message"]?.string
                == "The model `gpt-image-9` does not exist or you do not have access to it."
        )
        #expect(renamed.json?["error"]?["code"] == .string("model_not_found"))
        let voice = try ProviderFixtures.named("elevenlabs/voice_not_found").substituting(voiceId: "v123")
        #expect(voice.json?["detail"]?["message"]?.string == "A voice with voice_id 'v123' was not found.")
        // Without a replacement the fixture is unchanged.
        #expect(model.substituting() == model)
    }

    @Test func aMissingFixtureOrABadNameIsAnError() throws {
        #expect {
            _ = try ProviderFixtures.named("openai/no_such_case")
        } throws: { error in
            (error as? ProviderFixtureError)?.isNotFound == true
                && "\(error)" == "openai/no_such_case.json: no such fixture"
        }
        for name in ["../openai/chat_success", "openai", "openai/../x", "/openai/x", "openai/.hidden"] {
            #expect(throws: ProviderFixtureError.self) { try ProviderFixtures.named(name) }
        }
    }

    @Test(arguments: [
        (#"{"service": "openai""#, "not valid JSON"),
        (#"[]"#, "expected an object"),
        (#"{"service": "vllm", "case": "broken"}"#, #"service: expected "openai""#),
        (#"{"service": "openai", "case": "other"}"#, #"case: expected "broken""#),
        (#"{"service": "openai", "case": "broken", "source": 3}"#, "source: expected a list of strings"),
        (
            #"{"service": "openai", "case": "broken", "source": ["u"], "request": {"method": "GET"}}"#,
            "request.path: expected a string"
        ),
        (
            #"{"service": "openai", "case": "broken", "source": ["u"], "request": {"method": "GET", "path": "/x"}, "response": {"status": 99, "json": {}}}"#,
            "response.status: expected an HTTP status"
        ),
        (
            #"{"service": "openai", "case": "broken", "source": ["u"], "request": {"method": "GET", "path": "/x"}, "response": {"status": 200, "json": {}, "text": "x"}}"#,
            "response: expected exactly one of json, text and binary"
        ),
        (
            #"{"service": "openai", "case": "broken", "source": ["u"], "request": {"method": "GET", "path": "/x"}, "response": {"status": 200, "headers": {"a": [1]}, "json": {}}}"#,
            "response.headers.a: expected a string"
        ),
    ])
    func aMalformedFixtureNamesItsFile(json: String, message: String) {
        #expect {
            _ = try ProviderFixtures.decode(Data(json.utf8), service: "openai", caseName: "broken")
        } throws: { error in
            "\(error)" == "openai/broken.json: \(message)"
        }
    }

    @Test func aCompleteFixtureDecodes() throws {
        let json = #"""
            {"service": "openai", "case": "broken", "summary": "s", "source": "https://example.com",
             "request": {"method": "POST", "path": "/v1/x", "model": "m", "voice_id": null},
             "response": {"status": 429, "headers": {"b": "2", "A": 1}, "text": "slow down"}}
            """#
        let fixture = try ProviderFixtures.decode(Data(json.utf8), service: "openai", caseName: "broken")
        #expect(fixture.sources == ["https://example.com"])
        #expect(fixture.model == "m" && fixture.voiceId == nil)
        #expect(fixture.headers.map(\.0) == ["A", "b"])
        #expect(fixture.header("a") == "1")
        #expect(fixture.body == .text("slow down"))
    }
}

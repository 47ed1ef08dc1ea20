import Foundation
import Logging
import Protocol
import Testing

@testable import Worker

@Suite("Script schema")
struct ScriptSchemaTests {
    private let spec = EpisodeSpec(topic: "lighthouses")

    @Test func aValidReplyIsNumberedByUs() throws {
        let script = try ScriptSchema.parse(Data(Fixture.script(scenes: 4).utf8), spec: spec)
        #expect(script.title == "A Title")
        #expect(script.characters == ["Ada", "Leo"])
        #expect(script.scenes.map(\.number) == [1, 2, 3, 4])
        #expect(script.lines.map(\.number) == Array(1...8))
        #expect(script.lines.map(\.item).prefix(3) == ["line_1", "line_2", "line_3"])
        #expect(script.scenes[1].lines.map(\.number) == [3, 4])
        #expect(script.scenes[2].description == "Scene 3 visual")
        #expect(script.scenes[2].narration == "Narration 3.")
        #expect(script.lines[7] == Script.Line(number: 8, character: "Leo", text: "Line B of 4."))
        #expect(script.brollShots == [Script.BrollShot(number: 1, description: "Clouds")])
    }

    @Test func theSceneCountFollowsTheSpec() throws {
        let six = EpisodeSpec(topic: "x", scenes: 6)
        #expect(try ScriptSchema.parse(Fixture.script(scenes: 6), spec: six).scenes.count == 6)
        #expect(ScriptSchema.sceneCount(for: EpisodeSpec(topic: "x", scenes: 500)) == 50)
        #expect(ScriptSchema.sceneCount(for: EpisodeSpec(topic: "x", scenes: 0)) == 1)
        #expect(ScriptSchema.sceneCount(for: EpisodeSpec(topic: "x")) == EpisodeSpec.defaultScenes)
    }

    @Test func textsAreTrimmedAndExtraFieldsIgnored() throws {
        let reply = """
            ```json
            {"title":"  Spaced  ","characters":[" Ada "],"extra":1,"scenes":[{"description":" d ","narration":"n",\
            "lines":[{"character":"Ada","text":" hi ","emotion":"happy"}],"number":99}],"broll":[]}
            ```
            """
        let script = try ScriptSchema.parse(reply, spec: EpisodeSpec(topic: "x", scenes: 1))
        #expect(script.title == "Spaced")
        #expect(script.characters == ["Ada"])
        #expect(script.scenes[0].number == 1)
        #expect(script.scenes[0].description == "d")
        #expect(script.lines == [Script.Line(number: 1, character: "Ada", text: "hi")])
        #expect(script.brollShots.isEmpty)
    }

    /// A valid one-scene object with one change.
    private static func variant(_ change: (inout [String: JSONValue]) -> Void) -> String {
        var object: [String: JSONValue] = [
            "title": .string("T"),
            "characters": .array([.string("Ada"), .string("Leo")]),
            "scenes": .array([
                .object([
                    "description": .string("d"), "narration": .string("n"),
                    "lines": .array([.object(["character": .string("Ada"), "text": .string("hi")])]),
                ])
            ]),
            "broll": .array([.object(["description": .string("b")])]),
        ]
        change(&object)
        let data = try! JSONEncoder().encode(JSONValue.object(object))
        return String(decoding: data, as: UTF8.self)
    }

    private static func scene(_ fields: [String: JSONValue]) -> JSONValue {
        var base: [String: JSONValue] = [
            "description": .string("d"), "narration": .string("n"),
            "lines": .array([.object(["character": .string("Ada"), "text": .string("hi")])]),
        ]
        base.merge(fields) { $1 }
        return .object(base)
    }

    static let invalid: [(String, String, String)] = [
        ("not JSON", "{\"title\": ", "not valid JSON"),
        ("empty", "   ", "empty"),
        ("an array", "[1,2]", "must be a JSON object, not an array"),
        ("no title", variant { $0["title"] = nil }, "title: missing"),
        ("title a number", variant { $0["title"] = .integer(3) }, "title: must be a string, not a number"),
        ("empty title", variant { $0["title"] = .string("  ") }, "title: must not be empty"),
        ("long title", variant { $0["title"] = .string(String(repeating: "t", count: 201)) }, "title: 201 characters"),
        ("no characters", variant { $0["characters"] = .array([]) }, "characters: 0 given, need 1…12"),
        (
            "13 characters",
            variant { $0["characters"] = .array((1...13).map { .string("C\($0)") }) },
            "characters: 13 given"
        ),
        (
            "a repeated character", variant { $0["characters"] = .array([.string("Ada"), .string("ada")]) },
            "characters[1]: \"ada\" appears twice"
        ),
        ("characters a string", variant { $0["characters"] = .string("Ada") }, "characters: must be an array"),
        (
            "a character null", variant { $0["characters"] = .array([.string("Ada"), .null]) },
            "characters[1]: must be a string, not null"
        ),
        ("no scenes key", variant { $0["scenes"] = nil }, "scenes: missing"),
        ("two scenes", variant { $0["scenes"] = .array([scene([:]), scene([:])]) }, "scenes: 2 given, need exactly 1"),
        ("a scene a string", variant { $0["scenes"] = .array([.string("s")]) }, "scenes[0]: must be an object"),
        (
            "no description", variant { $0["scenes"] = .array([scene(["description": .null])]) },
            "scenes[0].description: must be a string, not null"
        ),
        (
            "null narration", variant { $0["scenes"] = .array([scene(["narration": .null])]) },
            "scenes[0].narration: must be a string, not null"
        ),
        (
            "lines an object", variant { $0["scenes"] = .array([scene(["lines": .object([:])])]) },
            "scenes[0].lines: must be an array, not an object"
        ),
        (
            "an unknown speaker",
            variant {
                $0["scenes"] = .array([
                    scene(["lines": .array([.object(["character": .string("Bob"), "text": .string("hi")])])])
                ])
            },
            "scenes[0].lines[0].character: \"Bob\" is not one of characters [\"Ada\", \"Leo\"]"
        ),
        (
            "an empty line",
            variant {
                $0["scenes"] = .array([
                    scene(["lines": .array([.object(["character": .string("Ada"), "text": .string("\n")])])])
                ])
            },
            "scenes[0].lines[0].text: must not be empty"
        ),
        (
            "a long line",
            variant {
                $0["scenes"] = .array([
                    scene([
                        "lines": .array([
                            .object([
                                "character": .string("Ada"), "text": .string(String(repeating: "a", count: 1_001)),
                            ])
                        ])
                    ])
                ])
            },
            "scenes[0].lines[0].text: 1001 characters, at most 1000"
        ),
        (
            "too many lines",
            variant {
                $0["scenes"] = .array([
                    scene([
                        "lines": .array(
                            Array(repeating: .object(["character": .string("Ada"), "text": .string("x")]), count: 21)
                        )
                    ])
                ])
            },
            "scenes[0].lines: 21 given, at most 20"
        ),
        ("no broll", variant { $0["broll"] = nil }, "broll: missing"),
        (
            "a broll without description", variant { $0["broll"] = .array([.object(["text": .string("b")])]) },
            "broll[0].description: missing"
        ),
        (
            "too much broll",
            variant { $0["broll"] = .array(Array(repeating: .object(["description": .string("b")]), count: 21)) },
            "broll: 21 given"
        ),
    ]

    @Test("every kind of invalid reply", arguments: invalid)
    func invalidReplies(name: String, reply: String, expected: String) {
        let spec = EpisodeSpec(topic: "x", scenes: 1)
        #expect(throws: ScriptSchema.ValidationError.self, "\(name)") { try ScriptSchema.parse(reply, spec: spec) }
        do {
            _ = try ScriptSchema.parse(reply, spec: spec)
        } catch {
            #expect(error.message.contains(expected), "\(name): \(error.message)")
        }
    }

    @Test func theVariantHelperMakesAValidScript() throws {
        #expect(
            try ScriptSchema.parse(Self.variant { _ in }, spec: EpisodeSpec(topic: "x", scenes: 1)).lines.count == 1
        )
    }

    @Test func invalidUTF8() {
        #expect(throws: ScriptSchema.ValidationError("the reply is not UTF-8")) {
            try ScriptSchema.parse(Data([0xFF, 0xFE]), spec: spec)
        }
    }
}

@Suite("OpenAI script provider")
struct OpenAIScriptProviderTests {
    /// A classic (non-reasoning) model: `max_tokens` and a temperature.
    private let settings = OpenAISettings(
        baseURL: "http://127.0.0.1:9/v1/",
        apiKey: "sk-script-key",
        scriptModel: "gpt-4o-mini"
    )

    @Test func aValidReplyIsOneRequestInJSONMode() async throws {
        let transport = FakeTransport([.okJSON(Fixture.chat(Fixture.script(scenes: 6)))])
        let provider = OpenAIScriptProvider(settings: settings, caller: makeCaller(transport))
        let spec = EpisodeSpec(topic: "the lighthouse", characters: ["Ada", "Leo"], scenes: 6, style: "noir")
        let script = try await provider.writeScript(for: spec, context: makeContext(item: "script"))
        #expect(script.scenes.count == 6)
        #expect(transport.requests.count == 1)

        let request = try #require(transport.requests.first)
        #expect(request.url == "http://127.0.0.1:9/v1/chat/completions")
        #expect(request.method == "POST")
        #expect(request.headers["authorization"] == "Bearer sk-script-key")
        #expect(request.headers["content-type"] == "application/json")
        #expect(request.maxResponseBytes == 1 << 20)
        let body = try #require(jsonBody(request))
        #expect(body["model"]?.string == "gpt-4o-mini")
        #expect(body["response_format"]?["type"]?.string == "json_object")
        // 600 + 450 a scene: the cap grows with the script.
        #expect(body["max_tokens"]?.double == 3_300)
        #expect(body["temperature"]?.double == 0.8)
        let messages = try #require(body["messages"]?.array)
        #expect(messages.map { $0["role"]?.string } == ["system", "user"])
        let system = try #require(messages[0]["content"]?.string)
        #expect(system.contains("JSON"))
        #expect(system.contains(#""broll": [{"description": string}, ...]"#))
        let user = try #require(messages[1]["content"]?.string)
        #expect(user == "Topic: the lighthouse\nStyle: noir\nCharacters: Ada, Leo\nScenes: 6")
    }

    @Test func theDefaultSceneCountIsAsked() {
        #expect(OpenAIScriptProvider.userPrompt(for: EpisodeSpec(topic: "t")) == "Topic: t\nScenes: 4")
    }

    @Test func oneRepairFixesAnInvalidReply() async throws {
        let broken = Fixture.script(scenes: 3)  // four were asked for
        let transport = FakeTransport([
            .okJSON(Fixture.chat(broken)), .okJSON(Fixture.chat(Fixture.script(scenes: 4))),
        ])
        let (logger, handler) = capturingLogger()
        let provider = OpenAIScriptProvider(settings: settings, caller: makeCaller(transport))
        let script = try await provider.writeScript(
            for: EpisodeSpec(topic: "t"),
            context: makeContext(item: "script", logger: logger)
        )
        #expect(script.scenes.count == 4)
        #expect(transport.requests.count == 2)

        let messages = try #require(jsonBody(transport.requests.last)?["messages"]?.array)
        #expect(messages.map { $0["role"]?.string } == ["system", "user", "assistant", "user"])
        #expect(messages[2]["content"]?.string == broken)
        let repair = try #require(messages[3]["content"]?.string)
        #expect(repair.contains("scenes: 3 given, need exactly 4"))
        #expect(repair.contains("corrected JSON"))
        #expect(handler.entries.all.contains { $0.level == .warning && $0.message.contains("repair") })
    }

    @Test func twoInvalidRepliesAreAnInvalidResponse() async throws {
        let transport = FakeTransport([.okJSON(Fixture.chat("not json")), .okJSON(Fixture.chat("{\"title\":1}"))])
        let provider = OpenAIScriptProvider(settings: settings, caller: makeCaller(transport))
        let error = await #expect(throws: ProviderError.self) {
            try await provider.writeScript(for: EpisodeSpec(topic: "t"), context: makeContext(item: "script"))
        }
        #expect(error?.kind == .invalidResponse)
        #expect(error?.message == "openai chat: invalid script after one repair: title: must be a string, not a number")
        #expect(transport.requests.count == 2)
    }

    @Test func aReplyCutOffAtTheTokenLimitIsRepaired() async throws {
        let transport = FakeTransport([
            .okJSON(Fixture.chat(Fixture.script(scenes: 4), finishReason: "length")),
            .okJSON(Fixture.chat(Fixture.script(scenes: 4))),
        ])
        let provider = OpenAIScriptProvider(settings: settings, caller: makeCaller(transport))
        _ = try await provider.writeScript(for: EpisodeSpec(topic: "t"), context: makeContext(item: "script"))
        let repair = jsonBody(transport.requests.last)?["messages"]?.array?.last?["content"]?.string
        #expect(repair?.contains("finish_reason") == true)
    }

    @Test func aBrokenEnvelopeIsNotRepaired() async {
        let transport = FakeTransport([.okJSON(#"{"object":"error"}"#)])
        let provider = OpenAIScriptProvider(settings: settings, caller: makeCaller(transport))
        let error = await #expect(throws: ProviderError.self) {
            try await provider.writeScript(for: EpisodeSpec(topic: "t"), context: makeContext(item: "script"))
        }
        #expect(error?.kind == .invalidResponse)
        #expect(transport.requests.count == 1)
    }

    @Test func aNullContentIsRepaired() async throws {
        let empty =
            #"{"choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":null},"finish_reason":"stop"}]}"#
        let transport = FakeTransport([.okJSON(empty), .okJSON(Fixture.chat(Fixture.script()))])
        let provider = OpenAIScriptProvider(settings: settings, caller: makeCaller(transport))
        _ = try await provider.writeScript(for: EpisodeSpec(topic: "t"), context: makeContext(item: "script"))
        #expect(transport.requests.count == 2)
    }

    @Test func withoutAKeyNoAuthorizationIsSent() async throws {
        let transport = FakeTransport([.okJSON(Fixture.chat(Fixture.script()))])
        let local = OpenAISettings(baseURL: "http://127.0.0.1:8080/v1")
        _ = try await OpenAIScriptProvider(settings: local, caller: makeCaller(transport)).writeScript(
            for: EpisodeSpec(topic: "t"),
            context: makeContext(item: "script")
        )
        #expect(transport.requests.first?.headers["authorization"] == nil)
    }
}

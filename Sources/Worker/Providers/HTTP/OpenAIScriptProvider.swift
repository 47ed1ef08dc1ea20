import Foundation
import Logging
import Protocol

/// Writes scripts with an OpenAI-compatible chat completion in JSON mode (providers.md §1).
///
/// The reply is checked by ``ScriptSchema``. If it is not valid (bad JSON, wrong shape, cut off at
/// `max_tokens`), the model gets one repair request: its reply and the validation error, asking for
/// corrected JSON. A second invalid reply fails the call with `invalidResponse`.
struct OpenAIScriptProvider: ScriptProvider {
    var settings: OpenAISettings
    var caller: HTTPCaller

    static let service = "openai chat"

    /// - Parameter transport: `nil` uses the process-wide async-http-client transport.
    init(settings: OpenAISettings, call: HTTPCallSettings = .default, transport: (any HTTPTransport)? = nil) {
        self.init(settings: settings, caller: .standard(call, transport: transport))
    }

    init(settings: OpenAISettings, caller: HTTPCaller) {
        self.settings = settings
        self.caller = caller
    }

    func writeScript(for spec: EpisodeSpec, context: CallContext) async throws -> Script {
        var messages = [
            ChatMessage(role: "system", content: Self.systemPrompt),
            ChatMessage(role: "user", content: Self.userPrompt(for: spec)),
        ]
        let first = try await complete(messages, context: context)
        let problem: ScriptSchema.ValidationError
        do {
            return try Self.script(from: first, spec: spec)
        } catch {
            problem = error
        }
        context.logger.warning(
            "script reply invalid, asking once for a repair",
            metadata: ["service": "\(Self.service)", "error.message": "\(problem.message)"]
        )
        messages.append(ChatMessage(role: "assistant", content: first.content ?? ""))
        messages.append(ChatMessage(role: "user", content: Self.repairPrompt(problem, spec: spec)))
        let second = try await complete(messages, context: context)
        do {
            return try Self.script(from: second, spec: spec)
        } catch {
            throw ProviderError(.invalidResponse, "\(Self.service): invalid script after one repair: \(error.message)")
        }
    }

    // MARK: - Prompts

    static let systemPrompt = """
        You write scripts for short narrated videos. Answer with a single JSON object and nothing else, \
        in exactly this shape:
        \(ScriptSchema.shapeDescription)
        Rules: "characters" lists the 1 to \(ScriptSchema.maxCharacters) speaking characters, each name once. \
        Every line's "character" is exactly one of those names. Write exactly the number of scenes asked for. \
        A scene's "description" and a B-roll shot's "description" are visual prompts for an image \
        generator (what the camera sees, no dialogue). "narration" is what the narrator says over the \
        scene; "lines" are what the characters say, in order. Add one B-roll shot per two scenes. \
        Keep every text short: descriptions under 400 characters, narration and lines under 300.
        """

    /// Topic, style and characters when given, and `Scenes: N`.
    static func userPrompt(for spec: EpisodeSpec) -> String {
        var lines = ["Topic: \(spec.topic)"]
        if let style = spec.style, !style.isEmpty { lines.append("Style: \(style)") }
        if let characters = spec.characters, !characters.isEmpty {
            lines.append("Characters: \(characters.joined(separator: ", "))")
        }
        lines.append("Scenes: \(ScriptSchema.sceneCount(for: spec))")
        return lines.joined(separator: "\n")
    }

    static func repairPrompt(_ problem: ScriptSchema.ValidationError, spec: EpisodeSpec) -> String {
        """
        Your reply could not be used: \(problem.message). Reply again with only the corrected JSON object, \
        in exactly the shape given, with exactly \(ScriptSchema.sceneCount(for: spec)) scenes.
        """
    }

    // MARK: - The call

    struct ChatMessage: Encodable, Sendable, Equatable {
        var role: String
        var content: String
    }

    private struct ChatRequest: Encodable {
        struct ResponseFormat: Encodable {
            var type = "json_object"
        }

        var model: String
        var messages: [ChatMessage]
        var temperature: Double
        var maxTokens: Int
        var responseFormat = ResponseFormat()
    }

    /// The model's reply: its text and why it stopped.
    struct Reply: Sendable, Equatable {
        var content: String?
        var finishReason: String?
    }

    private func complete(_ messages: [ChatMessage], context: CallContext) async throws -> Reply {
        let body = try ProviderJSON.encode(
            ChatRequest(
                model: settings.scriptModel,
                messages: messages,
                temperature: settings.temperature,
                maxTokens: settings.maxTokens
            )
        )
        let request = ProviderRequest(
            url: ProviderURL.join(settings.baseURL, "chat/completions"),
            headers: ProviderHeaders.json(bearer: settings.apiKey, accept: "application/json"),
            body: body,
            maxResponseBytes: HTTPBodyLimit.chat
        )
        // Token budgets count the prompt (about 4 bytes a token) plus max_tokens up front, as OpenAI does.
        let units = body.count / 4 + settings.maxTokens
        let response = try await caller.perform(request, service: Self.service, context: context, units: units)
        return try Self.reply(from: response.body)
    }

    /// Reads `choices[0].message.content` and `finish_reason` from a chat completion.
    static func reply(from body: Data) throws -> Reply {
        guard let json = JSONValue.parse(body, limit: HTTPBodyLimit.chat),
            let choice = json["choices"]?.array?.first, choice.object != nil
        else {
            throw ProviderError(.invalidResponse, "\(service): the answer is not a chat completion")
        }
        return Reply(content: choice["message"]?["content"]?.string, finishReason: choice["finish_reason"]?.string)
    }

    /// The script in a reply, or why there is none.
    static func script(from reply: Reply, spec: EpisodeSpec) throws(ScriptSchema.ValidationError) -> Script {
        if reply.finishReason == "length" {
            throw ScriptSchema.ValidationError(
                "the reply was cut off at the token limit (finish_reason \"length\"); write shorter texts"
            )
        }
        guard let content = reply.content else { throw ScriptSchema.ValidationError("the reply has no content") }
        // The narration is spoken and captioned like any line, by a Narrator voice.
        return try ScriptSchema.parse(content, spec: spec).withNarrationAsLines()
    }
}

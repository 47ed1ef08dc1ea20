import Foundation
import Logging
import Protocol
import Shared
import Synchronization

/// Writes scripts with an OpenAI-compatible chat completion in JSON mode (providers.md §1).
///
/// The request fits the model family (``OpenAIModels``): reasoning models get `max_completion_tokens`
/// and no `temperature`; the token cap grows with the episode's scene count. A model that still refuses
/// one of the two (a name the family rules do not know) gets the request again without it, once, and
/// every later call of this process remembers.
///
/// The reply is checked by ``ScriptSchema`` after a leading `<think>…</think>` (reasoning models on
/// local servers) is taken off. A `refusal` fails the call at once. If the reply is not valid (bad
/// JSON, wrong shape, cut off at the token cap), the model gets one repair request: its reply and the
/// validation error, asking for corrected JSON. A second invalid reply fails the call with
/// `invalidResponse`.
struct OpenAIScriptProvider: ScriptProvider {
    var settings: OpenAISettings
    var caller: HTTPCaller
    /// What this process learned about the model's parameters (shared by copies of the provider).
    let learned = ChatParameterMemory()

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
        let first = try await complete(messages, scenes: ScriptSchema.sceneCount(for: spec), context: context)
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
        let second = try await complete(messages, scenes: ScriptSchema.sceneCount(for: spec), context: context)
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

    struct ChatRequest: Encodable, Equatable {
        struct ResponseFormat: Encodable, Equatable {
            var type = "json_object"
        }

        var model: String
        var messages: [ChatMessage]
        /// Left out when `nil`, like the two caps.
        var temperature: Double?
        var maxTokens: Int?
        var maxCompletionTokens: Int?
        var reasoningEffort: String?
        var responseFormat = ResponseFormat()
    }

    /// The request for `messages`, shaped for the model (and for what this process learned about it).
    func chatRequest(_ messages: [ChatMessage], scenes: Int) -> ChatRequest {
        let model = settings.scriptModel
        let cap = settings.maxOutputTokens ?? OpenAIModels.outputTokens(scenes: scenes, model: model)
        let known = learned.current
        var parameter = settings.tokenParameter.resolved(for: model)
        if let forced = known.tokenParameter { parameter = forced }
        let reasoning = OpenAIModels.isReasoning(model)
        let sendsTemperature = !reasoning && !known.refusesTemperature
        return ChatRequest(
            model: model,
            messages: messages,
            temperature: sendsTemperature ? settings.temperature : nil,
            maxTokens: parameter == .maxTokens ? cap : nil,
            maxCompletionTokens: parameter == .maxCompletionTokens ? cap : nil,
            reasoningEffort: reasoning && !known.refusesReasoningEffort ? settings.reasoningEffort : nil
        )
    }

    /// The model's reply: its text, why it stopped, and a refusal if it gave one.
    struct Reply: Sendable, Equatable {
        var content: String?
        var finishReason: String?
        var refusal: String?
        /// `usage.prompt_tokens` and `usage.completion_tokens`, when the reply has them.
        var promptTokens: Int?
        var completionTokens: Int?

        init(
            content: String?,
            finishReason: String?,
            refusal: String? = nil,
            promptTokens: Int? = nil,
            completionTokens: Int? = nil
        ) {
            self.content = content
            self.finishReason = finishReason
            self.refusal = refusal
            self.promptTokens = promptTokens
            self.completionTokens = completionTokens
        }
    }

    private func complete(_ messages: [ChatMessage], scenes: Int, context: CallContext) async throws -> Reply {
        var adjusted = false
        while true {
            let chat = chatRequest(messages, scenes: scenes)
            let body = try ProviderJSON.encode(chat)
            let request = ProviderRequest(
                url: ProviderURL.join(settings.baseURL, "chat/completions"),
                headers: ProviderHeaders.json(bearer: settings.apiKey, accept: "application/json"),
                body: body,
                maxResponseBytes: HTTPBodyLimit.chat
            )
            // Token budgets count the prompt (about 4 bytes a token) plus the cap up front, as OpenAI does.
            let units = body.count / 4 + (chat.maxTokens ?? chat.maxCompletionTokens ?? 0)
            // Under a spend cap the request may cost at most its prompt and its whole token cap.
            try context.meter.reserve(
                .tokens(
                    model: settings.scriptModel,
                    input: body.count / 4,
                    output: chat.maxTokens ?? chat.maxCompletionTokens
                        ?? OpenAIModels.outputTokens(scenes: scenes, model: settings.scriptModel)
                )
            )
            do {
                let response = try await caller.perform(
                    request,
                    service: Self.service,
                    context: context,
                    units: units,
                    target: settings.target(.script),
                    usage: { Self.totalTokens(in: $0.body) }
                )
                let reply = try Self.reply(from: response.body)
                // Billed by the tokens the reply reports; a server that reports none (some local ones) is
                // charged about 4 bytes a token of the prompt and of the answer.
                context.meter.charge(
                    .tokens(
                        model: settings.scriptModel,
                        input: reply.promptTokens ?? body.count / 4,
                        output: reply.completionTokens ?? (reply.content?.utf8.count ?? 0) / 4
                    )
                )
                if let refusal = reply.refusal {
                    throw ProviderError(.clientError, "\(Self.service): the model refused: \(refusal.prefix(200))")
                }
                return reply
            } catch let error as ProviderError {
                guard !adjusted, let fix = learned.learn(from: error, sent: chat) else {
                    throw ProviderDiagnosis.annotate(error, target: settings.target(.script))
                }
                adjusted = true
                context.logger.warning(
                    "the model refused a chat parameter; sending the request again without it",
                    metadata: [
                        "service": "\(Self.service)", "model": "\(settings.scriptModel)", "change": "\(fix)",
                        "error.message": "\(error.message)",
                    ]
                )
            }
        }
    }

    /// `usage.total_tokens` of a chat completion (what the call really cost in the token budget), `nil`
    /// when absent or not a whole number from 0 to 10⁹.
    static func totalTokens(in body: Data) -> Int? {
        guard let json = JSONValue(data: body, limit: HTTPBodyLimit.chat),
            let total = json["usage"]?["total_tokens"]?.double, total.isFinite, total >= 0, total <= 1e9,
            total.rounded() == total
        else { return nil }
        return Int(total)
    }

    /// Reads `choices[0].message` (`content`, `refusal`) and `finish_reason` from a chat completion.
    static func reply(from body: Data) throws -> Reply {
        guard let json = JSONValue(data: body, limit: HTTPBodyLimit.chat),
            let choice = json["choices"]?.array?.first, choice.members != nil
        else {
            throw ProviderError(.invalidResponse, "\(service): the answer is not a chat completion")
        }
        let refusal = choice["message"]?["refusal"]?.string.flatMap { $0.isEmpty ? nil : $0 }
        let usage = json["usage"]
        func tokens(_ key: String) -> Int? {
            guard let n = usage?[key]?.double, n.isFinite, n >= 0, n <= 1e9 else { return nil }
            return Int(n)
        }
        return Reply(
            content: choice["message"]?["content"]?.string,
            finishReason: choice["finish_reason"]?.string,
            refusal: refusal,
            promptTokens: tokens("prompt_tokens"),
            completionTokens: tokens("completion_tokens")
        )
    }

    /// The content without a leading `<think>…</think>` block (reasoning models served by Ollama, vLLM or
    /// llama.cpp put their reasoning there). An unclosed block leaves nothing.
    static func withoutThinking(_ content: String) -> String {
        let trimmed = content.drop { $0.isWhitespace }
        guard trimmed.hasPrefix("<think>") else { return content }
        guard let end = trimmed.range(of: "</think>") else { return "" }
        return String(trimmed[end.upperBound...])
    }

    /// The script in a reply, or why there is none.
    static func script(from reply: Reply, spec: EpisodeSpec) throws(ScriptSchema.ValidationError) -> Script {
        if reply.finishReason == "length" {
            throw ScriptSchema.ValidationError(
                "the reply was cut off at the token limit (finish_reason \"length\"); write shorter texts"
            )
        }
        guard let content = reply.content.map(withoutThinking),
            !content.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
        else { throw ScriptSchema.ValidationError("the reply has no content") }
        // The narration is spoken and captioned like any line, by a Narrator voice.
        return try ScriptSchema.parse(content, spec: spec).withNarrationAsLines()
    }
}

/// What one process learned about a chat model's parameters from its refusals, shared by every copy of
/// the provider: after the first `unsupported_parameter` for `max_tokens`, every call sends
/// `max_completion_tokens`.
final class ChatParameterMemory: Sendable {
    struct Known: Sendable, Equatable {
        var tokenParameter: OpenAIModels.TokenParameter?
        var refusesTemperature = false
        var refusesReasoningEffort = false
    }

    private let state = Mutex(Known())

    var current: Known { state.withLock { $0 } }

    /// Learns from a 400 that refused the token cap's key or the temperature of `sent`; returns what
    /// changed, or `nil` when the error is about something else (or was already learned).
    func learn(from error: ProviderError, sent: OpenAIScriptProvider.ChatRequest) -> String? {
        guard let failure = error.classification, failure.status == 400 else { return nil }
        let text = (failure.message + " " + (failure.code ?? "")).lowercased()
        let aboutParameter = text.contains("unsupported") || text.contains("not supported")
        guard aboutParameter else { return nil }
        return state.withLock { known -> String? in
            if text.contains("max_tokens"), sent.maxTokens != nil {
                known.tokenParameter = .maxCompletionTokens
                return "max_tokens → max_completion_tokens"
            }
            if text.contains("max_completion_tokens"), sent.maxCompletionTokens != nil {
                known.tokenParameter = .maxTokens
                return "max_completion_tokens → max_tokens"
            }
            if text.contains("reasoning_effort"), sent.reasoningEffort != nil {
                known.refusesReasoningEffort = true
                return "no reasoning_effort"
            }
            if text.contains("temperature"), sent.temperature != nil {
                known.refusesTemperature = true
                return "no temperature"
            }
            return nil
        }
    }
}

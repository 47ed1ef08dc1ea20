import Foundation
import Protocol
import Shared

/// `worker check` / `coordinator check`: one cheap real call per configured stage, with the settings a
/// batch would use, so a bad key, an unknown model or a retired voice costs one call instead of a batch
/// of placeholders.
///
/// - script (OpenAI-compatible): a chat completion capped at a few tokens, shaped exactly like the
///   batch's (same model, same token parameter and temperature rules, JSON mode).
/// - voice: a one-character speech per distinct configured voice (at most ``maxVoices``).
/// - image: OpenAI `GET /models/{model}` (free; the size and quality are checked against the model
///   family without a call); Hugging Face the smallest image (256×256, one step), since only a real call
///   shows whether the account has credits.
/// - offline stages: the tools' versions (ffmpeg, espeak-ng).
///
/// Calls go straight to the transport: no retries, no fleet budget (a handful of calls before a batch).
struct Preflight: Sendable {
    var configuration: ProviderConfiguration
    var transport: any HTTPTransport
    var tools: ToolLocator
    /// Each call's time limit. The default is 30 s.
    var timeout: Duration
    /// Voices checked per voice stage. The default is 8.
    static let maxVoices = 8

    init(
        configuration: ProviderConfiguration,
        transport: (any HTTPTransport)? = nil,
        tools: ToolLocator = .environment,
        timeout: Duration = .seconds(30)
    ) {
        self.configuration = configuration
        self.transport = transport ?? AsyncHTTPClientTransport.processWide(connectTimeout: .seconds(10))
        self.tools = tools
        self.timeout = timeout
    }

    /// How one stage fared.
    struct StageResult: Sendable, Equatable, CustomStringConvertible {
        enum Status: String, Sendable {
            case ok = "OK"
            /// Usable, with a remark (rate limited now, a model still loading).
            case warning = "WARN"
            case failed = "FAIL"
        }

        var stage: String
        var provider: String
        var status: Status
        /// Model, voice and latency when OK; the diagnosis otherwise.
        var detail: String
        var problem: ProviderDiagnosis.Problem?
        var fix: String?

        /// `image   openai       FAIL  unknown model "dall-e-3" (…); fix: set OPENAI_IMAGE_MODEL …`
        var description: String {
            let head =
                stage.padding(toLength: 7, withPad: " ", startingAt: 0) + " "
                + provider.padding(toLength: 12, withPad: " ", startingAt: 0) + " "
                + status.rawValue.padding(toLength: 5, withPad: " ", startingAt: 0) + " "
            return head + (fix.map { "\(detail); fix: \($0)" } ?? detail)
        }
    }

    /// Checks every stage, in pipeline order.
    func run() async -> [StageResult] {
        var results: [StageResult] = []
        results.append(await script())
        results.append(await voice())
        results.append(await image())
        results.append(await render())
        return results
    }

    /// Whether a batch can run as configured (warnings pass).
    static func passed(_ results: [StageResult]) -> Bool {
        !results.contains { $0.status == .failed }
    }

    // MARK: - Stages

    private func script() async -> StageResult {
        let c = configuration
        switch c.script {
        case "openai":
            let provider = OpenAIScriptProvider(settings: c.openAI, call: c.http(for: .script), transport: transport)
            let target = c.openAI.target(.script)
            let messages = [
                OpenAIScriptProvider.ChatMessage(role: "user", content: "Reply with the JSON object {\"ok\":true}.")
            ]
            var adjusted: String?
            for _ in 0..<2 {
                var chat = provider.chatRequest(messages, scenes: 1)
                // A few tokens: the key, the model and the parameters are what is being checked. Reasoning
                // models spend tokens before answering, so they may stop at the cap with no text: fine.
                let cap = OpenAIModels.isReasoning(c.openAI.scriptModel) ? 16 : 1
                if chat.maxTokens != nil { chat.maxTokens = cap }
                if chat.maxCompletionTokens != nil { chat.maxCompletionTokens = cap }
                let outcome = await call(
                    ProviderRequest(
                        url: ProviderURL.join(c.openAI.baseURL, "chat/completions"),
                        headers: ProviderHeaders.json(bearer: c.openAI.apiKey, accept: "application/json"),
                        body: try? ProviderJSON.encode(chat),
                        maxResponseBytes: HTTPBodyLimit.chat
                    ),
                    service: OpenAIScriptProvider.service
                )
                switch outcome {
                case .success(let elapsed):
                    let note = adjusted.map { " (learned: \($0))" } ?? ""
                    return ok("script", "openai", "\(c.openAI.scriptModel), \(Self.ms(elapsed))\(note)")
                case .failure(let error):
                    if Self.stoppedAtCap(error) {
                        return ok("script", "openai", "\(c.openAI.scriptModel) (stopped at the token cap)")
                    }
                    if adjusted == nil, let change = provider.learned.learn(from: error, sent: chat) {
                        adjusted = change
                        continue
                    }
                    return failed("script", "openai", ProviderDiagnosis.diagnose(error, target: target))
                }
            }
            return StageResult(stage: "script", provider: "openai", status: .failed, detail: "unreachable")
        case "simulated":
            return ok("script", "simulated", "no calls")
        default:
            return ok("script", "offline", "template writer, no calls")
        }
    }

    private func voice() async -> StageResult {
        let c = configuration
        switch c.voice {
        case "openai":
            let voices = Array(Self.distinct(c.openAI.voices).prefix(Self.maxVoices))
            var slowest = Duration.zero
            for voice in voices {
                let body = try? ProviderJSON.encode(
                    SpeechProbe(model: c.openAI.voiceModel, input: ".", voice: voice, responseFormat: "wav")
                )
                let outcome = await call(
                    ProviderRequest(
                        url: ProviderURL.join(c.openAI.baseURL, "audio/speech"),
                        headers: ProviderHeaders.json(bearer: c.openAI.apiKey, accept: "application/octet-stream"),
                        body: body,
                        maxResponseBytes: HTTPBodyLimit.audio
                    ),
                    service: OpenAIVoiceProvider.service
                )
                switch outcome {
                case .success(let elapsed): slowest = max(slowest, elapsed)
                case .failure(let error):
                    let diagnosis = ProviderDiagnosis.diagnose(error, target: c.openAI.target(.voice, voice: voice))
                    return failed("voice", "openai", diagnosis)
                }
            }
            return ok(
                "voice",
                "openai",
                "\(c.openAI.voiceModel), voices \(voices.joined(separator: ","))" + ", \(Self.ms(slowest))"
            )
        case "elevenlabs":
            let e = c.elevenLabs
            let voices = Array(
                Self.distinct(e.defaultVoiceIds + e.voiceIds.keys.sorted().compactMap { e.voiceIds[$0] }).prefix(
                    Self.maxVoices
                )
            )
            var slowest = Duration.zero
            for voice in voices {
                var headers: HTTPHeaderFields = ["Content-Type": "application/json", "Accept": "audio/mpeg"]
                if let key = e.apiKey, !key.isEmpty { headers.add("xi-api-key", key) }
                let url =
                    ProviderURL.join(e.baseURL, "text-to-speech/\(ProviderURL.segment(voice))")
                    + "?output_format=\(ProviderURL.segment(e.outputFormat))"
                let outcome = await call(
                    ProviderRequest(
                        url: url,
                        headers: headers,
                        body: try? ProviderJSON.encode(ElevenLabsProbe(text: ".", modelId: e.modelId)),
                        maxResponseBytes: HTTPBodyLimit.audio
                    ),
                    service: ElevenLabsVoiceProvider.service
                )
                switch outcome {
                case .success(let elapsed): slowest = max(slowest, elapsed)
                case .failure(let error):
                    return failed(
                        "voice",
                        "elevenlabs",
                        ProviderDiagnosis.diagnose(error, target: e.target(voice: voice))
                    )
                }
            }
            return ok(
                "voice",
                "elevenlabs",
                "\(e.modelId), voices \(voices.joined(separator: ",")), \(Self.ms(slowest))"
            )
        case "simulated":
            return ok("voice", "simulated", "no calls")
        default:
            return await toolVersions("voice", "offline", ["espeak-ng"])
        }
    }

    private func image() async -> StageResult {
        let c = configuration
        switch c.image {
        case "openai":
            let o = c.openAI
            let family = OpenAIModels.imageFamily(o.imageModel)
            if let problem = OpenAIModels.sizeProblem(o.resolvedImageSize, family: family) {
                return StageResult(
                    stage: "image",
                    provider: "openai",
                    status: .failed,
                    detail: "\(o.imageModel): \(problem)",
                    problem: .refusedParameter,
                    fix: "set OPENAI_IMAGE_SIZE (or openai.image_size), or leave it unset to fit the model"
                )
            }
            let outcome = await call(
                ProviderRequest(
                    method: "GET",
                    url: ProviderURL.join(o.baseURL, "models/\(ProviderURL.segment(o.imageModel))"),
                    headers: ProviderHeaders.json(bearer: o.apiKey, accept: "application/json"),
                    maxResponseBytes: HTTPBodyLimit.chat
                ),
                service: OpenAIImageProvider.service
            )
            let quality = o.resolvedImageQuality.map { " \($0)" } ?? ""
            switch outcome {
            case .success(let elapsed):
                return ok("image", "openai", "\(o.imageModel) \(o.resolvedImageSize)\(quality), \(Self.ms(elapsed))")
            case .failure(let error):
                return failed("image", "openai", ProviderDiagnosis.diagnose(error, target: o.target(.image)))
            }
        case "huggingface":
            let h = c.huggingFace
            let body = try? ProviderJSON.encode(
                HuggingFaceProbe(
                    inputs: "a small red dot",
                    parameters: .init(width: 256, height: 256, numInferenceSteps: 1)
                )
            )
            let outcome = await call(
                ProviderRequest(
                    url: ProviderURL.join(h.baseURL, ProviderURL.path(h.imageModel)),
                    headers: ProviderHeaders.json(bearer: h.token, accept: "image/png, image/jpeg, application/json"),
                    body: body,
                    maxResponseBytes: HTTPBodyLimit.image
                ),
                service: HuggingFaceImageProvider.service
            )
            switch outcome {
            case .success(let elapsed):
                return ok("image", "huggingface", "\(h.imageModel), \(Self.ms(elapsed))")
            case .failure(let error):
                if let failure = error.classification, failure.isModelLoading {
                    let eta = failure.hints.estimatedTime.map { " (about \($0.shortDescription))" } ?? ""
                    return StageResult(
                        stage: "image",
                        provider: "huggingface",
                        status: .warning,
                        detail: "\(h.imageModel) is loading\(eta); calls wait for it"
                    )
                }
                return failed("image", "huggingface", ProviderDiagnosis.diagnose(error, target: h.target))
            }
        case "simulated":
            return ok("image", "simulated", "no calls")
        default:
            return await toolVersions("image", "offline", ["ffmpeg"])
        }
    }

    private func render() async -> StageResult {
        configuration.render == "simulated"
            ? ok("render", "simulated", "no files")
            : await toolVersions("render", "ffmpeg", ["ffmpeg", "ffprobe"])
    }

    // MARK: - Helpers

    private enum Outcome {
        case success(Duration)
        case failure(ProviderError)
    }

    /// One request, classified like a batch's calls.
    private func call(_ request: ProviderRequest, service: String) async -> Outcome {
        let started = ContinuousClock.now
        do {
            let response = try await transport.send(request, timeout: timeout)
            let elapsed = ContinuousClock.now - started
            if (200..<300).contains(response.status) { return .success(elapsed) }
            let failure = HTTPFailureClassifier.classify(
                status: response.status,
                headers: response.headers,
                body: response.body,
                redacting: HTTPCaller.secrets(in: request.headers)
            )
            return .failure(ProviderError(failure, service: service))
        } catch let error as HTTPTransportError {
            return .failure(ProviderError(HTTPFailureClassifier.classify(error), service: service))
        } catch {
            return .failure(ProviderError(HTTPFailure(kind: .network, message: "\(error)"), service: service))
        }
    }

    /// A reasoning model's "output limit reached" 400 for a tiny cap means the model answered.
    private static func stoppedAtCap(_ error: ProviderError) -> Bool {
        guard let failure = error.classification, failure.status == 400 else { return false }
        let text = failure.message.lowercased()
        return text.contains("output limit") && text.contains("reached")
    }

    private func toolVersions(_ stage: String, _ provider: String, _ names: [String]) async -> StageResult {
        var versions: [String] = []
        for name in names {
            do {
                let tool = try tools.locate(name)
                let flag = name == "espeak-ng" ? "--version" : "-version"
                let output = try await tool.run([flag], timeout: .seconds(10))
                let first = output.standardOutput.split(separator: "\n").first.map(String.init) ?? name
                versions.append(Self.shortVersion(first, name: name))
            } catch {
                return StageResult(
                    stage: stage,
                    provider: provider,
                    status: .failed,
                    detail: "\(error)",
                    problem: .other,
                    fix: ToolLocator.installHint(name)
                )
            }
        }
        return ok(stage, provider, versions.joined(separator: ", "))
    }

    /// `ffmpeg version 5.1.9-0+deb12u1 Copyright …` → `ffmpeg 5.1.9-0+deb12u1`;
    /// `eSpeak NG text-to-speech: 1.51  Data at: …` → `espeak-ng 1.51`.
    static func shortVersion(_ line: String, name: String) -> String {
        let words = line.split(separator: " ").map(String.init)
        if let index = words.firstIndex(of: "version"), index + 1 < words.count {
            return "\(name) \(words[index + 1])"
        }
        if let number = words.first(where: { $0.first?.isNumber == true }) { return "\(name) \(number)" }
        return name
    }

    private func ok(_ stage: String, _ provider: String, _ detail: String) -> StageResult {
        StageResult(stage: stage, provider: provider, status: .ok, detail: detail)
    }

    private func failed(
        _ stage: String,
        _ provider: String,
        _ diagnosis: ProviderDiagnosis
    ) -> StageResult {
        StageResult(
            stage: stage,
            provider: provider,
            status: diagnosis.problem.isConfigurationError ? .failed : .warning,
            detail: diagnosis.detail,
            problem: diagnosis.problem,
            fix: diagnosis.fix
        )
    }

    static func ms(_ duration: Duration) -> String { "\(duration.wholeMilliseconds) ms" }

    static func distinct(_ values: [String]) -> [String] {
        var seen: Set<String> = []
        return values.filter { seen.insert($0).inserted }
    }

    private struct SpeechProbe: Encodable {
        var model: String
        var input: String
        var voice: String
        var responseFormat: String
    }

    private struct ElevenLabsProbe: Encodable {
        var text: String
        var modelId: String
    }

    private struct HuggingFaceProbe: Encodable {
        struct Parameters: Encodable {
            var width: Int
            var height: Int
            var numInferenceSteps: Int
        }

        var inputs: String
        var parameters: Parameters
    }
}

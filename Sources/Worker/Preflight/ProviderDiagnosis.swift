import Shared

/// Which hosted service a stage calls, with the settings a user changes to fix it.
///
/// Diagnoses name settings by their environment variable first (what docs/CONFIGURATION.md's provider section
/// shows) and their config-file key second.
struct ProviderTarget: Sendable, Equatable {
    enum Service: String, Sendable {
        case openai, elevenlabs, huggingface
    }

    enum Stage: String, Sendable {
        case script, voice, image
    }

    var service: Service
    var stage: Stage
    /// The model asked for (for ElevenLabs, the `model_id`).
    var model: String
    /// The voice asked for, when the call speaks.
    var voice: String?
    /// The API root the calls go to.
    var baseURL: String

    /// `OPENAI_API_KEY (or openai.api_key)`.
    var keySetting: String {
        switch service {
        case .openai: "OPENAI_API_KEY (or openai.api_key)"
        case .elevenlabs: "ELEVENLABS_API_KEY (or elevenlabs.api_key)"
        case .huggingface: "HF_TOKEN (or huggingface.token)"
        }
    }

    /// `OPENAI_IMAGE_MODEL (or openai.image_model)`.
    var modelSetting: String {
        switch (service, stage) {
        case (.openai, .script): "OPENAI_SCRIPT_MODEL (or openai.script_model)"
        case (.openai, .voice): "OPENAI_VOICE_MODEL (or openai.voice_model)"
        case (.openai, .image): "OPENAI_IMAGE_MODEL (or openai.image_model)"
        case (.elevenlabs, _): "ELEVENLABS_MODEL_ID (or elevenlabs.model_id)"
        case (.huggingface, _): "HF_IMAGE_MODEL (or huggingface.image_model)"
        }
    }

    var voiceSetting: String {
        switch service {
        case .elevenlabs: "ELEVENLABS_VOICE_IDS (or elevenlabs.default_voice_ids / elevenlabs.voices)"
        default: "OPENAI_VOICES (or openai.voices)"
        }
    }

    var baseURLSetting: String {
        switch service {
        case .openai: "OPENAI_BASE_URL (or openai.base_url)"
        case .elevenlabs: "ELEVENLABS_BASE_URL (or elevenlabs.base_url)"
        case .huggingface: "HF_BASE_URL (or huggingface.base_url)"
        }
    }

    /// Where the account's credits are topped up.
    var billingHint: String {
        switch service {
        case .openai: "add credits or raise the spend limit at platform.openai.com (Settings → Billing)"
        case .elevenlabs: "upgrade the plan or wait for the monthly credit reset (elevenlabs.io → Subscription)"
        case .huggingface: "subscribe to PRO or add pre-paid credits (huggingface.co → Settings → Billing)"
        }
    }

    /// A current model to suggest when the configured one is unknown, if the service has a default.
    var suggestedModel: String? {
        guard isDefaultHost else { return nil }
        switch (service, stage) {
        case (.openai, .script): return OpenAISettings.defaultScriptModel
        case (.openai, .voice): return OpenAISettings.defaultVoiceModel
        case (.openai, .image): return OpenAISettings.defaultImageModel
        case (.elevenlabs, _): return ElevenLabsSettings.defaultModelId
        case (.huggingface, _): return HuggingFaceSettings.defaultImageModel
        }
    }

    /// Whether the calls go to the service itself (not a local or compatible server).
    var isDefaultHost: Bool {
        switch service {
        case .openai: baseURL.hasPrefix(OpenAISettings.defaultBaseURL)
        case .elevenlabs: baseURL.hasPrefix(ElevenLabsSettings.defaultBaseURL)
        case .huggingface: baseURL.hasPrefix(HuggingFaceSettings.defaultBaseURL)
        }
    }
}

/// What a failed provider call means for the person running the batch, and which setting to change
/// (pure: a ``ProviderError`` and its ``ProviderTarget`` in, words out). `coordinator check` prints it;
/// failed calls carry it in their message; an open circuit's log line quotes it.
struct ProviderDiagnosis: Sendable, Equatable, CustomStringConvertible {
    enum Problem: String, Sendable {
        case badKey = "bad key"
        case missingPermission = "missing permission"
        case accountBlocked = "account blocked"
        case noCredits = "no credits"
        case paidPlanRequired = "paid plan required"
        case unknownModel = "unknown model"
        case unknownVoice = "unknown or retired voice"
        case refusedParameter = "parameter refused"
        case rateLimited = "rate limited"
        case unreachable = "unreachable"
        case circuitOpen = "circuit open"
        case other = "failed"

        /// Whether the batch can still work as configured (a passing limit is not a configuration error).
        var isConfigurationError: Bool { self != .rateLimited }
    }

    var problem: Problem
    /// What happened, in words, with the service's own status and code.
    var detail: String
    /// Which setting or variable to change, if that is the cure.
    var fix: String?

    /// `unknown model "dall-e-3" (HTTP 404 model_not_found: …); fix: set OPENAI_IMAGE_MODEL …`
    var description: String {
        fix.map { "\(detail); fix: \($0)" } ?? detail
    }

    static func diagnose(_ error: ProviderError, target: ProviderTarget) -> ProviderDiagnosis {
        guard let failure = error.classification else {
            if error.kind == .quotaExceeded || error.kind == .authFailed {
                return ProviderDiagnosis(problem: .circuitOpen, detail: error.message, fix: nil)
            }
            return ProviderDiagnosis(problem: .other, detail: error.message, fix: nil)
        }
        let said = failure.description
        let code = failure.code ?? ""
        let message = failure.message.lowercased()
        switch failure.kind {
        case .auth:
            if code == "detected_unusual_activity" {
                return ProviderDiagnosis(
                    problem: .accountBlocked,
                    detail: "the account may not use the free tier through the API (\(said))",
                    fix: "a paid \(target.service.rawValue) plan, or another voice provider (voice=offline)"
                )
            }
            if failure.status == 403 || code == "missing_permissions" || message.contains("permission") {
                let fix =
                    target.service == .huggingface
                    ? "give the token the \"Make calls to Inference Providers\" permission, or set \(target.keySetting) to one that has it"
                    : "give the key the permission the error names, or set \(target.keySetting) to one that has it"
                return ProviderDiagnosis(
                    problem: .missingPermission,
                    detail: "the key lacks a permission (\(said))",
                    fix: fix
                )
            }
            return ProviderDiagnosis(
                problem: .badKey,
                detail: "the key was refused (\(said))",
                fix: "set \(target.keySetting) to a valid key"
            )
        case .quota:
            if code == "paid_plan_required" || message.contains("paid plan") {
                let voice = target.voice.map { "voice \($0)" } ?? "this voice or model"
                return ProviderDiagnosis(
                    problem: .paidPlanRequired,
                    detail: "\(voice) needs a paid plan (\(said))",
                    fix: "choose voices the plan includes in \(target.voiceSetting), or upgrade the plan"
                )
            }
            return ProviderDiagnosis(
                problem: .noCredits,
                detail: "no credits or quota left (\(said))",
                fix: target.billingHint
            )
        case .rateLimit, .concurrencyLimit:
            let reset = failure.serverDelay.map { "; resets in \($0.shortDescription)" } ?? ""
            return ProviderDiagnosis(
                problem: .rateLimited,
                detail: "rate limited\(reset) (\(said))",
                fix: "nothing to change now; set --budget to the account's limits so the fleet stays under them"
            )
        case .network, .timeout:
            return ProviderDiagnosis(
                problem: .unreachable,
                detail: "cannot reach \(target.baseURL) (\(said))",
                fix: "check the network, or \(target.baseURLSetting)"
            )
        default:
            break
        }
        if code == "voice_not_found" || (failure.status == 404 && message.contains("voice")) {
            let voice = target.voice.map { "\"\($0)\"" } ?? ""
            return ProviderDiagnosis(
                problem: .unknownVoice,
                detail: "unknown or retired voice \(voice) (\(said))",
                fix: "set \(target.voiceSetting) to voices of your account"
            )
        }
        if code == "model_not_found" || (failure.status == 404 && target.service == .huggingface) {
            let suggestion = target.suggestedModel.flatMap { $0 == target.model ? nil : $0 }
            let example = suggestion.map { ", e.g. \($0)" } ?? ""
            return ProviderDiagnosis(
                problem: .unknownModel,
                detail: "unknown model \"\(target.model)\" (\(said))",
                fix:
                    "set \(target.modelSetting) to a model \(target.isDefaultHost ? "the service offers" : "this server has")\(example)"
            )
        }
        if failure.status == 400, message.contains("unsupported") || code.hasPrefix("unsupported") {
            return ProviderDiagnosis(
                problem: .refusedParameter,
                detail: "the model refused a parameter (\(said))",
                fix:
                    "for chat: OPENAI_TOKEN_PARAMETER (max_tokens|max_completion_tokens) or OPENAI_TEMPERATURE; for images: OPENAI_IMAGE_SIZE / OPENAI_IMAGE_QUALITY"
            )
        }
        return ProviderDiagnosis(problem: .other, detail: said, fix: nil)
    }

    /// `error` with the fix appended to its message when the cure is a setting (unknown model or voice,
    /// bad key, no credits…), so the placeholder's reason and the log line say what to change.
    static func annotate(_ error: ProviderError, target: ProviderTarget) -> ProviderError {
        let diagnosis = diagnose(error, target: target)
        guard diagnosis.problem.isConfigurationError, diagnosis.problem != .other,
            diagnosis.problem != .circuitOpen, diagnosis.problem != .unreachable, let fix = diagnosis.fix
        else { return error }
        var annotated = error
        annotated.message += "; fix: \(fix)"
        return annotated
    }
}

extension OpenAISettings {
    /// The target of `stage`'s calls, for diagnoses.
    func target(_ stage: ProviderTarget.Stage, voice: String? = nil) -> ProviderTarget {
        let model =
            switch stage {
            case .script: scriptModel
            case .voice: voiceModel
            case .image: imageModel
            }
        return ProviderTarget(service: .openai, stage: stage, model: model, voice: voice, baseURL: baseURL)
    }
}

extension ElevenLabsSettings {
    func target(voice: String?) -> ProviderTarget {
        ProviderTarget(service: .elevenlabs, stage: .voice, model: modelId, voice: voice, baseURL: baseURL)
    }
}

extension HuggingFaceSettings {
    var target: ProviderTarget {
        ProviderTarget(service: .huggingface, stage: .image, model: imageModel, voice: nil, baseURL: baseURL)
    }
}

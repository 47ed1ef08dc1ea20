/// What OpenAI's models accept, told from the model's name (pure).
///
/// The API refuses parameters a family does not take with a 400 (`unsupported_parameter`,
/// `unsupported_value`), so the request is shaped per family. Names that are not OpenAI's (a local
/// server's `llama3.1:8b`, a vLLM path) get the classic Chat Completions shape, which every
/// OpenAI-compatible server takes. The fixtures under Sources/ProviderFixtures/Fixtures/openai show the
/// refusals this avoids.
enum OpenAIModels {
    // MARK: - Chat

    /// Reasoning models (o1, o3, o4-mini, gpt-5 and later): they take `max_completion_tokens`, which also
    /// covers their hidden reasoning tokens, and refuse `max_tokens` and any `temperature` but 1.
    static func isReasoning(_ model: String) -> Bool {
        let name = model.lowercased().split(separator: "/").last.map(String.init) ?? ""
        if name.hasPrefix("o"), let digit = name.dropFirst().first, digit.isNumber { return true }
        guard name.hasPrefix("gpt-") else { return false }
        let major = name.dropFirst(4).prefix { $0.isNumber }
        guard let number = Int(major) else { return false }
        // gpt-5-chat-latest and its kin are chat-tuned variants without reasoning.
        return number >= 5 && !name.contains("-chat")
    }

    /// Which key carries the output-token cap.
    enum TokenParameter: String, Sendable, CaseIterable {
        /// `max_completion_tokens` for reasoning models, `max_tokens` for the rest.
        case auto
        case maxTokens = "max_tokens"
        case maxCompletionTokens = "max_completion_tokens"

        func resolved(for model: String) -> TokenParameter {
            guard self == .auto else { return self }
            return isReasoning(model) ? .maxCompletionTokens : .maxTokens
        }
    }

    /// The output-token cap of a script of `scenes` scenes: about 450 tokens a scene (a visual prompt, a
    /// narration, one or two lines and half a B-roll shot, at the prompt's length limits, in JSON) plus
    /// 600 for the cast and framing; reasoning models get 4,096 more for their reasoning. At most 16,384
    /// (gpt-4o-mini's ceiling) for classic models and 32,768 for reasoning ones.
    static func outputTokens(scenes: Int, model: String) -> Int {
        let script = 600 + 450 * max(1, scenes)
        return isReasoning(model) ? min(script + 4_096, 32_768) : min(script, 16_384)
    }

    // MARK: - Images

    /// Image model families, by what `/images/generations` accepts.
    enum ImageFamily: Sendable, Equatable {
        /// dall-e-2: squares of 256, 512 or 1024; `response_format`; no `quality`.
        case dallE2
        /// dall-e-3: 1024x1024, 1792x1024, 1024x1792; `quality` standard|hd; `response_format`.
        case dallE3
        /// gpt-image-1, -1-mini, -1.5 (and chatgpt-image-latest): 1024x1024, 1536x1024, 1024x1536 or auto;
        /// `quality` low|medium|high|auto; always base64, and `response_format` is refused.
        case gptImage1
        /// gpt-image-2 and later: sides in multiples of 16, aspect ratio within 1:3 and 3:1, the longer side
        /// at most 3840, 655,360 to 8,294,400 pixels; `quality`; always base64, `response_format` refused.
        case gptImage
        /// Not an OpenAI name (LocalAI, a proxy's alias): the classic request, with `response_format`.
        case other
    }

    static func imageFamily(_ model: String) -> ImageFamily {
        let name = model.lowercased().split(separator: "/").last.map(String.init) ?? ""
        if name.hasPrefix("dall-e-2") { return .dallE2 }
        if name.hasPrefix("dall-e-3") { return .dallE3 }
        if name.hasPrefix("chatgpt-image") { return .gptImage1 }
        guard name.hasPrefix("gpt-image-") else { return .other }
        let version = name.dropFirst("gpt-image-".count).prefix { $0.isNumber }
        guard let major = Int(version) else { return .gptImage }
        return major <= 1 ? .gptImage1 : .gptImage
    }

    /// Whether the family answers in base64 by itself and refuses `response_format`.
    static func refusesResponseFormat(_ family: ImageFamily) -> Bool {
        family == .gptImage1 || family == .gptImage
    }

    /// The `size` to ask for a frame of `width`×`height`: the family's size nearest in shape (the renderer
    /// scales and crops to the frame), or the frame itself rounded to multiples of 16 where any size goes.
    static func imageSize(_ family: ImageFamily, width: Int, height: Int) -> String {
        let landscape = width >= height
        let square = width == height
        switch family {
        case .dallE2:
            return "1024x1024"
        case .dallE3:
            return square ? "1024x1024" : landscape ? "1792x1024" : "1024x1792"
        case .gptImage1:
            return square ? "1024x1024" : landscape ? "1536x1024" : "1024x1536"
        case .gptImage, .other:
            // The frame's shape, its long side between 1024 and 1536 (the price grows with the pixels), sides
            // in multiples of 16, and at least the model's minimum pixel count.
            let long = Double(max(width, height))
            var scale = min(max(1.0, 1024.0 / long), 1536.0 / long)
            if Double(width * height) * scale * scale < Double(minimumPixels) {
                scale = (Double(minimumPixels) / Double(width * height)).squareRoot()
            }
            func round16(_ v: Int) -> Int { max(16, Int((Double(v) * scale / 16).rounded(.up)) * 16) }
            return "\(round16(width))x\(round16(height))"
        }
    }

    /// The fewest pixels gpt-image-2 and later draw ("below the current minimum pixel budget").
    static let minimumPixels = 655_360

    /// Why `size` will be refused for `family`, or `nil` when it is fine (`auto` is fine where it exists).
    static func sizeProblem(_ size: String, family: ImageFamily) -> String? {
        let allowed: [String]
        switch family {
        case .dallE2: allowed = ["256x256", "512x512", "1024x1024"]
        case .dallE3: allowed = ["1024x1024", "1792x1024", "1024x1792"]
        case .gptImage1: allowed = ["1024x1024", "1536x1024", "1024x1536", "auto"]
        case .gptImage:
            if size == "auto" { return nil }
            let parts = size.split(separator: "x").compactMap { Int($0) }
            guard parts.count == 2, parts.allSatisfy({ $0 > 0 }) else {
                return "size must be WIDTHxHEIGHT or auto, got \"\(size)\""
            }
            guard parts.allSatisfy({ $0 % 16 == 0 }) else {
                return "both sides must be multiples of 16 for this model, got \"\(size)\""
            }
            let (w, h) = (parts[0], parts[1])
            guard max(w, h) <= 3 * min(w, h) else {
                return "the aspect ratio must be within 1:3 and 3:1, got \"\(size)\""
            }
            guard max(w, h) <= 3840 else { return "the longer side may be 3840 at most, got \"\(size)\"" }
            guard (minimumPixels...8_294_400).contains(w * h) else {
                return "the size must have from 655,360 to 8,294,400 pixels, got \"\(size)\" (\(w * h))"
            }
            return nil
        case .other:
            return nil
        }
        return allowed.contains(size)
            ? nil : "this model takes only \(allowed.joined(separator: ", ")), got \"\(size)\""
    }

    /// The `quality` sent when none is configured: `medium` for GPT image models (cents an image, and
    /// clean enough under captions), `standard` for dall-e-3; none for the rest.
    static func defaultQuality(_ family: ImageFamily) -> String? {
        switch family {
        case .gptImage1, .gptImage: "medium"
        case .dallE3: "standard"
        case .dallE2, .other: nil
        }
    }
}

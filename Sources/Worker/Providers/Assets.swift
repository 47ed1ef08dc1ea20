/// The script of one episode, as written by a ``ScriptProvider``.
///
/// Items are numbered from 1 across the whole episode: `scene_1…`, `line_1…` (all character lines in
/// script order), `broll_1…`. These names appear in trace events, placeholders and log lines.
struct Script: Sendable, Equatable, Codable {
    var title: String
    var characters: [String]
    var scenes: [Scene]
    var brollShots: [BrollShot]

    struct Scene: Sendable, Equatable, Codable {
        /// 1-based position in the episode.
        var number: Int
        /// What the scene shows; the prompt of its visual.
        var description: String
        /// The narrator's text over the scene.
        var narration: String
        var lines: [Line]

        var item: String { "scene_\(number)" }
    }

    struct Line: Sendable, Equatable, Codable {
        /// 1-based position among all lines of the episode.
        var number: Int
        var character: String
        var text: String

        var item: String { "line_\(number)" }
    }

    /// A cinematic cut-away shot between scenes.
    struct BrollShot: Sendable, Equatable, Codable {
        /// 1-based position in the episode.
        var number: Int
        var description: String

        var item: String { "broll_\(number)" }
    }

    init(title: String, characters: [String], scenes: [Scene], brollShots: [BrollShot]) {
        self.title = title
        self.characters = characters
        self.scenes = scenes
        self.brollShots = brollShots
    }

    /// Every character line, in script order.
    var lines: [Line] { scenes.flatMap(\.lines) }

    /// The script with each scene's narration spoken: a first line by `narrator` (added to the front of
    /// ``characters``), lines renumbered. Scenes whose narration is empty or already their first line
    /// are left as they are, so applying it twice changes nothing. The offline script writer writes
    /// scripts this way; use it on other writers' scripts so narration gets a voice and a caption.
    func withNarrationAsLines(narrator: String = "Narrator") -> Script {
        var script = self
        var number = 0
        var added = false
        for index in script.scenes.indices {
            let scene = script.scenes[index]
            let hasNarration = scene.narration.contains { !$0.isWhitespace }
            var lines = scene.lines
            let spoken = lines.first.map { $0.character == narrator && $0.text == scene.narration } ?? false
            if hasNarration, !spoken {
                lines.insert(Line(number: 0, character: narrator, text: scene.narration), at: 0)
                added = true
            }
            for line in lines.indices {
                number += 1
                lines[line].number = number
            }
            script.scenes[index].lines = lines
        }
        if added || script.lines.contains(where: { $0.character == narrator }),
            !script.characters.contains(narrator)
        {
            script.characters.insert(narrator, at: 0)
        }
        return script
    }
}

/// A spoken character line.
struct VoiceClip: Sendable, Equatable {
    /// The item it voices, e.g. `line_3`.
    var item: String
    /// The audio file, once real providers write one; `nil` for simulated clips and placeholders.
    var path: String?
    /// How long the clip plays (or, for a placeholder, how long the line would take to say).
    var duration: Duration
    var isPlaceholder: Bool
    /// Who made it, for the manifest: `openai`, `elevenlabs`, `espeak-ng`, `silence`, `simulated`, …
    var provider: String

    init(item: String, path: String? = nil, duration: Duration, isPlaceholder: Bool = false, provider: String = "") {
        self.item = item
        self.path = path
        self.duration = duration
        self.isPlaceholder = isPlaceholder
        self.provider = provider
    }

    /// Stands in for a line whose TTS call failed: silence as long as the line would take to say (no file;
    /// a renderer plays silence).
    static func placeholder(for line: Script.Line) -> VoiceClip {
        VoiceClip(item: line.item, duration: estimatedSpeakingTime(line.text), isPlaceholder: true, provider: "silence")
    }

    /// About 2.5 words a second, at least one second.
    static func estimatedSpeakingTime(_ text: String) -> Duration {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).count
        return .milliseconds(max(1_000, words * 400))
    }
}

/// What to draw.
struct ImageRequest: Sendable, Equatable {
    enum Purpose: String, Sendable {
        case scene, broll
    }

    /// `scene_2` or `broll_1`.
    var item: String
    var purpose: Purpose
    var prompt: String
    /// The spec's visual style, if any (e.g. "noir").
    var style: String?

    init(item: String, purpose: Purpose, prompt: String, style: String? = nil) {
        self.item = item
        self.purpose = purpose
        self.prompt = prompt
        self.style = style
    }

    /// The scene or shot number from the item name (`scene_2` → 2), 1 if it has none.
    var number: Int {
        let digits = item.reversed().prefix(while: \.isNumber)
        return Int(String(digits.reversed())) ?? 1
    }
}

/// A generated still: a scene visual or a B-roll shot.
struct Image: Sendable, Equatable {
    var item: String
    /// The image file, once real providers write one; `nil` for simulated images and placeholders.
    var path: String?
    /// How long it stays on screen.
    var duration: Duration
    var isPlaceholder: Bool
    /// Who made it, for the manifest: `openai`, `huggingface`, `offline`, `placeholder`, `simulated`, …
    var provider: String

    init(item: String, path: String? = nil, duration: Duration, isPlaceholder: Bool = false, provider: String = "") {
        self.item = item
        self.path = path
        self.duration = duration
        self.isPlaceholder = isPlaceholder
        self.provider = provider
    }

    /// Stands in for an image whose call failed (no file; a renderer shows a plain card instead).
    static func placeholder(for request: ImageRequest) -> Image {
        Image(
            item: request.item,
            duration: defaultDuration(request.purpose),
            isPlaceholder: true,
            provider: "placeholder"
        )
    }

    static func defaultDuration(_ purpose: ImageRequest.Purpose) -> Duration {
        switch purpose {
        case .scene: .seconds(6)
        case .broll: .seconds(3)
        }
    }
}

/// Everything the renderer gets besides the script, each list in script order. Failed items are
/// present as placeholders (`isPlaceholder`), never missing.
struct EpisodeAssets: Sendable, Equatable {
    var voices: [VoiceClip]
    var scenes: [Image]
    var broll: [Image]

    init(voices: [VoiceClip], scenes: [Image], broll: [Image]) {
        self.voices = voices
        self.scenes = scenes
        self.broll = broll
    }

    var placeholderCount: Int {
        voices.count(where: \.isPlaceholder) + scenes.count(where: \.isPlaceholder)
            + broll.count(where: \.isPlaceholder)
    }
}

/// The finished episode.
struct RenderedEpisode: Sendable, Equatable {
    /// The video file, once a real renderer writes one; `nil` for the simulation.
    var path: String?
    var duration: Duration
    /// Who rendered it, for the manifest: `ffmpeg`, `simulated`, …
    var provider: String
    /// The render preset (e.g. `landscape`), if the renderer has presets.
    var preset: String?
    /// Frame size in pixels, when known.
    var width: Int?
    var height: Int?

    init(
        path: String? = nil,
        duration: Duration,
        provider: String = "",
        preset: String? = nil,
        width: Int? = nil,
        height: Int? = nil
    ) {
        self.path = path
        self.duration = duration
        self.provider = provider
        self.preset = preset
        self.width = width
        self.height = height
    }
}

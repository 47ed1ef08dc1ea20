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

    init(item: String, path: String? = nil, duration: Duration, isPlaceholder: Bool = false) {
        self.item = item
        self.path = path
        self.duration = duration
        self.isPlaceholder = isPlaceholder
    }

    /// Stands in for a line whose TTS call failed: silence as long as the line would take to say.
    static func placeholder(for line: Script.Line) -> VoiceClip {
        VoiceClip(item: line.item, duration: estimatedSpeakingTime(line.text), isPlaceholder: true)
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
}

/// A generated still: a scene visual or a B-roll shot.
struct Image: Sendable, Equatable {
    var item: String
    /// The image file, once real providers write one; `nil` for simulated images and placeholders.
    var path: String?
    /// How long it stays on screen.
    var duration: Duration
    var isPlaceholder: Bool

    init(item: String, path: String? = nil, duration: Duration, isPlaceholder: Bool = false) {
        self.item = item
        self.path = path
        self.duration = duration
        self.isPlaceholder = isPlaceholder
    }

    /// Stands in for an image whose call failed (a renderer shows a plain card instead).
    static func placeholder(for request: ImageRequest) -> Image {
        Image(item: request.item, duration: defaultDuration(request.purpose), isPlaceholder: true)
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

    init(path: String? = nil, duration: Duration) {
        self.path = path
        self.duration = duration
    }
}

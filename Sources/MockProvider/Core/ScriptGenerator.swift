import Foundation

/// A Reelfarm episode script, the JSON the chat endpoint returns in JSON mode.
struct EpisodeScript: Codable, Equatable, Sendable {
    struct Line: Codable, Equatable, Sendable {
        var character: String
        var text: String
    }

    struct Scene: Codable, Equatable, Sendable {
        var description: String
        var narration: String
        var lines: [Line]
    }

    struct BRoll: Codable, Equatable, Sendable {
        var description: String
    }

    var title: String
    var characters: [String]
    var scenes: [Scene]
    var broll: [BRoll]
}

/// Builds scripts deterministically from the prompt: the same last user message always gives the same script.
enum ScriptGenerator {
    /// Scene count used when the prompt has no `Scenes: N` line.
    static let defaultSceneCount = 4
    /// Scene counts outside 1...maximumSceneCount are clamped.
    static let maximumSceneCount = 50

    private static let names = [
        "Ada", "Bruno", "Chioma", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonah", "Kaia", "Luca",
    ]
    private static let adjectives = ["Quiet", "Electric", "Hidden", "Last", "Golden", "Restless", "Paper", "Midnight"]
    private static let nouns = ["Harbor", "Signal", "Garden", "Machine", "Summit", "Archive", "Lantern", "Orbit"]
    private static let places = [
        "a rain-soaked street", "a cluttered workshop", "a rooftop at dawn", "a crowded market", "an empty library",
        "a train platform", "a lighthouse", "a kitchen at night",
    ]
    private static let moods = ["tense", "hopeful", "playful", "mysterious", "calm", "urgent"]
    private static let sayings = [
        "We should have seen this coming.", "Trust me, this time it works.", "Did you hear that?",
        "Let's keep moving.", "I never thought it would end like this.", "Look closer, it's right there.",
        "Not yet. Wait for the signal.", "That changes everything.",
    ]

    /// The scene count asked for by a line `Scenes: N` (case-insensitive, surrounding spaces ignored), clamped.
    static func requestedSceneCount(in prompt: String) -> Int {
        for line in prompt.split(whereSeparator: \.isNewline) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.lowercased().hasPrefix("scenes:") else { continue }
            let value = trimmed.dropFirst("scenes:".count).trimmingCharacters(in: .whitespaces)
            if let count = Int(value) {
                return min(max(count, 1), maximumSceneCount)
            }
        }
        return defaultSceneCount
    }

    /// The script for `prompt`.
    ///
    /// - Parameters:
    ///   - lines: The character lines of the whole script, dealt to the scenes round-robin from the first: with 4
    ///     scenes and 6 lines, scenes 1 and 2 get 2 lines and scenes 3 and 4 get 1; with 4 scenes and 2 lines, scenes
    ///     3 and 4 get none. `nil` gives each scene 1 or 2 lines, drawn like everything else.
    ///   - broll: The number of B-roll shots; `nil` means half the scene count, rounded up.
    static func script(
        for prompt: String,
        lines totalLines: Int? = nil,
        broll: Int? = nil,
        narration: Bool = true
    ) -> EpisodeScript {
        var random = SplitMix64(seed: StableHash.fnv1a(prompt))
        func pick<T>(_ items: [T]) -> T { items[Int(random.next() % UInt64(items.count))] }

        let sceneCount = requestedSceneCount(in: prompt)
        let characterCount = 2 + Int(random.next() % 2)
        var characters: [String] = []
        while characters.count < characterCount {
            let name = pick(names)
            if !characters.contains(name) {
                characters.append(name)
            }
        }
        let title = "The \(pick(adjectives)) \(pick(nouns))"
        let scenes = (1...sceneCount).map { index in
            let place = pick(places)
            let mood = pick(moods)
            let lineCount: Int
            if let totalLines {
                lineCount = linesOfScene(index, of: sceneCount, total: totalLines)
            } else {
                lineCount = 1 + Int(random.next() % 2)
            }
            let lines = (0..<lineCount).map { _ in EpisodeScript.Line(character: pick(characters), text: pick(sayings))
            }
            return EpisodeScript.Scene(
                description: "Scene \(index): \(place), \(mood) lighting.",
                narration: narration ? "In \(place), the mood turns \(mood)." : "",
                lines: lines
            )
        }
        let brollCount = broll ?? (sceneCount + 1) / 2
        let shots = (0..<brollCount).map { offset in
            EpisodeScript.BRoll(description: "B-roll \(offset + 1): slow pan across \(pick(places)).")
        }
        return EpisodeScript(title: title, characters: characters, scenes: scenes, broll: shots)
    }

    /// How many of `total` lines dealt round-robin over `sceneCount` scenes fall to scene `index` (1-based).
    static func linesOfScene(_ index: Int, of sceneCount: Int, total: Int) -> Int {
        total / sceneCount + (index <= total % sceneCount ? 1 : 0)
    }

    /// The script as compact JSON with sorted keys.
    static func json(for prompt: String, lines: Int? = nil, broll: Int? = nil, narration: Bool = true) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding these plain value types cannot fail.
        let data = try! encoder.encode(script(for: prompt, lines: lines, broll: broll, narration: narration))
        return String(decoding: data, as: UTF8.self)
    }
}

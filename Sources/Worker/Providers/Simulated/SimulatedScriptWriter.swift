import Protocol

/// Writes a plausible script without an LLM: deterministic from the spec (the same topic always gives
/// the same script) but varied between topics.
///
/// - Characters: the spec's, or 2–3 invented names picked by hash of the topic.
/// - Scenes: `spec.scenes` (default ``EpisodeSpec/defaultScenes``), each with 1–2 character lines.
/// - B-roll: one shot per two scenes, at least one.
enum SimulatedScriptWriter {
    static func script(for spec: EpisodeSpec) -> Script {
        let topic = spec.topic
        let characters = characters(for: spec)
        let sceneCount = min(max(spec.scenes ?? EpisodeSpec.defaultScenes, 1), EpisodeSpec.maxScenes)

        var scenes: [Script.Scene] = []
        var lineNumber = 0
        for number in 1...sceneCount {
            let lineCount = 1 + pick(2, topic, "lines", number)
            var lines: [Script.Line] = []
            for index in 0..<lineCount {
                lineNumber += 1
                let speaker = characters[(pick(characters.count, topic, "speaker", number) + index) % characters.count]
                let text = fill(lineTemplates[pick(lineTemplates.count, topic, "line", lineNumber)], topic, speaker)
                lines.append(Script.Line(number: lineNumber, character: speaker, text: text))
            }
            let focus = characters[pick(characters.count, topic, "focus", number)]
            scenes.append(
                Script.Scene(
                    number: number,
                    description: fill(sceneTemplates[pick(sceneTemplates.count, topic, "scene", number)], topic, focus),
                    narration: fill(
                        narrationTemplates[pick(narrationTemplates.count, topic, "narration", number)],
                        topic,
                        focus
                    ),
                    lines: lines
                )
            )
        }

        let brollCount = max(1, sceneCount / 2)
        let broll = (1...brollCount).map { number in
            Script.BrollShot(
                number: number,
                description: fill(brollTemplates[pick(brollTemplates.count, topic, "broll", number)], topic, "")
            )
        }
        let title = fill(titleTemplates[pick(titleTemplates.count, topic, "title")], topic, "")
        return Script(title: title, characters: characters, scenes: scenes, brollShots: broll)
    }

    static func characters(for spec: EpisodeSpec) -> [String] {
        if let given = spec.characters, !given.isEmpty { return given }
        let count = 2 + pick(2, spec.topic, "cast")
        var names: [String] = []
        var salt = 0
        while names.count < count {
            let name = inventedNames[pick(inventedNames.count, spec.topic, "name", salt)]
            if !names.contains(name) { names.append(name) }
            salt += 1
        }
        return names
    }

    // MARK: - Helpers

    /// A number in `0..<bound` from the topic and a purpose.
    private static func pick(_ bound: Int, _ topic: String, _ purpose: String, _ index: Int = 0) -> Int {
        precondition(bound > 0)
        let hash = StableHash.of(0, ["script", topic, purpose, String(index)]).value
        return Int(hash % UInt64(bound))
    }

    /// The template with `{Topic}`, `{topic}` and `{character}` filled in, in one pass over its bytes
    /// (`String.replacing` three times was a fifth of a worker's time in W0).
    static func fill(_ template: String, _ topic: String, _ character: String) -> String {
        let capitalized = topic.prefix(1).uppercased() + topic.dropFirst()
        var out: [UInt8] = []
        out.reserveCapacity(template.utf8.count + 2 * topic.utf8.count)
        let bytes = Array(template.utf8)
        var i = 0
        func token(_ name: StaticString) -> Bool {
            let count = name.utf8CodeUnitCount
            guard i + count <= bytes.count else { return false }
            return name.withUTF8Buffer { Array($0) == Array(bytes[i..<(i + count)]) }
        }
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "{") {
                if token("{Topic}") {
                    out += capitalized.utf8
                    i += 7
                    continue
                }
                if token("{topic}") {
                    out += topic.utf8
                    i += 7
                    continue
                }
                if token("{character}") {
                    out += character.utf8
                    i += 11
                    continue
                }
            }
            out.append(bytes[i])
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static let inventedNames = [
        "Ada", "Bruno", "Celeste", "Dmitri", "Esme", "Felix", "Greta", "Hugo", "Iris", "Jonah", "Kira", "Leo",
        "Mara", "Nico", "Opal", "Pavel", "Quinn", "Rosa", "Silas", "Tess",
    ]

    private static let titleTemplates = [
        "{Topic}: The Untold Story", "The Secret Life of {topic}", "{Topic}, Explained", "Inside {topic}",
        "Why {topic} Matters", "A Short History of {topic}",
    ]

    private static let sceneTemplates = [
        "Wide establishing shot introducing {topic}", "{character} studies an old map related to {topic}",
        "Close-up of {character}'s face, lit by a single lamp, thinking about {topic}",
        "A bustling crowd gathers around {topic}", "{character} walks through a workshop full of clues about {topic}",
        "Night exterior: {topic} under a stormy sky", "{character} points at a chalkboard diagram of {topic}",
        "Golden-hour landscape where {topic} began",
    ]

    private static let narrationTemplates = [
        "Few people know how {topic} really began.", "{character} was the first to notice something odd.",
        "What happened next changed {topic} forever.", "The answer was hiding in plain sight.",
        "To understand {topic}, we have to go back to the start.", "Not everyone believed {character}.",
    ]

    private static let lineTemplates = [
        "Have you ever wondered about {topic}?", "I've been studying {topic} for years, and this still surprises me.",
        "Look closer. It's all connected to {topic}.", "Nobody believed me, but I knew it was true.",
        "This is where everything about {topic} started.", "Wait, that can't be right.",
        "If we're right about {topic}, everything changes.", "Let's find out what really happened.",
    ]

    private static let brollTemplates = [
        "Slow aerial drone shot over a landscape tied to {topic}", "Macro shot of dust drifting through a sunbeam",
        "Time-lapse of clouds rolling over a city at dusk", "Tracking shot along shelves of old books about {topic}",
        "Silhouette of a lighthouse against a fading sky", "Rain on a window, city lights blurred behind it",
    ]
}

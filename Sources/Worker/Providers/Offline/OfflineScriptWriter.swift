import Protocol

/// Writes a short, speakable script without an LLM: deterministic from the spec (the same topic always
/// gives the same script) and varied between topics.
///
/// - Structure: one of several story arcs (documentary, mystery, debate, journey, countdown), picked by a
///   stable hash of the topic; each arc has its own title patterns and, per beat, its own scene
///   descriptions, narrations and character lines.
/// - Characters: `Narrator` first, then the spec's characters or 2–3 invented names.
/// - Scenes: `spec.scenes` (default ``EpisodeSpec/defaultScenes``). Each scene's first line is the
///   narration, spoken by `Narrator`, followed by 1–2 character lines.
/// - B-roll: one shot per two scenes, at least one.
///
/// Sentences are short (about 20 spoken words a scene), so a 4-scene episode lasts roughly 20–40 s with
/// espeak-ng.
struct OfflineScriptWriter: ScriptProvider {
    static let narrator = "Narrator"

    init() {}

    func writeScript(for spec: EpisodeSpec, context: CallContext) async throws -> Script {
        try Task.checkCancellation()
        context.meter.free()
        return Self.script(for: spec)
    }

    static func script(for spec: EpisodeSpec) -> Script {
        let subject = subject(of: spec.topic)
        let pick = Picker(topic: spec.topic)
        let arc = arc(for: spec)
        let cast = cast(for: spec)
        let sceneCount = min(max(spec.scenes ?? EpisodeSpec.defaultScenes, 1), EpisodeSpec.maxScenes)

        var scenes: [Script.Scene] = []
        var lineNumber = 0
        for number in 1...sceneCount {
            let beat = arc.beat(number, of: sceneCount)
            let first = cast[(pick(cast.count, "speaker", number) + number - 1) % cast.count]
            let second = cast.count > 1 ? cast[(cast.firstIndex(of: first)! + 1) % cast.count] : first
            let words = Words(subject: subject, first: first, second: second, number: number)

            let description = words.fill(pick.one(beat.descriptions, "description", number))
            let narration = words.fill(pick.one(beat.narrations, "narration", number))
            lineNumber += 1
            var lines = [Script.Line(number: lineNumber, character: narrator, text: narration)]
            let characterLines = pick(3, "lines", number) == 0 ? 1 : 2
            var used: Set<Int> = []
            for index in 0..<characterLines {
                var choice = pick(beat.lines.count, "line", number, index)
                while used.contains(choice), used.count < beat.lines.count { choice = (choice + 1) % beat.lines.count }
                used.insert(choice)
                lineNumber += 1
                let speaker = index.isMultiple(of: 2) ? first : second
                let partner = speaker == first ? second : first
                let text = Words(subject: subject, first: speaker, second: partner, number: number)
                    .fill(beat.lines[choice])
                lines.append(Script.Line(number: lineNumber, character: speaker, text: text))
            }
            scenes.append(Script.Scene(number: number, description: description, narration: narration, lines: lines))
        }

        let brollCount = max(1, sceneCount / 2)
        var brollChoices: [Int] = []
        for number in 1...brollCount {
            var choice = pick(brollTemplates.count, "broll", number)
            while brollChoices.contains(choice), brollChoices.count < brollTemplates.count {
                choice = (choice + 1) % brollTemplates.count
            }
            brollChoices.append(choice)
        }
        let broll = brollChoices.enumerated().map { index, choice in
            Script.BrollShot(
                number: index + 1,
                description: Words(subject: subject, first: "", second: "", number: index + 1)
                    .fill(brollTemplates[choice])
            )
        }
        let title = Words(subject: subject, first: cast[0], second: cast.last!, number: sceneCount)
            .fill(pick.one(arc.titles, "title"))
        return Script(title: title, characters: [narrator] + cast, scenes: scenes, brollShots: broll)
    }

    /// The name of the arc a spec's script follows (for tests and logs).
    static func arcName(for spec: EpisodeSpec) -> String { arc(for: spec).name }

    /// The speaking characters (without the narrator): the spec's, or 2–3 invented names.
    static func cast(for spec: EpisodeSpec) -> [String] {
        var given: [String] = []
        for name in spec.characters ?? [] {
            let trimmed = name.trimmingWhitespace
            if !trimmed.isEmpty, trimmed != narrator, !given.contains(trimmed) { given.append(trimmed) }
        }
        if !given.isEmpty { return given }
        let pick = Picker(topic: spec.topic)
        let count = 2 + pick(2, "cast")
        var names: [String] = []
        var salt = 0
        while names.count < count {
            let name = inventedNames[pick(inventedNames.count, "name", salt)]
            if !names.contains(name) { names.append(name) }
            salt += 1
        }
        return names
    }

    /// The topic as it is spoken: whitespace collapsed, at most eight words, no final full stop.
    static func subject(of topic: String) -> String {
        let words = topic.split(whereSeparator: \.isWhitespace).prefix(8)
        var subject = words.joined(separator: " ")
        while subject.hasSuffix(".") { subject.removeLast() }
        return subject.isEmpty ? "this story" : subject
    }

    private static func arc(for spec: EpisodeSpec) -> Arc {
        arcs[Picker(topic: spec.topic)(arcs.count, "arc")]
    }
}

// MARK: - Helpers

/// Stable choices from the topic and a purpose.
private struct Picker {
    var topic: String

    func callAsFunction(_ bound: Int, _ purpose: String, _ index: Int = 0, _ sub: Int = 0) -> Int {
        precondition(bound > 0)
        let hash = StableHash.of(0, ["offline-script", topic, purpose, String(index), String(sub)]).value
        return Int(hash % UInt64(bound))
    }

    func one(_ options: [String], _ purpose: String, _ index: Int = 0) -> String {
        options[self(options.count, purpose, index)]
    }
}

/// Fills a template's placeholders.
private struct Words {
    var subject: String
    var first: String
    var second: String
    var number: Int

    func fill(_ template: String) -> String {
        template
            .replacing("{Topic}", with: subject.prefix(1).uppercased() + subject.dropFirst())
            .replacing("{topic}", with: midSentence)
            .replacing("{a}", with: first)
            .replacing("{b}", with: second)
            .replacing("{n}", with: String(number))
    }

    /// The topic as it reads inside a sentence: a leading article or question word written with a
    /// capital ("The secret life…", "How bees vote") is lowered; names and acronyms are left alone.
    var midSentence: String {
        let starters: Set<Substring> = ["The", "A", "An", "How", "Why", "What", "When", "Where", "Who"]
        guard let firstWord = subject.split(separator: " ").first, starters.contains(firstWord) else { return subject }
        return subject.prefix(1).lowercased() + subject.dropFirst()
    }
}

extension String {
    fileprivate var trimmingWhitespace: String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}

/// One kind of scene in an arc.
private struct Beat {
    var descriptions: [String]
    var narrations: [String]
    /// Character lines; `{a}` is the speaker, `{b}` the one spoken to.
    var lines: [String]
}

/// A story shape: an opening beat, middle beats used in turn, and a closing beat.
private struct Arc {
    var name: String
    var titles: [String]
    var opening: Beat
    var middle: [Beat]
    var closing: Beat

    func beat(_ number: Int, of count: Int) -> Beat {
        if number == 1 { return opening }
        if number == count { return closing }
        return middle[(number - 2) % middle.count]
    }
}

// MARK: - Vocabulary

private let inventedNames = [
    "Ada", "Bruno", "Celeste", "Dmitri", "Esme", "Felix", "Greta", "Hugo", "Iris", "Jonah", "Kira", "Leo", "Mara",
    "Nico", "Opal", "Pavel", "Quinn", "Rosa", "Silas", "Tess",
]

private let brollTemplates = [
    "Slow aerial view over a landscape tied to {topic}", "Dust drifting through a beam of light",
    "Clouds racing over a city at dusk", "Shelves of old books and maps about {topic}",
    "A lighthouse beam sweeping across a dark sea", "Rain on a window with blurred city lights",
    "Close-up of hands sketching {topic} in a notebook", "A train crossing a bridge at sunset",
    "Stars turning slowly over a quiet hill", "Waves rolling onto an empty beach",
]

private let arcs: [Arc] = [
    Arc(
        name: "documentary",
        titles: ["{Topic}: The Untold Story", "A Short History of {topic}", "{Topic}, Explained"],
        opening: Beat(
            descriptions: [
                "Wide establishing shot of {topic} at dawn", "A quiet archive where the story of {topic} begins",
            ],
            narrations: ["This is the story of {topic}.", "Everyone knows {topic}. Few know how it began."],
            lines: [
                "I have wanted to tell this story for years.", "{b}, where do we even start?",
                "It starts small, like every good story.",
            ]
        ),
        middle: [
            Beat(
                descriptions: [
                    "Old photographs of {topic} pinned to a wall", "{a} holds up an early sketch of {topic}",
                ],
                narrations: ["It began with a simple idea.", "At first, nobody paid attention."],
                lines: ["Look at this early design.", "It was crude, but it worked.", "People laughed at it at first."]
            ),
            Beat(
                descriptions: ["A crowded workshop in the middle of a breakthrough", "{a} and {b} argue over a plan"],
                narrations: ["Then, one day, everything changed for good.", "One change made all the difference."],
                lines: [
                    "This is the turning point.", "Nobody saw it coming, not even us.",
                    "After this, there was no way back.",
                ]
            ),
        ],
        closing: Beat(
            descriptions: ["{Topic} today, seen from above", "{a} looks out over the horizon"],
            narrations: ["Today, {topic} is everywhere.", "And the story of {topic} is still being written."],
            lines: ["Not bad for a simple idea.", "I wonder what comes next.", "Thanks for coming along, {b}."]
        )
    ),
    Arc(
        name: "mystery",
        titles: ["The Mystery of {topic}", "What Really Happened to {topic}?", "{Topic}: A Puzzle"],
        opening: Beat(
            descriptions: ["A foggy street at night, a single lamp glowing", "{a} finds a strange note about {topic}"],
            narrations: ["Something about {topic} never added up.", "It started with a question nobody could answer."],
            lines: [
                "Have you seen this before, {b}?", "This makes no sense at all, {b}.", "Someone wanted this hidden.",
            ]
        ),
        middle: [
            Beat(
                descriptions: ["A desk covered in clues and red string", "{a} studies a faded map under a lamp"],
                narrations: [
                    "The first clue was hiding in plain sight.", "{a} followed the trail, one clue at a time.",
                ],
                lines: ["Look closer. It is all connected.", "Wait. That date is wrong.", "We are missing something."]
            ),
            Beat(
                descriptions: ["An empty corridor with a door left open", "{b} holds a torch in a dusty cellar"],
                narrations: ["But then the trail went cold.", "Not everyone wanted the truth out."],
                lines: ["This is a dead end.", "Nobody believed me when I said it.", "Then who moved it, {b}?"]
            ),
        ],
        closing: Beat(
            descriptions: [
                "Dawn breaks over the city as the answer appears", "{a} and {b} stand before the final clue",
            ],
            narrations: ["In the end, the answer was simple.", "And so the mystery of {topic} was solved."],
            lines: ["It was here all along.", "I knew it from the very start.", "I think that is case closed, {b}."]
        )
    ),
    Arc(
        name: "debate",
        titles: ["Is {topic} Overrated?", "The Great {Topic} Debate", "{Topic}: Two Sides"],
        opening: Beat(
            descriptions: [
                "Two chairs facing each other on a bright stage", "{a} and {b} at a table with two microphones",
            ],
            narrations: ["Today's question: does {topic} deserve its fame?", "Two guests. One topic. {Topic}."],
            lines: ["I will say it. It is brilliant.", "I disagree, {b}.", "Let us settle this once and for all."]
        ),
        middle: [
            Beat(
                descriptions: ["{a} points at a chart about {topic}", "A chalkboard full of arguments about {topic}"],
                narrations: ["First, the case for {topic}.", "The numbers tell one story."],
                lines: ["The facts are on my side.", "Just look at the results.", "You cannot argue with that."]
            ),
            Beat(
                descriptions: ["{b} leans forward, unconvinced", "A spotlight on an empty podium"],
                narrations: ["Now, let us hear the case against.", "But there is always another side."],
                lines: [
                    "That is only half the story.", "But what about the cost of it all?", "I am not convinced, {b}.",
                ]
            ),
        ],
        closing: Beat(
            descriptions: ["The audience votes with raised hands", "{a} and {b} shake hands on stage"],
            narrations: ["So, who won? You decide.", "Maybe both of them are right."],
            lines: [
                "Fair point, {b}. I did not expect that.", "Let us call it a draw.",
                "Shall we do this again next week?",
            ]
        )
    ),
    Arc(
        name: "journey",
        titles: ["In Search of {topic}", "The Road to {topic}", "A Journey Through {topic}"],
        opening: Beat(
            descriptions: ["A packed backpack by an open door at sunrise", "{a} studies a route to {topic}"],
            narrations: ["Every journey starts with one step.", "{a} set out to find {topic}."],
            lines: [
                "Ready when you are, {b}.", "How far is it from here, do you think?",
                "Pack light. Let us go before sunrise.",
            ]
        ),
        middle: [
            Beat(
                descriptions: ["A narrow mountain path in the wind", "{a} and {b} cross a rope bridge"],
                narrations: ["The road was harder than expected.", "Halfway there, the weather turned."],
                lines: ["Keep going. We are close.", "My feet hurt, but I am not stopping.", "Do not look down, {b}."]
            ),
            Beat(
                descriptions: ["A hidden valley opening up below", "{b} points at a light in the distance"],
                narrations: ["Then, at last, they saw it.", "Around the last bend, something waited."],
                lines: [
                    "Is that it, down there in the valley?", "I cannot believe we actually found it.",
                    "We made it, {b}.",
                ]
            ),
        ],
        closing: Beat(
            descriptions: ["A campfire under the stars", "{a} and {b} walk home at dusk"],
            narrations: ["They came home tired, but changed.", "The journey to {topic} was worth it."],
            lines: ["Same time next year, {b}?", "I will never forget this.", "Thank you, {b}."]
        )
    ),
    Arc(
        name: "countdown",
        titles: ["Things You Never Knew About {topic}", "{Topic} in a Nutshell", "Why {topic} Matters"],
        opening: Beat(
            descriptions: ["Bold title card about {topic}", "{a} counts on fingers in front of a whiteboard"],
            narrations: ["Here is what you never knew about {topic}.", "Let us count down the surprises."],
            lines: ["You will not believe number one.", "Ready, {b}? This is going to be good.", "I love this stuff."]
        ),
        middle: [
            Beat(
                descriptions: [
                    "A big number {n} over a picture of {topic}", "{a} holds up a card with the number {n}",
                ],
                narrations: ["Number {n}: it is older than you think.", "Fact {n}: it almost never happened."],
                lines: [
                    "Really? I thought it was much newer.", "I had no idea. That is amazing.", "Write that down, {b}.",
                ]
            ),
            Beat(
                descriptions: ["Number {n} glowing on a dark screen", "{b} reacts with surprise"],
                narrations: ["Number {n}: it changed everyday life.", "Fact {n}: it is still changing."],
                lines: ["That explains a lot.", "Wait, say that again, slowly this time.", "Okay, that one is wild."]
            ),
        ],
        closing: Beat(
            descriptions: ["Confetti falls on the final card", "{a} and {b} wave goodbye"],
            narrations: ["And that is {topic} in a nutshell.", "Now you know more about {topic}."],
            lines: [
                "Tell your friends what you learned today.", "See you next time, and stay curious.",
                "That was fun, {b}.",
            ]
        )
    ),
]

import Protocol
import Testing

@testable import Worker

@Suite struct OfflineScriptWriterTests {
    private let topics = [
        "the history of the lighthouse", "volcanoes", "the printing press", "honeybees", "jazz", "deep-sea fish",
        "bridges", "the first computers", "tea", "comets", "chess", "the Roman roads",
    ]

    @Test func theSameSpecGivesTheSameScript() {
        let spec = EpisodeSpec(topic: "the history of the lighthouse")
        #expect(OfflineScriptWriter.script(for: spec) == OfflineScriptWriter.script(for: spec))
    }

    @Test(arguments: ["The secret life of lighthouse keepers", "How honeybees vote on a new home"])
    func aCapitalisedTopicReadsNaturallyInsideASentence(topic: String) {
        let script = OfflineScriptWriter.script(for: EpisodeSpec(topic: topic, scenes: 6))
        let texts = script.scenes.flatMap { [$0.description, $0.narration] + $0.lines.map(\.text) }
        let lowered = topic.prefix(1).lowercased() + topic.dropFirst()
        #expect(!texts.contains { $0.contains(" " + topic) }, "no capital mid-sentence")
        #expect(texts.contains { $0.contains(lowered) || $0.hasPrefix(topic) })
    }

    @Test func topicsGetDifferentArcsTitlesAndCasts() {
        let scripts = topics.map { OfflineScriptWriter.script(for: EpisodeSpec(topic: $0)) }
        let arcs = Set(topics.map { OfflineScriptWriter.arcName(for: EpisodeSpec(topic: $0)) })
        #expect(arcs.count >= 3, "arcs: \(arcs)")
        #expect(Set(scripts.map(\.title)).count == topics.count)
        #expect(Set(scripts.map(\.characters)).count > 1)
        #expect(Set(scripts.map { $0.lines.count }).count > 1, "line counts vary")
        // Not one template with the topic swapped in: the descriptions differ once the topic is removed.
        let shapes = zip(scripts, topics).map { script, topic in
            script.scenes.map { $0.description.replacing(topic, with: "") }
        }
        #expect(Set(shapes).count > 3)
    }

    @Test(arguments: [1, 2, 4, 7])
    func honoursTheSceneCount(scenes: Int) {
        let script = OfflineScriptWriter.script(for: EpisodeSpec(topic: "comets", scenes: scenes))
        #expect(script.scenes.count == scenes)
        #expect(script.scenes.map(\.number) == Array(1...scenes))
        #expect(script.lines.map(\.number) == Array(1...script.lines.count))
        #expect(script.brollShots.count == max(1, scenes / 2))
        #expect(script.brollShots.map(\.number) == Array(1...script.brollShots.count))
        #expect(Set(script.brollShots.map(\.description)).count == script.brollShots.count)
    }

    @Test func theNarratorSpeaksEachScenesNarrationFirst() {
        let script = OfflineScriptWriter.script(for: EpisodeSpec(topic: "honeybees", scenes: 5))
        #expect(script.characters.first == "Narrator")
        for scene in script.scenes {
            #expect(scene.lines.first?.character == "Narrator")
            #expect(scene.lines.first?.text == scene.narration)
            #expect((2...3).contains(scene.lines.count), "narration plus 1–2 character lines")
            #expect(scene.lines.dropFirst().allSatisfy { $0.character != "Narrator" })
            #expect(!scene.description.isEmpty)
        }
        #expect(script.lines.allSatisfy { script.characters.contains($0.character) })
        #expect((3...4).contains(script.characters.count), "the narrator and 2–3 invented names")
    }

    @Test func usesTheSpecsCharacters() {
        let spec = EpisodeSpec(topic: "chess", characters: ["Ana", " Ben ", "Ana", "Narrator"], scenes: 3)
        let script = OfflineScriptWriter.script(for: spec)
        #expect(script.characters == ["Narrator", "Ana", "Ben"])
        #expect(Set(script.lines.map(\.character)).isSubset(of: ["Narrator", "Ana", "Ben"]))
    }

    @Test func aFourSceneEpisodeIsShortSpeech() {
        for topic in topics {
            let script = OfflineScriptWriter.script(for: EpisodeSpec(topic: topic))
            let words = script.lines.reduce(0) { $0 + $1.text.split(separator: " ").count }
            // espeak-ng speaks about 2.5 words a second, with pauses: 45–110 words is roughly 20–40 s.
            #expect((45...110).contains(words), "\(topic): \(words) words")
        }
    }

    @Test func longTopicsAreShortenedForSpeech() {
        let topic = String(repeating: "very ", count: 200) + "long topic."
        let script = OfflineScriptWriter.script(for: EpisodeSpec(topic: topic, scenes: 2))
        #expect(OfflineScriptWriter.subject(of: topic).split(separator: " ").count == 8)
        #expect(script.lines.allSatisfy { $0.text.count < 200 })
        #expect(OfflineScriptWriter.subject(of: "  tea.  ") == "tea")
    }
}

@Suite struct NarrationLinesTests {
    @Test func narrationBecomesTheNarratorsFirstLine() {
        let script = SimulatedScriptWriter.script(for: EpisodeSpec(topic: "tea", scenes: 3))
        let narrated = script.withNarrationAsLines()
        #expect(narrated.characters == ["Narrator"] + script.characters)
        #expect(narrated.lines.count == script.lines.count + 3)
        #expect(narrated.lines.map(\.number) == Array(1...narrated.lines.count))
        for (scene, original) in zip(narrated.scenes, script.scenes) {
            #expect(scene.lines.first?.character == "Narrator")
            #expect(scene.lines.first?.text == original.narration)
            #expect(scene.lines.dropFirst().map(\.text) == original.lines.map(\.text))
        }
        #expect(narrated.withNarrationAsLines() == narrated, "applying it twice changes nothing")
    }

    @Test func offlineScriptsAlreadyHaveTheirNarration() {
        let script = OfflineScriptWriter.script(for: EpisodeSpec(topic: "tea"))
        #expect(script.withNarrationAsLines() == script)
    }

    @Test func emptyNarrationAddsNoLine() {
        let line = Script.Line(number: 1, character: "Ana", text: "hi")
        let script = Script(
            title: "t",
            characters: ["Ana"],
            scenes: [Script.Scene(number: 1, description: "d", narration: " ", lines: [line])],
            brollShots: []
        )
        #expect(script.withNarrationAsLines() == script)
    }
}

import Foundation
import Protocol
import Testing

@testable import MockProvider

@Suite struct MediaTests {
    @Test func checksumsMatchKnownVectors() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
        #expect(PNGWriter.adler32(Array("Wikipedia".utf8)) == 0x11E6_0398)
        #expect(PNGWriter.adler32([]) == 1)
        // Long enough to exercise the modulo batching.
        let long = [UInt8](repeating: 0xFF, count: 100_000)
        var a: UInt32 = 1
        var b: UInt32 = 0
        for byte in long {
            a = (a + UInt32(byte)) % 65_521
            b = (b + a) % 65_521
        }
        #expect(PNGWriter.adler32(long) == (b << 16 | a))
    }

    @Test(arguments: [(1, 1), (256, 256), (256, 144), (300, 250)])
    func pngIsValid(width: Int, height: Int) throws {
        let png = PNGWriter.solid(width: width, height: height, color: (10, 20, 30))
        let info = try PNGInfo(png)
        #expect(info.width == width)
        #expect(info.height == height)
        #expect(info.chunkTypes == ["IHDR", "IDAT", "IEND"])
    }

    @Test func truncatedPNGFailsTheCheck() {
        let png = PNGWriter.truncated(PNGWriter.solid(width: 4, height: 4, color: (1, 2, 3)))
        #expect(throws: PNGInfo.Failure.self) { try PNGInfo(png) }
        var corrupted = PNGWriter.solid(width: 4, height: 4, color: (1, 2, 3))
        corrupted[20] ^= 0xFF
        #expect(throws: PNGInfo.Failure.self) { try PNGInfo(corrupted) }
    }

    @Test func sizesAreCappedKeepingTheAspectRatio() {
        func capped(_ width: Int, _ height: Int) -> [Int] {
            let size = PNGWriter.cappedSize(width: width, height: height, maxSide: 256)
            return [size.width, size.height]
        }
        #expect(capped(1_024, 1_024) == [256, 256])
        #expect(capped(1_792, 1_024) == [256, 146])
        #expect(capped(100, 50) == [100, 50])
        #expect(PNGWriter.parseSize("1024x1792").map { [$0.width, $0.height] } == [1_024, 1_792])
        #expect(PNGWriter.parseSize("auto") == nil)
        #expect(PNGWriter.parseSize("0x5") == nil)
    }

    @Test func wavHeaderIsValidAndLengthFollowsWords() throws {
        let text = "one two three four five six seven eight nine ten"
        let wav = WAVWriter.tone(seconds: WAVWriter.duration(forText: text))
        let info = try #require(WAVInfo(wav))
        #expect(info.sampleRate == 22_050)
        #expect(info.channels == 1)
        #expect(info.bitsPerSample == 16)
        #expect(abs(info.duration - 4.0) < 0.001)
        #expect(WAVWriter.duration(forText: "") == 0.5)
        #expect(WAVWriter.duration(forText: "hi") == 0.5)
        #expect(abs(WAVWriter.duration(forText: "a b c") - 1.2) < 1e-9)
        #expect(WAVInfo(WAVWriter.truncated(forText: text)) == nil)
    }
}

@Suite struct ScriptGeneratorTests {
    @Test func sceneCountComesFromTheScenesLine() {
        #expect(ScriptGenerator.requestedSceneCount(in: "Topic: cats\nScenes: 6\nStyle: fun") == 6)
        #expect(ScriptGenerator.requestedSceneCount(in: "  scenes:   3  ") == 3)
        #expect(ScriptGenerator.requestedSceneCount(in: "no count here") == 4)
        #expect(ScriptGenerator.requestedSceneCount(in: "Scenes: many") == 4)
        #expect(ScriptGenerator.requestedSceneCount(in: "Scenes: 0") == 1)
        #expect(ScriptGenerator.requestedSceneCount(in: "Scenes: 9999") == ScriptGenerator.maximumSceneCount)
    }

    @Test(arguments: [1, 2, 4, 5, 9])
    func scriptHasTheRequestedShape(scenes: Int) throws {
        let prompt = "Write an episode about lighthouses.\nScenes: \(scenes)"
        let script = ScriptGenerator.script(for: prompt)
        #expect(script.scenes.count == scenes)
        #expect((2...3).contains(script.characters.count))
        #expect(Set(script.characters).count == script.characters.count)
        #expect(script.broll.count == (scenes + 1) / 2)
        #expect(!script.title.isEmpty)
        for scene in script.scenes {
            #expect((1...2).contains(scene.lines.count))
            #expect(scene.lines.allSatisfy { script.characters.contains($0.character) && !$0.text.isEmpty })
        }
        // The JSON form decodes back to the same script.
        let decoded = try JSONDecoder().decode(EpisodeScript.self, from: Data(ScriptGenerator.json(for: prompt).utf8))
        #expect(decoded == script)
    }

    @Test func scriptsAreDeterministicPerPrompt() {
        #expect(ScriptGenerator.json(for: "same prompt") == ScriptGenerator.json(for: "same prompt"))
        let titles = Set((0..<20).map { ScriptGenerator.script(for: "prompt \($0)").title })
        #expect(titles.count > 1)
    }

    @Test func defaultScriptIsUnchanged() {
        // Pinned before `script_lines` and `script_broll` existed: without them a prompt still gives this script.
        let prompt = "Write an episode about lighthouses.\nScenes: 3"
        let expected = [
            #"{"broll":[{"description":"B-roll 1: slow pan across a train platform."},"#,
            #"{"description":"B-roll 2: slow pan across a kitchen at night."}],"characters":["Ines","Ada"],"#,
            #""scenes":[{"description":"Scene 1: a rooftop at dawn, tense lighting.","lines":["#,
            #"{"character":"Ines","text":"Trust me, this time it works."},"#,
            #"{"character":"Ada","text":"Trust me, this time it works."}],"#,
            #""narration":"In a rooftop at dawn, the mood turns tense."},"#,
            #"{"description":"Scene 2: a kitchen at night, calm lighting.","lines":["#,
            #"{"character":"Ines","text":"Trust me, this time it works."}],"#,
            #""narration":"In a kitchen at night, the mood turns calm."},"#,
            #"{"description":"Scene 3: an empty library, calm lighting.","lines":["#,
            #"{"character":"Ada","text":"We should have seen this coming."},"#,
            #"{"character":"Ada","text":"Look closer, it's right there."}],"#,
            #""narration":"In an empty library, the mood turns calm."}],"title":"The Midnight Garden"}"#,
        ]
        #expect(ScriptGenerator.json(for: prompt) == expected.joined())
        #expect(ScriptGenerator.script(for: prompt, lines: nil, broll: nil) == ScriptGenerator.script(for: prompt))
    }

    @Test func fixedLinesAndBrollAreExact() throws {
        let prompt = "Write an episode about harbors.\nScenes: 4"
        let script = ScriptGenerator.script(for: prompt, lines: 2, broll: 2)
        #expect(script.scenes.count == 4)
        #expect(script.scenes.map(\.lines.count) == [1, 1, 0, 0])
        #expect(script.broll.count == 2)
        #expect((2...3).contains(script.characters.count))
        for line in script.scenes.flatMap(\.lines) {
            #expect(script.characters.contains(line.character) && !line.text.isEmpty)
        }
        for scene in script.scenes {
            #expect(!scene.description.isEmpty && !scene.narration.isEmpty)
        }
        let json = ScriptGenerator.json(for: prompt, lines: 2, broll: 2)
        #expect(try JSONDecoder().decode(EpisodeScript.self, from: Data(json.utf8)) == script)
        // The same prompt and the same settings give the same script; other settings another one.
        #expect(ScriptGenerator.json(for: prompt, lines: 2, broll: 2) == json)
        #expect(ScriptGenerator.json(for: prompt, lines: 3, broll: 2) != json)
    }

    @Test(arguments: [
        (4, 2, [1, 1, 0, 0]), (4, 4, [1, 1, 1, 1]), (4, 6, [2, 2, 1, 1]), (4, 9, [3, 2, 2, 2]), (1, 3, [3]),
        (3, 7, [3, 2, 2]), (5, 1, [1, 0, 0, 0, 0]),
    ])
    func linesAreDealtRoundRobinFromTheFirstScene(scenes: Int, lines: Int, perScene: [Int]) {
        let script = ScriptGenerator.script(for: "Topic: tides\nScenes: \(scenes)", lines: lines)
        #expect(script.scenes.map(\.lines.count) == perScene)
        #expect((1...scenes).map { ScriptGenerator.linesOfScene($0, of: scenes, total: lines) } == perScene)
        // B-roll keeps its default.
        #expect(script.broll.count == (scenes + 1) / 2)
    }

    @Test(arguments: [0, 1, 7])
    func brollCountIsExact(broll: Int) {
        let script = ScriptGenerator.script(for: "Topic: kites\nScenes: 2", broll: broll)
        #expect(script.broll.count == broll)
        #expect(script.broll.enumerated().allSatisfy { $1.description.hasPrefix("B-roll \($0 + 1): ") })
        // Lines keep their default.
        #expect(script.scenes.allSatisfy { (1...2).contains($0.lines.count) })
    }
}

import Foundation
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
}

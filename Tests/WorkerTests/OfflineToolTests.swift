import Foundation
import Protocol
import Testing

@testable import Worker

@Suite struct OfflineToolTests {
    // MARK: - Finding and running tools

    @Test func aMissingToolSaysHowToInstallIt() {
        let nowhere = ToolLocator(searchPath: [])
        #expect(throws: ProviderError(.toolFailed, "ffmpeg not found; install ffmpeg (apt-get install ffmpeg)")) {
            try nowhere.locate("ffmpeg")
        }
        #expect(throws: ProviderError(.toolFailed, "ffmpeg not found; install ffmpeg (apt-get install ffmpeg)")) {
            try ProviderSet.checkOfflineTools(nowhere)
        }
        #expect(ToolLocator.installHint("espeak-ng") == "install espeak-ng (apt-get install espeak-ng)")
        #expect(ToolLocator(searchPath: ["relative/bin", ""]).searchPath.count == 2)
        #expect(
            (try? ToolLocator(searchPath: ["relative/bin", ""]).locate("sh")) == nil,
            "relative entries are skipped"
        )
    }

    @Test func aFailingToolReportsTheTailOfItsStandardError() async throws {
        let sh = try ToolLocator.environment.locate("sh")
        let script =
            "i=0; while [ $i -lt 2000 ]; do echo \"noise line $i\" >&2; i=$((i+1)); done; echo 'the real cause' >&2; exit 3"
        do {
            try await sh.run(["-c", script])
            Issue.record("expected a failure")
        } catch let error as ProviderError {
            #expect(error.kind == .toolFailed)
            #expect(error.message.hasPrefix("sh exited with status 3: noise line "))
            #expect(error.message.hasSuffix("noise line 1999 | the real cause"))
            #expect(error.message.utf8.count <= ExternalTool.messageTailBytes + 40)
            #expect(!error.message.contains("noise line 1 |"), "only the last lines are kept")
        }
    }

    @Test func capturesStandardOutputAndFeedsStandardInput() async throws {
        let cat = try ToolLocator.environment.locate("cat")
        let output = try await cat.run([], input: "hello -- world")
        #expect(output.standardOutput == "hello -- world")
    }

    @Test(.timeLimit(.minutes(1)))
    func aToolThatRunsTooLongIsKilled() async throws {
        let sleep = try ToolLocator.environment.locate("sleep")
        do {
            try await sleep.run(["30"], timeout: .milliseconds(200))
            Issue.record("expected a timeout")
        } catch let error as ProviderError {
            #expect(error.kind == .timeout)
            #expect(error.message == "sleep timed out after 0.20s")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func cancellingTheTaskKillsTheTool() async throws {
        let sleep = try ToolLocator.environment.locate("sleep")
        let started = Collected<Bool>()
        let task = Task {
            started.append(true)
            try await sleep.run(["30"])
        }
        try await eventually("the task starts") { started.count == 1 }
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
    }

    @Test func tailBufferKeepsWholeLastLines() {
        var tail = TailBuffer(capacity: 10)
        tail.append(Array("first line\nsecond\nend".utf8))
        #expect(tail.text == "end")
        var short = TailBuffer(capacity: 100)
        short.append(Array("a\nb".utf8))
        #expect(short.text == "a\nb")
    }

    // MARK: - Media

    @Test(.enabled(if: offlineToolsAvailable))
    func probesAndMeasuresWAVFiles() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let file = folder.url.appendingPathComponent("quiet.wav")
        try WAVFile.writeSilence(to: file, duration: .milliseconds(1_500))
        #expect(WAVFile.duration(of: file) == .milliseconds(1_500))
        let info = try await probe(file)
        #expect(info.audio?.codecName == "pcm_s16le")
        #expect(info.audio?.sampleRate == 22_050)
        #expect(abs(seconds(info.duration) - 1.5) < 0.01)
        #expect(WAVFile.duration(of: folder.url.appendingPathComponent("missing.wav")) == nil)
        await #expect(throws: ProviderError.self) { try await MediaProbe(tools: .environment).info(folder.url) }
    }

    @Test func parsesFFprobeJSON() throws {
        let json = """
            {"streams":[{"codec_name":"h264","codec_type":"video","width":1280,"height":720},
            {"codec_name":"aac","codec_type":"audio","sample_rate":"48000","channels":2}],"format":{"duration":"12.5"}}
            """
        let info = try MediaProbe.parse(json)
        #expect(info.duration == .milliseconds(12_500))
        #expect(info.video == MediaInfo.Stream(codecType: "video", codecName: "h264", width: 1_280, height: 720))
        #expect(info.audio?.sampleRate == 48_000)
        #expect(try MediaProbe.parse("{}").duration == nil)
        #expect(throws: ProviderError.self) { try MediaProbe.parse("not json") }
    }

    // MARK: - Paths and text

    @Test(arguments: [
        "", ".", "..", "../x", "x/../y", "a/b", "a\\b", ".hidden", "a\0b", "a\nb", "tab\there", "a..b",
        "bidi\u{202E}txt", String(repeating: "x", count: 201),
    ])
    func safePathRejects(_ name: String) {
        #expect(throws: SafePath.UnsafeComponent.self) { try SafePath.component(name) }
    }

    @Test(arguments: ["episode_1", "batch-2026-01-01", "ep.v2", "épisode", String(repeating: "x", count: 128)])
    func safePathAccepts(_ name: String) throws {
        #expect(try SafePath.component(name) == name)
    }

    @Test func aWorkspaceIsNeverCreatedOutsideTheOutputFolder() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        for (batch, episode) in [("../escape", "episode_1"), ("batch", "../../escape"), ("batch", ".work")] {
            #expect(throws: SafePath.UnsafeComponent.self) {
                try AttemptWorkspace.create(output: folder.url, batchId: batch, episodeId: episode, attempt: 1)
            }
        }
        let contents = try FileManager.default.contentsOfDirectory(atPath: folder.url.path)
        #expect(contents.isEmpty)
        #expect(
            !FileManager.default.fileExists(
                atPath: folder.url.deletingLastPathComponent().appendingPathComponent("escape").path
            )
        )
    }

    @Test func escapesFilterValues() {
        #expect(FilterText.escaped("plain.txt") == "plain.txt")
        #expect(
            FilterText.escaped("this is a 'string': may contain one, or more, special characters")
                == #"this is a \\\'string\\\'\\: may contain one\, or more\, special characters"#
        )
    }

    @Test func wrapsText() {
        #expect(
            FilterText.wrapped("the quick brown fox jumps", width: 10, maxLines: 5) == [
                "the quick", "brown fox", "jumps",
            ]
        )
        #expect(FilterText.wrapped("abcdefghijkl", width: 5, maxLines: 5) == ["abcde", "fghij", "kl"])
        #expect(FilterText.wrapped("one two three four", width: 8, maxLines: 1) == ["one two…"])
        #expect(FilterText.wrapped("  ", width: 8, maxLines: 2).isEmpty)
    }

    @Test func palettesDifferBetweenScenesAndEpisodes() {
        let palette = Palette(episodeId: "episode_1", topic: "tea")
        let scenes = (1...6).map { palette.scene($0) }
        #expect(Set(scenes.map(\.top)).count == 6)
        #expect(palette == Palette(episodeId: "episode_1", topic: "tea"))
        #expect(palette != Palette(episodeId: "episode_2", topic: "tea"))
        #expect(Palette.hex(0, 1, 0.5) == "0xff0000")
        #expect(Palette.hex(120, 1, 0.25) == "0x008000")
        #expect(Palette.hex(-120, 1, 0.5) == "0x0000ff")
    }
}

import Protocol
import Testing

@testable import Worker

@Suite struct RenderPlanTests {
    private func plan(
        scenes: Int,
        broll: Int? = nil,
        seconds: (Int) -> Double = { 1.0 + Double($0) * 0.37 }
    )
        -> (Script, RenderPlan)
    {
        var script = OfflineScriptWriter.script(for: EpisodeSpec(topic: "tea", scenes: scenes))
        if let broll {
            script.brollShots = (1...max(1, broll)).prefix(broll).map { Script.BrollShot(number: $0, description: "x") }
        }
        let assets = EpisodeAssets(
            voices: script.lines.map { VoiceClip(item: $0.item, duration: .seconds(1)) },
            scenes: script.scenes.map { Image(item: $0.item, duration: .seconds(6)) },
            broll: script.brollShots.map { Image(item: $0.item, duration: .seconds(3)) }
        )
        let voiceSeconds = script.lines.indices.map(seconds)
        return (script, RenderPlan(script: script, assets: assets, voiceSeconds: voiceSeconds, frameRate: 30))
    }

    @Test func theVideoLastsAsLongAsTheVoices() {
        let (script, plan) = plan(scenes: 4)
        let total = script.lines.indices.map { 1.0 + Double($0) * 0.37 }.reduce(0, +)
        #expect(abs(plan.seconds - total) < 1e-9)
        #expect(plan.frames == Int((total * 30).rounded()))
        #expect(plan.audio.map(\.voice) == script.lines.indices.map { $0 })
        // Segments tile the timeline without gaps.
        var next = 0
        for segment in plan.segments {
            #expect(segment.firstFrame == next)
            #expect(segment.frames > 0)
            next += segment.frames
        }
    }

    @Test func brollCutsAwayDuringTheLastLineOfEveryOtherScene() {
        let (script, plan) = plan(scenes: 4)
        #expect(script.brollShots.count == 2)
        let visuals = plan.segments.map(\.visual)
        #expect(visuals == [.scene(0), .scene(1), .broll(0), .scene(2), .scene(3), .broll(1)])
        let second = plan.segments[2]
        #expect(second.captions.count == 1)
        #expect(
            second.captions.first?.text
                == "\(script.scenes[1].lines.last!.character): \(script.scenes[1].lines.last!.text)"
        )
    }

    @Test func captionsFollowTheLines() {
        let (script, plan) = plan(scenes: 1, broll: 0)
        #expect(plan.segments.count == 1)
        let captions = plan.segments[0].captions
        #expect(captions.map(\.text) == script.lines.map { "\($0.character): \($0.text)" })
        #expect(captions.first?.start == 0)
        #expect(zip(captions, captions.dropFirst()).allSatisfy { abs($0.end - $1.start) < 1e-9 })
    }

    @Test func assignsBrollToFreeScenes() {
        #expect(RenderPlan.assignBroll(count: 1, scenes: 1) == [0: 0])
        #expect(RenderPlan.assignBroll(count: 2, scenes: 4) == [1: 0, 3: 1])
        #expect(RenderPlan.assignBroll(count: 3, scenes: 4) == [1: 0, 3: 1, 2: 2])
        #expect(RenderPlan.assignBroll(count: 6, scenes: 2) == [1: 0, 0: 1])
        #expect(RenderPlan.assignBroll(count: 1, scenes: 0).isEmpty)
    }

    @Test func aSingleLineSceneIsSplitForItsBroll() {
        let script = Script(
            title: "t",
            characters: ["Narrator"],
            scenes: [
                Script.Scene(
                    number: 1,
                    description: "d",
                    narration: "n",
                    lines: [Script.Line(number: 1, character: "Narrator", text: "n")]
                )
            ],
            brollShots: [Script.BrollShot(number: 1, description: "b")]
        )
        let assets = EpisodeAssets(
            voices: [VoiceClip(item: "line_1", duration: .seconds(2))],
            scenes: [Image(item: "scene_1", duration: .seconds(6))],
            broll: [Image(item: "broll_1", duration: .seconds(3))]
        )
        let plan = RenderPlan(script: script, assets: assets, voiceSeconds: [2], frameRate: 30)
        #expect(plan.segments.map(\.visual) == [.scene(0), .broll(0)])
        #expect(plan.segments.map(\.frames) == [30, 30])
    }

    @Test func missingVoicesAndEmptyScenesBecomeSilence() {
        let script = Script(
            title: "t",
            characters: ["A"],
            scenes: [
                Script.Scene(number: 1, description: "d", narration: "quiet", lines: []),
                Script.Scene(
                    number: 2,
                    description: "d",
                    narration: "",
                    lines: [Script.Line(number: 1, character: "A", text: "one two three four five")]
                ),
            ],
            brollShots: []
        )
        let assets = EpisodeAssets(
            voices: [],
            scenes: [Image(item: "scene_1", duration: .seconds(6)), Image(item: "scene_2", duration: .seconds(6))],
            broll: []
        )
        let plan = RenderPlan(script: script, assets: assets, voiceSeconds: [], frameRate: 30)
        #expect(plan.audio == [.init(voice: nil, seconds: 2), .init(voice: nil, seconds: 2)])
        #expect(plan.segments.first?.captions.first?.text == "quiet")
    }

    @Test func formatsSecondsForFFmpeg() {
        #expect(FFmpegRenderer.seconds(0) == "0.000000")
        #expect(FFmpegRenderer.seconds(1.5) == "1.500000")
        #expect(FFmpegRenderer.seconds(0.0000001) == "0.000000")
        #expect(FFmpegRenderer.seconds(12.3456789) == "12.345679")
    }
}

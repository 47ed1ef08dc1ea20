import Protocol
import Testing

@testable import Worker

@Suite struct SimulationTests {
    // MARK: - Determinism

    private func run(_ settings: SimulationSettings) async -> [EpisodeResult] {
        let jobs = (1...3).map { makeJob("episode_\($0)", topic: "topic \($0)", scenes: 6) }
        return await runConcurrently(jobs, makePipeline(settings))
    }

    private func halfFailing(seed: UInt64) -> SimulationSettings {
        var settings = SimulationSettings.instant
        settings.failureRates = [.tts: 0.5, .image: 0.5]
        settings.seed = seed
        return settings
    }

    @Test func theSameSeedGivesTheSameRun() async {
        let first = await run(halfFailing(seed: 7))
        let second = await run(halfFailing(seed: 7))
        #expect(first.map(\.placeholders) == second.map(\.placeholders))
        #expect(first.map { names($0.trace, .callStart) } == second.map { names($0.trace, .callStart) })
        #expect(first.map(\.apiCalls) == second.map(\.apiCalls))
        #expect(first.contains { !$0.placeholders.isEmpty }, "a rate of 0.5 fails some calls")
    }

    @Test func anotherSeedGivesOtherFailures() async {
        let first = await run(halfFailing(seed: 7))
        let other = await run(halfFailing(seed: 8))
        #expect(first.map(\.placeholders) != other.map(\.placeholders))
        // The scripts do not depend on the seed, so the calls made are the same.
        #expect(first.map { names($0.trace, .callStart) } == other.map { names($0.trace, .callStart) })
    }

    @Test func plansAreStableAndJitterStaysWithinTenPercent() {
        let simulator = Simulator(settings: .default)
        var latencies: Set<Duration> = []
        for item in 1...200 {
            let plan = simulator.plan(.image, episodeId: "episode_1", attempt: 1, item: "scene_\(item)")
            #expect(plan == simulator.plan(.image, episodeId: "episode_1", attempt: 1, item: "scene_\(item)"))
            #expect(plan.latency >= .milliseconds(720) && plan.latency <= .milliseconds(880))
            #expect(!plan.fails)
            latencies.insert(plan.latency)
        }
        #expect(latencies.count > 100, "jitter varies between items")
    }

    @Test func aRetryGetsAFreshDraw() {
        var settings = SimulationSettings.instant
        settings.failureRates = [.image: 0.5]
        let simulator = Simulator(settings: settings)
        let items = (1...64).map { "scene_\($0)" }
        let first = items.map { simulator.plan(.image, episodeId: "e", attempt: 1, item: $0).fails }
        let retry = items.map { simulator.plan(.image, episodeId: "e", attempt: 2, item: $0).fails }
        #expect(first != retry)
        let rate = Double(first.count(where: \.self)) / Double(first.count)
        #expect(rate > 0.2 && rate < 0.8)
    }

    @Test func forcedFailuresAlwaysFailAndOnlyTheirKind() {
        var settings = SimulationSettings.instant
        settings.forcedFailures = [.llm: ["episode_3"]]
        let simulator = Simulator(settings: settings)
        for attempt in 1...5 {
            #expect(simulator.plan(.llm, episodeId: "episode_3", attempt: attempt, item: "script").fails)
            #expect(!simulator.plan(.llm, episodeId: "episode_4", attempt: attempt, item: "script").fails)
            #expect(!simulator.plan(.image, episodeId: "episode_3", attempt: attempt, item: "scene_1").fails)
        }
    }

    @Test func stableHashIsFNV1a() {
        var hash = StableHash()
        hash.combine("a".utf8)
        #expect(hash.state == 0xaf63_dc4c_8601_ec8c)
        var empty = StableHash()
        empty.combine([UInt8]())
        #expect(empty.state == 0xcbf2_9ce4_8422_2325)
        #expect(StableHash.of(1, ["ab", "c"]).value != StableHash.of(1, ["a", "bc"]).value)
    }

    // MARK: - Script writer

    @Test func templatesAreFilledInOnePass() {
        #expect(
            SimulatedScriptWriter.fill("{Topic}: {character} on {topic}, {x} {topic", "été à Paris", "Zoë")
                == "Été à Paris: Zoë on été à Paris, {x} {topic"
        )
        #expect(SimulatedScriptWriter.fill("{character}{character}", "t", "{topic}") == "{topic}{topic}")
        #expect(SimulatedScriptWriter.fill("", "t", "c") == "")
    }

    @Test func theScriptIsDeterministicFromTheTopic() {
        let spec = EpisodeSpec(topic: "the history of the lighthouse")
        let script = SimulatedScriptWriter.script(for: spec)
        #expect(script == SimulatedScriptWriter.script(for: spec))
        #expect(script.scenes.count == EpisodeSpec.defaultScenes)
        #expect((2...3).contains(script.characters.count))
        #expect(Set(script.characters).count == script.characters.count)
        #expect(script.brollShots.count == 2)
        #expect(script.scenes.allSatisfy { (1...2).contains($0.lines.count) })
        #expect(script.lines.map(\.number) == Array(1...script.lines.count))
        #expect(script.scenes.map(\.number) == Array(1...script.scenes.count))
        #expect(script.lines.allSatisfy { script.characters.contains($0.character) })
        #expect(!script.title.isEmpty)

        let others = ["volcanoes", "the printing press", "honeybees", "jazz", "deep-sea fish", "bridges"]
            .map { SimulatedScriptWriter.script(for: EpisodeSpec(topic: $0)) }
        #expect(Set(others.map(\.characters)).count > 1, "casts vary by topic")
        #expect(Set(others.map { $0.lines.count }).count > 1, "line counts vary by topic")
    }

    @Test func theScriptFollowsTheSpec() {
        let spec = EpisodeSpec(topic: "bridges", characters: ["Ana", "Ben", "Cy", "Dee"], scenes: 7)
        let script = SimulatedScriptWriter.script(for: spec)
        #expect(script.characters == ["Ana", "Ben", "Cy", "Dee"])
        #expect(script.scenes.count == 7)
        #expect(script.brollShots.count == 3)
        #expect(SimulatedScriptWriter.script(for: EpisodeSpec(topic: "x", scenes: 1)).brollShots.count == 1)
        #expect(SimulatedScriptWriter.script(for: EpisodeSpec(topic: "x", characters: [])).characters.count >= 2)
    }

    // MARK: - Parsing

    @Test func parsesAllSettings() throws {
        let settings = try SimulationSettings.parse(
            latency: "llm=100, image=50",
            failureRate: "image=0.1,tts=0.05",
            fail: "llm:episode_3,episode_7; image:episode_1",
            seed: "42"
        )
        #expect(settings.latency(.llm) == .milliseconds(100))
        #expect(settings.latency(.image) == .milliseconds(50))
        #expect(settings.latency(.tts) == .milliseconds(300), "unspecified kinds keep their default")
        #expect(settings.latency(.render) == .milliseconds(200))
        #expect(settings.failureRate(.image) == 0.1)
        #expect(settings.failureRate(.tts) == 0.05)
        #expect(settings.failureRate(.llm) == 0)
        #expect(settings.forcedFailures == [.llm: ["episode_3", "episode_7"], .image: ["episode_1"]])
        #expect(settings.seed == 42)
    }

    @Test func emptySettingsAreTheDefaults() throws {
        #expect(try SimulationSettings.parse(latency: nil, failureRate: nil, fail: nil, seed: nil) == .default)
        #expect(try SimulationSettings.parse(latency: "", failureRate: " ", fail: "", seed: "") == .default)
        #expect(SimulationSettings.default.seed == 1)
    }

    @Test(arguments: [
        (latency: "llm=abc", failureRate: "", fail: "", seed: "", setting: "latency", piece: "'abc'"),
        ("llm=-5", "", "", "", "latency", "'-5'"),
        ("gpu=3", "", "", "", "latency", "unknown provider kind 'gpu'"),
        ("llm", "", "", "", "latency", "'llm' is not kind=value"),
        ("llm=1,llm=2", "", "", "", "latency", "'llm' is given more than once"),
        ("", "image=1.5", "", "", "failure rate", "1.5 is outside 0…1"),
        ("", "image=lots", "", "", "failure rate", "'lots' is not a number"),
        ("", "video=0.1", "", "", "failure rate", "unknown provider kind 'video'"),
        ("", "", "llm", "", "fail", "'llm' is not kind:episode,episode"),
        ("", "", "llm:", "", "fail", "empty episode id"),
        ("", "", "sound:episode_1", "", "fail", "unknown provider kind 'sound'"),
        ("", "", "", "-1", "seed", "'-1' is not an unsigned integer"),
        ("", "", "", "one", "seed", "'one'"),
    ])
    func parseErrorsNameTheBadPiece(
        latency: String,
        failureRate: String,
        fail: String,
        seed: String,
        setting: String,
        piece: String
    ) {
        do {
            _ = try SimulationSettings.parse(latency: latency, failureRate: failureRate, fail: fail, seed: seed)
            Issue.record("expected a parse error")
        } catch {
            #expect(error.setting == setting)
            #expect(error.description.hasPrefix("\(setting): "))
            #expect(error.description.contains(piece), "\(error.description)")
        }
    }

    @Test func summaryNamesEverything() {
        var settings = SimulationSettings.default
        settings.failureRates = [.image: 0.1]
        settings.forcedFailures = [.llm: ["episode_7", "episode_3"]]
        let expected = [
            "latency llm=400ms tts=300ms image=800ms render=200ms", "failure rate image=0.1",
            "forced failures llm:episode_3,episode_7", "seed 1",
        ]
        #expect(settings.summary == expected.joined(separator: "; "))
    }
}

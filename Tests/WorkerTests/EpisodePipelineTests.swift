import Logging
import Protocol
import Shared
import Testing

@testable import Worker

@Suite struct EpisodePipelineTests {
    @Test func succeedsWithInstantSimulation() async throws {
        let job = makeJob(scenes: 4)
        let script = SimulatedScriptWriter.script(for: job.spec)
        let progress = Collected<Progress>()

        let result = await makePipeline().run(job, progress: { progress.append($0) })

        #expect(result.status == .succeeded)
        #expect(result.error == nil)
        #expect(result.episodeId == job.episodeId)
        #expect(result.attempt == job.attempt)
        #expect(result.placeholders.isEmpty)
        #expect(result.apiCalls == 1 + script.lines.count + script.scenes.count + script.brollShots.count)

        let trace = result.trace
        #expect(trace.first?.event == .episodeStart)
        #expect(trace.last?.event == .episodeEnd)
        #expect(zip(trace, trace.dropFirst()).allSatisfy { $0.seq < $1.seq }, "seq strictly increasing")
        let expectedCalls =
            (["llm:script"] + script.lines.map { "tts:\($0.item)" } + script.scenes.map { "image:\($0.item)" }
            + script.brollShots.map { "image:\($0.item)" }).sorted()
        #expect(names(trace, .callStart) == expectedCalls)
        #expect(names(trace, .callEnd) == expectedCalls)
        #expect(names(trace, .renderStart) == ["render"])
        #expect(names(trace, .renderEnd) == ["render"])
        _ = maxInFlight(trace, start: .callStart, end: .callEnd)

        // The render starts after the last call ended.
        let lastCallEnd = trace.filter { $0.event == .callEnd }.map(\.seq).max() ?? 0
        let renderStart = trace.first { $0.event == .renderStart }?.seq ?? 0
        #expect(lastCallEnd < renderStart)

        let steps = progress.all
        #expect(
            steps.first == Progress(episodeId: job.episodeId, attempt: 1, stage: .script, state: .started, total: 1)
        )
        #expect(steps.dropFirst().first?.stage == .script)
        #expect(steps.dropFirst().first?.state == .finished)
        #expect(steps.last == Progress(episodeId: job.episodeId, attempt: 1, stage: .render, state: .finished))
        for (stage, total) in [(Stage.voices, script.lines.count), (.scenes, 4), (.broll, script.brollShots.count)] {
            let ofStage = steps.filter { $0.stage == stage }
            #expect(ofStage.map(\.state) == [.started, .finished], "\(stage)")
            #expect(ofStage.last?.succeeded == total, "\(stage)")
            #expect(ofStage.last?.total == total, "\(stage)")
        }
    }

    @Test func aForcedImageFailureBecomesPlaceholdersAndTheEpisodeSucceeds() async throws {
        let job = makeJob("episode_3", scenes: 4)
        let script = SimulatedScriptWriter.script(for: job.spec)
        var settings = SimulationSettings.instant
        settings.forcedFailures = [.image: ["episode_3"]]
        let progress = Collected<Progress>()

        let result = await makePipeline(settings).run(job, progress: { progress.append($0) })

        #expect(result.status == .succeeded)
        #expect(result.error == nil)
        let expected =
            script.scenes.map { Placeholder(stage: .scenes, item: $0.item, reason: "simulated failure (forced)") }
            + script.brollShots.map { Placeholder(stage: .broll, item: $0.item, reason: "simulated failure (forced)") }
        #expect(result.placeholders == expected)
        // Failed calls still count.
        #expect(result.apiCalls == 1 + script.lines.count + script.scenes.count + script.brollShots.count)
        #expect(names(result.trace, .renderEnd) == ["render"])
        let scenes = progress.all.filter { $0.stage == .scenes && $0.state == .finished }
        #expect(
            scenes == [
                Progress(episodeId: "episode_3", attempt: 1, stage: .scenes, state: .finished, succeeded: 0, total: 4)
            ]
        )
    }

    @Test func failedVoiceCallsBecomePlaceholders() async throws {
        let job = makeJob(scenes: 2)
        let script = SimulatedScriptWriter.script(for: job.spec)
        var settings = SimulationSettings.instant
        settings.failureRates = [.tts: 1]

        let result = await makePipeline(settings).run(job, progress: { _ in })

        #expect(result.status == .succeeded)
        #expect(result.placeholders.map(\.item) == script.lines.map(\.item))
        #expect(result.placeholders.allSatisfy { $0.stage == .voices && $0.reason == "simulated failure" })
    }

    @Test func aFailedScriptFailsTheAttemptBeforeAnyOtherCall() async throws {
        let job = makeJob("episode_7")
        var settings = SimulationSettings.instant
        settings.forcedFailures = [.llm: ["episode_3", "episode_7"]]
        let progress = Collected<Progress>()

        let result = await makePipeline(settings).run(job, progress: { progress.append($0) })

        #expect(result.status == .failed)
        #expect(result.error == "script: simulated failure (forced)")
        #expect(result.apiCalls == 1)
        #expect(result.placeholders.isEmpty)
        #expect(result.trace.map(\.event) == [.episodeStart, .callStart, .callEnd, .episodeEnd])
        #expect(names(result.trace, .callStart) == ["llm:script"])
        #expect(progress.all.map(\.state) == [.started, .failed])
        #expect(progress.all.allSatisfy { $0.stage == .script })
    }

    @Test func otherEpisodesAreNotHitByAForcedFailure() async throws {
        var settings = SimulationSettings.instant
        settings.forcedFailures = [.llm: ["episode_3"]]
        let result = await makePipeline(settings).run(makeJob("episode_4"), progress: { _ in })
        #expect(result.status == .succeeded)
    }

    @Test func aFailedRenderFailsTheAttempt() async throws {
        var settings = SimulationSettings.instant
        settings.forcedFailures = [.render: ["episode_1"]]
        let progress = Collected<Progress>()

        let result = await makePipeline(settings).run(makeJob(), progress: { progress.append($0) })

        #expect(result.status == .failed)
        #expect(result.error == "render: simulated failure (forced)")
        #expect(names(result.trace, .renderStart) == ["render"])
        #expect(names(result.trace, .renderEnd) == ["render"])
        #expect(result.trace.last?.event == .episodeEnd)
        #expect(progress.all.last == Progress(episodeId: "episode_1", attempt: 1, stage: .render, state: .failed))
    }

    @Test func providerErrorsAreShortenedForTheWire() async throws {
        struct Chatty: ScriptProvider {
            func writeScript(for spec: EpisodeSpec, context: CallContext) async throws -> Script {
                throw ProviderError(.serverError, String(repeating: "é", count: 10_000))
            }
        }
        var providers = ProviderSet.simulated(.instant)
        providers.script = Chatty()
        let pipeline = EpisodePipeline(
            providers: providers,
            limits: WorkerLimits(),
            trace: TraceRecorder(),
            logger: quietLogger
        )
        let result = await pipeline.run(makeJob(), progress: { _ in })
        let error = try #require(result.error)
        #expect(error.hasPrefix("script: éé"))
        #expect(error.hasSuffix("…"))
        #expect(error.utf8.count <= WireProtocol.maxTextBytes)
    }

    // MARK: - Cancellation

    @Test(.timeLimit(.minutes(1)))
    func cancellationDuringTheScriptStopsPromptly() async throws {
        let clock = TestClock()
        let progress = Collected<Progress>()
        let pipeline = makePipeline(.default, clock: clock)
        let task = Task { await pipeline.run(makeJob(), progress: { progress.append($0) }) }
        try await eventually("the script call sleeps") { clock.sleeperCount == 1 }

        task.cancel()
        let result = await task.value

        #expect(result.status == .failed)
        #expect(result.error == "cancelled")
        #expect(result.trace.map(\.event) == [.episodeStart, .callStart, .callEnd, .episodeEnd])
        #expect(result.placeholders.isEmpty)
        #expect(progress.all.map(\.state) == [.started])
    }

    @Test(.timeLimit(.minutes(1)))
    func cancellationDuringTheAssetsStopsPromptlyWithoutPlaceholders() async throws {
        let clock = TestClock()
        let pipeline = makePipeline(.default, limits: WorkerLimits(apiCallsPerEpisode: 3), clock: clock)
        let task = Task { await pipeline.run(makeJob(scenes: 6), progress: { _ in }) }
        try await eventually("the script call sleeps") { clock.sleeperCount == 1 }
        clock.advance(by: .seconds(1))  // the script is written
        try await eventually("three asset calls sleep") { clock.sleeperCount == 3 }

        task.cancel()
        let result = await task.value

        #expect(result.status == .failed)
        #expect(result.error == "cancelled")
        #expect(result.placeholders.isEmpty)
        #expect(result.apiCalls == 4)
        #expect(names(result.trace, .renderStart).isEmpty)
        #expect(maxInFlight(result.trace, start: .callStart, end: .callEnd) == 3)
        #expect(result.trace.last?.event == .episodeEnd)
    }

    @Test(.timeLimit(.minutes(1)))
    func cancellationWhileWaitingForARenderSlot() async throws {
        let renders = AsyncSemaphore(permits: 1)
        try await renders.acquire()  // someone else is rendering
        let pipeline = makePipeline(.instant, limits: WorkerLimits(apiCallsPerEpisode: 5, renders: renders))
        let task = Task { await pipeline.run(makeJob(), progress: { _ in }) }
        try await eventually("the render waits") { renders.waiterCount == 1 }

        task.cancel()
        let result = await task.value

        #expect(result.error == "cancelled")
        #expect(names(result.trace, .renderStart).isEmpty)
        renders.release()
        #expect(renders.availablePermits == 1)
    }

    // MARK: - Logging

    @Test func logsTheBatchLinesWithTheEpisodeInMetadata() async throws {
        let handler = CapturingLogHandler()
        let logger = Logger(label: "test", factory: { _ in handler })
        var settings = SimulationSettings.instant
        settings.forcedFailures = [.image: ["episode_42"]]
        let job = makeJob("episode_42", scenes: 4)

        _ = await makePipeline(settings, logger: logger).run(job, progress: { _ in })

        let entries = handler.entries.all
        let messages = entries.map(\.message)
        #expect(messages.contains("Generating 4 scene visuals in parallel..."))
        #expect(messages.contains("Generating 2 cinematic B-roll shots in parallel..."))
        #expect(
            messages.contains { $0.hasPrefix("Generating ") && $0.hasSuffix(" character voice clips in parallel...") }
        )
        #expect(messages.contains { $0.hasPrefix("API batch complete: 0/4 successful in ") && $0.hasSuffix("s") })
        #expect(messages.contains { $0.hasPrefix("✅ line_1 completed (") })
        #expect(
            messages.contains {
                $0.hasPrefix("❌ scene_2 failed (")
                    && $0.hasSuffix("): simulated failure (forced); using a placeholder")
            }
        )
        #expect(entries.allSatisfy { $0.metadata["episode"] == "episode_42" })
        #expect(entries.allSatisfy { $0.metadata["attempt"] == "1" })
        #expect(!messages.contains { $0.contains("episode_42") }, "the id belongs in metadata only")
    }

    @Test func saysSequentiallyWhenOneCallAtATime() async throws {
        let handler = CapturingLogHandler()
        let logger = Logger(label: "test", factory: { _ in handler })
        _ = await makePipeline(.instant, limits: WorkerLimits(apiCallsPerEpisode: 1), logger: logger)
            .run(makeJob(scenes: 4), progress: { _ in })
        #expect(handler.entries.all.map(\.message).contains("Generating 4 scene visuals sequentially..."))
    }

    // MARK: - Helpers

    @Test func formatsSeconds() {
        #expect(Duration.milliseconds(12_345).secondsText == "12.35s")
        #expect(Duration.milliseconds(18_230).secondsText == "18.23s")
        #expect(Duration.milliseconds(5).secondsText == "0.01s")
        #expect(Duration.zero.secondsText == "0.00s")
    }

    @Test func traceRecorderNumbersStrictlyIncrease() async {
        let recorder = TraceRecorder()
        let seqs = await withTaskGroup(of: [UInt64].self) { group in
            for _ in 0..<4 {
                group.addTask { (0..<250).map { _ in recorder.record(.callStart, "x").seq } }
            }
            return await group.reduce(into: []) { $0 += $1 }
        }
        #expect(Set(seqs).count == 1_000)
        #expect(seqs.min() == 1)
        #expect(seqs.max() == 1_000)
        #expect(recorder.currentSeq == 1_000)
    }
}

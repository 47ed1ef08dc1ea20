import Logging
import Protocol
import Shared

import struct Foundation.URL

/// Runs one attempt of one episode through its stages:
///
/// 1. **script**: one LLM call writes the ``Script``. A failure fails the attempt ("script: <reason>").
/// 2. **voices**, **scenes** and **broll**, side by side: one TTS call per character line, one image
///    call per scene, one image call per B-roll shot. A failed call becomes a ``Placeholder`` and the
///    episode goes on.
/// 3. **render**, under the worker's render semaphore. A failure fails the attempt ("render: <reason>").
///
/// A failed voice or image call becomes the ``ProviderSet/fallback``'s stand-in (a file when the
/// pipeline keeps files), recorded in the result's `placeholders`.
///
/// **Files.** With an ``outputRoot``, every attempt gets its own workspace
/// `<output>/<batch>/.work/<episode>-attempt-<n>/`, created before the first call and passed to every
/// provider in ``CallContext/workspace``. After a successful render the pipeline writes `script.json`
/// and `manifest.json` there and publishes the folder by renaming it to `<output>/<batch>/<episode>/`
/// (replacing an older attempt's). A failed or cancelled attempt's workspace is deleted. File errors fail
/// the attempt ("output: <reason>"). Without an output root (the simulation) no files are kept.
///
/// **Delivery.** The RESULT of a successful attempt lists its files with their SHA-256 (`artifacts`).
/// With ``ArtifactDelivery/shared`` the folder is published as above and synced to disk before the
/// RESULT. With ``ArtifactDelivery/transfer`` it is not published: the workspace stays as it is, and
/// ``runKeepingFiles(_:progress:)`` returns it for the worker to serve to the coordinator.
///
/// Every external call (script, voices, images) holds a permit of the attempt's own limiter
/// (`limits.apiCallsPerEpisode`) and, if set, of the worker-wide `limits.workerAPICalls`. Trace events
/// are recorded inside the permits, so replaying them by `seq` proves the limits held.
struct EpisodePipeline: Sendable {
    var providers: ProviderSet
    var limits: WorkerLimits
    var trace: TraceRecorder
    var logger: Logger
    /// Where finished episodes go (`<outputRoot>/<batch>/<episode>/`); `nil` keeps no files.
    var outputRoot: URL?
    /// Finds ffprobe for the manifest's durations.
    var tools: ToolLocator
    /// The fleet's rate-limit budget, passed to every call in its ``CallContext``.
    var gate: any ProviderGate
    /// How a successful attempt's files reach the coordinator.
    var delivery: ArtifactDelivery
    /// The coordinator's asset store, asked before each paid request and offered each paid answer;
    /// `nil`: every call goes to its provider.
    var reuse: AssetExchange?

    init(
        providers: ProviderSet,
        limits: WorkerLimits,
        trace: TraceRecorder,
        logger: Logger,
        outputRoot: URL? = nil,
        tools: ToolLocator = .environment,
        gate: any ProviderGate = OpenGate(),
        delivery: ArtifactDelivery = .shared,
        reuse: AssetExchange? = nil
    ) {
        self.providers = providers
        self.limits = limits
        self.trace = trace
        self.logger = logger
        self.outputRoot = outputRoot
        self.tools = tools
        self.gate = gate
        self.delivery = delivery
        self.reuse = reuse
    }

    /// Runs one attempt of one episode. Never throws: any failure becomes a failed ``EpisodeResult``.
    /// On task cancellation it stops promptly and returns a failed result with error "cancelled".
    ///
    /// - Parameter progress: called when a stage starts, finishes or fails (possibly from several tasks
    ///   at once, since the voice, scene and B-roll stages run side by side).
    func run(_ job: Job, progress: @escaping @Sendable (Progress) -> Void) async -> EpisodeResult {
        await runKeepingFiles(job, progress: progress).result
    }

    /// Runs one attempt like ``run(_:progress:)``, and returns as well the folder of the files it offers
    /// for transfer (a successful attempt with ``ArtifactDelivery/transfer`` delivery), which the caller
    /// keeps until the coordinator acknowledges them.
    func runKeepingFiles(
        _ job: Job,
        progress: @escaping @Sendable (Progress) -> Void
    ) async -> (result: EpisodeResult, files: URL?) {
        var logger = self.logger
        logger[metadataKey: "episode"] = "\(job.episodeId)"
        logger[metadataKey: "attempt"] = "\(job.attempt)"
        let attempt = Attempt(
            job: job,
            providers: providers,
            limits: limits,
            record: AttemptRecord(recorder: trace),
            limiter: AsyncSemaphore(permits: limits.apiCallsPerEpisode),
            logger: logger,
            progress: progress,
            outputRoot: outputRoot,
            tools: tools,
            gate: gate,
            delivery: delivery,
            allowance: job.spendAllowanceMicros.map { SpendAllowance(limitMicros: $0) },
            reuse: reuse
        )
        return await attempt.run()
    }
}

/// Why an attempt stopped early.
private enum AttemptFailure: Error {
    case cancelled
    /// The attempt's error text, e.g. "script: simulated failure".
    case failed(String)
    /// The spend allowance could not cover the script call (RESULT `spend_capped`).
    case capped(String)

    var message: String {
        switch self {
        case .cancelled: "cancelled"
        case .failed(let message), .capped(let message): message
        }
    }
}

/// One attempt in progress: the job, its limiter, and what it has recorded.
private struct Attempt: Sendable {
    let job: Job
    let providers: ProviderSet
    let limits: WorkerLimits
    let record: AttemptRecord
    /// The attempt's own limiter of `limits.apiCallsPerEpisode` permits, shared by all its calls.
    let limiter: AsyncSemaphore
    let logger: Logger
    let progress: @Sendable (Progress) -> Void
    let outputRoot: URL?
    let tools: ToolLocator
    let gate: any ProviderGate
    let delivery: ArtifactDelivery
    /// What the attempt's paid calls may cost together (JOB `spend_allowance_micros`); `nil`: no cap.
    let allowance: SpendAllowance?
    let reuse: AssetExchange?
    /// The attempt's folder, once created (only with an output root).
    var workspace: AttemptWorkspace?

    func run() async -> (result: EpisodeResult, files: URL?) {
        let started = ContinuousClock.now
        record.record(.episodeStart, "episode")
        logger.debug("Episode attempt started", metadata: ["topic": "\(job.spec.topic)"])

        var failure: AttemptFailure?
        var workspace: AttemptWorkspace?
        var artifacts: [ArtifactFile] = []
        do throws(AttemptFailure) {
            workspace = try openWorkspace()
            var attempt = self
            attempt.workspace = workspace
            let script = try await attempt.writeScript()
            let assets = try await attempt.makeAssets(for: script)
            artifacts = try await attempt.render(script, assets)
        } catch {
            failure = error
        }
        if failure != nil { workspace?.discard() }

        record.record(.episodeEnd, "episode")
        let elapsed = ContinuousClock.now - started
        let result = EpisodeResult(
            episodeId: job.episodeId,
            attempt: job.attempt,
            status: failure == nil ? .succeeded : .failed,
            error: failure?.message,
            durationMs: elapsed.wholeMilliseconds,
            placeholders: record.placeholders,
            apiCalls: record.apiCalls,
            trace: record.events,
            artifacts: failure == nil ? artifacts : [],
            delivery: failure == nil && !artifacts.isEmpty ? delivery : nil,
            spendCapped: { if case .capped = failure { true } else { false } }()
        )
        switch failure {
        case nil:
            let calls = counted(result.apiCalls, "API call")
            let placeholders = counted(result.placeholders.count, "placeholder")
            logger.info("Episode succeeded in \(elapsed.secondsText) (\(calls), \(placeholders))")
        case .cancelled:
            logger.info("Episode attempt cancelled after \(elapsed.secondsText)")
        case .failed(let message):
            logger.error("Episode failed in \(elapsed.secondsText): \(message)")
        case .capped(let message):
            logger.warning("Episode stopped by its spend allowance after \(elapsed.secondsText): \(message)")
        }
        let kept = failure == nil && delivery == .transfer && !artifacts.isEmpty ? workspace?.directory : nil
        return (result, kept)
    }

    // MARK: - Stages

    private func writeScript() async throws(AttemptFailure) -> Script {
        try checkCancellation()
        send(.script, .started, succeeded: 0, total: 1)
        logger.info("Writing script...")
        let script: Script
        let elapsed: Duration
        do {
            (script, elapsed) = try await call(.llm, item: "script") { context in
                try await providers.script.writeScript(for: job.spec, context: context)
            }
        } catch {
            if Task.isCancelled { throw .cancelled }
            let reason = FailureReason.describe(error)
            send(.script, .failed, succeeded: 0, total: 1)
            logger.warning("❌ script failed: \(reason)")
            if (error as? ProviderError)?.kind == .spendCap { throw .capped("script: \(reason)") }
            throw .failed("script: \(reason)")
        }
        guard !script.scenes.isEmpty else {
            send(.script, .failed, succeeded: 0, total: 1)
            logger.warning("❌ script failed: the script has no scenes")
            throw .failed("script: the script has no scenes")
        }
        send(.script, .finished, succeeded: 1, total: 1)
        let contents = [
            counted(script.scenes.count, "scene"), counted(script.lines.count, "character line"),
            counted(script.brollShots.count, "B-roll shot"),
        ]
        logger.info(
            "✅ script completed in \(elapsed.secondsText): \"\(script.title)\", \(contents.joined(separator: ", "))"
        )
        return script
    }

    private func makeAssets(for script: Script) async throws(AttemptFailure) -> EpisodeAssets {
        try checkCancellation()
        let style = job.spec.style
        let voiceItems = script.lines.map { BatchItem(name: $0.item, input: $0) }
        let sceneItems = script.scenes.map {
            BatchItem(
                name: $0.item,
                input: ImageRequest(item: $0.item, purpose: .scene, prompt: $0.description, style: style)
            )
        }
        let brollItems = script.brollShots.map {
            BatchItem(
                name: $0.item,
                input: ImageRequest(item: $0.item, purpose: .broll, prompt: $0.description, style: style)
            )
        }
        let providers = self.providers
        let characters = script.characters

        async let voices = batch(
            .voices,
            .tts,
            noun: .voiceClips,
            items: voiceItems,
            characters: characters,
            perform: { line, context in try await providers.voice.voice(for: line, context: context) },
            placeholder: { line, context in await providers.fallback.voice(for: line, context: context) }
        )
        async let scenes = batch(
            .scenes,
            .image,
            noun: .sceneVisuals,
            items: sceneItems,
            characters: characters,
            perform: { request, context in try await providers.image.image(for: request, context: context) },
            placeholder: { request, context in await providers.fallback.image(for: request, context: context) }
        )
        async let broll = batch(
            .broll,
            .image,
            noun: .brollShots,
            items: brollItems,
            characters: characters,
            perform: { request, context in try await providers.image.image(for: request, context: context) },
            placeholder: { request, context in await providers.fallback.image(for: request, context: context) }
        )
        let assets = await EpisodeAssets(voices: voices, scenes: scenes, broll: broll)
        try checkCancellation()
        return assets
    }

    /// Renders, then writes and delivers the episode's files; returns what it offers (none without files).
    private func render(_ script: Script, _ assets: EpisodeAssets) async throws(AttemptFailure) -> [ArtifactFile] {
        try checkCancellation()
        send(.render, .started)
        if limits.renders.availablePermits == 0 {
            logger.info("Waiting for a render slot...")
        }
        let context = context(for: "render", characters: script.characters)
        let renderer = providers.render
        let elapsed: Duration
        let rendered: RenderedEpisode
        do {
            (rendered, elapsed) = try await limits.renders.withPermit {
                record.record(.renderStart, "render")
                defer { record.record(.renderEnd, "render") }
                let placeholders = assets.placeholderCount
                logger.info(
                    placeholders == 0 ? "Rendering..." : "Rendering with \(counted(placeholders, "placeholder"))..."
                )
                let started = ContinuousClock.now
                let rendered = try await renderer.render(script, assets: assets, context: context)
                return (rendered, ContinuousClock.now - started)
            }
        } catch {
            if Task.isCancelled { throw .cancelled }
            let reason = FailureReason.describe(error)
            send(.render, .failed)
            logger.warning("❌ render failed: \(reason)")
            throw .failed("render: \(reason)")
        }
        var artifacts: [ArtifactFile] = []
        if let workspace {
            artifacts = try await publish(script, assets, rendered, to: workspace)
        }
        send(.render, .finished)
        logger.info("✅ render completed in \(elapsed.secondsText)")
        return artifacts
    }

    // MARK: - Files

    /// Creates the attempt's workspace when the pipeline keeps files.
    private func openWorkspace() throws(AttemptFailure) -> AttemptWorkspace? {
        guard let outputRoot else { return nil }
        do {
            return try AttemptWorkspace.create(
                output: outputRoot,
                batchId: job.batchId,
                episodeId: job.episodeId,
                attempt: job.attempt
            )
        } catch {
            let reason = FailureReason.describe(error)
            logger.error("Cannot create the attempt's folder: \(reason)")
            throw .failed("output: \(reason)")
        }
    }

    /// Writes `script.json` and `manifest.json` and lists the files with their digests. Shared delivery
    /// then renames the workspace to the episode's folder and syncs it; transfer delivery leaves it be.
    private func publish(
        _ script: Script,
        _ assets: EpisodeAssets,
        _ rendered: RenderedEpisode,
        to workspace: AttemptWorkspace
    ) async throws(AttemptFailure) -> [ArtifactFile] {
        let artifacts: [ArtifactFile]
        do {
            _ = try await EpisodeFiles.write(
                script: script,
                assets: assets,
                rendered: rendered,
                job: (job.batchId, job.episodeId, job.attempt),
                workspace: workspace.directory,
                probe: try? MediaProbe(tools: tools),
                costs: CallCosts(events: record.events, unpricedModels: record.unpricedModels)
            )
            try checkCancellation()
            artifacts = try workspace.artifacts()
            if delivery == .shared {
                try workspace.publish()
                try workspace.syncPublished()
            }
        } catch {
            if Task.isCancelled { throw .cancelled }
            let reason = FailureReason.describe(error)
            send(.render, .failed)
            logger.warning("❌ saving the episode failed: \(reason)")
            throw .failed("output: \(reason)")
        }
        if delivery == .shared {
            logger.info("Episode saved", metadata: ["path": "\(workspace.destination.path)"])
        } else {
            let bytes = artifacts.reduce(0) { $0 + $1.size }
            logger.info(
                "Episode files ready for the coordinator",
                metadata: ["files": "\(artifacts.count)", "bytes": "\(bytes)", "path": "\(workspace.directory.path)"]
            )
        }
        return artifacts
    }

    // MARK: - API batches

    private struct BatchItem<Input: Sendable>: Sendable {
        var name: String
        var input: Input
    }

    /// How a batch is named in log lines.
    private enum Noun {
        case voiceClips, sceneVisuals, brollShots

        func counted(_ count: Int) -> String {
            let one = count == 1
            switch self {
            case .voiceClips: return "\(count) character voice \(one ? "clip" : "clips")"
            case .sceneVisuals: return "\(count) scene \(one ? "visual" : "visuals")"
            case .brollShots: return "\(count) cinematic B-roll \(one ? "shot" : "shots")"
            }
        }
    }

    /// Runs one call per item, all at once but each under the attempt's limiter, and returns the
    /// outputs in item order, with a placeholder for every failed call.
    private func batch<Input: Sendable, Output: Sendable>(
        _ stage: Stage,
        _ kind: ProviderKind,
        noun: Noun,
        items: [BatchItem<Input>],
        characters: [String],
        perform: @escaping @Sendable (Input, CallContext) async throws -> Output,
        placeholder: @escaping @Sendable (Input, CallContext) async -> Output
    ) async -> [Output] {
        let total = items.count
        send(stage, .started, succeeded: 0, total: total)
        guard total > 0 else {
            send(stage, .finished, succeeded: 0, total: 0)
            return []
        }
        let mode = limits.apiCallsPerEpisode == 1 ? "sequentially" : "in parallel"
        logger.info("Generating \(noun.counted(total)) \(mode)...")
        let started = ContinuousClock.now

        var outputs: [Output?] = Array(repeating: nil, count: total)
        var completed = 0
        var succeeded = 0
        var cancelled = false
        await withTaskGroup(of: BatchOutcome<Output>.self) { group in
            for (index, item) in items.enumerated() {
                group.addTask {
                    do {
                        let outcome = try await self.call(kind, item: item.name, characters: characters) { context in
                            try await perform(item.input, context)
                        }
                        return BatchOutcome(index: index, result: .success(outcome))
                    } catch {
                        // The stand-in is made here, beside the other calls, unless the attempt is over.
                        if Task.isCancelled { return BatchOutcome(index: index, result: .failure(error)) }
                        let context = self.context(for: item.name, characters: characters)
                        let stand = await placeholder(item.input, context)
                        return BatchOutcome(index: index, result: .failure(error), placeholder: stand)
                    }
                }
            }
            for await outcome in group {
                completed += 1
                let index = outcome.index
                let name = items[index].name
                switch outcome.result {
                case .success(let (output, elapsed)):
                    succeeded += 1
                    outputs[index] = output
                    logger.info("✅ \(name) completed (\(completed)/\(total)) in \(elapsed.secondsText)")
                case .failure(let error):
                    guard let stand = outcome.placeholder, !cancelled, !Task.isCancelled else {
                        cancelled = true
                        continue
                    }
                    outputs[index] = stand
                    let reason = FailureReason.describe(error)
                    record.addPlaceholder(Placeholder(stage: stage, item: name, reason: reason), position: index)
                    logger.warning("❌ \(name) failed (\(completed)/\(total)): \(reason); using a placeholder")
                }
            }
        }
        if cancelled { return [] }
        let elapsed = ContinuousClock.now - started
        logger.info("API batch complete: \(succeeded)/\(total) successful in \(elapsed.secondsText)")
        send(stage, .finished, succeeded: succeeded, total: total)
        return outputs.compactMap { $0 }
    }

    /// How one call of a batch ended: its output, or its error and the stand-in made for it (`nil` when
    /// the attempt was cancelled).
    private struct BatchOutcome<Output: Sendable>: Sendable {
        var index: Int
        var result: Result<(Output, Duration), any Error>
        var placeholder: Output?
    }

    // MARK: - Calls

    /// Makes one external call under the attempt's limiter (and the worker-wide one, if any), with
    /// `call_start`/`call_end` recorded inside the permits. Returns the value and the time the call
    /// itself took (not counting the wait for permits).
    private func call<T: Sendable>(
        _ kind: ProviderKind,
        item: String,
        characters: [String] = [],
        _ body: (CallContext) async throws -> T
    ) async throws -> (T, Duration) {
        let name = "\(kind.rawValue):\(item)"
        var context = context(for: item, characters: characters, kind: kind)
        let meter = CallMeter(prices: providers.prices, allowance: allowance)
        context.meter = meter
        return try await limiter.withPermit {
            try await withWorkerPermit {
                record.callStarted(name)
                defer {
                    meter.finish()
                    record.callEnded(name, meter: meter)
                }
                let started = ContinuousClock.now
                let value = try await body(context)
                // The provider accepted its answers: offer the paid ones for retries and re-runs.
                if let reuse { for offer in meter.takeOffers() { reuse.offer(offer) } }
                return (value, ContinuousClock.now - started)
            }
        }
    }

    private func withWorkerPermit<T>(_ body: () async throws -> T) async throws -> T {
        guard let workerAPICalls = limits.workerAPICalls else { return try await body() }
        return try await workerAPICalls.withPermit(body)
    }

    // MARK: - Helpers

    private func context(for item: String, characters: [String] = [], kind: ProviderKind = .render) -> CallContext {
        var logger = self.logger
        logger[metadataKey: "item"] = "\(item)"
        return CallContext(
            batchId: job.batchId,
            episodeId: job.episodeId,
            attempt: job.attempt,
            item: item,
            logger: logger,
            workspace: workspace?.directory,
            topic: job.spec.topic,
            characters: characters,
            kind: kind,
            gate: gate,
            reuse: reuse
        )
    }

    private func send(_ stage: Stage, _ state: StageState, succeeded: Int = 0, total: Int = 0) {
        progress(
            Progress(
                episodeId: job.episodeId,
                attempt: job.attempt,
                stage: stage,
                state: state,
                succeeded: succeeded,
                total: total
            )
        )
    }

    /// "1 placeholder", "2 placeholders".
    private func counted(_ count: Int, _ noun: String) -> String {
        "\(count) \(noun)\(count == 1 ? "" : "s")"
    }

    private func checkCancellation() throws(AttemptFailure) {
        if Task.isCancelled { throw .cancelled }
    }
}

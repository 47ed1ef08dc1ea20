import Protocol

/// The core of every simulated provider: decides a call's latency and fate from the settings and a
/// stable hash, sleeps on the injected clock, then succeeds or throws a ``ProviderError`` of kind
/// `simulated`.
struct Simulator: Sendable {
    var settings: SimulationSettings
    /// What calls sleep on. Tests pass a clock they control, or use zero latencies.
    var clock: any Clock<Duration>

    init(settings: SimulationSettings, clock: any Clock<Duration> = ContinuousClock()) {
        self.settings = settings
        self.clock = clock
    }

    /// The fate of one call, decided before it is made.
    struct Plan: Sendable, Equatable {
        /// The kind's latency ±10%.
        var latency: Duration
        var fails: Bool
        /// Failing because the episode is listed in the forced failures.
        var forced: Bool
    }

    /// Pure: the same settings and arguments always give the same plan.
    func plan(_ kind: ProviderKind, episodeId: String, attempt: Int, item: String) -> Plan {
        let key = [kind.rawValue, episodeId, String(attempt), item]
        let jitter = Self.draw(settings.seed, key + ["jitter"])
        let latency = settings.latency(kind) * (0.9 + 0.2 * jitter)
        if settings.isForcedToFail(kind, episodeId: episodeId) {
            return Plan(latency: latency, fails: true, forced: true)
        }
        let rate = settings.failureRate(kind)
        let fails = rate > 0 && Self.draw(settings.seed, key + ["fail"]) < rate
        return Plan(latency: latency, fails: fails, forced: false)
    }

    /// Sleeps the call's latency, then throws if the plan says it fails. External kinds (not `render`)
    /// go through the fleet's budget like a real request.
    func perform(_ kind: ProviderKind, context: CallContext) async throws {
        let plan = plan(kind, episodeId: context.episodeId, attempt: context.attempt, item: context.item)
        if kind != .render {
            var context = context
            context.kind = kind
            try await context.withPermit { try await sleep(plan) }
        } else {
            try await sleep(plan)
        }
        try Task.checkCancellation()
        if plan.fails {
            throw ProviderError(.simulated, plan.forced ? "simulated failure (forced)" : "simulated failure")
        }
    }

    private func sleep(_ plan: Plan) async throws {
        if plan.latency > .zero {
            try await clock.sleep(for: plan.latency, tolerance: nil)
        } else {
            try Task.checkCancellation()
            await Task.yield()
        }
    }

    /// A number in `0..<1` from the seed and the parts.
    private static func draw(_ seed: UInt64, _ parts: [String]) -> Double {
        StableHash.of(seed, parts).unitInterval
    }
}

// MARK: - Providers

struct SimulatedScriptProvider: ScriptProvider {
    var simulator: Simulator

    func writeScript(for spec: EpisodeSpec, context: CallContext) async throws -> Script {
        try await simulator.perform(.llm, context: context)
        context.meter.free()
        return SimulatedScriptWriter.script(for: spec)
    }
}

struct SimulatedVoiceProvider: VoiceProvider {
    var simulator: Simulator

    func voice(for line: Script.Line, context: CallContext) async throws -> VoiceClip {
        try await simulator.perform(.tts, context: context)
        context.meter.free()
        return VoiceClip(item: line.item, duration: VoiceClip.estimatedSpeakingTime(line.text), provider: "simulated")
    }
}

struct SimulatedImageProvider: ImageProvider {
    var simulator: Simulator

    func image(for request: ImageRequest, context: CallContext) async throws -> Image {
        try await simulator.perform(.image, context: context)
        context.meter.free()
        return Image(item: request.item, duration: Image.defaultDuration(request.purpose), provider: "simulated")
    }
}

struct SimulatedRenderProvider: RenderProvider {
    var simulator: Simulator

    func render(_ script: Script, assets: EpisodeAssets, context: CallContext) async throws -> RenderedEpisode {
        try await simulator.perform(.render, context: context)
        let visuals = (assets.scenes + assets.broll).reduce(Duration.zero) { $0 + $1.duration }
        let speech = assets.voices.reduce(Duration.zero) { $0 + $1.duration }
        return RenderedEpisode(duration: max(visuals, speech), provider: "simulated")
    }
}

extension ProviderSet {
    /// Simulated providers of every kind, sharing one set of settings and one clock.
    static func simulated(
        _ settings: SimulationSettings,
        clock: any Clock<Duration> = ContinuousClock()
    ) -> ProviderSet {
        let simulator = Simulator(settings: settings, clock: clock)
        return ProviderSet(
            script: SimulatedScriptProvider(simulator: simulator),
            voice: SimulatedVoiceProvider(simulator: simulator),
            image: SimulatedImageProvider(simulator: simulator),
            render: SimulatedRenderProvider(simulator: simulator)
        )
    }
}

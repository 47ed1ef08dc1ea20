import Synchronization

/// The server's shared state: the configuration and one ``ProviderState`` per provider, behind one lock.
///
/// Every method holds the lock only for a few arithmetic steps, never across an `await`, so a few hundred concurrent
/// requests do not contend. The clock is injected: the default measures from the engine's creation.
final class MockEngine: Sendable {
    private struct State {
        var config: MockConfig
        var providers: [Provider: ProviderState]
    }

    private let state: Mutex<State>
    private let now: @Sendable () -> Duration

    init(config: MockConfig = MockConfig(), now: (@Sendable () -> Duration)? = nil) {
        let providers = Dictionary(
            uniqueKeysWithValues: Provider.allCases.map {
                ($0, ProviderState(provider: $0, config: config[$0], seed: config.seed))
            }
        )
        state = Mutex(State(config: config, providers: providers))
        if let now {
            self.now = now
        } else {
            let start = ContinuousClock.now
            self.now = { ContinuousClock.now - start }
        }
    }

    var config: MockConfig {
        state.withLock { $0.config }
    }

    /// Replaces the configuration. Limits, forced failures, cold starts and the failure sequence start afresh;
    /// `/stats` counters and requests in flight carry over.
    func apply(_ config: MockConfig) {
        state.withLock { state in
            state.config = config
            for provider in Provider.allCases {
                state.providers[provider]!.reconfigure(config[provider], seed: config.seed)
            }
        }
    }

    func admit(_ request: AdmissionRequest) -> Admission {
        let now = now()
        return state.withLock { $0.providers[request.endpoint.provider]!.admit(request, now: now) }
    }

    /// Call once for every `.accepted` admission, when its reply is ready.
    func finish(_ endpoint: Endpoint) {
        state.withLock { $0.providers[endpoint.provider]!.finish(endpoint) }
    }

    /// Counts a request refused before admission and returns the limit state to report with the refusal.
    func recordBadRequest(_ endpoint: Endpoint) -> LimitState {
        let now = now()
        return state.withLock { state in
            state.providers[endpoint.provider]!.recordBadRequest(endpoint)
            return state.providers[endpoint.provider]!.limitState(now: now)
        }
    }

    func stats() -> StatsSnapshot {
        state.withLock { state in
            func snapshot(_ provider: Provider) -> StatsSnapshot.ProviderStats {
                let providerState = state.providers[provider]!
                return StatsSnapshot.ProviderStats(
                    total: providerState.total.snapshot,
                    endpoints: Dictionary(
                        uniqueKeysWithValues: providerState.endpoints.map { ($0.key.rawValue, $0.value.snapshot) }
                    )
                )
            }
            return StatsSnapshot(
                openai: snapshot(.openai),
                huggingface: snapshot(.huggingface),
                elevenlabs: snapshot(.elevenlabs)
            )
        }
    }

    func resetStats() {
        state.withLock { state in
            for provider in Provider.allCases {
                state.providers[provider]!.resetStats()
            }
        }
    }
}

import Synchronization

/// The server's shared state: the configuration, one ``ProviderState`` per provider and the ``RequestLog``, behind
/// one lock.
///
/// Every method holds the lock only for a few arithmetic steps, never across an `await`, so a few hundred concurrent
/// requests do not contend. The clock is injected: the default measures from the engine's creation. Decisions read
/// it under the lock, so the limiters and the request log see times in the order the decisions were made.
final class MockEngine: Sendable {
    private struct State {
        var config: MockConfig
        var providers: [Provider: ProviderState]
        var requests: RequestLog
        var billed: [Provider: BilledUnits] = [:]
    }

    private let state: Mutex<State>
    private let now: @Sendable () -> Duration

    /// - Parameter requestLogCapacity: how many requests `/stats/requests` keeps (tests make it small).
    init(
        config: MockConfig = MockConfig(),
        now: (@Sendable () -> Duration)? = nil,
        requestLogCapacity: Int = RequestLog.defaultCapacity
    ) {
        let providers = Dictionary(
            uniqueKeysWithValues: Provider.allCases.map {
                ($0, ProviderState(provider: $0, config: config[$0], seed: config.seed))
            }
        )
        state = Mutex(State(config: config, providers: providers, requests: RequestLog(capacity: requestLogCapacity)))
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

    /// Decides a request and logs the decision.
    func admit(_ request: AdmissionRequest) -> Admission {
        state.withLock { state in
            let now = now()
            let admission = state.providers[request.endpoint.provider]!.admit(request, now: now)
            state.requests.append(RequestLogEntry(time: now, endpoint: request.endpoint, admission: admission.outcome))
            return admission
        }
    }

    /// Call once for every `.accepted` admission, when its reply is ready.
    func finish(_ endpoint: Endpoint) {
        state.withLock { $0.providers[endpoint.provider]!.finish(endpoint) }
    }

    /// Counts a request refused before admission (an invalid body) and returns the limit state to report with the
    /// refusal.
    func recordBadRequest(_ endpoint: Endpoint) -> LimitState {
        recordRefused(endpoint, outcome: .badRequest)
    }

    /// Counts a request refused before admission as `outcome` (a bad key, an unknown model, an unsupported
    /// parameter), logs it, and returns the limit state to report with the refusal. It uses no limit.
    func recordRefused(_ endpoint: Endpoint, outcome: RequestOutcome) -> LimitState {
        state.withLock { state in
            let now = now()
            state.providers[endpoint.provider]!.recordRefused(endpoint, outcome: outcome)
            state.requests.append(RequestLogEntry(time: now, endpoint: endpoint, outcome: outcome))
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

    /// Adds what a reply of `provider` bills (see ``BilledUnits``).
    func bill(_ provider: Provider, _ change: (inout BilledUnits) -> Void) {
        state.withLock { change(&$0.billed[provider, default: BilledUnits()]) }
    }

    /// The body of `GET /stats/billed`.
    func billing() -> BillingSnapshot {
        state.withLock { state in
            BillingSnapshot(
                openai: state.billed[.openai] ?? BilledUnits(),
                huggingface: state.billed[.huggingface] ?? BilledUnits(),
                elevenlabs: state.billed[.elevenlabs] ?? BilledUnits()
            )
        }
    }

    /// The body of `GET /stats/requests`: the logged requests with `t_ms` after `sinceMs` (all when `nil`).
    func requestLog(sinceMs: Double? = nil) -> RequestLogSnapshot {
        state.withLock { $0.requests.snapshot(sinceMs: sinceMs) }
    }

    /// Zeroes the counters (except requests in flight) and empties the request log.
    func resetStats() {
        state.withLock { state in
            for provider in Provider.allCases {
                state.providers[provider]!.resetStats()
            }
            state.requests.reset()
            state.billed = [:]
        }
    }
}

import Protocol
import Testing

@testable import MockProvider

@Suite struct ProviderStateTests {
    private func makeState(_ json: String, for provider: Provider = .openai) throws -> ProviderState {
        let config = try config(json)
        return ProviderState(provider: provider, config: config[provider], seed: config.seed)
    }

    private func kinds(_ state: inout ProviderState, _ count: Int, endpoint: Endpoint = .chatCompletions) -> [String] {
        (0..<count).map { _ in
            switch state.admit(AdmissionRequest(endpoint: endpoint), now: .zero).outcome {
            case .accepted:
                state.finish(endpoint)
                return "ok"
            case .rejected(let rejection): return rejection.kind.rawValue
            case .fault(let kind, _): return kind.rawValue
            case .fixture(let fixture): return fixture.name
            }
        }
    }

    @Test func forcedFailuresAreUsedUpInOrderAndPerEndpoint() throws {
        var state = try makeState(
            """
            {"openai": {"force_failures": [
              {"kind": "rate_limit", "count": 2, "endpoint": "chat_completions", "retry_after_ms": 1000},
              {"kind": "billing", "count": 1}]}}
            """
        )
        // A speech call skips the chat-only entry and takes the billing one.
        #expect(kinds(&state, 1, endpoint: .audioSpeech) == ["billing"])
        let first = state.admit(AdmissionRequest(endpoint: .chatCompletions), now: .zero)
        #expect(
            first.outcome
                == .rejected(
                    Rejection(kind: .rateLimit, retryAfter: .seconds(1), limit: 500, window: .seconds(60))
                )
        )
        #expect(kinds(&state, 3) == ["rate_limit", "ok", "ok"])
        #expect(state.total.rejected == [.rateLimit: 2, .billing: 1])
        #expect(state.total.accepted == 2)
    }

    @Test func injectedFailuresAreDeterministicForASeed() throws {
        let json =
            #"{"seed": 1234, "openai": {"failure_rates": {"billing": 0.2, "server_error": 0.2, "malformed": 0.2}}}"#
        var first = try makeState(json)
        var second = try makeState(json)
        let a = kinds(&first, 200)
        let b = kinds(&second, 200)
        #expect(a == b)
        // Roughly the configured mix.
        for kind in ["billing", "server_error", "malformed"] {
            #expect((20...60).contains(a.filter { $0 == kind }.count), "\(kind)")
        }
        var other = try makeState(
            #"{"seed": 99, "openai": {"failure_rates": {"billing": 0.2, "server_error": 0.2, "malformed": 0.2}}}"#
        )
        #expect(kinds(&other, 200) != a)
    }

    @Test func reconfiguringRestartsTheSequence() throws {
        let json = #"{"seed": 5, "openai": {"failure_rates": {"overload": 0.5}}}"#
        var state = try makeState(json)
        let before = kinds(&state, 50)
        let parsed = try config(json)
        state.reconfigure(parsed.openai, seed: parsed.seed)
        #expect(kinds(&state, 50) == before)
    }

    @Test func reconfiguringKeepsRequestsInFlightAndCounters() throws {
        var state = try makeState(#"{"openai": {"max_concurrent": 5}}"#)
        let request = AdmissionRequest(endpoint: .audioSpeech)
        _ = state.admit(request, now: .zero)
        _ = state.admit(request, now: .zero)
        let tighter = try config(#"{"openai": {"max_concurrent": 2}}"#)
        state.reconfigure(tighter.openai, seed: tighter.seed)
        #expect(
            state.admit(request, now: .zero).outcome
                == .rejected(Rejection(kind: .concurrency, limit: 2, window: .seconds(60)))
        )
        state.finish(.audioSpeech)
        #expect(state.admit(request, now: .zero).outcome == .accepted(delay: .zero))
        #expect(state.total.accepted == 3)
        #expect(state.total.inFlight == 2)
    }

    @Test func concurrencyLimitCountsAcceptedRequestsInFlight() throws {
        var state = try makeState(#"{"elevenlabs": {"max_concurrent": 2}}"#, for: .elevenlabs)
        let request = AdmissionRequest(endpoint: .textToSpeech)
        #expect(state.admit(request, now: .zero).limits.inFlight == 1)
        #expect(state.admit(request, now: .zero).limits.inFlight == 2)
        let third = state.admit(request, now: .zero)
        #expect(third.outcome == .rejected(Rejection(kind: .concurrency, limit: 2, window: .seconds(60))))
        #expect(third.limits.inFlight == 2)
        state.finish(.textToSpeech)
        #expect(state.admit(request, now: .zero).outcome == .accepted(delay: .zero))
        #expect(state.total.maxInFlight == 2)
        #expect(state.total.rejected[.concurrency] == 1)
    }

    @Test func rateLimitWithSteppedTime() throws {
        var state = try makeState(#"{"openai": {"request_limit": 3, "window_ms": 1000}}"#)
        var now = Duration.zero
        var acceptedAt: [Duration] = []
        for _ in 0..<40 {
            let admission = state.admit(AdmissionRequest(endpoint: .chatCompletions), now: now)
            switch admission.outcome {
            case .accepted:
                acceptedAt.append(now)
                state.finish(.chatCompletions)
            case .rejected(let rejection):
                #expect(rejection.kind == .rateLimit)
                #expect(admission.limits.remainingRequests == 0)
                // Retry-after lands exactly on the moment the oldest accepted request leaves the window.
                let oldestInWindow = acceptedAt.filter { $0 > now - .seconds(1) }.min()!
                #expect(rejection.retryAfter == oldestInWindow + .seconds(1) - now)
            case .fault, .fixture:
                Issue.record("no faults configured")
            }
            now += .milliseconds(110)
        }
        #expect(state.total.maxAcceptedInWindowForTest == 3)
        #expect(state.total.accepted == acceptedAt.count)
        #expect(state.total.requests == 40)
    }

    @Test func coldStartIsPerModelAndWaitForModelLoadsIt() throws {
        var state = try makeState(
            #"{"huggingface": {"cold_start_requests": 2, "estimated_time_s": 0.5}}"#,
            for: .huggingface
        )
        func admit(_ model: String, wait: Bool = false) -> Admission.Outcome {
            state.admit(AdmissionRequest(endpoint: .textToImage, model: model, waitForModel: wait), now: .zero).outcome
        }
        let loading = Admission.Outcome.rejected(
            Rejection(kind: .modelLoading, window: .seconds(60), model: "a/x", estimatedTime: 0.5)
        )
        #expect(admit("a/x") == loading)
        #expect(admit("a/x") == loading)
        #expect(admit("a/x") == .accepted(delay: .zero))
        // Another model is cold too; waiting for it costs estimated_time once.
        #expect(admit("b/y", wait: true) == .accepted(delay: .milliseconds(500)))
        #expect(admit("b/y") == .accepted(delay: .zero))
    }

    @Test func latencyJitterStaysInRange() throws {
        var state = try makeState(#"{"seed": 3, "openai": {"latency_ms": 100, "jitter_percent": 20}}"#)
        var delays: Set<Duration> = []
        for _ in 0..<50 {
            guard case .accepted(let delay) = state.admit(AdmissionRequest(endpoint: .audioSpeech), now: .zero).outcome
            else {
                Issue.record("expected acceptance")
                continue
            }
            #expect(delay >= .milliseconds(80) && delay <= .milliseconds(120))
            delays.insert(delay)
            state.finish(.audioSpeech)
        }
        #expect(delays.count > 10)
    }

    @Test func timeoutAndMalformedAreFaultsWithoutASlot() throws {
        var state = try makeState(
            #"{"openai": {"max_concurrent": 1, "timeout_delay_ms": 60000, "force_failures": [{"kind": "timeout"}, {"kind": "malformed"}]}}"#
        )
        let request = AdmissionRequest(endpoint: .chatCompletions)
        #expect(state.admit(request, now: .zero).outcome == .fault(.timeout, delay: .seconds(60)))
        #expect(state.admit(request, now: .zero).outcome == .fault(.malformed, delay: .zero))
        #expect(state.admit(request, now: .zero).outcome == .accepted(delay: .zero))
        #expect(state.total.inFlight == 1)
        #expect(state.total.requests == state.total.accepted + state.total.rejected.values.reduce(0, +))
    }
}

extension RequestCounters {
    var maxAcceptedInWindowForTest: Int { snapshot.maxAcceptedInWindow }
}

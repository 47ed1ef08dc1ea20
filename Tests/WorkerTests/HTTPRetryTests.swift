import Foundation
import Logging
import Testing

@testable import Worker

@Suite("Retry policy")
struct RetryPolicyTests {
    private func policy(random: Double = 0.5, maxRetries: Int = 3, maxLoadingWait: Duration = .zero) -> RetryPolicy {
        RetryPolicy(
            HTTPCallSettings(maxRetries: maxRetries),
            maxLoadingWait: maxLoadingWait,
            random: { random }
        )
    }

    private func failure(_ kind: HTTPFailure.Kind, _ hints: RateLimitHints = .init()) -> HTTPFailure {
        HTTPFailure(kind: kind, status: 429, hints: hints)
    }

    @Test func fullJitterScheduleIsExactWithAFixedRandomSource() {
        let half = policy(random: 0.5)
        #expect((0..<7).map(half.backoff) == [0.25, 0.5, 1, 2, 4, 4, 4].map { Duration.milliseconds($0 * 1_000) })
        let quarter = policy(random: 0.25)
        #expect(quarter.backoff(0) == .milliseconds(125))
        #expect(quarter.backoff(4) == .seconds(2))  // min(8, 0.5·16) = 8, · 0.25
        #expect(quarter.backoff(60) == .seconds(2))  // no overflow far out
        #expect(policy(random: 0).backoff(3) == .zero)
    }

    @Test func transientKindsRetryWithBackoffUntilTheLimit() {
        let policy = policy(random: 0.5)
        for kind in [HTTPFailure.Kind.rateLimit, .concurrencyLimit, .overload, .serverError, .timeout, .network] {
            #expect(policy.decide(failure(kind), retries: 0) == .retry(after: .milliseconds(250), .backoff), "\(kind)")
            #expect(policy.decide(failure(kind), retries: 2) == .retry(after: .seconds(1), .backoff), "\(kind)")
            #expect(policy.decide(failure(kind), retries: 3) == .giveUp(.retriesExhausted), "\(kind)")
        }
    }

    @Test func permanentKindsNeverRetry() {
        for kind in [HTTPFailure.Kind.quota, .clientError, .invalidResponse] {
            #expect(policy().decide(failure(kind), retries: 0) == .giveUp(.notRetryable), "\(kind)")
        }
    }

    @Test func serverHintsComeFirstUpToTheCap() {
        let policy = policy()
        #expect(
            policy.decide(failure(.rateLimit, .init(retryAfter: .seconds(2))), retries: 0)
                == .retry(after: .seconds(2), .serverHint)
        )
        #expect(
            policy.decide(failure(.rateLimit, .init(retryAfter: .seconds(120))), retries: 0)
                == .retry(after: .seconds(120), .serverHint)
        )
        #expect(
            policy.decide(failure(.rateLimit, .init(retryAfter: .milliseconds(120_001))), retries: 0)
                == .giveUp(.hintTooLong)
        )
        // The reset counts for a rate limit…
        let reset = RateLimitHints(resetRequests: .milliseconds(12), remainingRequests: 0)
        #expect(policy.decide(failure(.rateLimit, reset), retries: 1) == .retry(after: .milliseconds(12), .serverHint))
        #expect(
            policy.decide(failure(.rateLimit, .init(resetTokens: .seconds(360), remainingTokens: 0)), retries: 0)
                == .giveUp(.hintTooLong)
        )
        // …not for a server error, which only a retry-after speaks for.
        #expect(policy.decide(failure(.serverError, reset), retries: 0) == .retry(after: .milliseconds(250), .backoff))
        // Retries are still limited with hints.
        #expect(
            policy.decide(failure(.rateLimit, .init(retryAfter: .seconds(1))), retries: 3) == .giveUp(.retriesExhausted)
        )
    }

    @Test func shouldRetryHeaderOverrides() {
        let policy = policy()
        #expect(policy.decide(failure(.rateLimit, .init(shouldRetry: false)), retries: 0) == .giveUp(.serverSaidNo))
        #expect(
            policy.decide(failure(.clientError, .init(shouldRetry: true)), retries: 0)
                == .retry(after: .milliseconds(250), .backoff)
        )
        #expect(
            policy.decide(failure(.clientError, .init(shouldRetry: true)), retries: 3) == .giveUp(.retriesExhausted)
        )
        // Billing is never retried, whatever the header says.
        #expect(policy.decide(failure(.quota, .init(shouldRetry: true)), retries: 0) == .giveUp(.notRetryable))
    }

    @Test func modelLoadingHasItsOwnBudget() {
        let policy = policy(maxLoadingWait: .seconds(120))
        let loading = HTTPFailure(kind: .overload, status: 503, hints: .init(estimatedTime: .seconds(20)))
        #expect(policy.decide(loading, retries: 3) == .retry(after: .seconds(20), .modelLoading))
        #expect(
            policy.decide(loading, retries: 0, loadingWaited: .seconds(110))
                == .retry(after: .seconds(10), .modelLoading)
        )
        #expect(policy.decide(loading, retries: 0, loadingWaited: .seconds(120)) == .giveUp(.loadingTooLong))
        let forever = HTTPFailure(kind: .overload, status: 503, hints: .init(estimatedTime: .seconds(3_000)))
        #expect(policy.decide(forever, retries: 0) == .giveUp(.loadingTooLong))

        // Without a loading budget the estimate is an ordinary hint, and counts as a retry.
        #expect(self.policy().decide(loading, retries: 0) == .retry(after: .seconds(20), .serverHint))
        #expect(self.policy().decide(loading, retries: 3) == .giveUp(.retriesExhausted))
    }
}

@Suite("Retry loop")
struct HTTPCallerTests {
    private let request = ProviderRequest(url: "http://127.0.0.1:9/v1/chat/completions", maxResponseBytes: 1 << 20)

    private static let rateLimited =
        #"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#

    @Test func twoRateLimitsThenSuccessSleepsTheHintedDelays() async throws {
        let transport = FakeTransport([
            .status(429, ["retry-after-ms": "1500", "retry-after": "2"], json: Self.rateLimited),
            .status(429, ["retry-after": "3"], json: Self.rateLimited),
            .okJSON(#"{"ok":true}"#),
        ])
        let sleeps = Collected<Duration>()
        let caller = makeCaller(transport, sleeps: sleeps)
        let response = try await caller.perform(request, service: "openai chat", context: makeContext())
        #expect(response.status == 200)
        #expect(transport.requests.count == 3)
        #expect(sleeps.all == [.milliseconds(1_500), .seconds(3)])
        #expect(transport.timeouts == Array(repeating: .seconds(60), count: 3))
    }

    @Test func billingIsExactlyOneRequest() async {
        let transport = FakeTransport([
            .status(
                429,
                ["retry-after": "1"],
                json:
                    #"{"error":{"type":"insufficient_quota","code":"insufficient_quota","message":"You exceeded your current quota"}}"#
            )
        ])
        let sleeps = Collected<Duration>()
        let error = await #expect(throws: ProviderError.self) {
            try await makeCaller(transport, sleeps: sleeps).perform(
                request,
                service: "openai chat",
                context: makeContext()
            )
        }
        #expect(error?.kind == .quotaExceeded)
        #expect(error?.classification?.kind == .quota)
        #expect(error?.classification?.code == "insufficient_quota")
        #expect(transport.requests.count == 1)
        #expect(sleeps.count == 0)
    }

    @Test func aClientErrorIsOneRequest() async {
        let transport = FakeTransport([
            .status(
                400,
                json: #"{"error":{"message":"Invalid value for 'size'","type":"invalid_request_error","code":null}}"#
            )
        ])
        let error = await #expect(throws: ProviderError.self) {
            try await makeCaller(transport).perform(request, service: "openai image", context: makeContext())
        }
        #expect(error?.kind == .clientError)
        #expect(error?.message == "openai image: request refused (HTTP 400): Invalid value for 'size'")
        #expect(transport.requests.count == 1)
    }

    @Test func exhaustedRetriesEndInTheClassifiedError() async {
        let transport = FakeTransport(handler: { _ in .status(503, json: "upstream down") })
        let sleeps = Collected<Duration>()
        let error = await #expect(throws: ProviderError.self) {
            try await makeCaller(transport, random: 0.5, sleeps: sleeps).perform(
                request,
                service: "openai chat",
                context: makeContext()
            )
        }
        #expect(error?.kind == .overloaded)
        #expect(error?.classification?.status == 503)
        #expect(error?.retryAfter == nil)
        #expect(transport.requests.count == 4)
        #expect(sleeps.all == [.milliseconds(250), .milliseconds(500), .seconds(1)])
    }

    @Test func aHintBeyondTheCapFailsAtOnceWithTheHint() async {
        let transport = FakeTransport([.status(429, ["retry-after": "600"], json: Self.rateLimited)])
        let sleeps = Collected<Duration>()
        let error = await #expect(throws: ProviderError.self) {
            try await makeCaller(transport, sleeps: sleeps).perform(
                request,
                service: "openai chat",
                context: makeContext()
            )
        }
        #expect(error?.kind == .rateLimited)
        #expect(error?.retryAfter == .seconds(600))
        #expect(transport.requests.count == 1)
        #expect(sleeps.count == 0)
    }

    @Test func transportFailuresAreRetried() async throws {
        let transport = FakeTransport([
            .failure(.timeout()), .failure(.network("connection reset")), .okJSON("{}"),
        ])
        let sleeps = Collected<Duration>()
        let response = try await makeCaller(transport, random: 0.5, sleeps: sleeps).perform(
            request,
            service: "x",
            context: makeContext()
        )
        #expect(response.status == 200)
        #expect(sleeps.all == [.milliseconds(250), .milliseconds(500)])

        let tooBig = FakeTransport([.failure(.bodyTooLarge(limit: 10))])
        let error = await #expect(throws: ProviderError.self) {
            try await makeCaller(tooBig).perform(request, service: "x", context: makeContext())
        }
        #expect(error?.kind == .invalidResponse)
        #expect(tooBig.requests.count == 1)
    }

    @Test func modelLoadingWaitsDoNotUseUpRetries() async throws {
        let loading = FakeTransport.Answer.status(
            503,
            json: #"{"error":"Model is currently loading","estimated_time":20}"#
        )
        let transport = FakeTransport([loading, loading, loading, loading, loading, .okJSON("{}")])
        let sleeps = Collected<Duration>()
        let caller = makeCaller(
            transport,
            settings: HTTPCallSettings(maxRetries: 3),
            maxLoadingWait: .seconds(120),
            sleeps: sleeps
        )
        let response = try await caller.perform(request, service: "huggingface image", context: makeContext())
        #expect(response.status == 200)
        #expect(sleeps.all == Array(repeating: .seconds(20), count: 5))

        let forever = FakeTransport(handler: { _ in loading })
        let spent = Collected<Duration>()
        let error = await #expect(throws: ProviderError.self) {
            try await makeCaller(forever, maxLoadingWait: .seconds(50), sleeps: spent).perform(
                request,
                service: "huggingface image",
                context: makeContext()
            )
        }
        #expect(error?.kind == .overloaded)
        #expect(spent.all == [.seconds(20), .seconds(20), .seconds(10)])
    }

    @Test func cancellationDuringASleepStopsTheLoop() async throws {
        let transport = FakeTransport(handler: { _ in .status(429, ["retry-after": "100"], json: Self.rateLimited) })
        let caller = HTTPCaller(transport: transport, settings: .default)  // real Task.sleep
        let request = request
        let task = Task { try await caller.perform(request, service: "x", context: makeContext()) }
        try await eventually("the first request") { transport.requests.count == 1 }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(transport.requests.count == 1)
    }

    @Test func retriesAreLoggedAtWarningWithoutTheKey() async throws {
        let key = "sk-test-SECRET-1234567890"
        let transport = FakeTransport([
            .status(429, ["retry-after": "1"], json: Self.rateLimited),
            .status(
                401,
                json: #"{"error":{"message":"\#(String(repeating: "x", count: 190)) Incorrect API key: \#(key)"}}"#
            ),
        ])
        let (logger, handler) = capturingLogger()
        var request = request
        request.headers = ProviderHeaders.json(bearer: key, accept: "application/json")
        let error = await #expect(throws: ProviderError.self) {
            try await makeCaller(transport).perform(
                request,
                service: "openai chat",
                context: makeContext(logger: logger)
            )
        }
        let warnings = handler.entries.all.filter { $0.level == .warning }
        #expect(warnings.count == 1)
        #expect(warnings.first?.message == "provider call retrying")
        #expect(warnings.first?.metadata["failure"] == "rate_limit")
        #expect(warnings.first?.metadata["retry.in.s"] == "1.0s")
        #expect(warnings.first?.metadata["http.status"] == "429")
        #expect(!allText(handler).contains(key))
        #expect(error.map { !$0.description.contains(key) } == true)
        // Not even the start of it, though the message is shortened after the key.
        #expect(error.map { !$0.description.contains("sk-test") } == true)
        #expect(!allText(handler).contains("sk-test"))
        let echoed = HTTPFailureClassifier.classify(
            status: 401,
            headers: [:],
            body: Data(#"{"error":{"message":"Incorrect API key: \#(key)"}}"#.utf8),
            redacting: HTTPCaller.secrets(in: request.headers)
        )
        #expect(echoed.message == "Incorrect API key: [redacted]")
        #expect(transport.requests.first?.headers["Authorization"] == "Bearer \(key)")
    }
}

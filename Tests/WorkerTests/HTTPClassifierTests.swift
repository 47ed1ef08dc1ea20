import Foundation
import Testing

@testable import Worker

@Suite("HTTP failure classification")
struct HTTPClassifierTests {
    private func classify(_ status: Int, _ headers: HTTPHeaderFields = [:], _ body: String = "") -> HTTPFailure {
        HTTPFailureClassifier.classify(
            status: status,
            headers: headers,
            body: Data(body.utf8),
            now: Date(timeIntervalSince1970: 1_700_000_000)
        )
    }

    @Test func openAIRateLimitIsARateLimitWithItsHints() {
        let failure = classify(
            429,
            [
                "retry-after": "3", "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1s",
                "x-ratelimit-remaining-tokens": "159976", "x-ratelimit-reset-tokens": "6m0s",
                "x-ratelimit-limit-requests": "5000", "x-ratelimit-limit-tokens": "160000",
            ],
            #"""
            {"error":{"message":"Rate limit exceeded for images per minute in organization org-x. Limit: 15/1min. \#
            Current: 16/1min.","type":"requests","param":null,"code":"rate_limit_exceeded"}}
            """#
        )
        #expect(failure.kind == .rateLimit)
        #expect(failure.status == 429)
        #expect(failure.code == "rate_limit_exceeded")
        #expect(failure.message.hasPrefix("Rate limit exceeded for images per minute"))
        #expect(failure.hints.retryAfter == .seconds(3))
        #expect(failure.hints.remainingRequests == 0)
        #expect(failure.hints.resetRequests == .seconds(1))
        #expect(failure.hints.remainingTokens == 159_976)
        #expect(failure.hints.resetTokens == .seconds(360))
        #expect(failure.hints.limitRequests == 5_000)
        #expect(failure.hints.limitTokens == 160_000)
        #expect(failure.serverDelay == .seconds(3))
    }

    @Test(
        "OpenAI billing codes are quota, whatever the status",
        arguments: [
            "insufficient_quota", "credit_balance_exhausted", "organization_spend_limit_exceeded",
            "project_spend_limit_exceeded", "organization_usage_limit_exceeded",
        ]
    )
    func openAIBillingIsQuota(code: String) {
        let body =
            #"{"error":{"message":"You exceeded your current quota.","type":"insufficient_quota","code":"\#(code)"}}"#
        #expect(classify(429, [:], body).kind == .quota)
        #expect(classify(429, [:], body).code == code)
        #expect(classify(403, [:], body).kind == .quota)
    }

    @Test func billingTypeWithoutCodeIsQuota() {
        let failure = classify(429, [:], #"{"error":{"message":"quota","type":"insufficient_quota","code":null}}"#)
        #expect(failure.kind == .quota)
        #expect(failure.code == "insufficient_quota")
    }

    @Test func elevenLabsConcurrencyAndBusy() {
        let concurrency = classify(
            429,
            ["current-concurrent-requests": "5", "maximum-concurrent-requests": "5"],
            #"{"detail":{"status":"too_many_concurrent_requests","message":"Too many concurrent requests"}}"#
        )
        #expect(concurrency.kind == .concurrencyLimit)
        #expect(concurrency.code == "too_many_concurrent_requests")
        #expect(concurrency.hints.currentConcurrentRequests == 5)
        #expect(concurrency.hints.maximumConcurrentRequests == 5)

        let busy = classify(429, [:], #"{"detail":{"status":"system_busy","message":"We are busy"}}"#)
        #expect(busy.kind == .overload)
        #expect(busy.message == "We are busy")

        let quota = classify(401, [:], #"{"detail":{"status":"quota_exceeded","message":"No characters left"}}"#)
        #expect(quota.kind == .quota)
    }

    @Test func huggingFaceLoadingIsOverloadWithTheEstimate() {
        let failure = classify(
            503,
            [:],
            #"{"error":"Model black-forest-labs/FLUX.1-schnell is currently loading","estimated_time":20.5}"#
        )
        #expect(failure.kind == .overload)
        #expect(failure.isModelLoading)
        #expect(failure.hints.estimatedTime == .milliseconds(20_500))
        #expect(failure.serverDelay == .milliseconds(20_500))
        #expect(failure.message.contains("currently loading"))
    }

    @Test func aBare429IsARateLimit() {
        #expect(classify(429).kind == .rateLimit)
        #expect(classify(429, [:], "Too Many Requests").kind == .rateLimit)
        #expect(classify(429, [:], #"{"unexpected":[1,2,3]}"#).kind == .rateLimit)
        #expect(classify(429, [:], #"{"error":"slow down"}"#).kind == .rateLimit)
    }

    @Test(
        "status families",
        arguments: [
            (500, HTTPFailure.Kind.serverError), (501, .serverError), (502, .overload), (503, .overload),
            (504, .overload), (529, .overload), (599, .serverError), (400, .clientError), (401, .auth),
            (402, .quota), (403, .auth), (404, .clientError), (422, .clientError), (405, .clientError), (408, .timeout),
            (409, .serverError), (302, .invalidResponse),
        ]
    )
    func statusFamilies(status: Int, kind: HTTPFailure.Kind) {
        #expect(classify(status).kind == kind)
    }

    @Test func garbageBodiesAreSurvived() {
        let binary = Data([0x00, 0xFF, 0xFE, 0x01, 0x89, 0x50])
        let failure = HTTPFailureClassifier.classify(status: 500, headers: [:], body: binary)
        #expect(failure.kind == .serverError)
        #expect(failure.message == "")

        #expect(classify(503, [:], "<html><body>Bad gateway</body></html>").kind == .overload)
        #expect(classify(400, [:], #"{"error":{"message":42,"code":["x"]}}"#).kind == .clientError)
        #expect(classify(500, [:], "[").kind == .serverError)
        #expect(classify(503, [:], #"{"error":"loading","estimated_time":"soon"}"#).hints.estimatedTime == nil)
        #expect(classify(503, [:], #"{"estimated_time":-5}"#).hints.estimatedTime == nil)

        // A body over the parse limit is not parsed, but is still classified by status.
        let huge =
            "{\"error\":{\"code\":\"insufficient_quota\",\"message\":\"" + String(repeating: "x", count: 70_000)
            + "\"}}"
        #expect(classify(429, [:], huge).kind == .rateLimit)
    }

    @Test func messagesAreShortAndOnOneLine() {
        let failure = classify(
            400,
            [:],
            #"{"error":{"message":"line one\nline two \#(String(repeating: "y", count: 500))"}}"#
        )
        #expect(failure.message.count == HTTPFailure.maxMessageLength)
        #expect(!failure.message.contains("\n"))
        #expect(failure.message.hasPrefix("line one line two"))
    }

    @Test func transportFailures() {
        #expect(HTTPFailureClassifier.classify(.timeout()).kind == .timeout)
        #expect(HTTPFailureClassifier.classify(.network("connection refused")).kind == .network)
        #expect(HTTPFailureClassifier.classify(.bodyTooLarge(limit: 10)).kind == .invalidResponse)
        #expect(HTTPFailureClassifier.classify(.invalidRequest("bad url")).kind == .clientError)
        #expect(HTTPFailureClassifier.classify(.timeout()).status == nil)
    }

    @Test func providerErrorCarriesKindHintAndClassification() {
        let failure = classify(
            429,
            ["retry-after": "7"],
            #"{"error":{"message":"Slow down","code":"rate_limit_exceeded"}}"#
        )
        let error = ProviderError(failure, service: "openai image")
        #expect(error.kind == .rateLimited)
        #expect(error.retryAfter == .seconds(7))
        #expect(error.classification == failure)
        #expect(error.description == "openai image: rate limited (HTTP 429 rate_limit_exceeded): Slow down")
        #expect(error.kind.isTransient)

        let quota = ProviderError(classify(429, [:], #"{"error":{"code":"insufficient_quota"}}"#), service: "x")
        #expect(quota.kind == .quotaExceeded)
        #expect(!quota.kind.isTransient)
        #expect(quota.kind.description == "quota_exceeded")
        let concurrency = ProviderError(
            classify(429, [:], #"{"detail":{"status":"too_many_concurrent_requests"}}"#),
            service: "x"
        )
        #expect(concurrency.kind == .concurrencyLimited)
        #expect(concurrency.kind.isTransient)
        #expect(concurrency.kind.description == "concurrency_limited")
    }

    @Test func everyKindMapsToAProviderErrorKind() {
        let mapped = Set(HTTPFailure.Kind.allCases.map(\.providerErrorKind))
        #expect(mapped.count == HTTPFailure.Kind.allCases.count)
        for kind in HTTPFailure.Kind.allCases {
            #expect(kind.isRetryable == kind.providerErrorKind.isTransient, "\(kind)")
        }
    }
}

@Suite("Rate-limit hints")
struct RateLimitHintTests {
    private let now = Date(timeIntervalSince1970: 1_445_412_480)  // Wed, 21 Oct 2015 07:28:00 GMT

    @Test func retryAfterSeconds() {
        #expect(HintParser.retryAfter("5", now: now) == .seconds(5))
        #expect(HintParser.retryAfter(" 120 ", now: now) == .seconds(120))
        #expect(HintParser.retryAfter("1.5", now: now) == .milliseconds(1_500))
    }

    @Test func retryAfterHTTPDates() {
        #expect(HintParser.retryAfter("Wed, 21 Oct 2015 07:28:30 GMT", now: now) == .seconds(30))
        #expect(HintParser.retryAfter("Wednesday, 21-Oct-15 07:29:00 GMT", now: now) == .seconds(60))
        #expect(HintParser.retryAfter("Wed Oct 21 07:28:10 2015", now: now) == .seconds(10))
        #expect(HintParser.httpDate("Sun, 06 Nov 1994 08:49:37 GMT") == Date(timeIntervalSince1970: 784_111_777))
        #expect(HintParser.httpDate("Sun Nov  6 08:49:37 1994") == Date(timeIntervalSince1970: 784_111_777))
        #expect(HintParser.httpDate("Sunday, 06-Nov-94 08:49:37 GMT") == Date(timeIntervalSince1970: 784_111_777))
        #expect(HintParser.httpDate("Thu, 29 Feb 2024 23:59:59 GMT") == Date(timeIntervalSince1970: 1_709_251_199))
    }

    @Test(
        "bad retry-after values are ignored",
        arguments: [
            "", "soon", "-1", "0", "1e3", "5s", "Wed, 21 Oct 2015 07:27:00 GMT", "Wed, 32 Oct 2015 07:28:30 GMT",
            "Wed, 21 Foo 2015 07:28:30 GMT", "Wed, 21 Oct 2015 07:28 GMT", "Wed, 21 Oct 2015 25:00:00 GMT",
            "1.2.3",
        ]
    )
    func badRetryAfter(value: String) {
        #expect(HintParser.retryAfter(value, now: now) == nil)
    }

    @Test func retryAfterMillisecondsComeFirst() {
        let hints = RateLimitHints(headers: ["Retry-After": "3", "Retry-After-Ms": "1500"], now: now)
        #expect(hints.retryAfter == .milliseconds(1_500))
        let fallback = RateLimitHints(headers: ["retry-after": "3", "retry-after-ms": "nope"], now: now)
        #expect(fallback.retryAfter == .seconds(3))
        #expect(HintParser.milliseconds("250.5") == .microseconds(250_500))
        #expect(HintParser.milliseconds("0") == nil)
        #expect(HintParser.milliseconds("-5") == nil)
    }

    @Test(
        "Go durations",
        arguments: [
            ("12ms", Duration.milliseconds(12)), ("1s", .seconds(1)), ("6m0s", .seconds(360)),
            ("1m30.5s", .milliseconds(90_500)), ("1h2m3s", .seconds(3_723)), ("250us", .microseconds(250)),
            ("250µs", .microseconds(250)), ("40ns", .nanoseconds(40)), ("0.5s", .milliseconds(500)),
            ("2", .seconds(2)), (" 7s ", .seconds(7)),
        ]
    )
    func goDurations(text: String, expected: Duration) {
        #expect(HintParser.goDuration(text) == expected)
    }

    @Test(
        "bad Go durations are ignored",
        arguments: ["", "abc", "1x", "-1s", "1.2.3s", "s", "1s2", "0", "0s", "-1", "1 s", "ms12", ".s"]
    )
    func badGoDurations(text: String) {
        #expect(HintParser.goDuration(text) == nil)
    }

    @Test func headersOfEveryKind() {
        let hints = RateLimitHints(
            headers: [
                "X-RateLimit-Reset-Requests": "12ms", "x-ratelimit-reset-tokens": "bogus",
                "x-ratelimit-remaining-requests": "-1", "x-should-retry": "TRUE",
            ],
            now: now
        )
        #expect(hints.resetRequests == .milliseconds(12))
        #expect(hints.resetTokens == nil)
        #expect(hints.remainingRequests == nil)
        #expect(hints.shouldRetry == true)
        #expect(RateLimitHints(headers: ["x-should-retry": "false"], now: now).shouldRetry == false)
        #expect(RateLimitHints(headers: ["x-should-retry": "maybe"], now: now).shouldRetry == nil)
    }

    @Test func resetPrefersTheExhaustedBudget() {
        var hints = RateLimitHints(resetRequests: .milliseconds(12), resetTokens: .seconds(6))
        #expect(hints.reset == .seconds(6))  // nothing known exhausted: the later (the short budget's)
        hints.remainingTokens = 0
        #expect(hints.reset == .seconds(6))
        hints.remainingTokens = 100
        hints.remainingRequests = 0
        #expect(hints.reset == .milliseconds(12))
        hints.remainingTokens = 0
        #expect(hints.reset == .seconds(6))  // both exhausted: the longer
        #expect(RateLimitHints().reset == nil)
    }
}

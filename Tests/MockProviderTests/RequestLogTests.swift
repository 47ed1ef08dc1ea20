import Foundation
import Hummingbird
import HummingbirdTesting
import Protocol
import ProviderFixtures
import Testing

@testable import MockProvider

@Suite struct RequestLogTests {
    @Test func acceptedRejectedAndBadRequestsAreLoggedInOrder() async throws {
        let clock = ManualClock()
        let limited = try config(
            """
            {"openai": {"request_limit": 2, "window_ms": 10000},
             "huggingface": {"force_failures": [{"kind": "rate_limit", "count": 1, "retry_after_ms": 2500}]},
             "elevenlabs": {"force_failures": [{"kind": "concurrency"}, {"kind": "billing"}]}}
            """
        )
        try await withMockApp(limited, clock: clock) { client, _ in
            var statuses: [HTTPResponse.Status] = []
            statuses.append(try await client.post("/v1/audio/speech", json: speechJSON).status)
            clock.advance(by: .microseconds(500))
            statuses.append(try await client.post("/v1/chat/completions", json: chatJSON).status)
            clock.advance(by: .microseconds(750))
            let limited = try await client.post("/v1/audio/speech", json: speechJSON)
            statuses.append(limited.status)
            clock.advance(by: .microseconds(750))
            statuses.append(try await client.post("/v1/chat/completions", json: "{bad").status)
            clock.advance(by: .milliseconds(1))
            let forced = try await client.post("/hf/models/org/model", json: #"{"inputs": "x"}"#)
            statuses.append(forced.status)
            clock.advance(by: .milliseconds(1))
            let busy = try await client.post("/elevenlabs/v1/text-to-speech/v", json: #"{"text": "hi"}"#)
            statuses.append(busy.status)
            clock.advance(by: .milliseconds(1))
            statuses.append(try await client.post("/elevenlabs/v1/text-to-speech/v", json: #"{"text": "hi"}"#).status)
            clock.advance(by: .milliseconds(1))
            statuses.append(try await client.post("/hf/models/org/model", json: #"{"inputs": "x"}"#).status)
            #expect(
                statuses == [
                    .ok, .ok, .tooManyRequests, .badRequest, .tooManyRequests, .tooManyRequests, .unauthorized, .ok,
                ]
            )
            // Not logged: they are not provider routes.
            _ = try await client.execute(uri: "/health", method: .get)
            _ = try await client.stats()

            let log = try await client.requestLog()
            #expect(log.dropped == 0)
            #expect(
                log.requests == [
                    RequestLogEntry(time: .zero, endpoint: .audioSpeech, outcome: .accepted),
                    RequestLogEntry(time: .microseconds(500), endpoint: .chatCompletions, outcome: .accepted),
                    // The oldest accepted request leaves the 10 s window at 10 000 ms: 9 998.75 ms later.
                    RequestLogEntry(
                        time: .microseconds(1_250),
                        endpoint: .audioSpeech,
                        outcome: .failed(.rateLimit),
                        retryAfterMs: 9_999
                    ),
                    RequestLogEntry(time: .milliseconds(2), endpoint: .chatCompletions, outcome: .badRequest),
                    RequestLogEntry(
                        time: .milliseconds(3),
                        endpoint: .textToImage,
                        outcome: .failed(.rateLimit),
                        retryAfterMs: 2_500
                    ),
                    RequestLogEntry(time: .milliseconds(4), endpoint: .textToSpeech, outcome: .failed(.concurrency)),
                    RequestLogEntry(time: .milliseconds(5), endpoint: .textToSpeech, outcome: .failed(.billing)),
                    RequestLogEntry(time: .milliseconds(6), endpoint: .textToImage, outcome: .accepted),
                ]
            )
            // The logged retry_after_ms is what the 429 said; a concurrency 429 says nothing.
            #expect(limited.header("retry-after-ms") == "9999")
            #expect(forced.header("retry-after-ms") == "2500")
            #expect(busy.header("retry-after-ms") == nil)
            let times = log.requests.map(\.tMs)
            #expect(zip(times, times.dropFirst()).allSatisfy { $0 < $1 })
            #expect(
                log.requests.map(\.provider.rawValue) == [
                    "openai", "openai", "openai", "openai", "huggingface", "elevenlabs", "elevenlabs", "huggingface",
                ]
            )
        }
    }

    @Test func theJSONIsSnakeCaseWithAnExplicitNull() async throws {
        let clock = ManualClock()
        let limited = try config(#"{"openai": {"request_limit": 1, "window_ms": 1000}}"#)
        try await withMockApp(limited, clock: clock) { client, _ in
            _ = try await client.post("/v1/images/generations", json: #"{"prompt": "a cat"}"#)
            clock.advance(by: .microseconds(1_500))
            _ = try await client.post("/v1/images/generations", json: #"{"prompt": "a cat"}"#)
            let response = try await client.execute(uri: "/stats/requests", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            #expect(
                response.json
                    == json(
                        """
                        {"dropped": 0, "requests": [
                          {"t_ms": 0, "provider": "openai", "endpoint": "images_generations",
                           "outcome": "accepted", "retry_after_ms": null},
                          {"t_ms": 1.5, "provider": "openai", "endpoint": "images_generations",
                           "outcome": "rate_limit", "retry_after_ms": 999}]}
                        """
                    )
            )
        }
    }

    @Test func realClockTimesIncreaseAndKeepTheirFraction() async throws {
        try await withMockApp { client, _ in
            for _ in 0..<5 {
                #expect(try await client.post("/v1/audio/speech", json: speechJSON).status == .ok)
                #expect(try await client.post("/hf/models/org/model", json: #"{"inputs": "x"}"#).status == .ok)
            }
            let times = try await client.requestLog().requests.map(\.tMs)
            #expect(times.count == 10)
            #expect(times.first.map { $0 > 0 } == true)
            #expect(zip(times, times.dropFirst()).allSatisfy { $0 < $1 })
            // Sub-millisecond precision: not every time is a whole number of milliseconds.
            #expect(times.contains { $0 != $0.rounded() })
        }
    }

    @Test func concurrentRequestsAreLoggedOnceEachInTimeOrder() async throws {
        let limits = try config(#"{"openai": {"request_limit": 20, "max_concurrent": 8, "latency_ms": 5}}"#)
        try await withMockApp(limits) { client, _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<60 {
                    group.addTask {
                        let body = index % 2 == 0 ? speechJSON : chatJSON
                        let uri = index % 2 == 0 ? "/v1/audio/speech" : "/v1/chat/completions"
                        _ = try await client.post(uri, json: body)
                    }
                }
                try await group.waitForAll()
            }
            let log = try await client.requestLog()
            let stats = try await client.stats()
            #expect(log.requests.count == 60)
            #expect(log.requests.filter { $0.outcome == .accepted }.count == stats.openai.total.accepted)
            #expect(
                log.requests.filter { $0.outcome == .failed(.rateLimit) }.count
                    == stats.openai.total.rejected["rate_limit"]
            )
            #expect(log.requests.filter { $0.outcome == .failed(.rateLimit) }.allSatisfy { $0.retryAfterMs != nil })
            #expect(log.requests.filter { $0.outcome != .failed(.rateLimit) }.allSatisfy { $0.retryAfterMs == nil })
            let times = log.requests.map(\.tMs)
            #expect(zip(times, times.dropFirst()).allSatisfy { $0 <= $1 })
        }
    }

    @Test func theLogKeepsOnlyTheMostRecentEntries() async throws {
        let clock = ManualClock()
        try await withMockApp(clock: clock, requestLogCapacity: 3) { client, _ in
            for _ in 0..<5 {
                clock.advance(by: .milliseconds(1))
                #expect(try await client.post("/v1/audio/speech", json: speechJSON).status == .ok)
            }
            let log = try await client.requestLog()
            #expect(log.dropped == 2)
            #expect(log.requests.map(\.tMs) == [3, 4, 5])
            // The counters are not bounded.
            #expect(try await client.stats().openai.total.requests == 5)
        }
    }

    @Test func sinceMsReturnsOnlyLaterEntries() async throws {
        let clock = ManualClock()
        try await withMockApp(clock: clock) { client, _ in
            for _ in 0..<3 {
                clock.advance(by: .milliseconds(1))
                _ = try await client.post("/v1/audio/speech", json: speechJSON)
            }
            #expect(try await client.requestLog(sinceMs: 2).requests.map(\.tMs) == [3])
            #expect(try await client.requestLog(sinceMs: 1.5).requests.map(\.tMs) == [2, 3])
            #expect(try await client.requestLog(sinceMs: 3).requests.isEmpty)
            #expect(try await client.requestLog(sinceMs: -1).requests.count == 3)
            for bad in ["abc", "nan", "inf", ""] {
                let response = try await client.execute(uri: "/stats/requests?since_ms=\(bad)", method: .get)
                #expect(response.status == .badRequest, "\(bad)")
                #expect(response.json?["error"]?["message"] == .string("since_ms: expected a number of milliseconds"))
            }
        }
    }

    @Test func resetClearsTheLogButReconfiguringKeepsIt() async throws {
        let clock = ManualClock()
        try await withMockApp(clock: clock, requestLogCapacity: 2) { client, _ in
            for _ in 0..<3 {
                clock.advance(by: .milliseconds(1))
                _ = try await client.post("/v1/audio/speech", json: speechJSON)
            }
            #expect(try await client.post("/admin/config", json: #"{"openai": {"latency_ms": 0}}"#).status == .ok)
            #expect(
                try await client.requestLog()
                    == RequestLogSnapshot(
                        dropped: 1,
                        requests: [
                            RequestLogEntry(time: .milliseconds(2), endpoint: .audioSpeech, outcome: .accepted),
                            RequestLogEntry(time: .milliseconds(3), endpoint: .audioSpeech, outcome: .accepted),
                        ]
                    )
            )

            #expect(try await client.execute(uri: "/stats/reset", method: .post).status == .ok)
            #expect(try await client.requestLog() == RequestLogSnapshot(dropped: 0, requests: []))

            // Times keep counting from the mock's start, not from the reset.
            clock.advance(by: .milliseconds(1))
            _ = try await client.post("/v1/chat/completions", json: chatJSON)
            #expect(try await client.requestLog().requests.map(\.tMs) == [4])
        }
    }

    @Test func ringDropsTheOldestAndResets() {
        var log = RequestLog(capacity: 3)
        for step in 0..<7 {
            log.append(RequestLogEntry(time: .milliseconds(step), endpoint: .textToSpeech, outcome: .accepted))
        }
        #expect(log.count == 3)
        #expect(log.dropped == 4)
        #expect(log.snapshot().requests.map(\.tMs) == [4, 5, 6])
        #expect(log.snapshot(sinceMs: 4.5).requests.map(\.tMs) == [5, 6])
        log.reset()
        #expect(log.snapshot() == RequestLogSnapshot(dropped: 0, requests: []))
    }

    @Test func outcomeNamesRoundTrip() throws {
        let outcomes = [RequestOutcome.accepted, .badRequest] + FailureKind.allCases.map { RequestOutcome.failed($0) }
        #expect(outcomes.map(\.name).contains("bad_request"))
        for outcome in outcomes {
            #expect(RequestOutcome(name: outcome.name) == outcome)
        }
        #expect(RequestOutcome(name: "rejected") == nil)
        #expect(Duration.microseconds(1_250).fractionalMilliseconds == 1.25)
        #expect(Duration.nanoseconds(1).fractionalMilliseconds == 0.000_001)
    }
}

private let speechJSON = #"{"input": "hi", "response_format": "wav"}"#

private let chatJSON = #"{"messages": [{"role": "user", "content": "hi"}]}"#

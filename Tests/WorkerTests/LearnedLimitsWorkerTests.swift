import Foundation
import Logging
import Protocol
import Shared
import Synchronization
import Testing

@testable import Worker

/// The worker's side of learned limits (protocol minor 4): what it tells the coordinator of the providers'
/// headers and of the tokens a call really used.
@Suite struct LearnedLimitsWorkerTests {
    let logger = Logger(label: "test")

    func client(minor: Int) -> (LeaseClient, LeaseClientTests.Outbox) {
        LeaseClientTests().client(
            budgets: [ProviderBudget(provider: "llm"), ProviderBudget(provider: "image")],
            coordinatorMinor: minor
        )
    }

    func sentSignals(_ outbox: LeaseClientTests.Outbox) -> [ProviderSignal] {
        outbox.all.compactMap { if case .providerSignal(let s) = $0 { s } else { nil } }
    }

    @Test func onlyNewsAboutTheLimitsIsSent() {
        let (client, outbox) = client(minor: 4)
        let first = ProviderSignal(provider: "llm", kind: .limits, remaining: 4, resetMs: 1000, limitRequests: 5)
        client.report(.llm, first)
        // The same limits and a shorter reset: nothing new.
        client.report(
            .llm,
            ProviderSignal(provider: "llm", kind: .limits, remaining: 2, resetMs: 600, limitRequests: 5)
        )
        #expect(sentSignals(outbox) == [first])
        // A longer reset (the window estimate grows) and a new token limit are news.
        let longer = ProviderSignal(provider: "llm", kind: .limits, resetMs: 1200, limitRequests: 5)
        client.report(.llm, longer)
        let tokens = ProviderSignal(provider: "llm", kind: .limits, limitRequests: 5, limitUnits: 90_000)
        client.report(.llm, tokens)
        #expect(sentSignals(outbox) == [first, longer, tokens])
        // Another provider has its own record; `limits` never counts as a 429 or pauses anything.
        client.report(.image, ProviderSignal(provider: "image", kind: .limits, maxConcurrent: 3))
        #expect(sentSignals(outbox).count == 4)
        #expect(client.stats.signals == 0)
    }

    @Test func aCoordinatorBeforeMinor4HearsNoLimitsAndNoUsedUnits() async throws {
        let (client, outbox) = client(minor: 3)
        client.report(.llm, ProviderSignal(provider: "llm", kind: .limits, resetMs: 1000, limitRequests: 5))
        #expect(sentSignals(outbox).isEmpty)
        let call = Task {
            try await client.withPermit(.llm, units: 800, episodeId: nil, logger: logger) {
                UsageMeter.current?.record(120)
                return 1
            }
        }
        let requests = await outbox.waitForRequests(1)
        client.receive(LeaseClientTests().grant(requests[0]))
        #expect(try await call.value == 1)
        guard case .leaseRelease(let release) = outbox.all.last else {
            Issue.record("no release: \(outbox.all)")
            return
        }
        #expect(release.finished == 1 && release.usedUnits == nil)
    }

    @Test func theUnitsACallReallyUsedGoWithItsRelease() async throws {
        let (client, outbox) = client(minor: 4)
        let call = Task {
            try await client.withPermit(.llm, units: 800, episodeId: nil, logger: logger) {
                UsageMeter.current?.record(120)
                return 1
            }
        }
        let requests = await outbox.waitForRequests(1)
        #expect(requests.first?.units == 800)
        client.receive(LeaseClientTests().grant(requests[0]))
        #expect(try await call.value == 1)
        guard case .leaseRelease(let release) = outbox.all.last else {
            Issue.record("no release: \(outbox.all)")
            return
        }
        #expect(release.finished == 1 && release.usedUnits == 120)
        // Outside a leased call nothing records anything.
        #expect(UsageMeter.current == nil)
    }

    @Test func whileLimitsAreLearnedOnlyCallsThatTeachAreLeased() async throws {
        let (client, outbox) = client(minor: 4)
        // A simulated call cannot tell the provider's limits: it starts at once, unleased.
        let value = try await client.withPermit(.image, units: 1, episodeId: nil, teaches: false, logger: logger) {
            2
        }
        #expect(value == 2)
        #expect(outbox.all.isEmpty)
        // An HTTP call is leased.
        let call = Task {
            try await client.withPermit(.image, units: 1, episodeId: nil, teaches: true, logger: logger) { 3 }
        }
        let requests = await outbox.waitForRequests(1)
        #expect(requests.first?.provider == "image")
        client.receive(LeaseClientTests().grant(requests[0]))
        #expect(try await call.value == 3)
    }

    @Test func headersOfASuccessBecomeALimitsSignalWithinTheProtocolRanges() {
        let hints = RateLimitHints(
            resetRequests: .milliseconds(1000),
            resetTokens: .milliseconds(30),
            remainingRequests: 4,
            remainingTokens: 199_000,
            limitRequests: 5,
            limitTokens: 200_000,
            currentConcurrentRequests: 2
        )
        #expect(
            HTTPCaller.limitsSignal(hints, provider: "llm")
                == ProviderSignal(
                    provider: "llm",
                    kind: .limits,
                    remaining: 4,
                    resetMs: 1000,
                    limitRequests: 5,
                    limitUnits: 200_000,
                    remainingUnits: 199_000,
                    resetUnitsMs: 30,
                    currentConcurrent: 2
                )
        )
        // No stated limit (Hugging Face, or ElevenLabs without a ceiling): nothing to send.
        #expect(HTTPCaller.limitsSignal(RateLimitHints(currentConcurrentRequests: 1), provider: "tts") == nil)
        // A limit of 0 is not one; absurd values are clamped.
        let odd = RateLimitHints(limitRequests: 0, limitTokens: 5_000_000_000_000, maximumConcurrentRequests: 0)
        let signal = HTTPCaller.limitsSignal(odd, provider: "llm")
        #expect(signal?.limitRequests == nil && signal?.maxConcurrent == nil)
        #expect(signal?.limitUnits == 1_000_000_000_000)
    }

    @Test func theTotalTokensOfAChatReplyAreRead() {
        let body = Data(
            #"{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}"#
                .utf8
        )
        #expect(OpenAIScriptProvider.totalTokens(in: body) == 15)
        #expect(OpenAIScriptProvider.totalTokens(in: Data(#"{"usage":{"total_tokens":-3}}"#.utf8)) == nil)
        #expect(OpenAIScriptProvider.totalTokens(in: Data(#"{"usage":{"total_tokens":1.5}}"#.utf8)) == nil)
        #expect(OpenAIScriptProvider.totalTokens(in: Data(#"{"choices":[]}"#.utf8)) == nil)
    }
}

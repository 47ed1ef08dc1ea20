import Logging
import Protocol
import Shared
import Synchronization
import Testing

@testable import Worker

/// The worker's lease client with the coordinator played by the test: messages out are collected,
/// grants and pauses are fed in. Timing is functional (never tighter than a noisy machine holds).
@Suite struct LeaseClientTests {
    /// Collects what the client sends.
    final class Outbox: Sendable {
        private let messages = Mutex<[Message]>([])
        func append(_ m: Message) { messages.withLock { $0.append(m) } }
        var all: [Message] { messages.withLock { $0 } }

        func requests() -> [LeaseRequest] {
            all.compactMap { if case .leaseRequest(let r) = $0 { r } else { nil } }
        }

        /// Waits until `count` requests were sent (at most 30 s: a loaded machine may take seconds to run
        /// the call's task; returning early would leave a test indexing requests that never came).
        func waitForRequests(_ count: Int) async -> [LeaseRequest] {
            for _ in 0..<6000 {
                let r = requests()
                if r.count >= count { return r }
                try? await Task.sleep(for: .milliseconds(5))
            }
            return requests()
        }
    }

    let logger = Logger(label: "test")

    func client(
        budgets: [ProviderBudget] = [ProviderBudget(provider: "image", requests: 10)],
        mode: BudgetMode = .leased,
        loss: LeaseClient.LossPolicy = .wait,
        coordinatorMinor: Int = WireProtocol.minorVersion
    ) -> (LeaseClient, Outbox) {
        let outbox = Outbox()
        let client = LeaseClient(lossPolicy: loss)
        client.attach { outbox.append($0) }
        client.sessionStarted(
            Welcome(
                session: "s",
                heartbeatIntervalMs: 1000,
                liveness: 3,
                maxMessageBytes: 1 << 20,
                softwareVersion: "t",
                protocolMinor: coordinatorMinor,
                budgets: budgets,
                budgetMode: mode,
                fleetWorkers: 2
            )
        )
        return (client, outbox)
    }

    /// `useWithinMs` counts from when the request was sent: a short one expires (and the call asks again,
    /// for a grant the test never gives) when a loaded machine takes seconds to feed the grant in, which
    /// hung four of these tests in a CI run. A minute holds on any machine.
    func grant(_ request: LeaseRequest, lease: String = "l1", useWithinMs: Int = 60_000) -> Message {
        .leaseGrant(
            LeaseGrant(
                requestId: request.requestId,
                leaseId: lease,
                provider: request.provider,
                calls: 1,
                useWithinMs: useWithinMs
            )
        )
    }

    @Test func aCallWaitsForItsPermitThenReportsStartAndRelease() async throws {
        let (client, outbox) = client()
        let ran = Mutex(false)
        let call = Task {
            try await client.withPermit(.image, units: 1, episodeId: "e1", logger: logger) {
                ran.withLock { $0 = true }
                return 7
            }
        }
        let requests = await outbox.waitForRequests(1)
        #expect(requests.first?.provider == "image")
        #expect(requests.first?.episodeId == "e1")
        #expect(!ran.withLock { $0 })
        client.receive(grant(requests[0]))
        #expect(try await call.value == 7)
        let kinds = outbox.all.map(\.kind)
        #expect(kinds == [.leaseRequest, .leaseStarted, .leaseRelease])
        if case .leaseRelease(let r) = outbox.all.last { #expect(r.finished == 1 && r.returned == 0) }
        #expect(client.isLeased(.image))
        #expect(!client.isLeased(.llm))
    }

    @Test func unbudgetedProvidersAreNotLeased() async throws {
        let (client, outbox) = client()
        let value = try await client.withPermit(.tts, units: 1, episodeId: nil, logger: logger) { 1 }
        #expect(value == 1)
        #expect(outbox.all.isEmpty)
    }

    @Test func anOpenCircuitRefusesCallsAndWaiters() async throws {
        let (client, outbox) = client()
        let waiting = Task {
            try await client.withPermit(.image, units: 1, episodeId: nil, logger: logger) { 1 }
        }
        _ = await outbox.waitForRequests(1)
        client.receive(
            .providerPause(ProviderPause(provider: "image", pauseMs: 0, circuitOpen: true, reason: "billing"))
        )
        await #expect(throws: GateError.self) { try await waiting.value }
        await #expect(throws: GateError.circuitOpen(provider: "image", cause: .quota, detail: "billing")) {
            try await client.withPermit(.image, units: 1, episodeId: nil, logger: logger) { 1 }
        }
    }

    @Test func aRefusedRequestIsACircuitError() async throws {
        let (client, outbox) = client()
        let waiting = Task {
            try await client.withPermit(.image, units: 1, episodeId: nil, logger: logger) { 1 }
        }
        let requests = await outbox.waitForRequests(1)
        client.receive(
            .leaseGrant(
                LeaseGrant(
                    requestId: requests[0].requestId,
                    leaseId: "",
                    provider: "image",
                    calls: 0,
                    useWithinMs: 0,
                    refused: .circuitOpen,
                    detail: "quota"
                )
            )
        )
        await #expect(throws: GateError.self) { try await waiting.value }
    }

    @Test func aCancelledWaiterWithdrawsItsRequestAndAGrantForNobodyIsReturned() async throws {
        let (client, outbox) = client()
        let waiting = Task {
            try await client.withPermit(.image, units: 1, episodeId: nil, logger: logger) { 1 }
        }
        let requests = await outbox.waitForRequests(1)
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        #expect(outbox.all.contains(.leaseCancel(LeaseCancel(requestId: requests[0].requestId))))
        client.receive(grant(requests[0], lease: "l9"))
        #expect(outbox.all.last == .leaseRelease(LeaseRelease(leaseId: "l9", returned: 1)))
    }

    @Test func aPermitPastItsDeadlineIsReturnedAndAskedForAgain() async throws {
        let (client, outbox) = client()
        let call = Task {
            try await client.withPermit(.image, units: 1, episodeId: nil, logger: logger) { 1 }
        }
        let first = await outbox.waitForRequests(1)
        try await Task.sleep(for: .milliseconds(30))
        // Valid for 1 ms after the request was sent: already void when it arrives.
        client.receive(grant(first[0], lease: "old", useWithinMs: 1))
        let again = await outbox.waitForRequests(2)
        #expect(again.count == 2)
        #expect(outbox.all.contains(.leaseRelease(LeaseRelease(leaseId: "old", returned: 1))))
        client.receive(grant(again[1], lease: "new"))
        #expect(try await call.value == 1)
        #expect(client.stats.expired == 1)
    }

    @Test func waitingCallsAskAgainInTheNextSession() async throws {
        let (client, outbox) = client()
        let call = Task {
            try await client.withPermit(.image, units: 1, episodeId: nil, logger: logger) { 1 }
        }
        _ = await outbox.waitForRequests(1)
        client.sessionLost()
        client.sessionStarted(
            Welcome(
                session: "s2",
                heartbeatIntervalMs: 1000,
                liveness: 3,
                maxMessageBytes: 1 << 20,
                softwareVersion: "t",
                budgets: [ProviderBudget(provider: "image", requests: 10)]
            )
        )
        let requests = await outbox.waitForRequests(2)
        #expect(requests.count == 2)
        client.receive(grant(requests[1]))
        #expect(try await call.value == 1)
    }

    @Test func aReported429PausesThisWorkerAtOnceAndGoesToTheCoordinator() async throws {
        let (client, outbox) = client()
        client.report(.image, ProviderSignal(provider: "image", kind: .rateLimited, retryAfterMs: 300))
        #expect(outbox.all.first?.kind == .providerSignal)
        let started = ContinuousClock.now
        let call = Task {
            try await client.withPermit(.image, units: 1, episodeId: nil, logger: logger) { ContinuousClock.now }
        }
        let requests = await outbox.waitForRequests(1)
        client.receive(grant(requests[0]))
        let ranAt = try await call.value
        #expect(ranAt - started >= .milliseconds(300))
    }

    func signals(_ outbox: Outbox) -> [ProviderSignal] {
        outbox.all.compactMap { if case .providerSignal(let s) = $0 { s } else { nil } }
    }

    @Test func anAuthErrorWithoutABudgetIsSentAndRefusesTheNextCall() async throws {
        let (client, outbox) = client(budgets: [])
        let signal = ProviderSignal(provider: "tts", kind: .authFailed, detail: "the key was refused (HTTP 401)")
        client.report(.tts, signal)
        #expect(signals(outbox) == [signal])
        let ran = Mutex(false)
        let error = await #expect(throws: GateError.self) {
            try await client.withPermit(.tts, units: 1, episodeId: nil, logger: logger) {
                ran.withLock { $0 = true }
                return 1
            }
        }
        #expect(!ran.withLock { $0 })
        #expect(error == .circuitOpen(provider: "tts", cause: .auth, detail: "the key was refused (HTTP 401)"))
        #expect(error?.description.contains("authentication error") == true)
        // Other providers still call.
        #expect(try await client.withPermit(.image, units: 1, episodeId: nil, logger: logger) { 2 } == 2)
    }

    @Test func aQuotaErrorWithoutABudgetIsABillingCircuit() async throws {
        let (client, outbox) = client(budgets: [])
        client.report(.llm, ProviderSignal(provider: "llm", kind: .quotaExceeded, detail: "insufficient_quota"))
        #expect(signals(outbox).map(\.kind) == [.quotaExceeded])
        let error = await #expect(throws: GateError.self) {
            try await client.withPermit(.llm, units: 1, episodeId: nil, logger: logger) { 1 }
        }
        #expect(error == .circuitOpen(provider: "llm", cause: .quota, detail: "insufficient_quota"))
        #expect(error?.description.contains("billing or quota error") == true)
        // A 429 of an unbudgeted provider stays with the call, as before.
        client.report(.image, ProviderSignal(provider: "image", kind: .rateLimited, retryAfterMs: 100))
        #expect(signals(outbox).count == 1)
    }

    @Test func aMinor2CoordinatorIsSentQuotaExceededInsteadOfAuthFailed() async throws {
        let (client, outbox) = client(budgets: [], coordinatorMinor: 2)
        client.report(.tts, ProviderSignal(provider: "tts", kind: .authFailed, detail: "bad key"))
        #expect(signals(outbox) == [ProviderSignal(provider: "tts", kind: .quotaExceeded, detail: "bad key")])
        // This worker still knows what happened.
        await #expect(throws: GateError.circuitOpen(provider: "tts", cause: .auth, detail: "bad key")) {
            try await client.withPermit(.tts, units: 1, episodeId: nil, logger: logger) { 1 }
        }
    }

    @Test func theCoordinatorsCircuitTellsAuthFromQuotaAndANewSessionForgetsIt() async throws {
        let (client, _) = client(budgets: [])
        client.receive(
            .providerPause(
                ProviderPause(provider: "tts", pauseMs: 0, circuitOpen: true, reason: "auth_failed: bad key")
            )
        )
        client.receive(
            .providerPause(ProviderPause(provider: "image", pauseMs: 0, circuitOpen: true, reason: "no credits"))
        )
        await #expect(throws: GateError.circuitOpen(provider: "tts", cause: .auth, detail: "bad key")) {
            try await client.withPermit(.tts, units: 1, episodeId: nil, logger: logger) { 1 }
        }
        // A coordinator before minor 3 sends no prefix: a billing or quota error.
        await #expect(throws: GateError.circuitOpen(provider: "image", cause: .quota, detail: "no credits")) {
            try await client.withPermit(.image, units: 1, episodeId: nil, logger: logger) { 1 }
        }
        client.sessionLost()
        client.sessionStarted(
            Welcome(
                session: "s2",
                heartbeatIntervalMs: 1000,
                liveness: 3,
                maxMessageBytes: 1 << 20,
                softwareVersion: "t"
            )
        )
        #expect(try await client.withPermit(.tts, units: 1, episodeId: nil, logger: logger) { 3 } == 3)
    }

    @Test func localModeEnforcesTheBudgetWithoutLeaseMessages() async throws {
        let (client, outbox) = client(
            budgets: [ProviderBudget(provider: "image", requests: 2, requestWindowMs: 200)],
            mode: .local
        )
        #expect(!client.isLeased(.image))
        let started = ContinuousClock.now
        var times: [Duration] = []
        for _ in 0..<3 {
            let t = try await client.withPermit(.image, units: 1, episodeId: nil, logger: logger) {
                ContinuousClock.now
            }
            times.append(t - started)
        }
        #expect(outbox.all.isEmpty)
        // The third call waits for the 200 ms window to slide past the first.
        #expect(times[2] >= .milliseconds(200))
    }

    @Test func goingOnAloneUsesTheFleetShare() async throws {
        let (client, outbox) = client(loss: .local)
        client.sessionLost()
        let value = try await client.withPermit(.image, units: 1, episodeId: nil, logger: logger) { 5 }
        #expect(value == 5)
        #expect(outbox.requests().isEmpty)
        #expect(
            ProviderBudget(provider: "image", requests: 10, maxConcurrent: 3).share(of: 2)
                == ProviderBudget(provider: "image", requests: 5, maxConcurrent: 1)
        )
    }

    @Test func recentCallsAreReportedForHello() async throws {
        // A one-minute window, so a slow machine cannot age the call out before it is read.
        let (client, outbox) = client(budgets: [
            ProviderBudget(provider: "image", requests: 10, requestWindowMs: 60_000)
        ])
        let call = Task { try await client.withPermit(.image, units: 1, episodeId: nil, logger: logger) { 1 } }
        let requests = await outbox.waitForRequests(1)
        client.receive(grant(requests[0]))
        _ = try await call.value
        let recent = client.recentCalls()
        #expect(recent["image"]?.count == 1)
        #expect((recent["image"]?.first ?? 100_000) < 60_000)
    }
}

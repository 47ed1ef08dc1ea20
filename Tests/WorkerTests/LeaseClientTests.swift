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

        /// Waits (briefly) until `count` requests were sent.
        func waitForRequests(_ count: Int) async -> [LeaseRequest] {
            for _ in 0..<400 {
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
        loss: LeaseClient.LossPolicy = .wait
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
                budgets: budgets,
                budgetMode: mode,
                fleetWorkers: 2
            )
        )
        return (client, outbox)
    }

    func grant(_ request: LeaseRequest, lease: String = "l1", useWithinMs: Int = 2000) -> Message {
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
        await #expect(throws: GateError.circuitOpen(provider: "image", detail: "billing")) {
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

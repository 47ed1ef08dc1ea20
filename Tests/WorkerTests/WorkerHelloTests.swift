import Protocol
import Shared
import Testing

@testable import Worker

/// HELLO is made in one place (``WorkerHello``): the process's identity, the attempts the worker holds and
/// the calls it started recently.
@Suite struct WorkerHelloTests {
    let t0 = ContinuousClock.now

    @Test func helloIsMadeFromTheIdentityTheRunningAttemptsAndTheRecentCalls() {
        let identity = WorkerHello.identity(
            workerId: "w1",
            host: "h",
            pid: 7,
            capacity: Capacity(episodes: 2, apiCalls: 3),
            instance: "i1"
        )
        #expect(
            identity.protocolMinor == WireProtocol.minorVersion && identity.softwareVersion == ReelfarmVersion.current
        )
        #expect(identity.running.isEmpty && identity.recentCalls.isEmpty)
        let a = JobRef(episodeId: "a", attempt: 2)
        let b = JobRef(episodeId: "b", attempt: 1)
        let hello = WorkerHello.hello(identity, running: [b, a, b], recentCalls: ["image": [40]])
        #expect(hello.running == [a, b] && hello.recentCalls == ["image": [40]])
        #expect(hello.workerId == "w1" && hello.instance == "i1" && hello.capacity == identity.capacity)
        // The worker core sends it with the lease client's recent calls.
        var core = WorkerCore(settings: .init(hello: identity), now: t0, jitter: { $0 })
        let sent = core.start(now: t0, recentCalls: { ["image": [40]] })
        #expect(
            sent == [.send(Envelope(.hello(WorkerHello.hello(identity, running: [], recentCalls: ["image": [40]]))))]
        )
    }

    @Test func aReconnectGreetsWithWhatTheWorkerHoldsAndItsRecentCalls() {
        let identity = WorkerHello.identity(
            workerId: "w1",
            host: "h",
            pid: 7,
            capacity: Capacity(episodes: 2, apiCalls: 3),
            instance: "i1"
        )
        var core = WorkerCore(settings: .init(hello: identity), now: t0, jitter: { $0 })
        _ = core.start(now: t0)
        let welcome = Welcome(
            session: "s1",
            heartbeatIntervalMs: 1000,
            liveness: 3,
            maxMessageBytes: 1 << 20,
            softwareVersion: "t"
        )
        _ = core.onEnvelope(Envelope(session: "s1", .welcome(welcome)), now: t0)
        let job = Job(batchId: "b", episodeId: "e1", attempt: 1, spec: EpisodeSpec(topic: "t"))
        _ = core.onEnvelope(Envelope(session: "s1", .job(job)), now: t0)
        // Silent for 3 heartbeats: lost; a second later (no jitter) a new socket and a HELLO.
        _ = core.onTick(
            now: t0 + .seconds(3),
            recentCalls: {
                Issue.record("no HELLO goes out here")
                return [:]
            }
        )
        let again = core.onTick(now: t0 + .seconds(4), recentCalls: { ["llm": [1200, 300]] })
        let expected = WorkerHello.hello(identity, running: [job.ref], recentCalls: ["llm": [1200, 300]])
        #expect(again == [.renewSocket, .send(Envelope(.hello(expected)))])
    }
}

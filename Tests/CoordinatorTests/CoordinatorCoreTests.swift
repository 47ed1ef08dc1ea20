import Foundation
import Protocol
import Shared
import Testing

@testable import Coordinator

/// The coordinator's core without sockets, files or clocks: what it asks to be made durable and in which
/// order, how batches start and end, serve's submissions, shutdown and retiring workers.
@Suite struct CoordinatorCoreTests {
    typealias Effect = CoordinatorCore.Effect
    let base = DispatcherTests()
    let t0 = ContinuousClock.now
    let date = Date(timeIntervalSince1970: 1_796_000_000)

    func at(_ offset: Duration) -> CoordinatorCore.Time {
        .init(now: t0 + offset, date: date + offset.secondsDouble)
    }

    func makeCore(
        serve: Bool = false,
        journaled: Bool = true,
        progress: CoordinatorService.ProgressMode = .off
    )
        -> CoordinatorCore
    {
        let counter = Counter()
        var dispatch = DispatchSettings()
        dispatch.maxAttempts = 2
        let dispatcher = Dispatcher(batchId: "", specs: [], settings: dispatch, makeSession: { counter.next() })
        return CoordinatorCore(
            settings: .init(
                serve: serve,
                output: URL(fileURLWithPath: "/srv/out"),
                journaled: journaled,
                dispatch: dispatch,
                progress: progress
            ),
            dispatcher: dispatcher,
            queue: BatchQueue(output: URL(fileURLWithPath: "/srv/out")),
            time: at(.zero),
            makeBatchId: { _ in "generated" }
        )
    }

    func frames(_ routing: [UInt8], _ envelope: Envelope) -> [[UInt8]] { [routing] + Codec.encode(envelope) }

    func sent(_ effects: [Effect]) -> [Envelope] {
        effects.compactMap { if case .perform(.send(_, let env)) = $0 { return env } else { return nil } }
    }

    func jobs(_ effects: [Effect]) -> [Job] {
        sent(effects).compactMap { if case .job(let j) = $0.message { return j } else { return nil } }
    }

    /// A short name per effect, to check their order.
    func kinds(_ effects: [Effect]) -> [String] {
        effects.map {
            switch $0 {
            case .persist(let write): "persist.\(write.label)"
            case .perform(.send(_, let env)): "send.\(env.message.kind)"
            case .perform(.notice): "notice"
            case .perform: "perform"
            case .episodeTimed: "timed"
            case .openBatch: "open"
            case .closeBatch: "close"
            case .publish(let status): "publish.\(status.state.rawValue)"
            case .progressBar: "bar"
            case .say: "say"
            case .stopLocalWorker: "stopWorker"
            case .reply: "reply"
            case .journalBroken: "journalBroken"
            case .stop: "stop"
            }
        }
    }

    /// Registers worker `id` on routing id `routing`; returns its session and the effects.
    func join(
        _ core: inout CoordinatorCore,
        _ routing: [UInt8],
        _ id: String,
        episodes: Int,
        at time: CoordinatorCore.Time
    )
        -> (String, [Effect])
    {
        let effects = core.handle(
            .message(frames(routing, Envelope(.hello(base.hello(id, episodes: episodes))))),
            time: time
        )
        let session = sent(effects).compactMap { if case .welcome(let w) = $0.message { w.session } else { nil } }
        return (session.first ?? "", effects)
    }

    @Test func aBatchIsJournaledBeforeItsFirstJobAndEndsWithItsFilesThenItsRecord() {
        var core = makeCore()
        let start = core.begin(Batch(id: "b1", episodes: base.specs(2)), resumed: nil, time: at(.zero))
        #expect(kinds(start) == ["open", "persist.begin", "say", "publish.running"])
        guard case .persist(.begin(let id, let episodes)) = start[1] else { return }
        #expect(id == "b1" && episodes.map(\.id) == ["episode_1", "episode_2"])

        // The worker's jobs: the dispatch is recorded (buffered, not yet written) ahead of the sends.
        let (session, joined) = join(&core, [1], "w1", episodes: 2, at: at(.milliseconds(10)))
        #expect(kinds(joined).first == "persist.entries" && kinds(joined).contains("send.WELCOME"))
        guard case .persist(.entries(let entries, let flush)) = joined[0] else { return }
        #expect(entries.events.map(\.event) == [.dispatched, .dispatched] && flush == nil)
        let work = jobs(joined)
        #expect(work.count == 2)

        // An episode ends: written at once, ahead of anything that follows from it.
        let first = core.handle(
            .message(frames([1], base.result(work[0], session: session))),
            time: at(.milliseconds(20))
        )
        guard case .persist(.entries(let ended, let counters)) = first.first else {
            Issue.record("no journal write ahead of the effects: \(kinds(first))")
            return
        }
        #expect(ended.events.map(\.event) == [.succeeded] && counters != nil)
        #expect(kinds(first).contains("timed"))

        // The last one ends the one-shot batch: summary and report, then the journal's close, then stop.
        let last = core.handle(.message(frames([1], base.result(work[1], session: session))), time: at(.seconds(2)))
        #expect(kinds(last).suffix(4) == ["close", "publish.completed", "persist.close", "stop"])
        guard case .persist(.close(_, let state)) = last[last.count - 2],
            case .closeBatch(let closing) = last[last.count - 4]
        else { return }
        #expect(state == .completed && closing.complete && closing.wall == .milliseconds(2000))
        #expect(closing.dispatcher.succeededCount == 2)
        // The status saying so is published after the files are written, and names them.
        guard case .publish(let published) = last[last.count - 3] else { return }
        #expect(published.batches.map(\.state) == [.completed])
        #expect(published.batches.first?.summary == "/srv/out/b1/summary.json")
        core.filesWritten("b1", summary: "/srv/out/b1/summary.json", report: nil)
        #expect(core.queue.listings.first?.report == nil, "a report that could not be written is not listed")
        #expect(core.current == nil)
        // The goodbye says the batch is done.
        let stop = core.stop(time: at(.seconds(3)))
        #expect(kinds(stop) == ["publish.completed", "send.DISCONNECT"])
    }

    @Test func withoutAJournalNothingIsPersisted() {
        var core = makeCore(journaled: false)
        let start = core.begin(Batch(id: "b1", episodes: base.specs(1)), resumed: nil, time: at(.zero))
        let (_, joined) = join(&core, [1], "w1", episodes: 1, at: at(.milliseconds(10)))
        #expect(!(kinds(start) + kinds(joined)).contains { $0.hasPrefix("persist") })
    }

    @Test func bufferedChangesAreWrittenAtMostAHundredMillisecondsBehind() {
        var core = makeCore()
        _ = core.begin(Batch(id: "b1", episodes: base.specs(4)), resumed: nil, time: at(.zero))
        _ = join(&core, [1], "w1", episodes: 1, at: at(.milliseconds(10)))
        _ = join(&core, [2], "w2", episodes: 1, at: at(.milliseconds(50)))
        // Nothing new to record on this tick, but the buffer is 150 ms old: written now.
        let tick = core.handle(.tick, time: at(.milliseconds(150)))
        guard case .persist(.entries(let entries, let flush)) = tick.first else {
            Issue.record("the buffer was not written: \(kinds(tick))")
            return
        }
        #expect(entries.isEmpty && flush != nil)
        // Written: the next tick has nothing to write.
        #expect(!kinds(core.handle(.tick, time: at(.milliseconds(300)))).contains { $0.hasPrefix("persist") })
    }

    @Test func aJournalThatCannotBeWrittenStopsTheCoordinatorOnce() {
        var core = makeCore()
        let start = core.begin(Batch(id: "b1", episodes: base.specs(2)), resumed: nil, time: at(.zero))
        guard case .persist(let write) = start[1] else { return }
        #expect(kinds(core.persistFailed(write, error: "disk full", time: at(.zero))) == ["journalBroken", "stop"])
        #expect(core.interrupted && core.journalFailed)
        #expect(kinds(core.persistFailed(write, error: "disk full", time: at(.zero))) == ["stop"])
        // Nothing more is written; the batch closes as interrupted without a journal record.
        let stop = core.stop(time: at(.seconds(1)))
        #expect(kinds(stop) == ["close", "publish.interrupted", "publish.stopped"])
    }

    @Test func aSubmissionIsAnsweredOnlyOnceJournaled() async {
        var core = makeCore(serve: true)
        _ = core.begin(nil, resumed: nil, time: at(.zero))
        let control = ControlChannel()
        async let answer = control.submit(id: nil, episodes: base.specs(3))
        var requests = control.requests.makeAsyncIterator()
        guard case .submit(let id, let episodes, let reply) = await requests.next() else { return }
        let effects = core.handle(.submit(id: id, episodes: episodes, reply: reply), time: at(.seconds(1)))
        #expect(kinds(effects) == ["persist.enqueue"])
        #expect(core.queue.waiting.isEmpty, "not queued before it is durable")
        guard case .persist(let write) = effects[0] else { return }

        let after = core.persisted(write, time: at(.seconds(1)))
        #expect(kinds(after) == ["say", "reply", "open", "persist.begin", "say"])
        for case .reply(let r, let result) in after { r(result) }
        let listing = try? await answer.get()
        #expect(listing?.id == "generated" && listing?.state == .running && listing?.episodes == 3)
        #expect(core.current?.id == "generated")
    }

    @Test func aSubmissionTheJournalRefusesIsAnswered503AndNotQueued() async {
        var core = makeCore(serve: true)
        _ = core.begin(nil, resumed: nil, time: at(.zero))
        let control = ControlChannel()
        async let answer = control.submit(id: "mine", episodes: base.specs(1))
        var requests = control.requests.makeAsyncIterator()
        guard case .submit(let id, let episodes, let reply) = await requests.next() else { return }
        guard
            case .persist(let write) = core.handle(.submit(id: id, episodes: episodes, reply: reply), time: at(.zero))
                .first
        else { return }
        let failed = core.persistFailed(write, error: "disk I/O error", time: at(.zero))
        #expect(kinds(failed) == ["say", "reply"])
        for case .reply(let r, let result) in failed { r(result) }
        #expect(await answer == .failure(.unavailable("cannot write the journal: disk I/O error")))
        #expect(core.queue.waiting.isEmpty && core.current == nil && !core.interrupted)
    }

    @Test func aOneShotCoordinatorRefusesSubmissions() async {
        var core = makeCore(serve: false)
        let control = ControlChannel()
        async let answer = control.submit(id: nil, episodes: base.specs(1))
        var requests = control.requests.makeAsyncIterator()
        guard case .submit(let id, let episodes, let reply) = await requests.next() else { return }
        for case .reply(let r, let result) in core.handle(
            .submit(id: id, episodes: episodes, reply: reply),
            time: at(.zero)
        ) {
            r(result)
        }
        #expect(await answer == .failure(.notServing))
    }

    @Test func serveRunsTheNextBatchWhenOneEndsAboveTheAttemptFloors() async {
        var core = makeCore(serve: true, journaled: false)
        _ = core.begin(Batch(id: "one", episodes: base.specs(1)), resumed: nil, time: at(.zero))
        let (session, joined) = join(&core, [1], "w1", episodes: 1, at: at(.milliseconds(10)))
        let failed = core.handle(
            .message(frames([1], base.result(jobs(joined)[0], .failed, session: session))),
            time: at(.seconds(1))
        )
        let retry = jobs(failed)[0]
        #expect(retry.attempt == 2)

        // A second batch with an episode of the same id is submitted meanwhile (no journal: queued at once).
        let control = ControlChannel()
        async let answer = control.submit(id: "two", episodes: base.specs(1))
        var requests = control.requests.makeAsyncIterator()
        guard case .submit(let id, let episodes, let reply) = await requests.next() else { return }
        let submitted = core.handle(.submit(id: id, episodes: episodes, reply: reply), time: at(.seconds(1)))
        for case .reply(let r, let result) in submitted { r(result) }
        let listing = try? await answer.get()
        #expect(listing?.state == .queued && listing?.position == 1)

        let ended = core.handle(.message(frames([1], base.result(retry, session: session))), time: at(.seconds(2)))
        #expect(
            kinds(ended).contains("close") && kinds(ended).contains("open") && kinds(ended).last == "publish.running"
        )
        let next = jobs(ended)
        #expect(next.map(\.batchId) == ["two"])
        #expect(next.first?.attempt == 3, "above the attempts batch one used")
        #expect(core.queue.floors == ["episode_1": 2])
        #expect(core.queue.live(running: ("two", 0, 0)).map(\.state) == [.completed, .running])
    }

    @Test func shutdownInterruptsTheBatchWhichTheJournalKeepsRunning() {
        var core = makeCore()
        _ = core.begin(Batch(id: "b1", episodes: base.specs(3)), resumed: nil, time: at(.zero))
        _ = join(&core, [1], "w1", episodes: 1, at: at(.milliseconds(10)))
        #expect(kinds(core.handle(.shutdown, time: at(.seconds(1)))) == ["say", "stop"])
        let stop = core.stop(time: at(.seconds(1)))
        #expect(kinds(stop) == ["close", "publish.interrupted", "publish.stopped", "send.DISCONNECT", "persist.close"])
        guard case .persist(.close(_, let state)) = stop.last else { return }
        #expect(state == nil, "an interrupted batch stays running in the journal, to be resumed")
        #expect(core.queue.live(running: nil).first?.state == .interrupted)
    }

    @Test func aRetiringWorkerIsStoppedOnceItsAttemptEnds() {
        var core = makeCore(journaled: false)
        _ = core.begin(Batch(id: "b1", episodes: base.specs(3)), resumed: nil, time: at(.zero))
        let (session, joined) = join(&core, [1], "local-2", episodes: 1, at: at(.milliseconds(10)))
        _ = core.retire([(workerId: "local-2", slot: 2)], time: at(.milliseconds(20)))
        #expect(!kinds(core.handle(.tick, time: at(.milliseconds(50)))).contains("stopWorker"), "still running")
        let done = core.handle(
            .message(frames([1], base.result(jobs(joined)[0], session: session))),
            time: at(.milliseconds(60))
        )
        #expect(jobs(done).isEmpty, "a retiring worker gets no more jobs")
        let tick = core.handle(.tick, time: at(.milliseconds(100)))
        #expect(kinds(tick).contains("stopWorker"))
        #expect(core.retiring.isEmpty)
    }

    @Test func progressLinesComeAtTheirInterval() {
        var core = makeCore(progress: .bar)
        _ = core.begin(Batch(id: "b1", episodes: base.specs(1)), resumed: nil, time: at(.zero))
        #expect(kinds(core.handle(.tick, time: at(.milliseconds(100)))).filter { $0 == "bar" }.isEmpty)
        #expect(kinds(core.handle(.tick, time: at(.milliseconds(300)))).contains("bar"))
        // No worker for 10 s: said, then not again for 10 s.
        #expect(kinds(core.handle(.tick, time: at(.seconds(10)))).contains("say"))
        #expect(!kinds(core.handle(.tick, time: at(.seconds(11)))).contains("say"))
    }
}

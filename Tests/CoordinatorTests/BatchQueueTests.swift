import Foundation
import Testing

@testable import Coordinator

/// `coordinator serve`'s queue as a value: submissions checked and named, listed with their places, run
/// in order, attempt floors carried from batch to batch, the listing bounded.
@Suite struct BatchQueueTests {
    let output = URL(fileURLWithPath: "/srv/out")
    let date = Date(timeIntervalSince1970: 1_796_000_000)
    let specs = DispatcherTests().specs

    func batch(_ result: Result<Batch, ControlError>) -> Batch? {
        if case .success(let b) = result { return b }
        return nil
    }

    @Test func aSubmissionIsCheckedBeforeItIsNamed() {
        let q = BatchQueue(output: output, takenIds: ["old"])
        #expect(
            q.prepare(id: nil, episodes: specs(0), generatedId: "g")
                == .failure(.badRequest("a batch needs 1 to 100000 episodes, got 0"))
        )
        guard case .failure(.badRequest(let why)) = q.prepare(id: "../x", episodes: specs(1), generatedId: "g") else {
            Issue.record("a path in a batch id was accepted")
            return
        }
        #expect(why.contains("batch id"))
        #expect(
            q.prepare(id: "old", episodes: specs(1), generatedId: "g")
                == .failure(.conflict("batch id old is already taken on this coordinator; choose another"))
        )
        #expect(batch(q.prepare(id: "new", episodes: specs(2), generatedId: "g"))?.id == "new")
        #expect(batch(q.prepare(id: nil, episodes: specs(2), generatedId: "g"))?.episodes.count == 2)
    }

    @Test func aGeneratedIdSkipsTheTakenOnes() {
        var q = BatchQueue(output: output, takenIds: ["g"])
        let second = batch(q.prepare(id: nil, episodes: specs(1), generatedId: "g"))!
        #expect(second.id == "g-2")
        q.enqueue(second, at: date)
        #expect(batch(q.prepare(id: nil, episodes: specs(1), generatedId: "g"))?.id == "g-3")
        // Listed ids are taken too, and so are ids of batches started without being queued.
        q.started(Batch(id: "oneshot", episodes: specs(1)), at: date)
        #expect(q.prepare(id: "oneshot", episodes: specs(1), generatedId: "x").isConflict)
    }

    @Test func queuedBatchesAreListedWithTheirPlaceAndRunInOrder() {
        var q = BatchQueue(output: output, queued: [Batch(id: "a", episodes: specs(1))])
        q.enqueue(Batch(id: "b", episodes: specs(2)), at: date)
        q.enqueue(Batch(id: "c", episodes: specs(3)), at: date)
        #expect(q.live(running: nil).map(\.position) == [1, 2, 3])
        #expect(q.live(running: nil).map(\.folder) == ["/srv/out/a", "/srv/out/b", "/srv/out/c"])
        #expect(q.listings[1].submittedAt == "2026-11-30T00:53:20.000Z")

        let a = q.popNext()!
        q.started(a, at: date)
        let live = q.live(running: ("a", 1, 0))
        #expect(live.map(\.state) == [.running, .queued, .queued])
        #expect(live.map(\.position) == [nil, 1, 2])
        #expect(live[0].succeeded == 1 && live[0].startedAt != nil)
        #expect(q.popNext()?.id == "b" && q.popNext()?.id == "c" && q.popNext() == nil)
    }

    @Test func aFinishedBatchRaisesTheAttemptFloorsAndKeepsItsFiles() {
        var q = BatchQueue(output: output, floors: ["episode_1": 2])
        let a = Batch(id: "a", episodes: specs(2))
        q.started(a, at: date)
        q.finished(
            "a",
            complete: false,
            succeeded: 1,
            failed: 0,
            attempts: [(id: "episode_1", attempts: 1), (id: "episode_2", attempts: 3)],
            at: date
        )
        #expect(q.floors == ["episode_1": 2, "episode_2": 3])
        #expect(q.batchesDone == 1)
        q.filesWritten("a", summary: "/srv/out/a/summary.json", report: nil)
        let listing = q.live(running: nil)[0]
        #expect(listing.state == .interrupted && listing.succeeded == 1 && listing.finishedAt != nil)
        #expect(listing.summary == "/srv/out/a/summary.json" && listing.report == nil)
    }

    @Test func theListingKeepsTheNewestThousandFinishedBatches() {
        let finished = (0..<BatchQueue.finishedKept).map {
            BatchListing(id: "old-\($0)", state: .completed, episodes: 1)
        }
        var q = BatchQueue(output: output, finished: finished, queued: [Batch(id: "waiting", episodes: specs(1))])
        #expect(q.listings[0].summary == "/srv/out/old-0/summary.json")
        let next = Batch(id: "new", episodes: specs(1))
        q.started(next, at: date)
        q.finished("new", complete: true, succeeded: 1, failed: 0, attempts: [], at: date)
        #expect(q.listings.count == BatchQueue.finishedKept + 1)
        #expect(q.listings.first?.id == "old-1", "the oldest finished batch left the listing")
        #expect(q.listings.contains { $0.id == "waiting" && $0.state == .queued })
        // An id that left the listing is still taken.
        #expect(q.prepare(id: "old-0", episodes: specs(1), generatedId: "g").isConflict)
    }
}

extension Result where Failure == ControlError {
    var isConflict: Bool {
        if case .failure(.conflict) = self { return true }
        return false
    }
}

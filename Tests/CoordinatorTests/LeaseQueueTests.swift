import Protocol
import Shared
import Testing

@testable import Coordinator

/// The lease manager's waiting queue against the sorted array it replaced (the reference model here):
/// the same order, the same requests removed, the same count of calls, after any mix of operations.
@Suite struct LeaseQueueTests {
    typealias Entry = LeaseQueue.Entry
    let t0 = ContinuousClock.now

    func entry(_ seq: Int, priority: Int, session: String = "w1", id: String? = nil, calls: Int = 1) -> Entry {
        Entry(
            session: session,
            requestId: id ?? "r\(seq)",
            remaining: calls,
            units: 0,
            priority: priority,
            seq: seq,
            arrived: t0
        )
    }

    /// The array the manager kept before: a linear sorted insert, removals by filtering.
    struct Model {
        var entries: [Entry] = []
        var calls: Int { entries.reduce(0) { $0 + $1.remaining } }

        mutating func insert(_ e: Entry) {
            let index = entries.firstIndex { ($0.priority, $0.seq) > (e.priority, e.seq) } ?? entries.endIndex
            entries.insert(e, at: index)
        }
    }

    func drain(_ queue: inout LeaseQueue) -> [Int] {
        var seqs: [Int] = []
        while let e = queue.removeFirst() { seqs.append(e.seq) }
        return seqs
    }

    @Test func servesByPriorityThenArrival() {
        var q = LeaseQueue()
        q.insert(entry(0, priority: 5))
        q.insert(entry(1, priority: 9))
        q.insert(entry(2, priority: 2))
        q.insert(entry(3, priority: 2))
        q.insert(entry(4, priority: 5))
        let head = q.first()
        #expect(head?.seq == 2)
        let order = drain(&q)
        #expect(order == [2, 3, 0, 4, 1])
        let none = q.first()
        #expect(q.isEmpty && q.calls == 0 && none == nil)
    }

    @Test func aRemovedHeadIsSkippedAndTheCallsAreCounted() {
        var q = LeaseQueue()
        q.insert(entry(0, priority: 1, session: "a", calls: 3))
        q.insert(entry(1, priority: 2, session: "b", calls: 2))
        q.insert(entry(2, priority: 3, session: "a", calls: 4))
        #expect(q.calls == 9)
        q.setRemaining(1, of: 0)
        let head = q.first()
        #expect(q.calls == 7 && head?.remaining == 1)
        let cancelled = q.remove(session: "a", requestId: "r0")
        #expect(cancelled.map(\.seq) == [0])
        let next = q.first()
        #expect(next?.seq == 1 && q.calls == 6)
        // Another session's id is not touched; an unknown one changes nothing.
        let foreign = q.remove(session: "b", requestId: "r2")
        let unknown = q.remove(session: "zz", requestId: "r1")
        #expect(foreign.isEmpty && unknown.isEmpty && q.calls == 6)
        let left = q.removeAll(session: "a")
        #expect(left.map(\.seq) == [2])
        #expect(q.count == 1 && q.calls == 2)
        let rest = q.removeAll()
        #expect(rest.map(\.seq) == [1])
        #expect(q.isEmpty && q.calls == 0)
    }

    @Test func removeAllReturnsTheServingOrderAndEmptiesTheQueue() {
        var q = LeaseQueue()
        for (seq, priority) in [(0, 7), (1, 3), (2, 7), (3, 1), (4, 3)] { q.insert(entry(seq, priority: priority)) }
        _ = q.remove(session: "w1", requestId: "r1")
        let all = q.removeAll()
        #expect(all.map(\.seq) == [3, 4, 0, 2])
        let none = q.removeFirst()
        #expect(q.isEmpty && q.calls == 0 && none == nil)
        q.insert(entry(9, priority: 0))
        let head = q.first()
        #expect(head?.seq == 9)
    }

    /// Most of a large queue cancelled (the heap is rebuilt on the way): what is left keeps its order.
    @Test func orderSurvivesRebuildingTheHeap() {
        var q = LeaseQueue()
        var model = Model()
        var rng = SplitMix64(seed: 7)
        for seq in 0..<2_000 {
            let e = entry(seq, priority: Int(rng.next() % 50), session: "w\(seq % 10)")
            q.insert(e)
            model.insert(e)
        }
        for seq in 0..<2_000 where rng.next() % 10 != 0 {
            let removed = q.remove(session: "w\(seq % 10)", requestId: "r\(seq)")
            #expect(removed.map(\.seq) == [seq])
            model.entries.removeAll { $0.seq == seq }
        }
        #expect(q.count == model.entries.count && q.calls == model.calls)
        let order = drain(&q)
        #expect(order == model.entries.map(\.seq))
    }

    /// Random operations, the same on the queue and the model, compared after each one.
    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func matchesTheSortedArrayUnderRandomOperations(seed: UInt64) {
        var q = LeaseQueue()
        var model = Model()
        var rng = SplitMix64(seed: seed)
        var nextSeq = 0
        let sessions = ["a", "b", "c", "d", "e"]
        for step in 0..<3_000 {
            switch rng.next() % 10 {
            case 0...3:
                // Few priorities, so that ties are common; now and then a request id a session already
                // queued (the manager refuses those, but the queue must keep both).
                let session = sessions[Int(rng.next() % 5)]
                let id = rng.next() % 8 == 0 ? "dup" : "r\(nextSeq)"
                let e = entry(
                    nextSeq,
                    priority: Int(rng.next() % 20),
                    session: session,
                    id: id,
                    calls: 1 + Int(rng.next() % 3)
                )
                nextSeq += 1
                q.insert(e)
                model.insert(e)
            case 4, 5:
                let removed = q.removeFirst()
                #expect(removed?.seq == model.entries.first?.seq, "step \(step)")
                if !model.entries.isEmpty { model.entries.removeFirst() }
            case 6:
                if let head = q.first(), head.remaining > 1 {
                    q.setRemaining(head.remaining - 1, of: head.seq)
                    model.entries[0].remaining -= 1
                }
            case 7:
                let session = sessions[Int(rng.next() % 5)]
                let id = rng.next() % 4 == 0 ? "dup" : "r\(Int(rng.next() % UInt64(nextSeq + 1)))"
                let removed = q.remove(session: session, requestId: id).map(\.seq).sorted()
                let expected = model.entries.filter { $0.session == session && $0.requestId == id }.map(\.seq)
                #expect(removed == expected.sorted(), "step \(step)")
                model.entries.removeAll { $0.session == session && $0.requestId == id }
            case 8:
                if rng.next() % 8 == 0 {
                    let session = sessions[Int(rng.next() % 5)]
                    let removed = q.removeAll(session: session).map(\.seq).sorted()
                    #expect(removed == model.entries.filter { $0.session == session }.map(\.seq).sorted())
                    model.entries.removeAll { $0.session == session }
                }
            default:
                if rng.next() % 50 == 0 {
                    let all = q.removeAll()
                    #expect(all == model.entries, "step \(step)")
                    model.entries = []
                }
            }
            #expect(q.count == model.entries.count, "step \(step)")
            #expect(q.calls == model.calls, "step \(step)")
            let head = q.first()
            #expect(head == model.entries.first, "step \(step)")
        }
        let order = drain(&q)
        #expect(order == model.entries.map(\.seq))
    }
}

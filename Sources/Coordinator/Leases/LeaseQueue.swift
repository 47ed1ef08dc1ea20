import HeapModule

/// The calls waiting for one provider's permits, in the order they are served: by priority (the episode's
/// dispatch order, lower first), then by arrival (`seq`).
///
/// A heap of positions beside a table of the requests: a request joins, or leaves the front, in
/// O(log n); any request leaves by its session and id in O(1) (its position stays in the heap and is
/// dropped when it reaches the top, and the heap is rebuilt once most of it is such leftovers); the calls
/// waiting are counted as they change. The ``LeaseManager`` keeps one per provider; it was a sorted array,
/// copied and searched on every request and grant, quadratic in the backlog.
struct LeaseQueue: Sendable {
    typealias Instant = ContinuousClock.Instant

    /// One queued request (or what is left of it).
    struct Entry: Sendable, Equatable {
        var session: String
        var requestId: String
        /// Calls still to grant.
        var remaining: Int
        var units: Int
        /// Lower is served first.
        var priority: Int
        /// Arrival order, unique across the queue: ties of priority go to the earlier request.
        var seq: Int
        var arrived: Instant
    }

    /// Where an entry stands in the serving order.
    private struct Position: Comparable, Sendable {
        var priority: Int
        var seq: Int

        init(priority: Int, seq: Int) {
            self.priority = priority
            self.seq = seq
        }

        init(_ entry: Entry) { self.init(priority: entry.priority, seq: entry.seq) }

        static func < (a: Position, b: Position) -> Bool { (a.priority, a.seq) < (b.priority, b.seq) }
    }

    private var order = Heap<Position>()
    /// The entries still waiting, by `seq`. A position whose entry is gone is a leftover.
    private var entries: [Int: Entry] = [:]
    /// `seq`s by session, then request id (a session may, in principle, queue one id twice).
    private var bySession: [String: [String: [Int]]] = [:]
    /// Calls waiting: the sum of every entry's `remaining`.
    private(set) var calls = 0

    init() {}

    /// Requests waiting.
    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }

    /// Queues `entry`; its `seq` must not be queued already.
    mutating func insert(_ entry: Entry) {
        precondition(entries[entry.seq] == nil, "seq \(entry.seq) is queued already")
        entries[entry.seq] = entry
        bySession[entry.session, default: [:]][entry.requestId, default: []].append(entry.seq)
        order.insert(Position(priority: entry.priority, seq: entry.seq))
        calls += entry.remaining
    }

    /// The request served next, if any (drops the leftovers on top of the heap on the way).
    mutating func first() -> Entry? {
        while let top = order.min {
            if let entry = entries[top.seq] { return entry }
            order.removeMin()
        }
        return nil
    }

    /// What is left of the queued request `seq`.
    mutating func setRemaining(_ remaining: Int, of seq: Int) {
        guard let before = entries[seq]?.remaining else { return }
        entries[seq]?.remaining = remaining
        calls += remaining - before
    }

    /// Removes the request served next.
    @discardableResult
    mutating func removeFirst() -> Entry? {
        guard let entry = first() else { return nil }
        order.removeMin()
        forget(entry)
        return entry
    }

    /// Removes `session`'s request(s) `requestId`.
    @discardableResult
    mutating func remove(session: String, requestId: String) -> [Entry] {
        guard let seqs = bySession[session]?[requestId] else { return [] }
        let removed = seqs.compactMap { entries[$0] }
        for entry in removed { forget(entry) }
        compactIfMostlyLeftovers()
        return removed
    }

    /// Removes every request of `session`.
    @discardableResult
    mutating func removeAll(session: String) -> [Entry] {
        guard let requests = bySession[session] else { return [] }
        let removed = requests.values.joined().compactMap { entries[$0] }
        for entry in removed { forget(entry) }
        compactIfMostlyLeftovers()
        return removed
    }

    /// Removes every request, returned in serving order.
    mutating func removeAll() -> [Entry] {
        let all = entries.values.sorted { Position($0) < Position($1) }
        self = LeaseQueue()
        return all
    }

    private mutating func forget(_ entry: Entry) {
        entries[entry.seq] = nil
        calls -= entry.remaining
        bySession[entry.session]?[entry.requestId]?.removeAll { $0 == entry.seq }
        if bySession[entry.session]?[entry.requestId]?.isEmpty == true {
            bySession[entry.session]?[entry.requestId] = nil
        }
        if bySession[entry.session]?.isEmpty == true { bySession[entry.session] = nil }
    }

    /// Rebuilds the heap from the entries (O(n)) once leftovers are most of it, so that removals never
    /// let it grow beyond twice what waits.
    private mutating func compactIfMostlyLeftovers() {
        guard order.count > 64, order.count > 2 * entries.count else { return }
        order = Heap(entries.values.map(Position.init))
    }
}

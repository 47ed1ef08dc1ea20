import DequeModule

/// The batch's episodes in submission order (``Dispatcher/episodes``), with what the dispatcher and the
/// status API ask about them on every message and tick kept current as records change, so that none of
/// it takes a pass over a batch of 100,000: the position of each id, how many episodes are in each
/// status, which are running, the latest to finish, and the batch's first dispatch.
struct EpisodeTable: RandomAccessCollection, Sendable {
    struct Counts: Sendable, Equatable {
        var pending = 0
        var running = 0
        var succeeded = 0
        var failed = 0
        var capped = 0

        subscript(status: EpisodeRecord.Status) -> Int {
            get {
                switch status {
                case .pending: pending
                case .running: running
                case .succeeded: succeeded
                case .failed: failed
                case .capped: capped
                }
            }
            set {
                switch status {
                case .pending: pending = newValue
                case .running: running = newValue
                case .succeeded: succeeded = newValue
                case .failed: failed = newValue
                case .capped: capped = newValue
                }
            }
        }
    }

    /// How many of the latest finished episodes ``recentlyFinished`` keeps.
    static let recentCapacity = 1000

    /// The records themselves, e.g. for the journal, which writes them all when a batch begins.
    private(set) var records: [EpisodeRecord]
    private(set) var counts = Counts()
    /// Positions of the episodes whose status is running (in flight, or their files on the way).
    private(set) var running: Set<Int32> = []
    /// Positions of the latest episodes to finish, oldest first; at most ``recentCapacity``.
    private(set) var recentlyFinished: Deque<Int32> = []
    /// When the batch's first attempt was dispatched (the earliest ``EpisodeRecord/firstDispatchedAt``).
    private(set) var firstDispatchedAt: ContinuousClock.Instant?
    /// Each id's position: open addressing over 4-byte slots (position + 1; 0 is free), at most half
    /// full, the ids compared in the records. A `[String: Int]` would hold a second copy of every id,
    /// about 60 bytes an episode at 100,000; this is about 10.
    private var slots: [Int32]

    init(_ records: [EpisodeRecord] = []) {
        self.records = records
        var capacity = 16
        while capacity < 2 * records.count { capacity *= 2 }
        slots = Array(repeating: 0, count: capacity)
        for (position, record) in records.enumerated() {
            counts[record.status] += 1
            if record.status == .running { running.insert(Int32(position)) }
            if let t = record.firstDispatchedAt, firstDispatchedAt.map({ t < $0 }) ?? true { firstDispatchedAt = t }
            // A later record with the same id wins, as in a dictionary.
            let slot = find(record.id)
            slots[slot] = Int32(position + 1)
        }
    }

    var startIndex: Int { 0 }
    var endIndex: Int { records.count }

    subscript(position: Int) -> EpisodeRecord {
        get { records[position] }
        set {
            let old = records[position].status
            assert(newValue.id == records[position].id, "a record keeps its id")
            records[position] = newValue
            if old != newValue.status {
                counts[old] -= 1
                counts[newValue.status] += 1
                if old == .running { running.remove(Int32(position)) }
                if newValue.status == .running { running.insert(Int32(position)) }
                if newValue.isFinished {
                    if recentlyFinished.count == Self.recentCapacity { recentlyFinished.removeFirst() }
                    recentlyFinished.append(Int32(position))
                }
            }
            if let t = newValue.firstDispatchedAt, firstDispatchedAt.map({ t < $0 }) ?? true {
                firstDispatchedAt = t
            }
        }
    }

    /// The position of the episode with this id.
    func position(of id: String) -> Int? {
        let position = slots[find(id)]
        return position == 0 ? nil : Int(position) - 1
    }

    /// The slot that holds `id`, or the free slot where it would go.
    private func find(_ id: String) -> Int {
        let mask = slots.count - 1
        var slot = id.hashValue & mask
        while slots[slot] != 0, records[Int(slots[slot]) - 1].id != id {
            slot = (slot + 1) & mask
        }
        return slot
    }
}

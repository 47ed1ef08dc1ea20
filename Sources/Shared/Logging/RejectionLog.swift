/// Counts rejected messages by reason and says which ones to log: the first 10 of each reason, then
/// every 100th, so that a flood of bad input cannot flood the log while every rejection is still counted.
public struct RejectionLog: Sendable, Equatable {
    public private(set) var counts: [String: Int] = [:]

    public init() {}

    /// Records one rejection; returns its running count for `reason` and whether to log it.
    public mutating func record(_ reason: String) -> (count: Int, shouldLog: Bool) {
        let n = counts[reason, default: 0] + 1
        counts[reason] = n
        return (n, n <= 10 || n % 100 == 0)
    }

    public var total: Int { counts.values.reduce(0, +) }
}

/// A hash that is the same in every process and on every machine (unlike Swift's `Hasher`, which is
/// seeded per process): FNV-1a over the bytes, finished with SplitMix64 so that nearby inputs give
/// unrelated outputs.
struct StableHash: Sendable {
    private(set) var state: UInt64 = 0xcbf2_9ce4_8422_2325

    init() {}

    mutating func combine(_ bytes: some Sequence<UInt8>) {
        for byte in bytes {
            state ^= UInt64(byte)
            state &*= 0x0000_0100_0000_01b3
        }
    }

    mutating func combine(_ value: UInt64) {
        combine((0..<8).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) })
    }

    /// Strings are followed by a 0xFF byte (never part of UTF-8), so ("ab", "c") and ("a", "bc") differ.
    mutating func combine(_ string: String) {
        combine(string.utf8)
        combine(CollectionOfOne(UInt8(0xFF)))
    }

    /// The mixed 64-bit result.
    var value: UInt64 { Self.splitMix64(state) }

    /// The result as a number in `0..<1`.
    var unitInterval: Double { Double(value >> 11) * 0x1.0p-53 }

    static func splitMix64(_ input: UInt64) -> UInt64 {
        var z = input &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// The hash of a seed and some strings, in order.
    static func of(_ seed: UInt64, _ parts: [String]) -> StableHash {
        var hash = StableHash()
        hash.combine(seed)
        for part in parts { hash.combine(part) }
        return hash
    }
}

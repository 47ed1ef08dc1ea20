/// Process-independent hashing and seeded randomness, so the same request gives the same reply and the same
/// configuration injects the same failures on every run (Swift's `Hasher` is seeded per process).
enum StableHash {
    /// FNV-1a, 64 bits.
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }
}

/// SplitMix64: a tiny, fast generator whose whole state is one integer, good enough for test fixtures.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value in [0, 1) that depends only on its inputs.
    static func unit(_ inputs: UInt64...) -> Double {
        var generator = SplitMix64(seed: 0)
        for input in inputs {
            generator = SplitMix64(seed: generator.next() ^ input)
        }
        return Double(generator.next() >> 11) * 0x1.0p-53
    }
}

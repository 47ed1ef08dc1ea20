import Testing

@testable import Protocol

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny deterministic generator, so a failure reproduces.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Mutates valid encodings and checks that decoding either throws a ``DecodeError`` or yields a
/// message that survives another encode/decode unchanged. A trap fails the whole test process.
@Suite("Codec: fuzzing")
struct FuzzTests {
    /// Byte strings a mutation splices into a body: JSON structure, boundary numbers, hostile strings.
    private static let tokens: [[UInt8]] =
        [
            "{", "}", "[", "]", "\"", ":", ",", "\\", "\\u", "\\ud800", "\\u0000", "null", "true", "false",
            "0", "-1", "1.5", "1e309", "-0", "9223372036854775807", "9223372036854775808", "18446744073709551616",
            "1000000", "1000001", "1024", "1025", "\"\"", "\".\"", "\"..\"", "\"a/b\"", "[]", "{}",
            "\"succeeded\"", "\"failed\"", "\"unknown_session\"", "\"render\"", "\"call_end\"",
            "{\"x\":[[[[[[[[]]]]]]]]}", "\"episode_id\"", "\"attempt\"", "\"running\"",
        ].map { Array($0.utf8) } + [[0x00], [0xFF], [0xC3], [0xE2, 0x82], [0xF0, 0x9F, 0x8E, 0xAC], [0x7F], [0x0A]]

    @Test("20 000 mutated messages never trap", arguments: [0x5EED_0001 as UInt64, 0xC0FF_EE42])
    func fuzz(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let seeds = Fixtures.samples.map { Codec.encode($0.envelope) }
        var outcomes: [String: Int] = [:]
        for _ in 0..<10_000 {
            var frames = seeds.randomElement(using: &rng)!
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                Self.mutate(&frames, seeds: seeds, rng: &rng)
            }
            do {
                let envelope = try Codec.decode(frames)
                outcomes["ok", default: 0] += 1
                let again = try Codec.decode(Codec.encode(envelope))
                #expect(
                    again == envelope,
                    "re-decode differs for \(frames.map { String(decoding: $0, as: UTF8.self) })"
                )
            } catch {
                #expect(!error.detail.isEmpty)
                outcomes[error.code.rawValue, default: 0] += 1
            }
        }
        // The mutations must reach deep into the decoder, not just bounce off the frame checks.
        #expect((outcomes["ok"] ?? 0) > 100, "\(outcomes)")
        for code in [
            "malformed_body", "invalid_field", "unknown_kind", "frame_count", "unexpected_blobs", "bad_session",
        ] {
            #expect((outcomes[code] ?? 0) > 0, "\(code) never produced: \(outcomes)")
        }
    }

    private static func mutate(_ frames: inout [[UInt8]], seeds: [[[UInt8]]], rng: inout SplitMix64) {
        // Most mutations target the body, where the parser lives.
        let index: Int
        if frames.isEmpty {
            frames.append([])
            return
        } else if frames.count > 3, Int.random(in: 0..<10, using: &rng) < 7 {
            index = 3
        } else {
            index = Int.random(in: 0..<frames.count, using: &rng)
        }
        var frame = frames[index]
        switch Int.random(in: 0..<11, using: &rng) {
        case 0:  // flip a bit
            if !frame.isEmpty {
                let i = Int.random(in: 0..<frame.count, using: &rng)
                frame[i] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
            }
        case 1:  // insert a random byte
            frame.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...frame.count, using: &rng))
        case 2:  // delete a run of bytes
            if !frame.isEmpty {
                let start = Int.random(in: 0..<frame.count, using: &rng)
                let end = min(frame.count, start + Int.random(in: 1...8, using: &rng))
                frame.removeSubrange(start..<end)
            }
        case 3:  // truncate
            frame = Array(frame.prefix(Int.random(in: 0...frame.count, using: &rng)))
        case 4, 5:  // splice in a token
            let token = tokens.randomElement(using: &rng)!
            let at = Int.random(in: 0...frame.count, using: &rng)
            let cut = min(frame.count - at, Int.random(in: 0...6, using: &rng))
            frame.replaceSubrange(at..<(at + cut), with: token)
        case 6:  // replace a number with a boundary value
            if let start = frame.indices.filter({ (0x30...0x39).contains(frame[$0]) }).randomElement(using: &rng) {
                var end = start
                while end < frame.count, (0x30...0x39).contains(frame[end]) { end += 1 }
                let numbers = [
                    "0", "-1", "1", "1024", "1025", "50", "51", "100000", "1000000", "2147483648",
                    "99999999999999999999",
                ]
                frame.replaceSubrange(start..<end, with: Array(numbers.randomElement(using: &rng)!.utf8))
            }
        case 7:  // take the same frame from another message
            let other = seeds.randomElement(using: &rng)!
            if index < other.count { frame = other[index] }
        case 8:  // splice the tail of another message's body
            let other = seeds.randomElement(using: &rng)!
            if other.count > 3 {
                let from = Int.random(in: 0...other[3].count, using: &rng)
                frame = Array(frame.prefix(Int.random(in: 0...frame.count, using: &rng))) + other[3][from...]
            }
        case 9:  // change the frame count
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: frames.remove(at: index)
            case 1: frames.insert(frame, at: index)
            case 2: frames.append(Array(repeating: 0x42, count: Int.random(in: 0...16, using: &rng)))
            default: frames = Array(frames.prefix(Int.random(in: 0...frames.count, using: &rng)))
            }
            return
        default:  // another kind byte, known, reserved or unknown
            let kinds: [UInt8] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x00, 0x09, 0x10, 0x21, 0x7F, 0xFF]
            if frames.count > 1 { frames[1] = [kinds.randomElement(using: &rng)!] }
            return
        }
        frames[index] = frame
    }
}

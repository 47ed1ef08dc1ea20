import Foundation
import Testing

@testable import Protocol

/// The fuzz target's seed corpus (fuzz/corpus/codec): every sample message of the protocol tests in the
/// target's input format. `REELFARM_FUZZ_SEEDS=DIR swift test --filter FuzzSeedTests` writes them; the test
/// itself checks that the format reads back to the same frames (so the seeds mean what they say).
@Suite struct FuzzSeedTests {
    static func seed(_ frames: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = [UInt8(frames.count)]
        for frame in frames {
            out += [UInt8(frame.count & 0xFF), UInt8(frame.count >> 8)]
            out += frame
        }
        return out
    }

    /// The fuzz target's reading of its input (fuzz/CodecFuzz.swift), for the round-trip check below.
    static func frames(_ bytes: [UInt8]) -> [[UInt8]] {
        guard let first = bytes.first else { return [] }
        var frames: [[UInt8]] = []
        var i = 1
        for _ in 0..<Int(first % 8) {
            guard i + 2 <= bytes.count else { break }
            let length = Int(bytes[i]) | Int(bytes[i + 1]) << 8
            i += 2
            let end = min(bytes.count, i + length)
            frames.append(Array(bytes[i..<end]))
            i = end
        }
        return frames
    }

    @Test func everySampleIsASeed() throws {
        let dir = ProcessInfo.processInfo.environment["REELFARM_FUZZ_SEEDS"].map { URL(fileURLWithPath: $0) }
        for sample in Fixtures.samples {
            let frames = Codec.encode(sample.envelope)
            guard frames.allSatisfy({ $0.count < 65536 }) else { continue }
            let seed = Self.seed(frames)
            #expect(Self.frames(seed) == frames, "\(sample.name)")
            #expect(try Codec.decode(Self.frames(seed)) == sample.envelope)
            if let dir {
                try Data(seed).write(
                    to: dir.appendingPathComponent(sample.name.replacingOccurrences(of: " ", with: "_"))
                )
            }
        }
    }
}

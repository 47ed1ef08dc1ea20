// libFuzzer target for the wire protocol's codec (Sources/Protocol), built by fuzz/run with
// `swiftc -sanitize=fuzzer,address` together with the Protocol sources (one module, no SwiftPM).
//
// Input format: the fuzzer's bytes are cut into frames: byte 0 is the frame count (mod 8), then each frame
// is a 2-byte little-endian length and that many bytes (cut short at the end of the input). So every input
// is some list of frames, and the seeds in fuzz/corpus/codec are real messages of every kind.
//
// Properties checked on every input:
//  1. Codec.decode never crashes, traps or reads out of bounds (AddressSanitizer, Swift's own checks).
//  2. What decodes, re-encodes to frames that decode to the same envelope (the codec is its own inverse).
import Foundation

func frames(from bytes: UnsafeBufferPointer<UInt8>) -> [[UInt8]] {
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

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCodec(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = frames(from: UnsafeBufferPointer(start: data, count: size))
    guard let envelope = try? Codec.decode(input) else { return 0 }
    let again: Envelope
    do {
        again = try Codec.decode(Codec.encode(envelope))
    } catch {
        fatalError("a decoded envelope does not decode after re-encoding: \(error) \(envelope)")
    }
    if again != envelope {
        fatalError("the codec does not round-trip: \(envelope) became \(again)")
    }
    return 0
}

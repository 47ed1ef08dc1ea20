import Foundation

/// Writes RIFF/WAVE files: 16-bit signed little-endian PCM, mono, 22 050 Hz (what espeak-ng writes).
///
/// The mock only ever produces WAV, whatever format the client asked for.
enum WAVWriter {
    static let sampleRate = 22_050
    static let bitsPerSample = 16
    static let channels = 1
    /// Seconds of audio per word of input text.
    static let secondsPerWord = 0.4
    /// The shortest clip, in seconds.
    static let minimumSeconds = 0.5
    /// The longest clip, in seconds, so a 4 096-character input stays a few megabytes.
    static let maximumSeconds = 120.0
    /// The size of the RIFF header before the first sample.
    static let headerSize = 44

    /// The clip length for `text`: 0.4 s per whitespace-separated word, at least 0.5 s, at most 120 s.
    static func duration(forText text: String) -> Double {
        let words = text.split(whereSeparator: { $0.isWhitespace }).count
        return min(max(Double(words) * secondsPerWord, minimumSeconds), maximumSeconds)
    }

    /// A WAV file holding a quiet 441 Hz tone (amplitude about -30 dBFS) lasting `seconds`.
    static func tone(seconds: Double) -> [UInt8] {
        let sampleCount = Int((seconds * Double(sampleRate)).rounded())
        var bytes = header(sampleCount: sampleCount)
        bytes.reserveCapacity(headerSize + sampleCount * 2)
        // 22 050 / 441 = 50 samples per period, so one precomputed period repeats exactly.
        let period = (0..<50).map { index in
            Int16((1_000 * sin(2 * Double.pi * Double(index) / 50)).rounded())
        }
        for index in 0..<sampleCount {
            let sample = UInt16(bitPattern: period[index % 50])
            bytes.append(UInt8(truncatingIfNeeded: sample))
            bytes.append(UInt8(truncatingIfNeeded: sample >> 8))
        }
        return bytes
    }

    /// A spoiled clip for `malformed` failures: the header promises the full clip but only 0.01 s of samples follow.
    static func truncated(forText text: String) -> [UInt8] {
        let full = tone(seconds: duration(forText: text))
        return Array(full.prefix(headerSize + sampleRate / 100 * 2))
    }

    /// The 44-byte canonical header for `sampleCount` mono 16-bit samples.
    static func header(sampleCount: Int) -> [UInt8] {
        let dataSize = UInt32(sampleCount * channels * bitsPerSample / 8)
        let byteRate = UInt32(sampleRate * channels * bitsPerSample / 8)
        let blockAlign = UInt16(channels * bitsPerSample / 8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(headerSize)
        bytes.append(contentsOf: Array("RIFF".utf8))
        bytes.appendLittleEndian(UInt32(36) + dataSize)
        bytes.append(contentsOf: Array("WAVE".utf8))
        bytes.append(contentsOf: Array("fmt ".utf8))
        bytes.appendLittleEndian(UInt32(16))  // fmt chunk size
        bytes.appendLittleEndian(UInt16(1))  // PCM
        bytes.appendLittleEndian(UInt16(channels))
        bytes.appendLittleEndian(UInt32(sampleRate))
        bytes.appendLittleEndian(byteRate)
        bytes.appendLittleEndian(blockAlign)
        bytes.appendLittleEndian(UInt16(bitsPerSample))
        bytes.append(contentsOf: Array("data".utf8))
        bytes.appendLittleEndian(dataSize)
        return bytes
    }
}

extension [UInt8] {
    mutating func appendLittleEndian(_ value: UInt16) {
        append(UInt8(truncatingIfNeeded: value))
        append(UInt8(truncatingIfNeeded: value >> 8))
    }

    mutating func appendLittleEndian(_ value: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) {
            append(UInt8(truncatingIfNeeded: value >> UInt32(shift)))
        }
    }

    mutating func appendBigEndian(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) {
            append(UInt8(truncatingIfNeeded: value >> UInt32(shift)))
        }
    }
}

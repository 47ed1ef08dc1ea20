import Foundation

/// Just enough of RIFF/WAVE for the worker: the duration of a PCM file, and writing silence.
enum WAVFile {
    /// The duration from the `fmt ` and `data` chunks of a PCM WAV file, or `nil` if the file is not one
    /// (or was written to a pipe with an unknown data size).
    static func duration(of file: URL) -> Duration? {
        guard let handle = try? FileHandle(forReadingFrom: file) else { return nil }
        defer { try? handle.close() }
        guard let header = try? handle.read(upToCount: 4_096) else { return nil }
        let fileSize = try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int
        return duration(header: [UInt8](header), fileSize: fileSize)
    }

    /// Parses the header bytes (the first few KiB of the file).
    static func duration(header bytes: [UInt8], fileSize: Int?) -> Duration? {
        guard bytes.count >= 12, bytes[0..<4].elementsEqual("RIFF".utf8), bytes[8..<12].elementsEqual("WAVE".utf8)
        else { return nil }
        var offset = 12
        var byteRate: UInt32?
        while offset + 8 <= bytes.count {
            let id = bytes[offset..<offset + 4]
            let size = Int(littleEndian32(bytes, offset + 4))
            let body = offset + 8
            if id.elementsEqual("fmt ".utf8), body + 12 <= bytes.count {
                byteRate = littleEndian32(bytes, body + 8)
            } else if id.elementsEqual("data".utf8) {
                guard let byteRate, byteRate > 0 else { return nil }
                var dataSize = size
                if let fileSize {
                    // espeak-ng --stdout and streamed writers leave 0 or 0x7fffffff here.
                    let available = max(0, fileSize - body)
                    if dataSize == 0 || dataSize > available { dataSize = available }
                }
                return .nanoseconds(Int64(dataSize) * 1_000_000_000 / Int64(byteRate))
            }
            offset = body + size + (size & 1)
        }
        return nil
    }

    /// Writes `duration` of silence: 16-bit mono PCM at `sampleRate`.
    static func writeSilence(to file: URL, duration: Duration, sampleRate: Int = 22_050) throws {
        let samples = Int(((duration / .seconds(1)) * Double(sampleRate)).rounded())
        let dataSize = samples * 2
        var bytes: [UInt8] = []
        bytes.reserveCapacity(44 + dataSize)
        bytes += Array("RIFF".utf8) + le32(36 + dataSize) + Array("WAVE".utf8)
        bytes += Array("fmt ".utf8) + le32(16) + le16(1) + le16(1) + le32(sampleRate) + le32(sampleRate * 2)
        bytes += le16(2) + le16(16)
        bytes += Array("data".utf8) + le32(dataSize)
        bytes += repeatElement(0, count: dataSize)
        try Data(bytes).write(to: file, options: .atomic)
    }

    private static func littleEndian32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) }
    }

    private static func le32(_ value: Int) -> [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }

    private static func le16(_ value: Int) -> [UInt8] {
        (0..<2).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }
}

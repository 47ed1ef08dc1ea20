import Foundation

/// Just enough of RIFF/WAVE for the worker: the header of a file (from espeak-ng, ffmpeg or a provider's
/// answer, so read as untrusted bytes), its playing time, whether it was cut off, and writing PCM.
enum WAVFile {
    /// What a WAV file's `fmt ` and `data` chunk headers say.
    struct Header: Equatable {
        /// The `fmt ` chunk's format tag: 1 PCM, 3 IEEE float, 6 A-law, 7 µ-law, 0xFFFE extensible.
        var format: UInt16
        var channels: UInt16
        var sampleRate: UInt32
        /// Bytes per second of audio (never 0).
        var byteRate: UInt32
        /// Where the `data` chunk's bytes start.
        var dataOffset: Int
        /// The size the `data` chunk's header declares: 0 or `0xFFFFFFFF` (or `0x7FFFFFFF`) when a streaming
        /// writer could not know it, more than is there when the file was cut off.
        var declaredDataSize: UInt32
    }

    /// Why bytes are not a WAV file this reader can time.
    struct FormatError: Error, Equatable, CustomStringConvertible {
        var message: String

        var description: String { message }
    }

    /// How much of a file's start the header is looked for in: room for a large `LIST` chunk before `data`.
    static let headerLimit = 1 << 20

    /// The formats whose byte rate times the audio exactly (uncompressed, fixed block size).
    private static let constantRateFormats: Set<UInt16> = [1, 3, 6, 7, 0xFFFE]

    /// Reads the header from the first bytes of a file (at most ``headerLimit`` are looked at): the RIFF/WAVE
    /// magic, then chunk by chunk (sizes padded to even, as RIFF pads them) a `fmt ` chunk of at least 16
    /// bytes with an uncompressed format and a non-zero byte rate, then a `data` chunk.
    static func header(_ bytes: [UInt8]) throws(FormatError) -> Header {
        guard bytes.count >= 12, bytes[0..<4].elementsEqual("RIFF".utf8), bytes[8..<12].elementsEqual("WAVE".utf8)
        else { throw FormatError(message: "not a RIFF/WAVE file") }
        let end = min(bytes.count, headerLimit)
        var format: (tag: UInt16, channels: UInt16, sampleRate: UInt32, byteRate: UInt32)?
        var offset = 12
        while offset + 8 <= end {
            let size = Int(le32(bytes, offset + 4))
            let body = offset + 8
            let id = bytes[offset..<offset + 4]
            if id.elementsEqual("fmt ".utf8) {
                guard size >= 16, body + 16 <= end else {
                    throw FormatError(message: "fmt chunk of \(size) bytes (\(end - body) present), needs 16")
                }
                let tag = le16(bytes, body)
                guard constantRateFormats.contains(tag) else {
                    throw FormatError(message: "format 0x\(String(tag, radix: 16)) is compressed, not PCM")
                }
                let channels = le16(bytes, body + 2)
                let byteRate = le32(bytes, body + 8)
                guard channels > 0, byteRate > 0 else {
                    throw FormatError(message: "fmt chunk says \(channels) channels at \(byteRate) bytes per second")
                }
                format = (tag, channels, le32(bytes, body + 4), byteRate)
            } else if id.elementsEqual("data".utf8) {
                guard let format else { throw FormatError(message: "data chunk before the fmt chunk") }
                return Header(
                    format: format.tag,
                    channels: format.channels,
                    sampleRate: format.sampleRate,
                    byteRate: format.byteRate,
                    dataOffset: body,
                    declaredDataSize: UInt32(size)
                )
            }
            // A size that runs past the end ends the walk: the next chunk header is not there.
            offset = body + size + (size & 1)
        }
        throw FormatError(message: format == nil ? "no fmt chunk" : "no data chunk")
    }

    /// The audio bytes a file of `totalSize` bytes with `header` holds: what the `data` chunk declares, but no
    /// more than is there; all that is there when the size was left at 0 by a streaming writer.
    static func audioBytes(_ header: Header, totalSize: Int) -> Int {
        let present = max(0, totalSize - header.dataOffset)
        let declared = Int(header.declaredDataSize)
        return declared == 0 ? present : min(declared, present)
    }

    /// The playing time of `bytes` (the file's first bytes) from a file of `totalSize` bytes: audio bytes /
    /// byte rate. `nil` when the header does not parse or there is no audio at all.
    static func duration(header bytes: [UInt8], totalSize: Int) -> Duration? {
        guard let header = try? header(bytes) else { return nil }
        let length = audioBytes(header, totalSize: totalSize)
        guard length > 0 else { return nil }
        return .nanoseconds(Int64(length) * 1_000_000_000 / Int64(header.byteRate))
    }

    /// The playing time of a WAV file in memory (a provider's answer).
    static func duration(of data: Data) -> Duration? {
        duration(header: [UInt8](data.prefix(headerLimit)), totalSize: data.count)
    }

    /// The playing time of a WAV file on disk; `nil` when it cannot be read or is not a WAV this reader can time.
    static func duration(of file: URL) -> Duration? {
        guard let handle = try? FileHandle(forReadingFrom: file) else { return nil }
        defer { try? handle.close() }
        guard let head = try? handle.read(upToCount: headerLimit), let size = try? handle.seekToEnd() else {
            return nil
        }
        return duration(header: [UInt8](head), totalSize: Int(size))
    }

    /// Whether a WAV's `data` chunk declares more bytes than are there (a cut-off file). Sizes of 0 or
    /// `0xFFFFFFFF`, which streaming writers leave, declare nothing; bytes that are no WAV are not cut off.
    static func isTruncated(_ data: Data) -> Bool {
        guard let header = try? header([UInt8](data.prefix(headerLimit))) else { return false }
        let declared = header.declaredDataSize
        return declared != 0 && declared != 0xFFFF_FFFF && Int(declared) > data.count - header.dataOffset
    }

    /// Raw little-endian 16-bit PCM samples with a WAV header in front.
    static func wav(pcm16 samples: Data, sampleRate: Int, channels: Int) -> Data {
        let blockAlign = channels * 2
        var header: [UInt8] = []
        header += Array("RIFF".utf8) + le32(36 + samples.count) + Array("WAVE".utf8)
        header += Array("fmt ".utf8) + le32(16) + le16(1) + le16(channels) + le32(sampleRate)
        header += le32(sampleRate * blockAlign) + le16(blockAlign) + le16(16)
        header += Array("data".utf8) + le32(samples.count)
        return Data(header) + samples
    }

    /// Writes `duration` of silence: 16-bit mono PCM at `sampleRate`.
    static func writeSilence(to file: URL, duration: Duration, sampleRate: Int = 22_050) throws {
        let samples = Int(((duration / .seconds(1)) * Double(sampleRate)).rounded())
        try wav(pcm16: Data(count: samples * 2), sampleRate: sampleRate, channels: 1).write(to: file, options: .atomic)
    }

    private static func le32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    }

    private static func le16(_ bytes: [UInt8], _ at: Int) -> UInt16 {
        UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8
    }

    private static func le32(_ value: Int) -> [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }

    private static func le16(_ value: Int) -> [UInt8] {
        (0..<2).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }
}

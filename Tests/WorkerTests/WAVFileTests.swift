import Foundation
import Testing

@testable import Worker

/// The one WAV reader (espeak-ng's files, providers' answers): malformed headers give an error or `nil`,
/// never a trap or a made-up duration.
@Suite struct WAVFileTests {
    /// One second of 16-bit mono PCM at 8 kHz (16,000 bytes of audio, header 44 bytes).
    private let second = WAVFile.wav(pcm16: Data(count: 16_000), sampleRate: 8_000, channels: 1)

    private func withSize(_ wav: Data, of chunk: String, _ size: UInt32) -> Data {
        var wav = wav
        let at = wav.range(of: Data(chunk.utf8))!.upperBound
        wav.replaceSubrange(at..<at + 4, with: withUnsafeBytes(of: size.littleEndian) { Array($0) })
        return wav
    }

    private func header(_ data: Data) throws -> WAVFile.Header {
        try WAVFile.header([UInt8](data))
    }

    @Test func readsTheHeaderOfAPCMFile() throws {
        let header = try header(second)
        #expect(header.format == 1)
        #expect(header.channels == 1)
        #expect(header.sampleRate == 8_000)
        #expect(header.byteRate == 16_000)
        #expect(header.dataOffset == 44)
        #expect(header.declaredDataSize == 16_000)
        #expect(WAVFile.duration(of: second) == .seconds(1))
        #expect(!WAVFile.isTruncated(second))
    }

    @Test func aTruncatedFileCountsTheAudioThatIsThere() {
        let cut = second.prefix(44 + 4_000)
        #expect(WAVFile.isTruncated(cut))
        #expect(WAVFile.duration(of: cut) == .milliseconds(250))
        // Only the header: no audio, no duration.
        #expect(WAVFile.duration(of: second.prefix(44)) == nil)
        // Cut inside the headers.
        for length in [0, 4, 11, 12, 20, 30, 40] {
            #expect(WAVFile.duration(of: second.prefix(length)) == nil, "\(length) bytes")
            #expect(!WAVFile.isTruncated(second.prefix(length)), "\(length) bytes")
        }
    }

    @Test func aStreamedSizeCountsTheBytesPresent() {
        for size: UInt32 in [0, 0x7FFF_FFFF, 0xFFFF_FFFF] {
            #expect(WAVFile.duration(of: withSize(second, of: "data", size)) == .seconds(1), "size \(size)")
        }
        // 0 and 0xFFFFFFFF declare nothing; any other size larger than the file is a cut-off answer.
        #expect(!WAVFile.isTruncated(withSize(second, of: "data", 0)))
        #expect(!WAVFile.isTruncated(withSize(second, of: "data", 0xFFFF_FFFF)))
        #expect(WAVFile.isTruncated(withSize(second, of: "data", 0x7FFF_FFFF)))
    }

    @Test func hugeChunkSizesDoNotTrapOrReadPastTheEnd() {
        // A LIST chunk claiming 4 GiB before the data chunk: the data chunk is never reached.
        let list = Data("LIST".utf8) + Data([0xFF, 0xFF, 0xFF, 0xFF]) + Data("INFO".utf8)
        var wav = second
        wav.insert(contentsOf: list, at: 36)
        #expect(throws: WAVFile.FormatError(message: "no data chunk")) { try header(wav) }
        #expect(WAVFile.duration(of: wav) == nil)
        // A fmt chunk claiming more bytes than the file has.
        let fmt = withSize(second, of: "fmt ", 0xFFFF_FFF0)
        #expect(throws: WAVFile.FormatError(message: "no data chunk")) { try header(fmt) }
    }

    @Test func oddChunksArePadded() throws {
        let list = Data("LIST".utf8) + Data([5, 0, 0, 0]) + Data("INFOx".utf8) + Data([0])
        var wav = second
        wav.insert(contentsOf: list, at: 36)
        #expect(try header(wav).dataOffset == 44 + list.count)
        #expect(WAVFile.duration(of: wav) == .seconds(1))
        // Without the pad byte the next chunk header is misread.
        wav.remove(at: 36 + list.count - 1)
        #expect(WAVFile.duration(of: wav) == nil)
    }

    @Test func missingOrMisplacedChunksAreErrors() {
        #expect(throws: WAVFile.FormatError(message: "not a RIFF/WAVE file")) { try header(Data("RIFF0000WAVX".utf8)) }
        // No data chunk.
        #expect(throws: WAVFile.FormatError(message: "no data chunk")) { try header(second.prefix(36)) }
        // No fmt chunk at all.
        let noFormat =
            Data("RIFF".utf8) + Data([0, 0, 0, 0]) + Data("WAVE".utf8) + Data("data".utf8)
            + Data([4, 0, 0, 0]) + Data(count: 4)
        #expect(throws: WAVFile.FormatError(message: "data chunk before the fmt chunk")) { try header(noFormat) }
        #expect(throws: WAVFile.FormatError(message: "no fmt chunk")) { try header(noFormat.prefix(12)) }
    }

    @Test func formatErrorsAreRefused() {
        // fmt body starts at 20: format tag, channels, sample rate, byte rate.
        var compressed = second
        compressed.replaceSubrange(20..<22, with: [0x55, 0x00])  // MPEG layer 3
        #expect(throws: WAVFile.FormatError(message: "format 0x55 is compressed, not PCM")) { try header(compressed) }
        #expect(WAVFile.duration(of: compressed) == nil)
        var float = second
        float.replaceSubrange(20..<22, with: [0x03, 0x00])
        #expect(WAVFile.duration(of: float) == .seconds(1))
        var silent = second
        silent.replaceSubrange(28..<32, with: [0, 0, 0, 0])  // byte rate 0
        #expect(WAVFile.duration(of: silent) == nil)
        var mute = second
        mute.replaceSubrange(22..<24, with: [0, 0])  // no channels
        #expect(WAVFile.duration(of: mute) == nil)
        let short = withSize(second, of: "fmt ", 14)
        #expect(throws: WAVFile.FormatError(message: "fmt chunk of 14 bytes (\(second.count - 20) present), needs 16"))
        {
            try header(short)
        }
    }

    @Test func readsTheSameFromAFile() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let file = folder.url.appendingPathComponent("cut.wav")
        try withSize(second, of: "data", 0x7FFF_FFFF).prefix(44 + 8_000).write(to: file)
        #expect(WAVFile.duration(of: file) == .milliseconds(500))
        try WAVFile.writeSilence(to: file, duration: .milliseconds(1_500))
        #expect(WAVFile.duration(of: file) == .milliseconds(1_500))
        #expect(WAVFile.duration(of: folder.url.appendingPathComponent("missing.wav")) == nil)
    }
}

import Foundation

/// Reading just enough of audio and image bytes, and writing them into the workspace.
enum MediaFiles {
    /// The playing time of a RIFF/WAVE file: data bytes / byte rate. `nil` when the header does not
    /// parse (not RIFF/WAVE, no `fmt ` before `data`, a zero byte rate). A `data` size larger than what
    /// is there (or 0 or `0xFFFFFFFF`, as streaming writers leave it) counts the bytes actually present;
    /// no audio bytes at all gives `nil`.
    static func wavDuration(_ data: Data) -> Duration? {
        guard let byteRate = wavByteRate(data), let (declared, present) = wavDataSizes(data) else { return nil }
        // Streaming writers leave the size at 0 or 0xFFFFFFFF: count what is there.
        let length = declared == 0 || declared == 0xFFFF_FFFF ? present : min(declared, present)
        guard length > 0 else { return nil }
        return .nanoseconds(Int64(length) * 1_000_000_000 / Int64(byteRate))
    }

    /// The `fmt ` chunk's byte rate, if the file has one before its `data` chunk and it is not zero.
    private static func wavByteRate(_ data: Data) -> UInt32? {
        var rate: UInt32?
        _ = walkWAV(data) { id, body, bytes in
            guard id.elementsEqual("fmt ".utf8), body + 16 <= bytes.count else { return false }
            rate = le32(bytes, body + 8)
            return true
        }
        return rate.flatMap { $0 > 0 ? $0 : nil }
    }

    /// The `data` chunk's declared size and the bytes present after its header, if the file has a
    /// `fmt ` chunk before it.
    private static func wavDataSizes(_ data: Data) -> (declared: Int, present: Int)? {
        var seenFormat = false
        var sizes: (Int, Int)?
        _ = walkWAV(data) { id, body, bytes in
            if id.elementsEqual("fmt ".utf8) { seenFormat = true }
            guard id.elementsEqual("data".utf8) else { return false }
            if seenFormat { sizes = (Int(le32(bytes, body - 4)), max(data.count - body, 0)) }
            return true
        }
        return sizes
    }

    /// Visits the chunks of a RIFF/WAVE file (in its first MiB) until `visit` returns true; `false`
    /// when the bytes are not RIFF/WAVE.
    private static func walkWAV(
        _ data: Data,
        _ visit: (_ id: ArraySlice<UInt8>, _ body: Int, _ bytes: [UInt8]) -> Bool
    ) -> Bool {
        let bytes = [UInt8](data.prefix(1 << 20))
        guard bytes.count >= 12, bytes[0..<4].elementsEqual("RIFF".utf8), bytes[8..<12].elementsEqual("WAVE".utf8)
        else { return false }
        var offset = 12
        while offset + 8 <= bytes.count {
            let size = Int(le32(bytes, offset + 4))
            let body = offset + 8
            if visit(bytes[offset..<offset + 4], body, bytes) { return true }
            offset = body + size + (size & 1)
        }
        return true
    }

    enum ImageFormat: String, Sendable {
        case png, jpeg, webp

        var fileExtension: String {
            switch self {
            case .png: "png"
            case .jpeg: "jpg"
            case .webp: "webp"
            }
        }
    }

    /// PNG, JPEG or WebP from the magic bytes; `nil` for anything else.
    static func imageFormat(_ data: Data) -> ImageFormat? {
        let head = [UInt8](data.prefix(12))
        if head.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if head.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        if head.count >= 12, head[0..<4].elementsEqual("RIFF".utf8), head[8..<12].elementsEqual("WEBP".utf8) {
            return .webp
        }
        return nil
    }

    /// Whether the image ends the way its format must: PNG with its `IEND` chunk, JPEG with its end
    /// marker `FF D9`, WebP with as many bytes as its RIFF header says. A cut-off image fails this.
    static func isComplete(_ data: Data, format: ImageFormat) -> Bool {
        let tail = [UInt8](data.suffix(32))
        switch format {
        case .png:
            let end: [UInt8] = [0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82]
            return data.count >= 8 + 12 && tail.indices.contains { tail[$0...].starts(with: end) }
        case .jpeg:
            return data.count >= 4 && tail.indices.dropLast().contains { tail[$0] == 0xFF && tail[$0 + 1] == 0xD9 }
        case .webp:
            let head = [UInt8](data.prefix(8))
            guard head.count == 8 else { return false }
            let size = Int(le32(head, 4))
            return data.count >= size + 8
        }
    }

    /// Whether a WAV's `data` chunk declares more bytes than are there (a cut-off file). Sizes of 0 or
    /// `0xFFFFFFFF`, which streaming writers leave, declare nothing.
    static func isTruncatedWAV(_ data: Data) -> Bool {
        guard let (declared, present) = wavDataSizes(data) else { return false }
        return declared != 0 && declared != 0xFFFF_FFFF && declared > present
    }

    /// Whether the bytes start like a RIFF/WAVE file.
    static func isWAV(_ data: Data) -> Bool {
        let head = [UInt8](data.prefix(12))
        return head.count == 12 && head[0..<4].elementsEqual("RIFF".utf8) && head[8..<12].elementsEqual("WAVE".utf8)
    }

    /// Base64 (standard or URL-safe, padding optional, whitespace ignored) into bytes, refusing text
    /// that would decode to more than `limit` bytes before decoding it.
    static func decodeBase64(_ text: String, limit: Int) -> Data? {
        guard text.utf8.count / 4 * 3 <= limit + 3 else { return nil }
        var cleaned = String(
            String.UnicodeScalarView(text.unicodeScalars.filter { !CharacterSet.whitespacesAndNewlines.contains($0) })
        )
        cleaned = cleaned.replacing("-", with: "+").replacing("_", with: "/")
        let remainder = cleaned.utf8.count % 4
        if remainder == 1 { return nil }
        if remainder > 0 { cleaned += String(repeating: "=", count: 4 - remainder) }
        guard let data = Data(base64Encoded: cleaned), !data.isEmpty, data.count <= limit else { return nil }
        return data
    }

    /// Raw little-endian 16-bit PCM samples with a WAV header in front.
    static func wav(pcm16 samples: Data, sampleRate: Int, channels: Int) -> Data {
        let blockAlign = channels * 2
        let byteRate = sampleRate * blockAlign
        var header = Data()
        func append(_ text: String) { header.append(contentsOf: Array(text.utf8)) }
        func append32(_ value: Int) {
            withUnsafeBytes(of: UInt32(truncatingIfNeeded: value).littleEndian) { header.append(contentsOf: $0) }
        }
        func append16(_ value: Int) {
            withUnsafeBytes(of: UInt16(truncatingIfNeeded: value).littleEndian) { header.append(contentsOf: $0) }
        }
        append("RIFF")
        append32(36 + samples.count)
        append("WAVE")
        append("fmt ")
        append32(16)
        append16(1)
        append16(channels)
        append32(sampleRate)
        append32(byteRate)
        append16(blockAlign)
        append16(16)
        append("data")
        append32(samples.count)
        return header + samples
    }

    /// Writes `data` to `<workspace>/<name>.<fileExtension>` and returns the path. The name is the
    /// context's item (the workspace's naming contract), or `item` when the context has none.
    ///
    /// - Throws: ``ProviderError`` `clientError` when there is no workspace (the pipeline keeps no
    ///   files, so a real provider cannot work), `toolFailed` when writing fails.
    static func write(_ data: Data, item: String, fileExtension: String, context: CallContext) throws -> String {
        guard let workspace = context.workspace else {
            throw ProviderError(.clientError, "\(item): no workspace to write the file in")
        }
        let name = context.item.isEmpty ? item : context.item
        let url = workspace.appending(path: "\(name).\(fileExtension)", directoryHint: .notDirectory)
        do {
            try data.write(to: url, options: .atomic)
        } catch {
            throw ProviderError(
                .toolFailed,
                "\(item): cannot write \(url.lastPathComponent): \(error.localizedDescription)"
            )
        }
        return url.path
    }

    private static func le32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    }
}

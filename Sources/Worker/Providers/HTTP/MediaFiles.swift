import Foundation

/// Reading just enough of audio and image bytes, and writing them into the workspace.
enum MediaFiles {
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

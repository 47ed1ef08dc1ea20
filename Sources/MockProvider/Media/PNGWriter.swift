/// Writes small, valid PNG files without a compression library: 8-bit RGB, one solid colour, the image data in a
/// zlib stream made of stored (uncompressed) deflate blocks.
enum PNGWriter {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// A PNG of `width`×`height` pixels filled with `color` (red, green, blue).
    static func solid(width: Int, height: Int, color: (UInt8, UInt8, UInt8)) -> [UInt8] {
        precondition(width > 0 && height > 0, "a PNG needs at least one pixel")
        var header: [UInt8] = []
        header.appendBigEndian(UInt32(width))
        header.appendBigEndian(UInt32(height))
        // bit depth 8, colour type 2 (RGB), compression 0, filter 0, no interlace
        header.append(contentsOf: [8, 2, 0, 0, 0])

        // Each scanline: filter byte 0 (None) then the pixels.
        var row: [UInt8] = [0]
        row.reserveCapacity(1 + width * 3)
        for _ in 0..<width {
            row.append(contentsOf: [color.0, color.1, color.2])
        }
        var raw: [UInt8] = []
        raw.reserveCapacity(row.count * height)
        for _ in 0..<height {
            raw.append(contentsOf: row)
        }

        var png = signature
        appendChunk(type: "IHDR", data: header, to: &png)
        appendChunk(type: "IDAT", data: zlibStored(raw), to: &png)
        appendChunk(type: "IEND", data: [], to: &png)
        return png
    }

    /// A colour that depends only on the prompt.
    static func color(for prompt: String) -> (UInt8, UInt8, UInt8) {
        let hash = StableHash.fnv1a(prompt)
        return (
            UInt8(truncatingIfNeeded: hash), UInt8(truncatingIfNeeded: hash >> 8), UInt8(truncatingIfNeeded: hash >> 16)
        )
    }

    /// A spoiled image for `malformed` failures: the signature and part of the header, then nothing.
    static func truncated(_ png: [UInt8]) -> [UInt8] {
        Array(png.prefix(20))
    }

    /// The image size to draw for a requested size: the aspect ratio is kept and the longer side is at most `maxSide`.
    static func cappedSize(width: Int, height: Int, maxSide: Int) -> (width: Int, height: Int) {
        let width = max(width, 1)
        let height = max(height, 1)
        let longer = max(width, height)
        guard longer > maxSide else { return (width, height) }
        let scale = Double(maxSide) / Double(longer)
        return (max(1, Int((Double(width) * scale).rounded())), max(1, Int((Double(height) * scale).rounded())))
    }

    /// Parses an OpenAI `size` such as `"1024x1024"`; `nil` for anything else (including `"auto"`).
    static func parseSize(_ size: String?) -> (width: Int, height: Int)? {
        guard let parts = size?.lowercased().split(separator: "x"), parts.count == 2,
            let width = Int(parts[0]), let height = Int(parts[1]), width > 0, height > 0
        else { return nil }
        return (width, height)
    }

    private static func appendChunk(type: String, data: [UInt8], to png: inout [UInt8]) {
        let typeBytes = Array(type.utf8)
        png.appendBigEndian(UInt32(data.count))
        png.append(contentsOf: typeBytes)
        png.append(contentsOf: data)
        var crc = CRC32()
        crc.update(typeBytes)
        crc.update(data)
        png.appendBigEndian(crc.value)
    }

    /// A zlib stream (RFC 1950) wrapping stored deflate blocks (RFC 1951 §3.2.4), at most 65 535 bytes each.
    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        let blockSize = 65_535
        var out: [UInt8] = [0x78, 0x01]  // deflate, 32 KiB window, no dictionary, fastest; (0x7801 % 31 == 0)
        out.reserveCapacity(data.count + data.count / blockSize * 5 + 11)
        var offset = 0
        repeat {
            let count = min(blockSize, data.count - offset)
            let isLast = offset + count == data.count
            out.append(isLast ? 1 : 0)  // BFINAL, BTYPE = 00 (stored)
            let length = UInt16(count)
            out.appendLittleEndian(length)
            out.appendLittleEndian(~length)
            out.append(contentsOf: data[offset..<(offset + count)])
            offset += count
        } while offset < data.count
        out.appendBigEndian(adler32(data))
        return out
    }

    /// Adler-32 (RFC 1950 §8).
    static func adler32(_ data: [UInt8]) -> UInt32 {
        var a: UInt32 = 1
        var b: UInt32 = 0
        // 5 552 is the largest run for which the sums cannot overflow 32 bits before the modulo.
        var index = 0
        while index < data.count {
            let end = min(index + 5_552, data.count)
            for byte in data[index..<end] {
                a &+= UInt32(byte)
                b &+= a
            }
            a %= 65_521
            b %= 65_521
            index = end
        }
        return (b << 16) | a
    }
}

/// CRC-32 as PNG and zlib use it (ISO 3309, reflected polynomial 0xEDB88320).
struct CRC32 {
    private static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 {
            crc = crc & 1 == 1 ? 0xEDB8_8320 ^ (crc >> 1) : crc >> 1
        }
        return crc
    }

    private var state: UInt32 = 0xFFFF_FFFF

    var value: UInt32 { state ^ 0xFFFF_FFFF }

    mutating func update(_ bytes: some Sequence<UInt8>) {
        for byte in bytes {
            state = Self.table[Int((state ^ UInt32(byte)) & 0xFF)] ^ (state >> 8)
        }
    }

    static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc = CRC32()
        crc.update(bytes)
        return crc.value
    }
}

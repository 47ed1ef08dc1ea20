/// Writes JSON text into a byte buffer: strings escaped as RFC 8259 requires (`"`, `\` and control
/// characters; `/` and non-ASCII are written as they are). For hand-written lines on hot paths
/// (`trace.jsonl`); the caller writes the punctuation.
public struct JSONWriter {
    public var bytes: [UInt8] = []

    public init(capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
    }

    /// Text written as it is (punctuation, keys known to need no escaping).
    public mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// A JSON string.
    public mutating func string(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { utf8 in
            var clean = 0
            for (i, b) in utf8.enumerated() where b == 0x22 || b == 0x5C || b < 0x20 {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[clean..<i]))
                escape(b)
                clean = i + 1
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[clean...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private mutating func escape(_ b: UInt8) {
        bytes.append(UInt8(ascii: "\\"))
        switch b {
        case 0x22: bytes.append(0x22)
        case 0x5C: bytes.append(0x5C)
        case 0x0A: bytes.append(UInt8(ascii: "n"))
        case 0x0D: bytes.append(UInt8(ascii: "r"))
        case 0x09: bytes.append(UInt8(ascii: "t"))
        case 0x08: bytes.append(UInt8(ascii: "b"))
        case 0x0C: bytes.append(UInt8(ascii: "f"))
        default:
            let hex = Array("0123456789abcdef".utf8)
            bytes.append(contentsOf: [UInt8(ascii: "u"), 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 0x0F)]])
        }
    }

    /// A camelCase coding key written as snake_case (`episodeId` → `"episode_id"`), as Foundation's
    /// `convertToSnakeCase` does for the keys this protocol has (no acronyms).
    mutating func snakeKey(_ key: String) {
        bytes.append(UInt8(ascii: "\""))
        for b in key.utf8 {
            if b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") {
                bytes.append(UInt8(ascii: "_"))
                bytes.append(b + 32)
            } else if b == 0x22 || b == 0x5C || b < 0x20 {
                escape(b)
            } else {
                bytes.append(b)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    public mutating func integer<T: BinaryInteger>(_ value: T) {
        bytes.append(contentsOf: Array(String(value).utf8))
    }
}

extension String {
    /// Whether this snake_case JSON key names the camelCase coding key `camel` (`episode_id` ↔ `episodeId`).
    func isSnakeCase(of camel: String) -> Bool {
        var json = self.utf8.makeIterator()
        for c in camel.utf8 {
            if c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z") {
                guard json.next() == UInt8(ascii: "_"), json.next() == c + 32 else { return false }
            } else {
                guard json.next() == c else { return false }
            }
        }
        return json.next() == nil
    }

    /// `episode_id` → `episodeId` (for keys a container lists; lookups use ``isSnakeCase(of:)``).
    var camelFromSnake: String {
        guard utf8.contains(UInt8(ascii: "_")) else { return self }
        var out: [UInt8] = []
        var upper = false
        for b in utf8 {
            if b == UInt8(ascii: "_"), !out.isEmpty {
                upper = true
                continue
            }
            out.append(upper && b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z") ? b - 32 : b)
            upper = false
        }
        return String(decoding: out, as: UTF8.self)
    }
}

import Foundation

/// The codec's JSON for the rest of Reelfarm (the journal's columns, `trace.jsonl`): the same text as
/// Foundation's `JSONEncoder` with `.convertToSnakeCase` and `.sortedKeys` (slashes unescaped), read back
/// by Foundation's decoder with `.convertFromSnakeCase` or by ``decode(_:from:)``, several times faster.
public enum JSONText {
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        try WireJSONEncoder.encode(value)
    }

    /// `encode` as a `String`, or `fallback` if the value cannot be JSON (a NaN).
    public static func string<T: Encodable>(_ value: T, fallback: String = "null") -> String {
        (try? encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? fallback
    }

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try WireJSONDecoder.decode(type, from: bytes)
    }
}

/// Why a text is not JSON: the byte offset and the reason.
public struct JSONTextError: Error, Sendable, CustomStringConvertible {
    public var offset: Int
    public var reason: String

    public var description: String { "\(reason) at byte \(offset)" }
}

extension JSONText {
    /// A JSON document as Foundation-style values (`[Any]`, `[String: Any]`, `String`, `Int`, `Double`,
    /// `Bool`, `NSNull`), read by the codec's strict parser: RFC 8259, nesting at most 512 deep, escaped
    /// surrogate pairs (`\ud83c\udfac`) accepted and lone surrogates refused. A repeated key keeps its
    /// last value.
    public static func foundationValue(from bytes: [UInt8]) throws(JSONTextError) -> Any {
        do {
            return foundation(try JSONParser.parse(bytes))
        } catch {
            throw JSONTextError(offset: error.offset, reason: error.reason)
        }
    }

    private static func foundation(_ value: JSONValue) -> Any {
        switch value {
        case .null: return NSNull()
        case .bool(let b): return b
        case .number(let text):
            if let i = Int(text) { return i }
            return Double(text) ?? text
        case .string(let s): return s
        case .array(let items): return items.map(foundation)
        case .object(let members):
            var out: [String: Any] = [:]
            for member in members { out[member.key] = foundation(member.value) }
            return out
        }
    }
}

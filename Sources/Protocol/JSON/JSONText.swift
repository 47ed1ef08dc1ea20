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

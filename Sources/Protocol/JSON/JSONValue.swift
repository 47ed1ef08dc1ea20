import Foundation

/// Any JSON value, read by the codec's strict parser (``JSONParser``): the middle step between a frame's
/// bytes and a message's `Decodable` init, and the one type the rest of Reelfarm reads JSON of unknown or
/// untrusted shape with (provider replies and error bodies, model output, the mock provider's
/// configuration and recorded fixtures).
///
/// Numbers keep their literal text, so integers keep every digit and `1.5` is told from `1`; objects keep
/// their members in document order (a repeated key keeps its last value, as Foundation's decoder does).
/// Equality is JSON's: member order does not matter, and numbers are equal when their values are
/// (`1`, `1.0` and `1e0`).
///
/// The codec reads and writes JSON itself rather than through Foundation's `JSONDecoder`: a RESULT with
/// its trace took 170 µs each way through Foundation with the snake-case key strategies, which capped a
/// coordinator at ~3,000 episodes per second before any other work (`reelfarm-bench codec`).
public enum JSONValue: Sendable {
    case null
    case bool(Bool)
    /// The number's literal text, as it appeared (it matched the JSON grammar); converted on use, so that
    /// integers keep every digit. ``integer(_:)`` and ``double(_:)`` make one from a Swift number.
    case number(String)
    case string(String)
    case array([JSONValue])
    /// Members in document order, keys unique. ``object(_:)`` makes one from a dictionary.
    case object([(key: String, value: JSONValue)])

    /// An object with the members of `members`, keys sorted (a dictionary has no order of its own).
    public static func object(_ members: [String: JSONValue]) -> JSONValue {
        .object(members.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) })
    }

    /// An integer.
    public static func integer(_ value: some BinaryInteger) -> JSONValue {
        .number(String(value))
    }

    /// A number in the shortest text that reads back as `value` (`1` for 1.0); JSON has no NaN or
    /// infinity, so those become `null`.
    public static func double(_ value: Double) -> JSONValue {
        guard value.isFinite else { return .null }
        var text = "\(value)"
        if text.hasSuffix(".0") { text.removeLast(2) }
        return .number(text)
    }

    /// The JSON type's name, for error messages: "a string", "an object", …
    public var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

// MARK: - Reading and writing JSON text

extension JSONValue {
    /// Parses one JSON document (RFC 8259, strictly; see ``JSONParser``).
    public init(parsing bytes: [UInt8]) throws(JSONTextError) {
        do {
            self = try JSONParser.parse(bytes)
        } catch {
            throw JSONTextError(offset: error.offset, reason: error.reason)
        }
    }

    /// Parses `data` if it is at most `limit` bytes of JSON (a leading UTF-8 byte order mark is skipped);
    /// `nil` when it is empty, longer or not JSON. For replies of any shape that are read field by field.
    public init?(data: Data, limit: Int = .max) {
        guard !data.isEmpty, data.count <= limit else { return nil }
        var bytes = [UInt8](data)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        guard let value = try? JSONParser.parse(bytes) else { return nil }
        self = value
    }

    /// The value as compact JSON: members in their order, or sorted by key when `sortedKeys`; numbers as
    /// their text; strings escaped as ``JSONWriter`` escapes them (`/` and non-ASCII as they are).
    public func encoded(sortedKeys: Bool = false) -> [UInt8] {
        var writer = JSONWriter()
        write(into: &writer, sortedKeys: sortedKeys)
        return writer.bytes
    }

    /// ``encoded(sortedKeys:)`` with keys sorted, as `Data`.
    public var data: Data { Data(encoded(sortedKeys: true)) }

    private func write(into writer: inout JSONWriter, sortedKeys: Bool) {
        switch self {
        case .null: writer.raw("null")
        case .bool(let b): writer.raw(b ? "true" : "false")
        case .number(let text): writer.bytes.append(contentsOf: text.utf8)
        case .string(let s): writer.string(s)
        case .array(let items):
            writer.raw("[")
            for (i, item) in items.enumerated() {
                if i > 0 { writer.raw(",") }
                item.write(into: &writer, sortedKeys: sortedKeys)
            }
            writer.raw("]")
        case .object(let members):
            writer.raw("{")
            let ordered = sortedKeys ? members.sorted { $0.key < $1.key } : members
            for (i, member) in ordered.enumerated() {
                if i > 0 { writer.raw(",") }
                writer.string(member.key)
                writer.raw(":")
                member.value.write(into: &writer, sortedKeys: sortedKeys)
            }
            writer.raw("}")
        }
    }
}

// MARK: - Accessors

extension JSONValue {
    /// The member `key` of an object (`nil` for anything else). Setting it replaces the member or adds it at
    /// the end; setting `nil` removes it; on anything but an object setting does nothing.
    public subscript(key: String) -> JSONValue? {
        get {
            guard case .object(let members) = self else { return nil }
            return members.last { $0.key == key }?.value
        }
        set {
            guard case .object(var members) = self else { return }
            let index = members.firstIndex { $0.key == key }
            switch (index, newValue) {
            case (let index?, let value?): members[index].value = value
            case (let index?, nil): members.remove(at: index)
            case (nil, let value?): members.append((key: key, value: value))
            case (nil, nil): return
            }
            self = .object(members)
        }
    }

    public var string: String? {
        guard case .string(let value) = self else { return nil }
        return value
    }

    public var bool: Bool? {
        guard case .bool(let value) = self else { return nil }
        return value
    }

    /// An integral number that fits in 64 bits, by the codec's rule: `1.0` and `1e2` are integers too,
    /// `1.5` and `1e40` are not.
    public var integer: Int64? {
        guard case .number(let text) = self else { return nil }
        return Self.integer(text, as: Int64.self)
    }

    /// A number as a `Double` (the nearest one; integers above 2⁵³ may lose digits).
    public var double: Double? {
        guard case .number(let text) = self else { return nil }
        return Double(text)
    }

    public var array: [JSONValue]? {
        guard case .array(let items) = self else { return nil }
        return items
    }

    /// The members of an object, in document order.
    public var members: [(key: String, value: JSONValue)]? {
        guard case .object(let members) = self else { return nil }
        return members
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// Every string value (not the keys) passed through `transform`, at any depth.
    public func mappingStrings(_ transform: (String) -> String) -> JSONValue {
        switch self {
        case .string(let value): .string(transform(value))
        case .array(let items): .array(items.map { $0.mappingStrings(transform) })
        case .object(let members): .object(members.map { (key: $0.key, value: $0.value.mappingStrings(transform)) })
        case .null, .bool, .number: self
        }
    }

    /// The number `text` as `I` if it is integral and fits: exactly as written, or through its `Double`
    /// value for `1.0` or `1e2`.
    static func integer<I: FixedWidthInteger>(_ text: String, as type: I.Type) -> I? {
        if let exact = I(text) { return exact }
        if let double = Double(text), double.rounded() == double, let exact = I(exactly: double) { return exact }
        return nil
    }
}

// MARK: - Equality

extension JSONValue: Equatable {
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.number(let a), .number(let b)): sameNumber(a, b)
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)):
            a.count == b.count
                && a.allSatisfy { member in b.contains { $0.key == member.key && $0.value == member.value } }
        default: false
        }
    }

    /// Whether two number texts have the same value: exactly when both are 64-bit integers, otherwise as
    /// `Double`s.
    private static func sameNumber(_ a: String, _ b: String) -> Bool {
        if a == b { return true }
        if let x = Int64(a), let y = Int64(b) { return x == y }
        if let x = UInt64(a), let y = UInt64(b) { return x == y }
        guard let x = Double(a), let y = Double(b) else { return false }
        return x == y
    }
}

// MARK: - Codable

/// Through any `Decoder` or `Encoder` (Foundation's too): a value decoded elsewhere keeps what that decoder
/// tells (an object's keys come sorted, a number as the integer or `Double` it reads as).
extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(UInt64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .null:
            var container = encoder.singleValueContainer()
            try container.encodeNil()
        case .bool(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .number(let text):
            var container = encoder.singleValueContainer()
            if let value = Int64(text) {
                try container.encode(value)
            } else if let value = UInt64(text) {
                try container.encode(value)
            } else if let value = Double(text), value.isFinite {
                try container.encode(value)
            } else {
                throw EncodingError.invalidValue(
                    text,
                    EncodingError.Context(
                        codingPath: encoder.codingPath,
                        debugDescription: "\(text) is not a finite number"
                    )
                )
            }
        case .string(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .array(let items):
            var container = encoder.unkeyedContainer()
            for item in items { try container.encode(item) }
        case .object(let members):
            var container = encoder.container(keyedBy: NamedKey.self)
            for member in members { try container.encode(member.value, forKey: NamedKey(member.key)) }
        }
    }
}

import Foundation

/// A JSON value read from a fixture, kept exactly: integers stay integers, `null` stays `null`, so a body
/// re-serialised from it differs from the recorded one only in key order and whitespace.
public enum FixtureJSON: Codable, Equatable, Sendable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([FixtureJSON])
    case object([String: FixtureJSON])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([FixtureJSON].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: FixtureJSON].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// Parses JSON text; `nil` when it is not JSON.
    public init?(data: Data) {
        guard let value = try? JSONDecoder().decode(FixtureJSON.self, from: data) else { return nil }
        self = value
    }

    /// The value as compact JSON, keys sorted, slashes unescaped.
    public var data: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // A tree of plain JSON values always encodes (a non-finite number cannot be read from JSON).
        return try! encoder.encode(self)
    }

    /// The member `key` of an object; setting it on anything but an object does nothing.
    public subscript(key: String) -> FixtureJSON? {
        get {
            guard case .object(let fields) = self else { return nil }
            return fields[key]
        }
        set {
            guard case .object(var fields) = self else { return }
            fields[key] = newValue
            self = .object(fields)
        }
    }

    public var string: String? {
        guard case .string(let value) = self else { return nil }
        return value
    }

    /// Every string value (not the keys) passed through `transform`, at any depth.
    public func mappingStrings(_ transform: (String) -> String) -> FixtureJSON {
        switch self {
        case .string(let value): .string(transform(value))
        case .array(let items): .array(items.map { $0.mappingStrings(transform) })
        case .object(let fields): .object(fields.mapValues { $0.mappingStrings(transform) })
        case .null, .bool, .integer, .number: self
        }
    }
}

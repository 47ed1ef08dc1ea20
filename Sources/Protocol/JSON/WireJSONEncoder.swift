/// Encodes an `Encodable` message as compact JSON with snake_case, sorted keys and unescaped slashes:
/// the codec's replacement for Foundation's `JSONEncoder` (`.convertToSnakeCase`, `.sortedKeys`,
/// `.withoutEscapingSlashes`), writing the same documents several times faster.
enum WireJSONEncoder {
    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        var writer = JSONWriter()
        try Node.encode(value, path: []).write(into: &writer)
        return writer.bytes
    }
}

/// What an encoded value became: a leaf already written as text, or a container still being filled
/// (containers are reference types so that nested containers and `superEncoder` can fill them later).
private enum Node {
    case leaf([UInt8])
    case object(ObjectBox)
    case array(ArrayBox)
    /// A value whose encoder asked for no container (an empty value): written as `{}`, as Foundation does.
    case pending(EncoderBox)

    static func encode<T: Encodable>(_ value: T, path: [any CodingKey]) throws -> Node {
        if let leaf = try leafBytes(value, path: path) { return .leaf(leaf) }
        let encoder = EncoderBox(codingPath: path)
        try value.encode(to: encoder)
        return encoder.node ?? .leaf(Array("{}".utf8))
    }

    func write(into writer: inout JSONWriter) {
        switch self {
        case .leaf(let bytes):
            writer.bytes.append(contentsOf: bytes)
        case .object(let box):
            // Sorted by the written (snake_case) key, as `.sortedKeys` sorts.
            let members = box.members.map { (key: Self.snake($0.key), node: $0.node) }.sorted { $0.key < $1.key }
            writer.bytes.append(UInt8(ascii: "{"))
            for (i, member) in members.enumerated() {
                if i > 0 { writer.bytes.append(UInt8(ascii: ",")) }
                writer.string(member.key)
                writer.bytes.append(UInt8(ascii: ":"))
                member.node.write(into: &writer)
            }
            writer.bytes.append(UInt8(ascii: "}"))
        case .array(let box):
            writer.bytes.append(UInt8(ascii: "["))
            for (i, node) in box.items.enumerated() {
                if i > 0 { writer.bytes.append(UInt8(ascii: ",")) }
                node.write(into: &writer)
            }
            writer.bytes.append(UInt8(ascii: "]"))
        case .pending(let encoder):
            (encoder.node ?? .leaf(Array("{}".utf8))).write(into: &writer)
        }
    }

    static func snake(_ key: String) -> String {
        guard key.utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) else { return key }
        var out: [UInt8] = []
        out.reserveCapacity(key.utf8.count + 4)
        for b in key.utf8 {
            if b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") {
                out.append(UInt8(ascii: "_"))
                out.append(b + 32)
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The text of a scalar value, or `nil` for a value that encodes itself through containers.
private func leafBytes<T: Encodable>(_ value: T, path: [any CodingKey]) throws -> [UInt8]? {
    var writer = JSONWriter(capacity: 16)
    switch value {
    case let v as String: writer.string(v)
    case let v as Bool: writer.raw(v ? "true" : "false")
    case let v as Int: writer.integer(v)
    case let v as Int64: writer.integer(v)
    case let v as Int32: writer.integer(v)
    case let v as Int16: writer.integer(v)
    case let v as Int8: writer.integer(v)
    case let v as UInt: writer.integer(v)
    case let v as UInt64: writer.integer(v)
    case let v as UInt32: writer.integer(v)
    case let v as UInt16: writer.integer(v)
    case let v as UInt8: writer.integer(v)
    case let v as Double: try writer.double(v, path: path)
    case let v as Float: try writer.double(Double(v), path: path)
    default: return nil
    }
    return writer.bytes
}

extension JSONWriter {
    /// A finite number in the shortest text that reads back as the same `Double` (`1` for 1.0);
    /// NaN and infinities are not JSON and throw, as Foundation's encoder does.
    fileprivate mutating func double(_ value: Double, path: [any CodingKey]) throws {
        guard value.isFinite else {
            throw EncodingError.invalidValue(
                value,
                EncodingError.Context(codingPath: path, debugDescription: "\(value) is not valid JSON")
            )
        }
        var text = "\(value)"
        if text.hasSuffix(".0") { text.removeLast(2) }
        bytes.append(contentsOf: Array(text.utf8))
    }
}

private final class ObjectBox {
    var members: [(key: String, node: Node)] = []

    func set(_ key: String, _ node: Node) {
        if let i = members.firstIndex(where: { $0.key == key }) {
            members[i].node = node
        } else {
            members.append((key, node))
        }
    }
}

private final class ArrayBox {
    var items: [Node] = []
}

private final class EncoderBox: Encoder {
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    var node: Node?

    init(codingPath: [any CodingKey]) {
        self.codingPath = codingPath
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let box: ObjectBox
        if case .object(let existing) = node {
            box = existing
        } else {
            box = ObjectBox()
            node = .object(box)
        }
        return KeyedEncodingContainer(KeyedContainer<Key>(box: box, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let box: ArrayBox
        if case .array(let existing) = node {
            box = existing
        } else {
            box = ArrayBox()
            node = .array(box)
        }
        return UnkeyedContainer(box: box, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleValue(encoder: self)
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let box: ObjectBox
    let codingPath: [any CodingKey]

    mutating func encodeNil(forKey key: Key) throws {
        box.set(key.stringValue, .leaf(Array("null".utf8)))
    }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        box.set(key.stringValue, try Node.encode(value, path: codingPath + [key]))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type,
        forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        let nested = ObjectBox()
        box.set(key.stringValue, .object(nested))
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(box: nested, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let nested = ArrayBox()
        box.set(key.stringValue, .array(nested))
        return UnkeyedContainer(box: nested, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder {
        let encoder = EncoderBox(codingPath: codingPath)
        box.set("super", .pending(encoder))
        return encoder
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        let encoder = EncoderBox(codingPath: codingPath + [key])
        box.set(key.stringValue, .pending(encoder))
        return encoder
    }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let box: ArrayBox
    let codingPath: [any CodingKey]
    var count: Int { box.items.count }

    mutating func encodeNil() throws {
        box.items.append(.leaf(Array("null".utf8)))
    }

    mutating func encode<T: Encodable>(_ value: T) throws {
        box.items.append(try Node.encode(value, path: codingPath + [NamedKey(index: count)]))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type
    ) -> KeyedEncodingContainer<NestedKey> {
        let nested = ObjectBox()
        box.items.append(.object(nested))
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(box: nested, codingPath: codingPath))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let nested = ArrayBox()
        box.items.append(.array(nested))
        return UnkeyedContainer(box: nested, codingPath: codingPath)
    }

    mutating func superEncoder() -> any Encoder {
        let encoder = EncoderBox(codingPath: codingPath)
        box.items.append(.pending(encoder))
        return encoder
    }
}

private struct SingleValue: SingleValueEncodingContainer {
    let encoder: EncoderBox
    var codingPath: [any CodingKey] { encoder.codingPath }

    mutating func encodeNil() throws {
        encoder.node = .leaf(Array("null".utf8))
    }

    mutating func encode<T: Encodable>(_ value: T) throws {
        encoder.node = try Node.encode(value, path: codingPath)
    }
}

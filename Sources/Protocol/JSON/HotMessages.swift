/// Hand-written JSON for the messages every episode sends (JOB, PROGRESS, RESULT, HEARTBEAT): the same
/// bytes and the same accepted documents as the `Codable` path (`WireJSONTests` checks both against
/// Foundation), without its per-field dynamic dispatch. A W0 RESULT (28 trace events) went from 170 µs
/// to a few µs each way (`reelfarm-bench codec`). Anything rarer falls back to the `Codable` path.
enum HotMessages {
    // MARK: Encoding (keys in sorted snake_case order, optional keys omitted when unset)

    /// The body of `message`, or `nil` when it is not one of the hot shapes.
    static func encode(_ message: Message) -> [UInt8]? {
        var w = JSONWriter(capacity: 256)
        switch message {
        case .job(let job):
            w.raw(#"{"attempt":"#)
            w.integer(job.attempt)
            w.raw(#","batch_id":"#)
            w.string(job.batchId)
            w.raw(#","episode_id":"#)
            w.string(job.episodeId)
            w.raw(#","spec":{"#)
            var comma = false
            func key(_ k: StaticString) {
                if comma { w.bytes.append(UInt8(ascii: ",")) }
                comma = true
                w.raw(k)
            }
            let spec = job.spec
            if let characters = spec.characters {
                key(#""characters":["#)
                for (i, c) in characters.enumerated() {
                    if i > 0 { w.bytes.append(UInt8(ascii: ",")) }
                    w.string(c)
                }
                w.bytes.append(UInt8(ascii: "]"))
            }
            if let id = spec.id {
                key(#""id":"#)
                w.string(id)
            }
            if let scenes = spec.scenes {
                key(#""scenes":"#)
                w.integer(scenes)
            }
            if let style = spec.style {
                key(#""style":"#)
                w.string(style)
            }
            key(#""topic":"#)
            w.string(spec.topic)
            w.raw("}")
            if let allowance = job.spendAllowanceMicros {
                w.raw(#","spend_allowance_micros":"#)
                w.integer(allowance)
            }
            w.raw("}")
        case .progress(let p):
            w.raw(#"{"attempt":"#)
            w.integer(p.attempt)
            w.raw(#","episode_id":"#)
            w.string(p.episodeId)
            w.raw(#","stage":"#)
            w.string(p.stage.rawValue)
            w.raw(#","state":"#)
            w.string(p.state.rawValue)
            w.raw(#","succeeded":"#)
            w.integer(p.succeeded)
            w.raw(#","total":"#)
            w.integer(p.total)
            w.raw("}")
        case .result(let r) where r.placeholders.isEmpty && r.artifacts.isEmpty && r.delivery == nil && !r.spendCapped:
            w = JSONWriter(capacity: 96 + 48 * r.trace.count)
            w.raw(#"{"api_calls":"#)
            w.integer(r.apiCalls)
            w.raw(#","attempt":"#)
            w.integer(r.attempt)
            w.raw(#","duration_ms":"#)
            w.integer(r.durationMs)
            w.raw(#","episode_id":"#)
            w.string(r.episodeId)
            if let error = r.error {
                w.raw(#","error":"#)
                w.string(error)
            }
            w.raw(#","placeholders":[],"status":"#)
            w.string(r.status.rawValue)
            w.raw(#","trace":["#)
            for (i, e) in r.trace.enumerated() {
                w.raw(i == 0 ? "{" : ",{")
                if let cost = e.costMicros {
                    w.raw(#""cost_micros":"#)
                    w.integer(cost)
                    w.raw(",")
                }
                w.raw(#""event":"#)
                w.string(e.event.rawValue)
                w.raw(#","name":"#)
                w.string(e.name)
                if let saved = e.savedMicros {
                    w.raw(#","saved_micros":"#)
                    w.integer(saved)
                }
                w.raw(#","seq":"#)
                w.integer(e.seq)
                w.raw("}")
            }
            w.raw("]}")
        case .heartbeat(let h):
            w.raw(h.draining ? #"{"draining":true,"running":["# : #"{"running":["#)
            writeRefs(h.running, into: &w)
            w.raw("]}")
        default:
            return nil
        }
        return w.bytes
    }

    private static func writeRefs(_ refs: [JobRef], into w: inout JSONWriter) {
        for (i, ref) in refs.enumerated() {
            w.raw(i == 0 ? #"{"attempt":"# : #",{"attempt":"#)
            w.integer(ref.attempt)
            w.raw(#","episode_id":"#)
            w.string(ref.episodeId)
            w.raw("}")
        }
    }

    // MARK: Decoding

    /// The message of `kind` read from a parsed body, or `nil` when `kind` is not a hot shape (or the
    /// RESULT carries placeholders or files): the caller then uses the `Codable` path.
    static func decode(_ kind: MessageKind, _ value: JSONValue) throws -> Message? {
        let body = try Fields(value, path: [])
        switch kind {
        case .job:
            let spec = try Fields(try body.require("spec"), path: [NamedKey("spec")])
            return .job(
                Job(
                    batchId: try body.string("batchId"),
                    episodeId: try body.string("episodeId"),
                    attempt: try body.int("attempt"),
                    spec: EpisodeSpec(
                        topic: try spec.string("topic"),
                        id: try spec.optionalString("id"),
                        characters: try spec.optionalStrings("characters"),
                        scenes: try spec.optionalInt("scenes"),
                        style: try spec.optionalString("style")
                    ),
                    spendAllowanceMicros: try body.optionalInt("spendAllowanceMicros")
                )
            )
        case .progress:
            return .progress(
                Progress(
                    episodeId: try body.string("episodeId"),
                    attempt: try body.int("attempt"),
                    stage: try body.enumeration("stage"),
                    state: try body.enumeration("state"),
                    succeeded: try body.optionalInt("succeeded") ?? 0,
                    total: try body.optionalInt("total") ?? 0
                )
            )
        case .result:
            if body.has("artifacts") || body.has("delivery") || body.has("spendCapped") { return nil }
            if let placeholders = body.value("placeholders") {
                switch placeholders {
                case .null: break
                case .array(let items) where items.isEmpty: break
                default: return nil
                }
            }
            var trace: [TraceEvent] = []
            if let events = try body.optionalArray("trace") {
                trace.reserveCapacity(events.count)
                for (i, event) in events.enumerated() {
                    let e = try Fields(event, path: [NamedKey("trace"), NamedKey(index: i)])
                    trace.append(
                        TraceEvent(
                            seq: try e.integer("seq", as: UInt64.self),
                            event: try e.enumeration("event"),
                            name: try e.string("name"),
                            costMicros: try e.optionalInt("costMicros"),
                            savedMicros: try e.optionalInt("savedMicros")
                        )
                    )
                }
            }
            return .result(
                EpisodeResult(
                    episodeId: try body.string("episodeId"),
                    attempt: try body.int("attempt"),
                    status: try body.enumeration("status"),
                    error: try body.optionalString("error"),
                    durationMs: try body.int("durationMs"),
                    apiCalls: try body.optionalInt("apiCalls") ?? 0,
                    trace: trace
                )
            )
        case .heartbeat:
            var running: [JobRef] = []
            if let refs = try body.optionalArray("running") {
                for (i, ref) in refs.enumerated() {
                    let r = try Fields(ref, path: [NamedKey("running"), NamedKey(index: i)])
                    running.append(JobRef(episodeId: try r.string("episodeId"), attempt: try r.int("attempt")))
                }
            }
            return .heartbeat(Heartbeat(running: running, draining: try body.optionalBool("draining") ?? false))
        default:
            return nil
        }
    }
}

/// A coding key by name (or array index), for the paths in errors.
struct NamedKey: CodingKey {
    var stringValue: String
    var intValue: Int?

    init(_ name: String) {
        stringValue = name
    }

    init(index: Int) {
        stringValue = "\(index)"
        intValue = index
    }

    init?(stringValue: String) {
        self.stringValue = stringValue
    }

    init?(intValue: Int) {
        self.init(index: intValue)
    }
}

/// The members of one JSON object, read by camelCase name with the `Codable` path's rules and errors
/// (a missing key is `keyNotFound`, `null` where a value is needed `valueNotFound`, a wrong kind
/// `typeMismatch`, an unknown enum value `dataCorrupted`), so ``Codec`` reports them identically.
private struct Fields {
    let members: [(key: String, value: JSONValue)]
    let path: [any CodingKey]

    init(_ value: JSONValue, path: [any CodingKey]) throws {
        guard case .object(let members) = value else {
            throw DecodingError.typeMismatch(
                [String: Any].self,
                DecodingError.Context(codingPath: path, debugDescription: "expected an object, found \(value.kindName)")
            )
        }
        self.members = members
        self.path = path
    }

    func value(_ name: String) -> JSONValue? {
        for member in members where member.key == name || member.key.isSnakeCase(of: name) {
            return member.value
        }
        return nil
    }

    func has(_ name: String) -> Bool { value(name) != nil }

    func require(_ name: String) throws -> JSONValue {
        guard let value = value(name) else {
            throw DecodingError.keyNotFound(
                NamedKey(name),
                DecodingError.Context(codingPath: path, debugDescription: "no value for key \(name)")
            )
        }
        return value
    }

    private func context(_ name: String, _ text: String) -> DecodingError.Context {
        DecodingError.Context(codingPath: path + [NamedKey(name)], debugDescription: text)
    }

    private func wrong(_ name: String, _ type: Any.Type, _ value: JSONValue) -> DecodingError {
        if case .null = value {
            return .valueNotFound(type, context(name, "expected \(type), found null"))
        }
        return .typeMismatch(type, context(name, "expected \(type), found \(value.kindName)"))
    }

    func string(_ name: String) throws -> String {
        let value = try require(name)
        guard case .string(let s) = value else { throw wrong(name, String.self, value) }
        return s
    }

    func integer<I: FixedWidthInteger>(_ name: String, as type: I.Type) throws -> I {
        let value = try require(name)
        guard case .number(let text) = value else { throw wrong(name, type, value) }
        if let exact = JSONValue.integer(text, as: type) { return exact }
        throw DecodingError.dataCorrupted(context(name, "\(text) does not fit in \(type)"))
    }

    func int(_ name: String) throws -> Int { try integer(name, as: Int.self) }

    func enumeration<E: RawRepresentable>(_ name: String) throws -> E where E.RawValue == String {
        let raw = try string(name)
        guard let value = E(rawValue: raw) else {
            throw DecodingError.dataCorrupted(
                context(name, "Cannot initialize \(E.self) from invalid String value \(raw)")
            )
        }
        return value
    }

    /// `nil` when the key is absent or `null`, as `decodeIfPresent` reads it.
    private func present(_ name: String) -> Bool {
        guard let value = value(name) else { return false }
        if case .null = value { return false }
        return true
    }

    func optionalString(_ name: String) throws -> String? { present(name) ? try string(name) : nil }

    func optionalInt(_ name: String) throws -> Int? { present(name) ? try int(name) : nil }

    func optionalBool(_ name: String) throws -> Bool? {
        guard present(name) else { return nil }
        let value = try require(name)
        guard case .bool(let b) = value else { throw wrong(name, Bool.self, value) }
        return b
    }

    func optionalArray(_ name: String) throws -> [JSONValue]? {
        guard present(name) else { return nil }
        let value = try require(name)
        guard case .array(let items) = value else { throw wrong(name, [Any].self, value) }
        return items
    }

    func optionalStrings(_ name: String) throws -> [String]? {
        guard let items = try optionalArray(name) else { return nil }
        return try items.enumerated().map { i, item in
            guard case .string(let s) = item else {
                let key = NamedKey(index: i)
                let context = DecodingError.Context(
                    codingPath: path + [NamedKey(name), key],
                    debugDescription: "expected a string, found \(item.kindName)"
                )
                if case .null = item { throw DecodingError.valueNotFound(String.self, context) }
                throw DecodingError.typeMismatch(String.self, context)
            }
            return s
        }
    }
}

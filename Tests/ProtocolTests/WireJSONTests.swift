import Foundation
import Testing

@testable import Protocol

/// The codec's own JSON reader and writer against Foundation's `JSONEncoder`/`JSONDecoder` with the
/// settings the codec used before (snake_case keys, sorted, slashes unescaped): the same bytes out, and
/// each side reads what the other wrote.
@Suite("Wire JSON: the codec's reader and writer")
struct WireJSONTests {
    static func foundationEncoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }

    static func foundationDecoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }

    /// Our bytes equal Foundation's; each decoder reads the other's bytes back to the same value.
    func agree<T: Codable & Equatable>(_ value: T) throws {
        let ours = try WireJSONEncoder.encode(value)
        let theirs = try Self.foundationEncoder().encode(value)
        #expect(String(decoding: ours, as: UTF8.self) == String(decoding: theirs, as: UTF8.self))
        #expect(try Self.foundationDecoder().decode(T.self, from: Data(ours)) == value)
        #expect(try WireJSONDecoder.decode(T.self, from: Array(theirs)) == value)
    }

    @Test("every fixture message: same bytes as Foundation, read back by both", arguments: Fixtures.samples)
    func fixtures(_ sample: Sample) throws {
        switch sample.envelope.message {
        case .hello(let m): try agree(m)
        case .welcome(let m): try agree(m)
        case .job(let m): try agree(m)
        case .progress(let m): try agree(m)
        case .result(let m): try agree(m)
        case .heartbeat(let m): try agree(m)
        case .disconnect(let m): try agree(m)
        case .cancel(let m): try agree(m)
        case .leaseRequest(let m): try agree(m)
        case .leaseGrant(let m): try agree(m)
        case .leaseStarted(let m): try agree(m)
        case .leaseRelease(let m): try agree(m)
        case .leaseCancel(let m): try agree(m)
        case .providerSignal(let m): try agree(m)
        case .providerPause(let m): try agree(m)
        case .artifactFetch(let m): try agree(m)
        case .artifactChunk(var m):
            // The chunk's bytes travel in a frame of their own, not in the JSON.
            m.data = []
            try agree(m)
        case .artifactAck(let m): try agree(m)
        case .assetGet(let m): try agree(m)
        case .assetData(var m):
            m.data = []
            try agree(m)
        case .assetPut(var m):
            m.data = []
            try agree(m)
        }
    }

    /// The body Foundation writes for `message` (the codec's output before it had its own JSON).
    static func foundationBody(_ message: Message) throws -> Data {
        let e = foundationEncoder()
        switch message {
        case .hello(let m): return try e.encode(m)
        case .welcome(let m): return try e.encode(m)
        case .job(let m): return try e.encode(m)
        case .progress(let m): return try e.encode(m)
        case .result(let m): return try e.encode(m)
        case .heartbeat(let m): return try e.encode(m)
        case .disconnect(let m): return try e.encode(m)
        case .cancel(let m): return try e.encode(m)
        case .leaseRequest(let m): return try e.encode(m)
        case .leaseGrant(let m): return try e.encode(m)
        case .leaseStarted(let m): return try e.encode(m)
        case .leaseRelease(let m): return try e.encode(m)
        case .leaseCancel(let m): return try e.encode(m)
        case .providerSignal(let m): return try e.encode(m)
        case .providerPause(let m): return try e.encode(m)
        case .artifactFetch(let m): return try e.encode(m)
        case .artifactChunk(let m): return try e.encode(m)
        case .artifactAck(let m): return try e.encode(m)
        case .assetGet(let m): return try e.encode(m)
        case .assetData(let m): return try e.encode(m)
        case .assetPut(let m): return try e.encode(m)
        }
    }

    /// Through the codec (hand-written paths for JOB, PROGRESS, RESULT and HEARTBEAT): Foundation's bytes,
    /// and Foundation's bytes decode to the same envelope.
    @Test("the codec writes Foundation's bytes and reads them back", arguments: Fixtures.samples + Self.hot)
    func codec(_ sample: Sample) throws {
        let frames = Codec.encode(sample.envelope)
        let theirs = Array(try Self.foundationBody(sample.envelope.message))
        #expect(String(decoding: frames[3], as: UTF8.self) == String(decoding: theirs, as: UTF8.self))
        var foreign = frames
        foreign[3] = theirs
        #expect(try Codec.decode(foreign) == sample.envelope)
    }

    /// Hot-path shapes the fixtures do not cover: escapes, every optional of a spec, a failed RESULT, a
    /// draining HEARTBEAT.
    static let hot: [Sample] = [
        Sample(
            "JOB with every spec field and escapes",
            Envelope(
                session: Fixtures.session,
                .job(
                    Job(
                        batchId: "b-1",
                        episodeId: "e_1",
                        attempt: 7,
                        spec: EpisodeSpec(
                            topic: "a \"quoted\"\ttopic — é 🎬",
                            id: "e1",
                            characters: ["Ada", "Bo \"B\" é"],
                            scenes: 12,
                            style: "noir"
                        )
                    )
                )
            )
        ),
        Sample(
            "failed RESULT with an error and a trace",
            Envelope(
                session: Fixtures.session,
                .result(
                    EpisodeResult(
                        episodeId: "e",
                        attempt: 2,
                        status: .failed,
                        error: "script: \"timeout\"",
                        durationMs: 1234,
                        apiCalls: 1,
                        trace: [
                            TraceEvent(seq: 1, event: .episodeStart, name: "episode"),
                            TraceEvent(seq: UInt64.max, event: .callEnd, name: "llm:script"),
                        ]
                    )
                )
            )
        ),
        Sample(
            "draining HEARTBEAT",
            Envelope(
                session: Fixtures.session,
                .heartbeat(
                    Heartbeat(
                        running: [JobRef(episodeId: "a", attempt: 1), JobRef(episodeId: "b", attempt: 3)],
                        draining: true
                    )
                )
            )
        ),
    ]

    struct Texts: Codable, Equatable {
        var plain: String
        var quoted: String
        var control: String
        var unicode: String
        var empty: String
        var numbers: [Double]
        var flags: [Bool?]
    }

    @Test func escapesAndScalarsMatchFoundation() throws {
        try agree(
            Texts(
                plain: "a/b",
                quoted: #"say "hi" \ bye"#,
                control: "tab\tline\nnul\u{0}bell\u{7}",
                unicode: "café — 🎬 北京",
                empty: "",
                numbers: [0, 1, -1, 0.5, 1e-7, 123_456_789.25],
                flags: [true, false, nil]
            )
        )
    }

    @Test func escapesAreRead() throws {
        let text = try WireJSONDecoder.decode(
            [String].self,
            from: Array(#"["\"\\\/\b\f\n\r\t", "\u00e9\u0041", "\ud83c\udfac", "raw é"]"#.utf8)
        )
        #expect(text == ["\"\\/\u{8}\u{c}\n\r\t", "éA", "🎬", "raw é"])
    }

    @Test(
        "what is not JSON is refused",
        arguments: [
            "", "{", "{\"a\":}", "{\"a\" 1}", "{a:1}", "[1 2]", "01", "-", "1.", "1e", ".5", "+1", "NaN", "tru",
            "\"abc", "\"a\u{1}b\"", "\"\\x\"", "\"\\ud83c\"", "\"\\udfac\"", "\"\\u12\"", "{} {}", "[1]]", "nul",
        ]
    )
    func refused(_ text: String) {
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(Array(text.utf8)) }
    }

    @Test func invalidUTF8IsRefused() {
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse([0x22, 0xFF, 0x22]) }
    }

    @Test func nestingIsBounded() throws {
        func nested(_ depth: Int) -> [UInt8] {
            Array((String(repeating: "[", count: depth) + String(repeating: "]", count: depth)).utf8)
        }
        _ = try JSONParser.parse(nested(JSONParser.maxDepth))
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(nested(JSONParser.maxDepth + 1)) }
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(nested(200_000)) }
    }

    @Test func numbersKeepTheirDigitsAndMustFit() throws {
        #expect(try WireJSONDecoder.decode([UInt64].self, from: Array("[18446744073709551615]".utf8)) == [.max])
        #expect(try WireJSONDecoder.decode([Int].self, from: Array("[-0, 1.0, 1e2, 250E-1]".utf8)) == [0, 1, 100, 25])
        #expect(throws: DecodingError.self) { try WireJSONDecoder.decode([Int].self, from: Array("[1.5]".utf8)) }
        #expect(throws: DecodingError.self) { try WireJSONDecoder.decode([UInt8].self, from: Array("[256]".utf8)) }
        #expect(throws: DecodingError.self) { try WireJSONDecoder.decode([Int].self, from: Array("[1e400]".utf8)) }
        #expect(throws: DecodingError.self) { try WireJSONDecoder.decode([Double].self, from: Array("[1e400]".utf8)) }
    }

    @Test func encodingNaNThrows() {
        #expect(throws: EncodingError.self) { try WireJSONEncoder.encode([Double.nan]) }
        #expect(throws: EncodingError.self) { try WireJSONEncoder.encode([Double.infinity]) }
    }

    @Test func decodingErrorsNameTheKeyAndPath() throws {
        let missing = #"{"attempt":1}"#
        #expect(throws: DecodingError.self) { try WireJSONDecoder.decode(Cancel.self, from: Array(missing.utf8)) }
        do {
            _ = try WireJSONDecoder.decode(Cancel.self, from: Array(missing.utf8))
        } catch DecodingError.keyNotFound(let key, _) {
            #expect(key.stringValue == "episodeId")
        }
        do {
            _ = try WireJSONDecoder.decode(
                Heartbeat.self,
                from: Array(#"{"running":[{"episode_id":"e","attempt":"x"}]}"#.utf8)
            )
            Issue.record("decoded a string as an attempt")
        } catch DecodingError.typeMismatch(_, let context) {
            #expect(
                context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue } == [
                    "running", "0", "attempt",
                ]
            )
        }
    }
}

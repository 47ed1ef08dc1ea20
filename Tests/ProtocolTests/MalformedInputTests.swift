import Foundation
import Testing

@testable import Protocol

/// One hostile input and the error class it must produce.
struct BadInput: Sendable, CustomTestStringConvertible {
    var name: String
    var frames: [[UInt8]]
    var code: DecodeError.Code

    var testDescription: String { name }

    init(_ name: String, _ frames: [[UInt8]], _ code: DecodeError.Code) {
        self.name = name
        self.frames = frames
        self.code = code
    }
}

private let cancelBody = #"{"episode_id":"e","attempt":1}"#
private let valid = Fixtures.frames(0x08, cancelBody)
private let chunk = Codec.encode(
    Envelope(
        session: "s",
        .artifactChunk(ArtifactChunk(episodeId: "e", attempt: 1, name: "a.wav", offset: 0, data: [1]))
    )
)
private let helloBody =
    #"{"worker_id":"w","instance":"i","host":"h","pid":7,"capacity":{"episodes":2,"api_calls":3},"software_version":"1"}"#

private func with(_ frames: [[UInt8]], _ index: Int, _ replacement: [UInt8]) -> [[UInt8]] {
    var frames = frames
    frames[index] = replacement
    return frames
}

private func nested(_ depth: Int) -> String {
    #"{"episode_id":"e","attempt":1,"x":"# + String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        + "}"
}

enum BadInputs {
    static let framing: [BadInput] = [
        BadInput("0 frames", [], .frameCount),
        BadInput("1 frame", [WireProtocol.identifier], .frameCount),
        BadInput("3 frames", Array(valid.prefix(3)), .frameCount),
        BadInput("21 frames", valid + Array(repeating: [], count: 17), .frameCount),
        BadInput("1 000 frames", valid + Array(repeating: [0x00], count: 996), .frameCount),
        BadInput("5 frames (one blob)", valid + [[1, 2, 3]], .unexpectedBlobs),
        BadInput("5 frames (empty blob)", valid + [[]], .unexpectedBlobs),
        BadInput("20 frames", valid + Array(repeating: [0xFF], count: 16), .unexpectedBlobs),
        // ARTIFACT_CHUNK carries exactly one blob frame.
        BadInput("ARTIFACT_CHUNK without F4", Array(chunk.prefix(4)), .unexpectedBlobs),
        BadInput("ARTIFACT_CHUNK with F4 and F5", chunk + [[9]], .unexpectedBlobs),
        BadInput(
            "ARTIFACT_CHUNK of 4 MiB + 1",
            Array(chunk.prefix(4)) + [Array(repeating: 7, count: (4 << 20) + 1)],
            .oversized
        ),
        BadInput(
            "ARTIFACT_ACK with a blob",
            Codec.encode(Envelope(session: "s", .artifactAck(ArtifactAck(episodeId: "e", attempt: 1)))) + [[1]],
            .unexpectedBlobs
        ),
        BadInput("whole message over 16 MiB", valid + [Array(repeating: 0x41, count: 16 << 20)], .oversized),
        BadInput("huge frame 0", with(valid, 0, Array(repeating: 0x72, count: (16 << 20) + 1)), .notReelfarm),
    ]

    static let frame0: [BadInput] = [
        BadInput("F0 empty", with(valid, 0, []), .notReelfarm),
        BadInput("F0 MDPW02", with(valid, 0, Array("MDPW02".utf8)), .notReelfarm),
        BadInput("F0 upper case", with(valid, 0, Array("REELFARM/1".utf8)), .notReelfarm),
        BadInput("F0 without slash", with(valid, 0, Array("reelfarm1".utf8)), .notReelfarm),
        BadInput(
            "F0 reelfarm/ + 40 bytes",
            with(valid, 0, Array(("reelfarm/" + String(repeating: "9", count: 40)).utf8)),
            .notReelfarm
        ),
        BadInput("F0 with NUL", with(valid, 0, Array("reelfarm/1".utf8) + [0]), .unsupportedVersion),
        BadInput("F0 reelfarm/2", with(valid, 0, Array("reelfarm/2".utf8)), .unsupportedVersion),
        BadInput("F0 reelfarm/0", with(valid, 0, Array("reelfarm/0".utf8)), .unsupportedVersion),
        BadInput("F0 reelfarm/10", with(valid, 0, Array("reelfarm/10".utf8)), .unsupportedVersion),
        BadInput(
            "F0 reelfarm/1.1 (minor never goes in F0)",
            with(valid, 0, Array("reelfarm/1.1".utf8)),
            .unsupportedVersion
        ),
        BadInput("F0 reelfarm/", with(valid, 0, Array("reelfarm/".utf8)), .unsupportedVersion),
    ]

    static let frame1: [BadInput] = [
        BadInput("F1 empty", with(valid, 1, []), .unknownKind),
        BadInput("F1 two bytes", with(valid, 1, [0x08, 0x08]), .unknownKind),
        BadInput("F1 kind 0x00", with(valid, 1, [0x00]), .unknownKind),
        BadInput("F1 kind 0x09", with(valid, 1, [0x09]), .unknownKind),
        BadInput("F1 kind 0x0F", with(valid, 1, [0x0F]), .unknownKind),
        BadInput("F1 reserved lease 0x17", with(valid, 1, [0x17]), .unknownKind),
        BadInput("F1 reserved lease 0x1F", with(valid, 1, [0x1F]), .unknownKind),
        BadInput("F1 reserved artifact 0x23", with(valid, 1, [0x23]), .unknownKind),
        BadInput("F1 reserved artifact 0x2F", with(valid, 1, [0x2F]), .unknownKind),
        BadInput("F1 kind 0x7F", with(valid, 1, [0x7F]), .unknownKind),
        BadInput("F1 kind 0xFF", with(valid, 1, [0xFF]), .unknownKind),
        BadInput("F1 ASCII 'A'", with(valid, 1, [0x41]), .unknownKind),
        BadInput("F1 reserved asset 0x33", with(valid, 1, [0x33]), .unknownKind),
        BadInput("F1 reserved asset 0x3F", with(valid, 1, [0x3F]), .unknownKind),
        // A later minor's kind with blob frames is an unknown kind, not a blob error.
        BadInput("reserved artifact kind with blobs", with(valid, 1, [0x2E]) + [[1, 2, 3]], .unknownKind),
    ]

    static let frame2: [BadInput] = [
        BadInput("session 65 bytes", with(valid, 2, Array(repeating: 0x61, count: 65)), .badSession),
        BadInput("session 10 000 bytes", with(valid, 2, Array(repeating: 0x61, count: 10_000)), .badSession),
        BadInput("session with space", with(valid, 2, Array("ab cd".utf8)), .badSession),
        BadInput("session with NUL", with(valid, 2, [0x61, 0x00]), .badSession),
        BadInput("session with newline", with(valid, 2, Array("abc\n".utf8)), .badSession),
        BadInput("session with DEL", with(valid, 2, [0x61, 0x7F]), .badSession),
        BadInput("session with UTF-8 é", with(valid, 2, Array("é".utf8)), .badSession),
        BadInput("session with 0xFF", with(valid, 2, [0xFF]), .badSession),
    ]

    static let body: [BadInput] = [
        BadInput(
            "body over 1 MiB",
            with(valid, 3, Array(cancelBody.utf8) + Array(repeating: 0x20, count: 1 << 20)),
            .oversized
        ),
        BadInput("body empty", with(valid, 3, []), .malformedBody),
        BadInput("body whitespace", with(valid, 3, Array("  \n".utf8)), .malformedBody),
        BadInput("body not JSON", with(valid, 3, Array("hello".utf8)), .malformedBody),
        BadInput("body JSON array", with(valid, 3, Array("[1,2]".utf8)), .malformedBody),
        BadInput("body JSON string", with(valid, 3, Array(#""{}""#.utf8)), .malformedBody),
        BadInput("body JSON number", with(valid, 3, Array("42".utf8)), .malformedBody),
        BadInput("body JSON null", with(valid, 3, Array("null".utf8)), .malformedBody),
        BadInput("body JSON true", with(valid, 3, Array("true".utf8)), .malformedBody),
        BadInput("body with BOM", with(valid, 3, [0xEF, 0xBB, 0xBF] + Array(cancelBody.utf8)), .malformedBody),
        BadInput("body truncated", with(valid, 3, Array(cancelBody.utf8.dropLast(3))), .malformedBody),
        BadInput("body only {", with(valid, 3, Array("{".utf8)), .malformedBody),
        BadInput("body trailing garbage", with(valid, 3, Array((cancelBody + " x").utf8)), .malformedBody),
        BadInput("body two objects", with(valid, 3, Array((cancelBody + cancelBody).utf8)), .malformedBody),
        BadInput("body trailing NUL", with(valid, 3, Array(cancelBody.utf8) + [0]), .malformedBody),
        BadInput(
            "body with comment",
            with(valid, 3, Array(#"{"episode_id":"e",/*c*/"attempt":1}"#.utf8)),
            .malformedBody
        ),
        BadInput("body unquoted key", with(valid, 3, Array(#"{episode_id:"e","attempt":1}"#.utf8)), .malformedBody),
        BadInput(
            "number with leading zero",
            with(valid, 3, Array(#"{"episode_id":"e","attempt":01}"#.utf8)),
            .malformedBody
        ),
        BadInput("number with plus", with(valid, 3, Array(#"{"episode_id":"e","attempt":+1}"#.utf8)), .malformedBody),
        BadInput("body single quotes", with(valid, 3, Array("{'episode_id':'e','attempt':1}".utf8)), .malformedBody),
        BadInput(
            "body invalid UTF-8",
            with(valid, 3, Array(#"{"episode_id":""#.utf8) + [0xFF, 0xFE] + Array(#"","attempt":1}"#.utf8)),
            .malformedBody
        ),
        BadInput(
            "body lone surrogate",
            with(valid, 3, Array(#"{"episode_id":"\ud800","attempt":1}"#.utf8)),
            .malformedBody
        ),
        BadInput(
            "body raw control char in string",
            with(valid, 3, Array("{\"episode_id\":\"a\u{01}\",\"attempt\":1}".utf8)),
            .malformedBody
        ),
        BadInput("deeply nested JSON (100 000)", with(valid, 3, Array(nested(100_000).utf8)), .malformedBody),
        BadInput("deeply nested JSON (1 000)", with(valid, 3, Array(nested(1_000).utf8)), .malformedBody),
        BadInput(
            "deeply nested objects",
            with(
                valid,
                3,
                Array((String(repeating: #"{"a":"#, count: 50_000) + "1" + String(repeating: "}", count: 50_000)).utf8)
            ),
            .malformedBody
        ),
        // Wrong types.
        BadInput("attempt as string", Fixtures.frames(0x08, #"{"episode_id":"e","attempt":"1"}"#), .malformedBody),
        BadInput("attempt fractional", Fixtures.frames(0x08, #"{"episode_id":"e","attempt":1.5}"#), .malformedBody),
        BadInput(
            "attempt beyond Int64",
            Fixtures.frames(0x08, #"{"episode_id":"e","attempt":99999999999999999999999}"#),
            .malformedBody
        ),
        BadInput("attempt true", Fixtures.frames(0x08, #"{"episode_id":"e","attempt":true}"#), .malformedBody),
        BadInput("attempt null", Fixtures.frames(0x08, #"{"episode_id":"e","attempt":null}"#), .malformedBody),
        BadInput("episode_id number", Fixtures.frames(0x08, #"{"episode_id":7,"attempt":1}"#), .malformedBody),
        BadInput(
            "HELLO pid string",
            Fixtures.frames(0x01, session: "", helloBody.replacingOccurrences(of: #""pid":7"#, with: #""pid":"7""#)),
            .malformedBody
        ),
        BadInput(
            "HELLO capacity number",
            Fixtures.frames(
                0x01,
                session: "",
                helloBody.replacingOccurrences(of: #"{"episodes":2,"api_calls":3}"#, with: "2")
            ),
            .malformedBody
        ),
        BadInput(
            "HELLO running object",
            Fixtures.frames(0x01, session: "", String(helloBody.dropLast()) + #","running":{}}"#),
            .malformedBody
        ),
        BadInput("HEARTBEAT running string", Fixtures.frames(0x06, #"{"running":"episode_1"}"#), .malformedBody),
        // A signal kind of a later minor (or none at all) is refused, never guessed at.
        BadInput(
            "PROVIDER_SIGNAL unknown kind",
            Fixtures.frames(0x15, #"{"provider":"tts","kind":"billing_error"}"#),
            .malformedBody
        ),
        BadInput("PROVIDER_SIGNAL kind number", Fixtures.frames(0x15, #"{"provider":"tts","kind":3}"#), .malformedBody),
        BadInput("HEARTBEAT running [1]", Fixtures.frames(0x06, #"{"running":[1]}"#), .malformedBody),
        BadInput(
            "JOB spec string",
            Fixtures.frames(0x03, #"{"batch_id":"b","episode_id":"e","attempt":1,"spec":"t"}"#),
            .malformedBody
        ),
        BadInput(
            "JOB characters string",
            Fixtures.frames(
                0x03,
                #"{"batch_id":"b","episode_id":"e","attempt":1,"spec":{"topic":"t","characters":"Mara"}}"#
            ),
            .malformedBody
        ),
        BadInput(
            "RESULT status number",
            Fixtures.frames(0x05, #"{"episode_id":"e","attempt":1,"status":1,"duration_ms":5}"#),
            .malformedBody
        ),
        BadInput(
            "TRACE seq negative",
            Fixtures.frames(
                0x05,
                #"{"episode_id":"e","attempt":1,"status":"failed","duration_ms":5,"trace":[{"seq":-1,"event":"call_end","name":"x"}]}"#
            ),
            .malformedBody
        ),
        // Enum values outside the v1 sets.
        BadInput(
            "RESULT status ok",
            Fixtures.frames(0x05, #"{"episode_id":"e","attempt":1,"status":"ok","duration_ms":5}"#),
            .malformedBody
        ),
        BadInput(
            "RESULT status upper case",
            Fixtures.frames(0x05, #"{"episode_id":"e","attempt":1,"status":"SUCCEEDED","duration_ms":5}"#),
            .malformedBody
        ),
        BadInput(
            "PROGRESS unknown stage",
            Fixtures.frames(
                0x04,
                #"{"episode_id":"e","attempt":1,"stage":"music","state":"started","succeeded":0,"total":0}"#
            ),
            .malformedBody
        ),
        BadInput(
            "PROGRESS unknown state",
            Fixtures.frames(
                0x04,
                #"{"episode_id":"e","attempt":1,"stage":"script","state":"paused","succeeded":0,"total":0}"#
            ),
            .malformedBody
        ),
        BadInput(
            "DISCONNECT unknown reason",
            Fixtures.frames(0x07, #"{"reason":"gone_fishing","detail":""}"#),
            .malformedBody
        ),
        BadInput(
            "TRACE unknown event",
            Fixtures.frames(
                0x05,
                #"{"episode_id":"e","attempt":1,"status":"failed","duration_ms":5,"trace":[{"seq":1,"event":"lunch","name":"x"}]}"#
            ),
            .malformedBody
        ),
        // Missing required keys.
        BadInput("CANCEL {}", Fixtures.frames(0x08, "{}"), .malformedBody),
        BadInput("WELCOME {}", Fixtures.frames(0x02, "{}"), .malformedBody),
        BadInput("JOB {}", Fixtures.frames(0x03, "{}"), .malformedBody),
        BadInput("HELLO {}", Fixtures.frames(0x01, session: "", "{}"), .malformedBody),
        BadInput(
            "HELLO key _worker_id",
            Fixtures.frames(0x01, session: "", helloBody.replacingOccurrences(of: "worker_id", with: "_worker_id")),
            .malformedBody
        ),
        // A HELLO body under another kind's code.
        BadInput("HELLO body sent as JOB", Fixtures.frames(0x03, helloBody), .malformedBody),
    ]

    static var all: [BadInput] { framing + frame0 + frame1 + frame2 + body + InvalidFields.all }
}

@Suite("Codec: malformed input is rejected, never trapped on")
struct MalformedInputTests {
    @Test("framing", arguments: BadInputs.framing)
    func framing(_ input: BadInput) { check(input) }

    @Test("frame 0: protocol and version", arguments: BadInputs.frame0)
    func frame0(_ input: BadInput) { check(input) }

    @Test("frame 1: kind", arguments: BadInputs.frame1)
    func frame1(_ input: BadInput) { check(input) }

    @Test("frame 2: session token", arguments: BadInputs.frame2)
    func frame2(_ input: BadInput) { check(input) }

    @Test("frame 3: body", arguments: BadInputs.body)
    func body(_ input: BadInput) { check(input) }

    @Test("every error class is exercised")
    func everyClassExercised() {
        #expect(Set(BadInputs.all.map(\.code)) == Set(DecodeError.Code.allCases))
    }

    @Test("boundaries that are still valid")
    func validBoundaries() throws {
        // Session: empty and 64 bytes of the whole 0x21…0x7E range.
        let printable = (0x21...0x7E).map { UInt8($0) }
        #expect(try Codec.decode(with(valid, 2, [])).session == "")
        #expect(try Codec.decode(with(valid, 2, Array(printable.prefix(64)))).session.utf8.count == 64)
        #expect(try Codec.decode(with(valid, 2, Array(printable.suffix(64)))).session.utf8.count == 64)
        // Body of exactly 1 MiB (padded with JSON whitespace).
        let padded = Array(cancelBody.utf8) + Array(repeating: 0x20, count: (1 << 20) - cancelBody.utf8.count)
        #expect(padded.count == WireProtocol.maxBodyBytes)
        #expect(try Codec.decode(with(valid, 3, padded)).message == .cancel(Cancel(episodeId: "e", attempt: 1)))
        // Integers written as 1.0 or 1e0 are accepted (senders should not rely on it).
        #expect(
            try Codec.decode(Fixtures.frames(0x08, #"{"episode_id":"e","attempt":1.0}"#)).message
                == .cancel(Cancel(episodeId: "e", attempt: 1))
        )
        // The Swift parser tolerates a trailing comma (senders must not rely on it).
        #expect(
            try Codec.decode(with(valid, 3, Array(#"{"episode_id":"e","attempt":1,}"#.utf8))).message
                == .cancel(Cancel(episodeId: "e", attempt: 1))
        )
        // Moderate nesting inside an unknown key is fine.
        #expect(
            try Codec.decode(with(valid, 3, Array(nested(100).utf8))).message
                == .cancel(Cancel(episodeId: "e", attempt: 1))
        )
    }

    private func check(_ input: BadInput, sourceLocation: SourceLocation = #_sourceLocation) {
        let error = decodeError(input.frames)
        #expect(
            error?.code == input.code,
            "\(input.name): \(error.map(\.description) ?? "decoded")",
            sourceLocation: sourceLocation
        )
        #expect(error?.detail.isEmpty == false, sourceLocation: sourceLocation)
    }
}

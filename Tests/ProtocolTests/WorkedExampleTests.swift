import Foundation
import Testing

@testable import Protocol

/// The worked example of docs/PROTOCOL.md §12, byte for byte: what the Swift encoder produces is exactly
/// what the document shows, and the document's bytes decode to the intended messages.
@Suite("docs/PROTOCOL.md worked example")
struct WorkedExampleTests {
    static let session = "9f3c2a7be04d4c1d8a6e5b2f7c1d0e94"

    static let steps: [(Envelope, UInt8, String)] = [
        (
            Envelope(
                .hello(
                    Hello(
                        workerId: "render-01",
                        instance: "5b0c1f9e-8d4a-4e4b-9a57-2c3e1d7f6a10",
                        host: "render-01.lan",
                        pid: 4242,
                        capacity: Capacity(episodes: 2, apiCalls: 4),
                        softwareVersion: "0.1.0",
                        protocolMinor: 0
                    )
                )
            ),
            0x01,
            #"{"capacity":{"api_calls":4,"episodes":2},"host":"render-01.lan","instance":"5b0c1f9e-8d4a-4e4b-9a57-2c3e1d7f6a10","pid":4242,"protocol_minor":0,"running":[],"software_version":"0.1.0","worker_id":"render-01"}"#
        ),
        (
            Envelope(
                session: session,
                .welcome(
                    Welcome(
                        session: session,
                        heartbeatIntervalMs: 1000,
                        liveness: 3,
                        maxMessageBytes: 16_777_216,
                        softwareVersion: "0.1.0",
                        protocolMinor: 0
                    )
                )
            ),
            0x02,
            #"{"heartbeat_interval_ms":1000,"liveness":3,"max_message_bytes":16777216,"protocol_minor":0,"session":"9f3c2a7be04d4c1d8a6e5b2f7c1d0e94","software_version":"0.1.0"}"#
        ),
        (
            Envelope(
                session: session,
                .job(
                    Job(
                        batchId: "lighthouses",
                        episodeId: "episode_1",
                        attempt: 1,
                        spec: EpisodeSpec(
                            topic: "the history of the lighthouse",
                            id: "episode_1",
                            characters: ["Mara", "Ilo"],
                            scenes: 4,
                            style: "pastel documentary"
                        )
                    )
                )
            ),
            0x03,
            #"{"attempt":1,"batch_id":"lighthouses","episode_id":"episode_1","spec":{"characters":["Mara","Ilo"],"id":"episode_1","scenes":4,"style":"pastel documentary","topic":"the history of the lighthouse"}}"#
        ),
        (
            Envelope(
                session: session,
                .progress(
                    Progress(
                        episodeId: "episode_1",
                        attempt: 1,
                        stage: .voices,
                        state: .finished,
                        succeeded: 5,
                        total: 6
                    )
                )
            ),
            0x04,
            #"{"attempt":1,"episode_id":"episode_1","stage":"voices","state":"finished","succeeded":5,"total":6}"#
        ),
        (
            Envelope(session: session, .heartbeat(Heartbeat(running: [JobRef(episodeId: "episode_1", attempt: 1)]))),
            0x06,
            #"{"running":[{"attempt":1,"episode_id":"episode_1"}]}"#
        ),
        (
            Envelope(session: session, .heartbeat(Heartbeat())),
            0x06,
            #"{"running":[]}"#
        ),
        (
            Envelope(
                session: session,
                .result(
                    EpisodeResult(
                        episodeId: "episode_1",
                        attempt: 1,
                        status: .succeeded,
                        durationMs: 48211,
                        placeholders: [Placeholder(stage: .voices, item: "line_3", reason: "tts: HTTP 503")],
                        apiCalls: 2,
                        trace: [
                            TraceEvent(seq: 17, event: .episodeStart, name: "episode"),
                            TraceEvent(seq: 18, event: .callStart, name: "llm:script"),
                            TraceEvent(seq: 19, event: .callEnd, name: "llm:script"),
                            TraceEvent(seq: 20, event: .callStart, name: "tts:line_3"),
                            TraceEvent(seq: 21, event: .callEnd, name: "tts:line_3"),
                            TraceEvent(seq: 22, event: .episodeEnd, name: "episode"),
                        ]
                    )
                )
            ),
            0x05,
            #"{"api_calls":2,"attempt":1,"duration_ms":48211,"episode_id":"episode_1","placeholders":[{"item":"line_3","reason":"tts: HTTP 503","stage":"voices"}],"status":"succeeded","trace":[{"event":"episode_start","name":"episode","seq":17},{"event":"call_start","name":"llm:script","seq":18},{"event":"call_end","name":"llm:script","seq":19},{"event":"call_start","name":"tts:line_3","seq":20},{"event":"call_end","name":"tts:line_3","seq":21},{"event":"episode_end","name":"episode","seq":22}]}"#
        ),
        (
            Envelope(
                session: session,
                .disconnect(Disconnect(reason: .batchComplete, detail: "batch lighthouses finished"))
            ),
            0x07,
            #"{"detail":"batch lighthouses finished","reason":"batch_complete"}"#
        ),
        (
            Envelope(
                session: "0ld5e55",
                .disconnect(Disconnect(reason: .unknownSession, detail: "unknown session; send HELLO on a new socket"))
            ),
            0x07,
            #"{"detail":"unknown session; send HELLO on a new socket","reason":"unknown_session"}"#
        ),
    ]

    @Test("frame 0 is the ASCII bytes of reelfarm/1")
    func frame0() {
        #expect(WireProtocol.identifier == [0x72, 0x65, 0x65, 0x6C, 0x66, 0x61, 0x72, 0x6D, 0x2F, 0x31])
    }

    @Test("the encoder produces the documented bytes and they decode back")
    func documentedBytes() throws {
        for (envelope, kind, json) in Self.steps {
            let frames = Codec.encode(envelope)
            #expect(frames == [WireProtocol.identifier, [kind], Array(envelope.session.utf8), Array(json.utf8)])
            #expect(try Codec.decode(frames) == envelope)
        }
    }

    @Test("docs/PROTOCOL.md shows these bodies verbatim")
    func documentShowsTheBodies() throws {
        let url = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/PROTOCOL.md")
        let document = try String(contentsOf: url, encoding: .utf8)
        for (_, _, json) in Self.steps {
            #expect(document.contains(json), "docs/PROTOCOL.md lacks \(json)")
        }
        #expect(document.contains("72 65 65 6c 66 61 72 6d 2f 31"))
        #expect(document.contains(Self.session))
    }

    /// What the Python sketch in §13 sends: `json.dumps` output, with spaces after separators.
    @Test("the Python sketch's HELLO, HEARTBEAT and RESULT decode")
    func pythonSketch() throws {
        let hello =
            #"{"worker_id": "py-4242", "instance": "0f8e7a52-3c1b-4f7e-9d62-5a4b3c2d1e0f", "host": "render-02", "pid": 4242, "capacity": {"episodes": 2, "api_calls": 4}, "software_version": "py-sketch-0", "protocol_minor": 0, "running": [{"episode_id": "episode_1", "attempt": 2}]}"#
        let decodedHello = try Codec.decode(Fixtures.frames(0x01, session: "", hello))
        #expect(
            decodedHello.message
                == .hello(
                    Hello(
                        workerId: "py-4242",
                        instance: "0f8e7a52-3c1b-4f7e-9d62-5a4b3c2d1e0f",
                        host: "render-02",
                        pid: 4242,
                        capacity: Capacity(episodes: 2, apiCalls: 4),
                        softwareVersion: "py-sketch-0",
                        protocolMinor: 0,
                        running: [JobRef(episodeId: "episode_1", attempt: 2)]
                    )
                )
        )

        let heartbeat = #"{"running": [{"episode_id": "episode_1", "attempt": 2}]}"#
        #expect(
            try Codec.decode(Fixtures.frames(0x06, heartbeat)).message
                == .heartbeat(Heartbeat(running: [JobRef(episodeId: "episode_1", attempt: 2)]))
        )

        let result = #"{"episode_id": "episode_1", "attempt": 2, "status": "succeeded", "duration_ms": 2000}"#
        #expect(
            try Codec.decode(Fixtures.frames(0x05, result)).message
                == .result(EpisodeResult(episodeId: "episode_1", attempt: 2, status: .succeeded, durationMs: 2000))
        )
    }
}

import Foundation
import Testing

@testable import Protocol

@Suite("Codec: encoding and round trips")
struct CodecRoundTripTests {
    @Test("every kind round-trips", arguments: Fixtures.samples)
    func roundTrip(_ sample: Sample) throws {
        let frames = Codec.encode(sample.envelope)
        #expect(frames.count == (sample.envelope.message.kind.carriesBlob ? 5 : 4))
        #expect(frames[0] == Array("reelfarm/1".utf8))
        #expect(frames[1] == [sample.envelope.message.kind.rawValue])
        #expect(frames[2] == Array(sample.envelope.session.utf8))
        #expect(frames[3].first == UInt8(ascii: "{"))
        let decoded = try Codec.decode(frames)
        #expect(decoded == sample.envelope)
        // Encoding is deterministic (sorted keys), so a second trip gives the same bytes.
        #expect(Codec.encode(decoded) == frames)
    }

    @Test("the samples cover every message kind")
    func samplesCoverEveryKind() {
        #expect(Set(Fixtures.samples.map(\.envelope.message.kind)) == Set(MessageKind.allCases))
    }

    @Test("kind codes and reserved ranges")
    func kindCodes() {
        let codes: [MessageKind: UInt8] = [
            .hello: 0x01, .welcome: 0x02, .job: 0x03, .progress: 0x04,
            .result: 0x05, .heartbeat: 0x06, .disconnect: 0x07, .cancel: 0x08,
            .leaseRequest: 0x10, .leaseGrant: 0x11, .leaseStarted: 0x12, .leaseRelease: 0x13, .leaseCancel: 0x14,
            .providerSignal: 0x15, .providerPause: 0x16, .artifactFetch: 0x20, .artifactChunk: 0x21, .artifactAck: 0x22,
            .assetGet: 0x30, .assetData: 0x31, .assetPut: 0x32,
        ]
        #expect(codes.count == MessageKind.allCases.count)
        for kind in MessageKind.allCases {
            #expect(kind.rawValue == codes[kind])
        }
        #expect(MessageKind.allCases.filter { MessageKind.artifactRange.contains($0.rawValue) }.count == 3)
        #expect(MessageKind.allCases.filter(\.carriesBlob) == [.artifactChunk, .assetData, .assetPut])
        #expect(MessageKind.allCases.filter { MessageKind.assetRange.contains($0.rawValue) }.count == 3)
        #expect(MessageKind.assetRange == 0x30...0x3F)
        #expect(MessageKind.allCases.filter { MessageKind.leaseRange.contains($0.rawValue) }.count == 7)
        #expect(MessageKind.leaseRange == 0x10...0x1F)
        #expect(MessageKind.artifactRange == 0x20...0x2F)
        #expect(
            MessageKind.allCases.map(\.description) == [
                "HELLO", "WELCOME", "JOB", "PROGRESS", "RESULT", "HEARTBEAT", "DISCONNECT", "CANCEL",
                "LEASE_REQUEST", "LEASE_GRANT", "LEASE_STARTED", "LEASE_RELEASE", "LEASE_CANCEL", "PROVIDER_SIGNAL",
                "PROVIDER_PAUSE", "ARTIFACT_FETCH", "ARTIFACT_CHUNK", "ARTIFACT_ACK", "ASSET_GET", "ASSET_DATA",
                "ASSET_PUT",
            ]
        )
    }

    @Test("protocol constants match docs/PROTOCOL.md")
    func constants() {
        #expect(WireProtocol.identifier == Array("reelfarm/1".utf8))
        #expect(WireProtocol.majorVersion == 1)
        #expect(WireProtocol.minorVersion == 5)
        #expect(WireProtocol.maxAssetBytes == 67_108_864)
        #expect(WireProtocol.maxChunkBytes == 4_194_304)
        #expect(WireProtocol.maxArtifacts == 1000)
        #expect(WireProtocol.maxBodyBytes == 1_048_576)
        #expect(WireProtocol.maxSessionBytes == 64)
        #expect(WireProtocol.maxFrames == 20)
        #expect(WireProtocol.maxMessageBytes == 16_777_216)
        #expect(WireProtocol.maxIdentifierBytes == 128)
        #expect(WireProtocol.maxTextBytes == 4096)
        #expect(EpisodeSpec.defaultScenes == 4)
        #expect(EpisodeSpec.maxScenes == 50)
        #expect(EpisodeSpec.maxCharacters == 12)
    }

    @Test("decode error codes are the documented classes")
    func errorCodeNames() {
        #expect(
            DecodeError.Code.allCases.map(\.rawValue) == [
                "frame_count", "not_reelfarm", "unsupported_version", "unknown_kind", "oversized",
                "bad_session", "malformed_body", "invalid_field", "unexpected_blobs",
            ]
        )
        #expect(DecodeError(.badSession, "x").description == "bad_session: x")
    }
}

@Suite("Codec: JSON body keys")
struct CodecKeyTests {
    @Test("HELLO body keys are snake_case")
    func helloKeysAreSnakeCase() throws {
        let object = try Fixtures.jsonObject(Envelope(.hello(Fixtures.helloFull)))
        #expect(object["worker_id"] as? String == "render-01-a")
        #expect(object["protocol_minor"] as? Int == 1000)
        #expect(object["software_version"] as? String == "0.1.0+build.7")
        let capacity = try #require(object["capacity"] as? [String: Any])
        #expect(capacity["api_calls"] as? Int == 1024)
        #expect(capacity["episodes"] as? Int == 1024)
        let running = try #require(object["running"] as? [[String: Any]])
        #expect(running.first?["episode_id"] as? String == "episode_1")
        #expect(object["workerId"] == nil)
        #expect(object["protocolMinor"] == nil)
    }

    /// The exact key set of every body, nested objects as `parent.key`. docs/PROTOCOL.md lists the same.
    @Test(
        "encoded key sets match the documented tables",
        arguments: [
            (
                "HELLO", Envelope(.hello(Fixtures.helloFull)),
                [
                    "worker_id", "instance", "host", "pid", "capacity", "capacity.episodes", "capacity.api_calls",
                    "software_version", "protocol_minor", "running", "running.episode_id", "running.attempt",
                ]
            ),
            (
                "WELCOME", Envelope(session: Fixtures.session, .welcome(Fixtures.welcome)),
                [
                    "session", "heartbeat_interval_ms", "liveness", "max_message_bytes", "software_version",
                    "protocol_minor",
                ]
            ),
            (
                "JOB", Envelope(session: Fixtures.session, .job(Fixtures.jobFull)),
                [
                    "batch_id", "episode_id", "attempt", "spec", "spec.topic", "spec.id", "spec.characters",
                    "spec.scenes", "spec.style", "spend_allowance_micros",
                ]
            ),
            (
                "PROGRESS", Envelope(session: Fixtures.session, .progress(Fixtures.progressFull)),
                [
                    "episode_id", "attempt", "stage", "state", "succeeded", "total",
                ]
            ),
            (
                "RESULT", Envelope(session: Fixtures.session, .result(Fixtures.resultFull)),
                [
                    "episode_id", "attempt", "status", "error", "duration_ms", "placeholders", "placeholders.stage",
                    "placeholders.item", "placeholders.reason", "api_calls", "trace", "trace.seq", "trace.event",
                    "trace.name", "trace.cost_micros",
                ]
            ),
            (
                "HEARTBEAT", Envelope(session: Fixtures.session, .heartbeat(Fixtures.heartbeatRunning)),
                [
                    "running", "running.episode_id", "running.attempt",
                ]
            ),
            ("DISCONNECT", Envelope(.disconnect(Disconnect(reason: .shutdown, detail: "bye"))), ["reason", "detail"]),
            (
                "CANCEL", Envelope(session: Fixtures.session, .cancel(Cancel(episodeId: "e", attempt: 1))),
                [
                    "episode_id", "attempt",
                ]
            ),
        ]
    )
    func keySets(_ name: String, _ envelope: Envelope, _ expected: [String]) throws {
        let object = try Fixtures.jsonObject(envelope)
        var keys: Set<String> = []
        func collect(_ value: Any, _ prefix: String) {
            if let dict = value as? [String: Any] {
                for (key, child) in dict {
                    let path = prefix.isEmpty ? key : "\(prefix).\(key)"
                    keys.insert(path)
                    collect(child, path)
                }
            } else if let array = value as? [Any] {
                for element in array where element is [String: Any] { collect(element, prefix) }
            }
        }
        collect(object, "")
        #expect(keys == Set(expected), "\(name)")
    }

    @Test("unset optionals are omitted, not null")
    func unsetOptionalsAreOmitted() throws {
        let job = try Fixtures.jsonObject(Envelope(session: Fixtures.session, .job(Fixtures.jobMinimal)))
        #expect(job["spec"] as? [String: String] == ["topic": "t"])
        let result = try Fixtures.jsonObject(Envelope(session: Fixtures.session, .result(Fixtures.resultMinimal)))
        #expect(result["error"] == nil)
        #expect(
            Set(result.keys) == [
                "episode_id", "attempt", "status", "duration_ms", "placeholders", "api_calls", "trace",
            ]
        )
    }

    @Test("enum values are the documented strings")
    func enumValues() throws {
        #expect(Stage.allCases.map(\.rawValue) == ["script", "voices", "scenes", "broll", "render"])
        let states: [StageState] = [.started, .finished, .failed]
        #expect(states.map(\.rawValue) == ["started", "finished", "failed"])
        let statuses: [EpisodeResult.Status] = [.succeeded, .failed]
        #expect(statuses.map(\.rawValue) == ["succeeded", "failed"])
        let reasons: [Disconnect.Reason] = [.shutdown, .unknownSession, .protocolError, .batchComplete]
        #expect(reasons.map(\.rawValue) == ["shutdown", "unknown_session", "protocol_error", "batch_complete"])
        let events: [TraceEvent.Kind] = [.episodeStart, .episodeEnd, .callStart, .callEnd, .renderStart, .renderEnd]
        #expect(
            events.map(\.rawValue) == [
                "episode_start", "episode_end", "call_start", "call_end", "render_start", "render_end",
            ]
        )
        let signals: [ProviderSignal.Kind] = [
            .rateLimited, .concurrencyLimited, .quotaExceeded, .exhausted, .authFailed,
        ]
        #expect(
            signals.map(\.rawValue) == [
                "rate_limited", "concurrency_limited", "quota_exceeded", "exhausted", "auth_failed",
            ]
        )
        let trace = try Fixtures.jsonObject(Envelope(session: Fixtures.session, .result(Fixtures.resultFull)))["trace"]
        let first = try #require((trace as? [[String: Any]])?.first)
        #expect(first["event"] as? String == "episode_start")
    }

    @Test("the coordinator's HEARTBEAT has an empty running list")
    func coordinatorHeartbeat() {
        let body = Codec.encode(Envelope(session: Fixtures.session, .heartbeat(Heartbeat())))[3]
        #expect(String(decoding: body, as: UTF8.self) == #"{"running":[]}"#)
    }
}

@Suite("Codec: tolerant reading")
struct CodecToleranceTests {
    /// Adds an unknown key (holding nested JSON) to every object of the tree.
    private static func addingUnknownKeys(_ value: Any) -> Any {
        if let dict = value as? [String: Any] {
            var out = dict.mapValues(addingUnknownKeys)
            out["x_future_key"] = ["nested": [1, "two", ["deep": NSNull()]], "flag": true] as [String: Any]
            out["zzz"] = 1.5
            return out
        }
        if let array = value as? [Any] { return array.map(addingUnknownKeys) }
        return value
    }

    @Test("unknown keys are ignored at every level", arguments: Fixtures.samples)
    func unknownKeysIgnored(_ sample: Sample) throws {
        let object = try Fixtures.jsonObject(sample.envelope)
        let extended = try #require(Self.addingUnknownKeys(object) as? [String: Any])
        var frames = try Fixtures.frames(
            sample.envelope.message.kind,
            session: sample.envelope.session,
            object: extended
        )
        if let blob = Fixtures.blob(sample.envelope.message) { frames.append(blob) }
        #expect(try Codec.decode(frames) == sample.envelope)
    }

    @Test("key order and whitespace do not matter")
    func whitespaceAndOrder() throws {
        let body = "\n\t {  \"attempt\" : 2 ,\r\n \"episode_id\" :\"e\"  } \n"
        let envelope = try Codec.decode(Fixtures.frames(0x08, body))
        #expect(envelope.message == .cancel(Cancel(episodeId: "e", attempt: 2)))
    }

    @Test("JSON escapes decode")
    func escapes() throws {
        let ok = try Codec.decode(
            Fixtures.frames(0x08, #"{"episode_id":"\u00e9pisode\u00201 \ud83c\udfac","attempt":1}"#)
        )
        #expect(ok.message == .cancel(Cancel(episodeId: "épisode 1 🎬", attempt: 1)))
        // An escaped slash is still a slash, which identifiers may not contain.
        let slash = decodeError(Fixtures.frames(0x08, #"{"episode_id":"a\/b","attempt":1}"#))
        #expect(slash?.code == .invalidField)
    }

    @Test(
        "missing optional keys decode to their defaults",
        arguments: [
            (
                "HELLO without protocol_minor and running", 0x01 as UInt8,
                #"{"worker_id":"w","instance":"i","host":"h","pid":7,"capacity":{"episodes":2,"api_calls":3},"software_version":"1"}"#,
                Message.hello(
                    Hello(
                        workerId: "w",
                        instance: "i",
                        host: "h",
                        pid: 7,
                        capacity: Capacity(episodes: 2, apiCalls: 3),
                        softwareVersion: "1",
                        protocolMinor: 0,
                        running: []
                    )
                )
            ),
            (
                "HELLO with null optionals", 0x01,
                #"{"worker_id":"w","instance":"i","host":"h","pid":7,"capacity":{"episodes":2,"api_calls":3},"software_version":"1","protocol_minor":null,"running":null}"#,
                .hello(
                    Hello(
                        workerId: "w",
                        instance: "i",
                        host: "h",
                        pid: 7,
                        capacity: Capacity(episodes: 2, apiCalls: 3),
                        softwareVersion: "1",
                        protocolMinor: 0
                    )
                )
            ),
            ("HEARTBEAT {}", 0x06, "{}", .heartbeat(Heartbeat(running: []))),
            ("HEARTBEAT running null", 0x06, #"{"running":null}"#, .heartbeat(Heartbeat(running: []))),
            (
                "RESULT with required keys only", 0x05,
                #"{"episode_id":"e","attempt":1,"status":"succeeded","duration_ms":5}"#,
                .result(
                    EpisodeResult(
                        episodeId: "e",
                        attempt: 1,
                        status: .succeeded,
                        error: nil,
                        durationMs: 5,
                        placeholders: [],
                        apiCalls: 0,
                        trace: []
                    )
                )
            ),
            (
                "RESULT with null optionals", 0x05,
                #"{"episode_id":"e","attempt":1,"status":"failed","duration_ms":5,"error":null,"placeholders":null,"api_calls":null,"trace":null}"#,
                .result(EpisodeResult(episodeId: "e", attempt: 1, status: .failed, durationMs: 5))
            ),
            (
                "JOB spec with topic only", 0x03,
                #"{"batch_id":"b","episode_id":"e","attempt":1,"spec":{"topic":"t"}}"#,
                .job(Job(batchId: "b", episodeId: "e", attempt: 1, spec: EpisodeSpec(topic: "t")))
            ),
            (
                "JOB spec with null optionals", 0x03,
                #"{"batch_id":"b","episode_id":"e","attempt":1,"spec":{"topic":"t","id":null,"characters":null,"scenes":null,"style":null}}"#,
                .job(Job(batchId: "b", episodeId: "e", attempt: 1, spec: EpisodeSpec(topic: "t")))
            ),
        ]
    )
    func missingOptionals(_ name: String, _ kind: UInt8, _ body: String, _ expected: Message) throws {
        let envelope = try Codec.decode(Fixtures.frames(kind, session: kind == 0x01 ? "" : Fixtures.session, body))
        #expect(envelope.message == expected, "\(name)")
    }

    /// Top-level keys a receiver must accept being absent; every other key is required.
    private static let optionalKeys: [MessageKind: Set<String>] = [
        .hello: ["protocol_minor", "running", "recent_calls"],
        .welcome: ["protocol_minor", "budgets", "budget_mode", "fleet_workers", "asset_reuse"],
        .leaseRequest: ["calls", "units", "episode_id"],
        .leaseGrant: ["queued_ms", "refused", "detail"],
        .leaseStarted: ["calls"],
        .leaseRelease: ["finished", "returned", "used_units"],
        .providerSignal: [
            "retry_after_ms", "remaining", "reset_ms", "detail", "limit_requests", "limit_units", "remaining_units",
            "reset_units_ms", "max_concurrent", "current_concurrent",
        ],
        .providerPause: ["circuit_open", "reason"],
        .progress: ["succeeded", "total"],
        .disconnect: ["detail"],
        .heartbeat: ["running", "draining"],
        .result: ["error", "placeholders", "api_calls", "trace", "artifacts", "delivery", "spend_capped"],
        .job: ["spend_allowance_micros"],
        .artifactChunk: ["error"],
        .assetData: ["sha256", "content_type"],
        .assetPut: ["content_type"],
    ]

    @Test("each required key is required and each optional key is optional", arguments: Fixtures.samples)
    func requiredAndOptionalKeys(_ sample: Sample) throws {
        let object = try Fixtures.jsonObject(sample.envelope)
        let kind = sample.envelope.message.kind
        let optional = Self.optionalKeys[kind] ?? []
        for key in object.keys {
            var without = object
            without[key] = nil
            var frames = try Fixtures.frames(kind, session: sample.envelope.session, object: without)
            if let blob = Fixtures.blob(sample.envelope.message) { frames.append(blob) }
            let error = decodeError(frames)
            if kind == .progress, key == "total", (object["succeeded"] as? Int ?? 0) > 0 {
                // Absent, total defaults to 0, and a positive `succeeded` is then out of range.
                #expect(error?.code == .invalidField, "\(sample.name): succeeded > default total")
            } else if kind == .leaseGrant, key == "refused" {
                // Without `refused`, a refusal's 0 calls and empty lease id are out of range.
                #expect(error?.code == .invalidField, "\(sample.name): a refusal needs refused")
            } else if kind == .leaseRelease, key == "finished" || key == "returned",
                (object[key == "finished" ? "returned" : "finished"] as? Int ?? 0) == 0
            {
                #expect(error?.code == .invalidField, "\(sample.name): finished and returned both 0")
            } else if kind == .assetData, key == "sha256", object["found"] as? Bool == true {
                // A found answer without its digest cannot be checked.
                #expect(error?.code == .invalidField, "\(sample.name): found needs sha256")
            } else if optional.contains(key) {
                #expect(error == nil, "\(sample.name): \(key) should be optional")
            } else {
                #expect(error?.code == .malformedBody, "\(sample.name): \(key) should be required")
            }
        }
    }

    @Test(
        "nested required keys",
        arguments: [
            (
                "capacity.episodes", 0x01 as UInt8,
                #"{"worker_id":"w","instance":"i","host":"h","pid":7,"capacity":{"api_calls":3},"software_version":"1"}"#
            ),
            (
                "capacity.api_calls", 0x01,
                #"{"worker_id":"w","instance":"i","host":"h","pid":7,"capacity":{"episodes":3},"software_version":"1"}"#
            ),
            ("running.attempt", 0x06, #"{"running":[{"episode_id":"e"}]}"#),
            ("running.episode_id", 0x06, #"{"running":[{"attempt":1}]}"#),
            ("spec.topic", 0x03, #"{"batch_id":"b","episode_id":"e","attempt":1,"spec":{"id":"e"}}"#),
            (
                "placeholders.reason", 0x05,
                #"{"episode_id":"e","attempt":1,"status":"failed","duration_ms":5,"placeholders":[{"stage":"voices","item":"line_1"}]}"#
            ),
            (
                "trace.seq", 0x05,
                #"{"episode_id":"e","attempt":1,"status":"failed","duration_ms":5,"trace":[{"event":"call_end","name":"x"}]}"#
            ),
        ]
    )
    func nestedRequiredKeys(_ name: String, _ kind: UInt8, _ body: String) {
        #expect(decodeError(Fixtures.frames(kind, body))?.code == .malformedBody, "\(name)")
    }

    @Test("HELLO with a non-empty session and WELCOME with any session decode (the state machines judge them)")
    func sessionsAreNotJudgedByTheCodec() throws {
        let hello = Codec.encode(Envelope(session: "stale", .hello(Fixtures.helloMinimal)))
        #expect(try Codec.decode(hello).session == "stale")
    }
}

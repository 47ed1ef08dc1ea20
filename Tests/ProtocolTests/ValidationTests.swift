import Testing

@testable import Protocol

/// Messages that encode and parse but break a field rule: each must decode to `invalid_field`
/// naming the field.
enum InvalidFields {
    private static let s = Fixtures.session

    private static func bad(_ name: String, _ message: Message, field: String, session: String = s) -> BadInput {
        BadInput("\(name) [\(field)]", Codec.encode(Envelope(session: session, message)), .invalidField)
    }

    private static func hello(_ change: (inout Hello) -> Void) -> Message {
        var m = Fixtures.helloMinimal
        change(&m)
        return .hello(m)
    }

    private static func welcome(_ change: (inout Welcome) -> Void) -> Message {
        var m = Fixtures.welcome
        change(&m)
        return .welcome(m)
    }

    private static func job(_ change: (inout Job) -> Void) -> Message {
        var m = Fixtures.jobMinimal
        change(&m)
        return .job(m)
    }

    private static func progress(_ change: (inout Progress) -> Void) -> Message {
        var m = Fixtures.progressMinimal
        change(&m)
        return .progress(m)
    }

    private static func result(_ change: (inout EpisodeResult) -> Void) -> Message {
        var m = Fixtures.resultMinimal
        change(&m)
        return .result(m)
    }

    static let long4097 = String(repeating: "x", count: 4097)
    static let long129 = String(repeating: "i", count: 129)

    private static func withFiles(_ files: [ArtifactFile], status: EpisodeResult.Status = .succeeded) -> Message {
        var m = Fixtures.resultWithArtifacts
        m.artifacts = files
        m.status = status
        return .result(m)
    }

    private static func file(_ name: String = "a.wav", size: Int = 1, sha: String = Fixtures.sha) -> ArtifactFile {
        ArtifactFile(name: name, size: size, sha256: sha)
    }

    private static func fetch(name: String = "a.wav", offset: Int = 0, length: Int = 1) -> Message {
        .artifactFetch(ArtifactFetch(episodeId: "e", attempt: 1, name: name, offset: offset, length: length))
    }

    static let artifacts: [BadInput] = [
        bad("artifact name empty", withFiles([file("")]), field: "artifacts.name"),
        bad("artifact name hidden", withFiles([file(".bashrc")]), field: "artifacts.name"),
        bad("artifact name with slash", withFiles([file("../x")]), field: "artifacts.name"),
        bad("artifact name with space", withFiles([file("a b")]), field: "artifacts.name"),
        bad("artifact name 129 bytes", withFiles([file(String(repeating: "a", count: 129))]), field: "artifacts.name"),
        bad("artifact listed twice", withFiles([file(), file()]), field: "artifacts.name"),
        bad("artifact size -1", withFiles([file(size: -1)]), field: "artifacts.size"),
        bad("artifact sha uppercase", withFiles([file(sha: Fixtures.sha.uppercased())]), field: "artifacts.sha256"),
        bad("artifact sha short", withFiles([file(sha: "abc")]), field: "artifacts.sha256"),
        bad("artifacts on a failure", withFiles([file()], status: .failed), field: "artifacts"),
        bad("1001 artifacts", withFiles((0...1000).map { file("f\($0)") }), field: "artifacts"),
        bad("fetch name with slash", fetch(name: "a/b"), field: "name"),
        bad("fetch offset -1", fetch(offset: -1), field: "offset"),
        bad("fetch length 4 MiB + 1", fetch(length: (4 << 20) + 1), field: "length"),
        bad(
            "chunk error with bytes",
            .artifactChunk(ArtifactChunk(episodeId: "e", attempt: 1, name: "a", offset: 0, error: "x", data: [1])),
            field: "error"
        ),
        bad("ack attempt 0", .artifactAck(ArtifactAck(episodeId: "e", attempt: 0)), field: "attempt"),
        bad("asset get key short", .assetGet(AssetGet(requestId: 1, key: "abc", length: 10)), field: "key"),
        bad("asset get length 0", .assetGet(AssetGet(requestId: 1, key: Fixtures.sha, length: 0)), field: "length"),
        bad(
            "asset data past its size",
            .assetData(
                AssetData(requestId: 1, key: Fixtures.sha, found: true, size: 2, sha256: Fixtures.sha, data: [1, 2, 3])
            ),
            field: "data"
        ),
        bad(
            "asset data found without sha256",
            .assetData(AssetData(requestId: 1, key: Fixtures.sha, found: true, size: 1, data: [1])),
            field: "sha256"
        ),
        bad(
            "asset data not found with bytes",
            .assetData(AssetData(requestId: 1, key: Fixtures.sha, found: false, data: [1])),
            field: "found"
        ),
        bad(
            "asset put 64 MiB + 1",
            .assetPut(AssetPut(key: Fixtures.sha, size: (64 << 20) + 1, sha256: Fixtures.sha, service: "x", data: [1])),
            field: "size"
        ),
        bad(
            "asset put offset past its size",
            .assetPut(AssetPut(key: Fixtures.sha, size: 2, sha256: Fixtures.sha, service: "x", offset: 2, data: [1])),
            field: "offset"
        ),
        bad(
            "asset put content type with a newline",
            .assetPut(
                AssetPut(key: Fixtures.sha, size: 1, sha256: Fixtures.sha, contentType: "a\nb", service: "x", data: [1])
            ),
            field: "content_type"
        ),
    ]

    static let all: [BadInput] =
        artifacts + [
            // HELLO
            bad("worker_id empty", hello { $0.workerId = "" }, field: "worker_id", session: ""),
            bad("worker_id 129 bytes", hello { $0.workerId = long129 }, field: "worker_id", session: ""),
            bad(
                "worker_id 65 × é (130 bytes)",
                hello { $0.workerId = String(repeating: "é", count: 65) },
                field: "worker_id",
                session: ""
            ),
            bad("worker_id with /", hello { $0.workerId = "a/b" }, field: "worker_id", session: ""),
            bad("worker_id with \\", hello { $0.workerId = "a\\b" }, field: "worker_id", session: ""),
            bad("worker_id ..", hello { $0.workerId = ".." }, field: "worker_id", session: ""),
            bad("worker_id .", hello { $0.workerId = "." }, field: "worker_id", session: ""),
            bad("worker_id with NUL", hello { $0.workerId = "a\u{0}" }, field: "worker_id", session: ""),
            bad("worker_id with newline", hello { $0.workerId = "a\nb" }, field: "worker_id", session: ""),
            bad("worker_id with tab", hello { $0.workerId = "a\tb" }, field: "worker_id", session: ""),
            bad("worker_id with ESC", hello { $0.workerId = "a\u{1B}[31m" }, field: "worker_id", session: ""),
            bad("worker_id with DEL", hello { $0.workerId = "a\u{7F}" }, field: "worker_id", session: ""),
            bad("instance empty", hello { $0.instance = "" }, field: "instance", session: ""),
            bad("host empty", hello { $0.host = "" }, field: "host", session: ""),
            bad("host 4097 bytes", hello { $0.host = long4097 }, field: "host", session: ""),
            bad("pid -1", hello { $0.pid = -1 }, field: "pid", session: ""),
            bad("pid 2^31", hello { $0.pid = 1 << 31 }, field: "pid", session: ""),
            bad("capacity.episodes 0", hello { $0.capacity.episodes = 0 }, field: "capacity.episodes", session: ""),
            bad("capacity.episodes -1", hello { $0.capacity.episodes = -1 }, field: "capacity.episodes", session: ""),
            bad(
                "capacity.episodes 1025",
                hello { $0.capacity.episodes = 1025 },
                field: "capacity.episodes",
                session: ""
            ),
            bad("capacity.api_calls 0", hello { $0.capacity.apiCalls = 0 }, field: "capacity.api_calls", session: ""),
            bad(
                "capacity.api_calls 1025",
                hello { $0.capacity.apiCalls = 1025 },
                field: "capacity.api_calls",
                session: ""
            ),
            bad("software_version empty", hello { $0.softwareVersion = "" }, field: "software_version", session: ""),
            bad("protocol_minor -1", hello { $0.protocolMinor = -1 }, field: "protocol_minor", session: ""),
            bad("protocol_minor 1001", hello { $0.protocolMinor = 1001 }, field: "protocol_minor", session: ""),
            bad(
                "running attempt 0",
                hello { $0.running = [JobRef(episodeId: "e", attempt: 0)] },
                field: "running.attempt",
                session: ""
            ),
            bad(
                "running episode_id ..",
                hello { $0.running = [JobRef(episodeId: "..", attempt: 1)] },
                field: "running.episode_id",
                session: ""
            ),
            bad(
                "running 1025 entries",
                hello { $0.running = Array(repeating: JobRef(episodeId: "e", attempt: 1), count: 1025) },
                field: "running",
                session: ""
            ),
            // WELCOME
            bad("session empty", welcome { $0.session = "" }, field: "session"),
            bad("heartbeat_interval_ms 9", welcome { $0.heartbeatIntervalMs = 9 }, field: "heartbeat_interval_ms"),
            bad(
                "heartbeat_interval_ms 60001",
                welcome { $0.heartbeatIntervalMs = 60_001 },
                field: "heartbeat_interval_ms"
            ),
            bad("liveness 0", welcome { $0.liveness = 0 }, field: "liveness"),
            bad("liveness 101", welcome { $0.liveness = 101 }, field: "liveness"),
            bad("max_message_bytes 1023", welcome { $0.maxMessageBytes = 1023 }, field: "max_message_bytes"),
            bad("max_message_bytes 2^30+1", welcome { $0.maxMessageBytes = (1 << 30) + 1 }, field: "max_message_bytes"),
            bad("WELCOME software_version empty", welcome { $0.softwareVersion = "" }, field: "software_version"),
            // JOB
            bad("batch_id empty", job { $0.batchId = "" }, field: "batch_id"),
            bad("batch_id with /", job { $0.batchId = "../etc" }, field: "batch_id"),
            bad("JOB episode_id ..", job { $0.episodeId = ".." }, field: "episode_id"),
            bad("attempt 0", job { $0.attempt = 0 }, field: "attempt"),
            bad("attempt negative", job { $0.attempt = -3 }, field: "attempt"),
            bad("attempt 1 000 001", job { $0.attempt = 1_000_001 }, field: "attempt"),
            bad("topic empty", job { $0.spec.topic = "" }, field: "spec.topic"),
            bad("topic 4097 bytes", job { $0.spec.topic = long4097 }, field: "spec.topic"),
            bad("scenes 0", job { $0.spec.scenes = 0 }, field: "spec.scenes"),
            bad("scenes 51", job { $0.spec.scenes = 51 }, field: "spec.scenes"),
            bad("spec.id with /", job { $0.spec.id = "a/b" }, field: "spec.id"),
            bad("13 characters", job { $0.spec.characters = (1...13).map { "c\($0)" } }, field: "spec.characters"),
            bad("character empty", job { $0.spec.characters = [""] }, field: "spec.characters"),
            bad("style 4097 bytes", job { $0.spec.style = long4097 }, field: "spec.style"),
            // PROGRESS
            bad("PROGRESS attempt 0", progress { $0.attempt = 0 }, field: "attempt"),
            bad("total -1", progress { $0.total = -1 }, field: "total"),
            bad(
                "total 100 001",
                progress {
                    $0.total = 100_001
                    $0.succeeded = 0
                },
                field: "total"
            ),
            bad(
                "succeeded > total",
                progress {
                    $0.succeeded = 5
                    $0.total = 4
                },
                field: "succeeded"
            ),
            bad(
                "succeeded -1",
                progress {
                    $0.succeeded = -1
                    $0.total = 4
                },
                field: "succeeded"
            ),
            // RESULT
            bad("RESULT episode_id empty", result { $0.episodeId = "" }, field: "episode_id"),
            bad("RESULT attempt -1", result { $0.attempt = -1 }, field: "attempt"),
            bad("error 4097 bytes", result { $0.error = long4097 }, field: "error"),
            bad("duration_ms -1", result { $0.durationMs = -1 }, field: "duration_ms"),
            bad("duration_ms 31 days", result { $0.durationMs = 31 * 24 * 3_600_000 }, field: "duration_ms"),
            bad("api_calls -1", result { $0.apiCalls = -1 }, field: "api_calls"),
            bad("api_calls 1 000 001", result { $0.apiCalls = 1_000_001 }, field: "api_calls"),
            bad(
                "placeholder item empty",
                result { $0.placeholders = [Placeholder(stage: .voices, item: "", reason: "r")] },
                field: "placeholders.item"
            ),
            bad(
                "placeholder reason 4097",
                result { $0.placeholders = [Placeholder(stage: .voices, item: "i", reason: long4097)] },
                field: "placeholders.reason"
            ),
            bad(
                "trace name empty",
                result { $0.trace = [TraceEvent(seq: 1, event: .callStart, name: "")] },
                field: "trace.name"
            ),
            bad(
                "JOB spend_allowance_micros -1",
                .job(
                    Job(
                        batchId: "b",
                        episodeId: "e",
                        attempt: 1,
                        spec: EpisodeSpec(topic: "t"),
                        spendAllowanceMicros: -1
                    )
                ),
                field: "spend_allowance_micros"
            ),
            bad(
                "trace cost_micros -1",
                result { $0.trace = [TraceEvent(seq: 1, event: .callEnd, name: "llm:script", costMicros: -1)] },
                field: "trace.cost_micros"
            ),
            bad(
                "trace cost_micros above a million dollars",
                result {
                    $0.trace = [TraceEvent(seq: 1, event: .callEnd, name: "llm:script", costMicros: 1_000_000_000_001)]
                },
                field: "trace.cost_micros"
            ),
            // HEARTBEAT, DISCONNECT, CANCEL
            bad(
                "HEARTBEAT running attempt 0",
                .heartbeat(Heartbeat(running: [JobRef(episodeId: "e", attempt: 0)])),
                field: "running.attempt"
            ),
            bad(
                "HEARTBEAT running episode_id empty",
                .heartbeat(Heartbeat(running: [JobRef(episodeId: "", attempt: 1)])),
                field: "running.episode_id"
            ),
            bad("detail 4097 bytes", .disconnect(Disconnect(reason: .shutdown, detail: long4097)), field: "detail"),
            bad("CANCEL attempt 0", .cancel(Cancel(episodeId: "e", attempt: 0)), field: "attempt"),
            bad(
                "CANCEL episode_id with control char",
                .cancel(Cancel(episodeId: "e\u{8}", attempt: 1)),
                field: "episode_id"
            ),
        ] + learning

    /// Minor 4: the fields a worker reports what providers say about their limits with.
    static let learning: [BadInput] = [
        bad(
            "LEASE_RELEASE used_units negative",
            .leaseRelease(LeaseRelease(leaseId: "l", finished: 1, usedUnits: -1)),
            field: "used_units"
        ),
        bad(
            "LEASE_RELEASE used_units above 10^9",
            .leaseRelease(LeaseRelease(leaseId: "l", finished: 1, usedUnits: 1_000_000_001)),
            field: "used_units"
        ),
        bad(
            "LEASE_RELEASE used_units without a finished call",
            .leaseRelease(LeaseRelease(leaseId: "l", returned: 1, usedUnits: 5)),
            field: "used_units"
        ),
        bad(
            "PROVIDER_SIGNAL limit_requests 0",
            .providerSignal(ProviderSignal(provider: "llm", kind: .limits, limitRequests: 0)),
            field: "limit_requests"
        ),
        bad(
            "PROVIDER_SIGNAL limit_units 0",
            .providerSignal(ProviderSignal(provider: "llm", kind: .limits, limitUnits: 0)),
            field: "limit_units"
        ),
        bad(
            "PROVIDER_SIGNAL remaining_units negative",
            .providerSignal(ProviderSignal(provider: "llm", kind: .limits, remainingUnits: -1)),
            field: "remaining_units"
        ),
        bad(
            "PROVIDER_SIGNAL reset_units_ms above a day",
            .providerSignal(ProviderSignal(provider: "llm", kind: .limits, resetUnitsMs: 86_400_001)),
            field: "reset_units_ms"
        ),
        bad(
            "PROVIDER_SIGNAL max_concurrent 0",
            .providerSignal(ProviderSignal(provider: "tts", kind: .limits, maxConcurrent: 0)),
            field: "max_concurrent"
        ),
        bad(
            "PROVIDER_SIGNAL current_concurrent above 100000",
            .providerSignal(ProviderSignal(provider: "tts", kind: .limits, currentConcurrent: 100_001)),
            field: "current_concurrent"
        ),
    ]
}

@Suite("Validation: field ranges")
struct ValidationTests {
    @Test("out-of-range fields are invalid_field and name the field", arguments: InvalidFields.all)
    func invalidField(_ input: BadInput) throws {
        let error = try #require(decodeError(input.frames), "\(input.name) decoded")
        #expect(error.code == .invalidField, "\(input.name): \(error)")
        let field = String(input.name.split(separator: "[").last!.dropLast())
        #expect(error.detail.hasPrefix(field), "\(input.name): \(error.detail)")
    }

    @Test("upper and lower bounds are accepted")
    func boundsAccepted() throws {
        var hello = Fixtures.helloMinimal
        hello.workerId = String(repeating: "é", count: 64)  // 128 bytes
        hello.instance = "a b:c@d.e_f-g+h"  // spaces and punctuation other than / and \ are allowed
        hello.host = String(repeating: "h", count: 4096)
        hello.capacity = Capacity(episodes: 1, apiCalls: 1024)
        hello.running = Array(repeating: JobRef(episodeId: "e", attempt: 1_000_000), count: 1024)
        #expect(try Codec.decode(Codec.encode(Envelope(.hello(hello)))).message == .hello(hello))

        var progress = Fixtures.progressMinimal
        progress.succeeded = 100_000
        progress.total = 100_000
        #expect(
            try Codec.decode(Codec.encode(Envelope(session: "s", .progress(progress)))).message == .progress(progress)
        )

        var result = Fixtures.resultMinimal
        result.durationMs = 30 * 24 * 3_600_000
        result.apiCalls = 1_000_000
        result.error = ""
        result.trace = [TraceEvent(seq: .max, event: .callEnd, name: "x")]
        #expect(try Codec.decode(Codec.encode(Envelope(session: "s", .result(result)))).message == .result(result))

        let disconnect = Disconnect(reason: .protocolError, detail: String(repeating: "d", count: 4096))
        #expect(try Codec.decode(Codec.encode(Envelope(.disconnect(disconnect)))).message == .disconnect(disconnect))
    }
}

@Suite("EpisodeSpec.validate")
struct EpisodeSpecValidationTests {
    @Test(
        "good specs pass",
        arguments: [
            EpisodeSpec(topic: "t"),
            EpisodeSpec(topic: String(repeating: "x", count: 4096)),
            EpisodeSpec(topic: String(repeating: "é", count: 2048)),
            EpisodeSpec(topic: "the lighthouse", id: "episode_1", characters: [], scenes: 1, style: ""),
            EpisodeSpec(
                topic: "t",
                id: String(repeating: "i", count: 128),
                characters: (1...12).map { "c\($0)" },
                scenes: 50,
                style: String(repeating: "s", count: 4096)
            ),
            EpisodeSpec(topic: "t", id: "v1.2"),
        ]
    )
    func goodSpec(_ spec: EpisodeSpec) throws {
        try spec.validate()
    }

    @Test(
        "bad specs are refused naming the field",
        arguments: [
            (EpisodeSpec(topic: ""), "spec.topic"),
            (EpisodeSpec(topic: String(repeating: "x", count: 4097)), "spec.topic"),
            (EpisodeSpec(topic: String(repeating: "é", count: 2049)), "spec.topic"),
            (EpisodeSpec(topic: "t", id: ""), "spec.id"),
            (EpisodeSpec(topic: "t", id: "a/b"), "spec.id"),
            (EpisodeSpec(topic: "t", id: "a\\b"), "spec.id"),
            (EpisodeSpec(topic: "t", id: ".."), "spec.id"),
            (EpisodeSpec(topic: "t", id: "."), "spec.id"),
            // Issue 15 item 2: ids are folder names beside the batch's own files (BatchNames).
            (EpisodeSpec(topic: "t", id: "..."), "spec.id"),
            (EpisodeSpec(topic: "t", id: ".hidden"), "spec.id"),
            (EpisodeSpec(topic: "t", id: "summary.json"), "spec.id"),
            (EpisodeSpec(topic: "t", id: "a\u{202E}b"), "spec.id"),
            (EpisodeSpec(topic: "t", id: "a\u{0}b"), "spec.id"),
            (EpisodeSpec(topic: "t", id: "line\nbreak"), "spec.id"),
            (EpisodeSpec(topic: "t", id: String(repeating: "i", count: 129)), "spec.id"),
            (EpisodeSpec(topic: "t", characters: (1...13).map { "c\($0)" }), "spec.characters"),
            (EpisodeSpec(topic: "t", characters: ["ok", ""]), "spec.characters"),
            (EpisodeSpec(topic: "t", characters: ["a/b"]), "spec.characters"),
            (EpisodeSpec(topic: "t", scenes: 0), "spec.scenes"),
            (EpisodeSpec(topic: "t", scenes: 51), "spec.scenes"),
            (EpisodeSpec(topic: "t", scenes: -1), "spec.scenes"),
            (EpisodeSpec(topic: "t", scenes: .min), "spec.scenes"),
            (EpisodeSpec(topic: "t", style: String(repeating: "s", count: 4097)), "spec.style"),
        ]
    )
    func badSpec(_ spec: EpisodeSpec, _ field: String) {
        do {
            try spec.validate()
            Issue.record("\(spec) was accepted")
        } catch {
            #expect(error.code == .invalidField)
            #expect(error.detail.hasPrefix(field), "\(error.detail)")
        }
    }
}

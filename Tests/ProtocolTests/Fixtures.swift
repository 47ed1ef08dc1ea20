import Foundation
import Testing

@testable import Protocol

/// A named envelope, so parameterized tests print which message failed.
struct Sample: Sendable, CustomTestStringConvertible {
    var name: String
    var envelope: Envelope

    var testDescription: String { name }

    init(_ name: String, _ envelope: Envelope) {
        self.name = name
        self.envelope = envelope
    }
}

/// Valid messages of every kind, each with its optional fields unset and set.
enum Fixtures {
    static let session = "9f3c2a7be04d4c1d8a6e5b2f7c1d0e94"

    static let helloMinimal = Hello(
        workerId: "w-1",
        instance: "inst-1",
        host: "h",
        pid: 0,
        capacity: Capacity(episodes: 1, apiCalls: 1),
        softwareVersion: "0.1.0"
    )
    static let helloFull = Hello(
        workerId: "render-01-a",
        instance: "5b0c1f9e-8d4a-4e4b-9a57-2c3e1d7f6a10",
        host: "render-01.example",
        pid: Int(Int32.max),
        capacity: Capacity(episodes: 1024, apiCalls: 1024),
        softwareVersion: "0.1.0+build.7",
        protocolMinor: 1000,
        running: [JobRef(episodeId: "episode_1", attempt: 1), JobRef(episodeId: "épisode 2 ✓", attempt: 1_000_000)]
    )

    static let welcome = Welcome(
        session: session,
        heartbeatIntervalMs: 1000,
        liveness: 3,
        maxMessageBytes: 16 << 20,
        softwareVersion: "0.1.0"
    )
    static let welcomeBounds = Welcome(
        session: "s",
        heartbeatIntervalMs: 10,
        liveness: 100,
        maxMessageBytes: 1 << 30,
        softwareVersion: "x"
    )

    static let jobMinimal = Job(batchId: "b", episodeId: "e", attempt: 1, spec: EpisodeSpec(topic: "t"))
    static let jobFull = Job(
        batchId: "batch-2026-11-26",
        episodeId: "episode_1",
        attempt: 3,
        spec: EpisodeSpec(
            topic: "the history of the lighthouse — \"quoted\", back\\slash, tab\t, newline\n, emoji 🎬, a/b",
            id: "episode_1",
            characters: ["Mara", "Ilo", "Dr. Ø"],
            scenes: 50,
            style: ""
        ),
        spendAllowanceMicros: 450_000
    )

    static let progressMinimal = Progress(episodeId: "e", attempt: 1, stage: .script, state: .started)
    static let progressFull = Progress(
        episodeId: "episode_1",
        attempt: 2,
        stage: .voices,
        state: .failed,
        succeeded: 7,
        total: 9
    )

    static let resultMinimal = EpisodeResult(episodeId: "e", attempt: 1, status: .succeeded, durationMs: 0)
    static let resultFull = EpisodeResult(
        episodeId: "episode_1",
        attempt: 2,
        status: .failed,
        error: "script: simulated failure",
        durationMs: 48211,
        placeholders: [
            Placeholder(stage: .scenes, item: "scene_2", reason: "image API: HTTP 503 after 3 tries"),
            Placeholder(stage: .voices, item: "line_3", reason: ""),
        ],
        apiCalls: 13,
        trace: [
            TraceEvent(seq: 1, event: .episodeStart, name: "episode"),
            TraceEvent(seq: 2, event: .callStart, name: "tts:line_3"),
            TraceEvent(seq: 3, event: .callEnd, name: "tts:line_3", costMicros: 3000),
            TraceEvent(seq: 4, event: .renderStart, name: "render"),
            TraceEvent(seq: 5, event: .renderEnd, name: "render"),
            TraceEvent(seq: UInt64(Int64.max), event: .episodeEnd, name: "episode"),
        ]
    )

    /// A RESULT of the hot shape (no placeholders, no files) whose calls carry costs (minor 4).
    static let resultWithCosts = EpisodeResult(
        episodeId: "episode_2",
        attempt: 1,
        status: .succeeded,
        durationMs: 2500,
        apiCalls: 2,
        trace: [
            TraceEvent(seq: 7, event: .callStart, name: "llm:script"),
            TraceEvent(seq: 8, event: .callEnd, name: "llm:script", costMicros: 290),
            TraceEvent(seq: 9, event: .callStart, name: "image:scene_1"),
            TraceEvent(seq: 10, event: .callEnd, name: "image:scene_1", costMicros: 1_000_000_000_000),
            TraceEvent(seq: 11, event: .callEnd, name: "tts:line_1", costMicros: 0),
        ]
    )

    static let sha = String(repeating: "0123456789abcdef", count: 4)
    static let resultWithArtifacts = EpisodeResult(
        episodeId: "episode_1",
        attempt: 1,
        status: .succeeded,
        durationMs: 2200,
        artifacts: [
            ArtifactFile(name: "episode.mp4", size: 1_048_577, sha256: sha),
            ArtifactFile(name: "empty.txt", size: 0, sha256: sha),
        ],
        delivery: .transfer
    )

    static let heartbeatEmpty = Heartbeat()
    static let heartbeatRunning = Heartbeat(running: [JobRef(episodeId: "episode_1", attempt: 1)])

    /// The blob frame (F4) of a message that carries one.
    static func blob(_ message: Message) -> [UInt8]? {
        switch message {
        case .artifactChunk(let m): m.data
        case .assetData(let m): m.data
        case .assetPut(let m): m.data
        default: nil
        }
    }

    static let samples: [Sample] = [
        Sample("RESULT with artifacts", Envelope(session: session, .result(resultWithArtifacts))),
        Sample(
            "ARTIFACT_FETCH",
            Envelope(
                session: session,
                .artifactFetch(
                    ArtifactFetch(
                        episodeId: "episode_1",
                        attempt: 1,
                        name: "episode.mp4",
                        offset: 262_144,
                        length: 262_144
                    )
                )
            )
        ),
        Sample(
            "ARTIFACT_CHUNK",
            Envelope(
                session: session,
                .artifactChunk(
                    ArtifactChunk(
                        episodeId: "episode_1",
                        attempt: 1,
                        name: "episode.mp4",
                        offset: 0,
                        data: [0, 1, 2, 255]
                    )
                )
            )
        ),
        Sample(
            "ARTIFACT_CHUNK error",
            Envelope(
                session: session,
                .artifactChunk(
                    ArtifactChunk(episodeId: "episode_1", attempt: 1, name: "a.wav", offset: 0, error: "gone", data: [])
                )
            )
        ),
        Sample(
            "ARTIFACT_ACK",
            Envelope(session: session, .artifactAck(ArtifactAck(episodeId: "episode_1", attempt: 1)))
        ),
        Sample(
            "ASSET_GET",
            Envelope(session: session, .assetGet(AssetGet(requestId: 7, key: sha, offset: 0, length: 1 << 20)))
        ),
        Sample(
            "ASSET_DATA found",
            Envelope(
                session: session,
                .assetData(
                    AssetData(
                        requestId: 7,
                        key: sha,
                        found: true,
                        size: 5,
                        sha256: sha,
                        contentType: "audio/mpeg",
                        offset: 1,
                        data: [1, 2, 3, 4]
                    )
                )
            )
        ),
        Sample(
            "ASSET_DATA not found",
            Envelope(session: session, .assetData(AssetData(requestId: 8, key: sha, found: false)))
        ),
        Sample(
            "ASSET_PUT",
            Envelope(
                session: session,
                .assetPut(
                    AssetPut(
                        key: sha,
                        size: 3,
                        sha256: sha,
                        contentType: "image/png",
                        service: "huggingface image",
                        offset: 0,
                        data: [9, 8, 7]
                    )
                )
            )
        ),
        Sample(
            "WELCOME with an asset store",
            Envelope(
                session: "s",
                .welcome(
                    Welcome(
                        session: "s",
                        heartbeatIntervalMs: 1000,
                        liveness: 3,
                        maxMessageBytes: 1 << 20,
                        softwareVersion: "1.0",
                        assetReuse: true
                    )
                )
            )
        ),
        Sample("HELLO minimal", Envelope(.hello(helloMinimal))),
        Sample("HELLO full", Envelope(.hello(helloFull))),
        Sample("WELCOME", Envelope(session: session, .welcome(welcome))),
        Sample("WELCOME bounds", Envelope(session: "s", .welcome(welcomeBounds))),
        Sample("JOB minimal", Envelope(session: session, .job(jobMinimal))),
        Sample("JOB full", Envelope(session: session, .job(jobFull))),
        Sample("PROGRESS minimal", Envelope(session: session, .progress(progressMinimal))),
        Sample("PROGRESS full", Envelope(session: session, .progress(progressFull))),
        Sample("RESULT minimal", Envelope(session: session, .result(resultMinimal))),
        Sample("RESULT full", Envelope(session: session, .result(resultFull))),
        Sample("RESULT with costs", Envelope(session: session, .result(resultWithCosts))),
        Sample(
            "RESULT stopped by its spend allowance",
            Envelope(
                session: session,
                .result(
                    EpisodeResult(
                        episodeId: "e",
                        attempt: 1,
                        status: .failed,
                        error: "script: spend cap",
                        durationMs: 3,
                        spendCapped: true
                    )
                )
            )
        ),
        Sample("HEARTBEAT empty", Envelope(session: session, .heartbeat(heartbeatEmpty))),
        Sample("HEARTBEAT running", Envelope(session: String(repeating: "~", count: 64), .heartbeat(heartbeatRunning))),
        Sample("DISCONNECT no detail", Envelope(.disconnect(Disconnect(reason: .unknownSession)))),
        Sample(
            "DISCONNECT shutdown",
            Envelope(session: session, .disconnect(Disconnect(reason: .shutdown, detail: "SIGTERM")))
        ),
        Sample(
            "DISCONNECT protocol_error",
            Envelope(.disconnect(Disconnect(reason: .protocolError, detail: "reelfarm/2")))
        ),
        Sample(
            "DISCONNECT batch_complete",
            Envelope(session: session, .disconnect(Disconnect(reason: .batchComplete)))
        ),
        Sample("CANCEL", Envelope(session: session, .cancel(Cancel(episodeId: "episode_1", attempt: 1)))),
        Sample("HELLO recent calls", Envelope(.hello(helloRecent))),
        Sample("HEARTBEAT draining", Envelope(session: session, .heartbeat(Heartbeat(running: [], draining: true)))),
        Sample("WELCOME budgets", Envelope(session: session, .welcome(welcomeBudgets))),
        Sample(
            "LEASE_REQUEST",
            Envelope(
                session: session,
                .leaseRequest(
                    LeaseRequest(requestId: "r1", provider: "llm", calls: 3, units: 2300, episodeId: "episode_1")
                )
            )
        ),
        Sample(
            "LEASE_REQUEST minimal",
            Envelope(session: session, .leaseRequest(LeaseRequest(requestId: "r", provider: "image")))
        ),
        Sample(
            "LEASE_GRANT",
            Envelope(
                session: session,
                .leaseGrant(
                    LeaseGrant(
                        requestId: "r1",
                        leaseId: "l7",
                        provider: "llm",
                        calls: 2,
                        useWithinMs: 2000,
                        queuedMs: 340
                    )
                )
            )
        ),
        Sample(
            "LEASE_GRANT refused",
            Envelope(
                session: session,
                .leaseGrant(
                    LeaseGrant(
                        requestId: "r1",
                        leaseId: "",
                        provider: "image",
                        calls: 0,
                        useWithinMs: 0,
                        refused: .circuitOpen,
                        detail: "insufficient_quota"
                    )
                )
            )
        ),
        Sample("LEASE_STARTED", Envelope(session: session, .leaseStarted(LeaseStarted(leaseId: "l7", calls: 2)))),
        Sample(
            "LEASE_RELEASE",
            Envelope(session: session, .leaseRelease(LeaseRelease(leaseId: "l7", finished: 1, returned: 1)))
        ),
        Sample(
            "LEASE_RELEASE used_units",
            Envelope(session: session, .leaseRelease(LeaseRelease(leaseId: "l8", finished: 1, usedUnits: 1234)))
        ),
        Sample("LEASE_CANCEL", Envelope(session: session, .leaseCancel(LeaseCancel(requestId: "r1")))),
        Sample(
            "PROVIDER_SIGNAL",
            Envelope(
                session: session,
                .providerSignal(
                    ProviderSignal(
                        provider: "image",
                        kind: .rateLimited,
                        retryAfterMs: 2000,
                        remaining: 0,
                        resetMs: 1500,
                        detail: "Rate limit reached"
                    )
                )
            )
        ),
        Sample(
            "PROVIDER_SIGNAL limits",
            Envelope(
                session: session,
                .providerSignal(
                    ProviderSignal(
                        provider: "llm",
                        kind: .limits,
                        remaining: 4,
                        resetMs: 1000,
                        limitRequests: 5,
                        limitUnits: 200_000,
                        remainingUnits: 199_000,
                        resetUnitsMs: 300,
                        maxConcurrent: 5,
                        currentConcurrent: 2
                    )
                )
            )
        ),
        Sample(
            "PROVIDER_SIGNAL minimal",
            Envelope(session: session, .providerSignal(ProviderSignal(provider: "tts", kind: .quotaExceeded)))
        ),
        Sample(
            "PROVIDER_SIGNAL auth",
            Envelope(
                session: session,
                .providerSignal(
                    ProviderSignal(provider: "tts", kind: .authFailed, detail: "HTTP 401 invalid_api_key")
                )
            )
        ),
        Sample(
            "PROVIDER_PAUSE",
            Envelope(
                session: session,
                .providerPause(ProviderPause(provider: "image", pauseMs: 2000, reason: "rate_limited"))
            )
        ),
        Sample(
            "PROVIDER_PAUSE circuit",
            Envelope(
                session: session,
                .providerPause(ProviderPause(provider: "image", pauseMs: 0, circuitOpen: true, reason: "billing"))
            )
        ),
    ]

    static let helloRecent = Hello(
        workerId: "w-2",
        instance: "inst-2",
        host: "h",
        pid: 1,
        capacity: Capacity(episodes: 3, apiCalls: 5),
        softwareVersion: "0.1.0",
        recentCalls: ["image": [12, 480, 999], "llm": [3]]
    )
    static let welcomeBudgets = Welcome(
        session: session,
        heartbeatIntervalMs: 1000,
        liveness: 3,
        maxMessageBytes: 16 << 20,
        softwareVersion: "0.1.0",
        budgets: [
            ProviderBudget(provider: "image", requests: 10),
            ProviderBudget(
                provider: "llm",
                requests: 500,
                requestWindowMs: 60_000,
                burst: 50,
                maxConcurrent: 8,
                units: 200_000,
                unitWindowMs: 60_000
            ),
        ],
        budgetMode: .leased,
        fleetWorkers: 4
    )

    /// The frames of a message with the given kind byte, session and JSON body text.
    static func frames(_ kind: UInt8, session: String = session, _ body: String) -> [[UInt8]] {
        [WireProtocol.identifier, [kind], Array(session.utf8), Array(body.utf8)]
    }

    /// The body (frame 3) of an encoded envelope as a JSON object.
    static func jsonObject(_ envelope: Envelope) throws -> [String: Any] {
        let body = Codec.encode(envelope)[3]
        return try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
    }

    /// Frames whose body is `object` serialized by Foundation (not by the codec).
    static func frames(_ kind: MessageKind, session: String = session, object: [String: Any]) throws -> [[UInt8]] {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return [WireProtocol.identifier, [kind.rawValue], Array(session.utf8), Array(data)]
    }
}

/// Decodes and returns the error, or nil when decoding succeeded.
func decodeError(_ frames: [[UInt8]]) -> DecodeError? {
    do {
        _ = try Codec.decode(frames)
        return nil
    } catch {
        return error
    }
}

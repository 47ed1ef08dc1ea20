import Foundation
import Protocol

/// The fair baseline for the codec's own JSON: the same bodies through Foundation's `JSONEncoder` and
/// `JSONDecoder` with explicit snake_case `CodingKeys` and no key strategies (the key strategies cost more
/// than the JSON itself), sorted keys and unescaped slashes as on the wire. These mirror types are what a
/// Foundation codec would declare; they write the same bytes as the codec (`codec --check` says so).
enum FairBaseline {
    struct JobBody: Codable {
        var batchId: String
        var episodeId: String
        var attempt: Int
        var spec: Spec
        var spendAllowanceMicros: Int?

        struct Spec: Codable {
            var topic: String
            var id: String?
            var characters: [String]?
            var scenes: Int?
            var style: String?
        }

        enum CodingKeys: String, CodingKey {
            case batchId = "batch_id"
            case episodeId = "episode_id"
            case attempt, spec
            case spendAllowanceMicros = "spend_allowance_micros"
        }

        init(_ job: Job) {
            batchId = job.batchId
            episodeId = job.episodeId
            attempt = job.attempt
            spec = Spec(
                topic: job.spec.topic,
                id: job.spec.id,
                characters: job.spec.characters,
                scenes: job.spec.scenes,
                style: job.spec.style
            )
            spendAllowanceMicros = job.spendAllowanceMicros
        }
    }

    struct ProgressBody: Codable {
        var episodeId: String
        var attempt: Int
        var stage: Stage
        var state: StageState
        var succeeded: Int
        var total: Int

        enum CodingKeys: String, CodingKey {
            case episodeId = "episode_id"
            case attempt, stage, state, succeeded, total
        }

        init(_ p: Protocol.Progress) {
            (episodeId, attempt, stage, state, succeeded, total) =
                (p.episodeId, p.attempt, p.stage, p.state, p.succeeded, p.total)
        }
    }

    struct ResultBody: Codable {
        var episodeId: String
        var attempt: Int
        var status: EpisodeResult.Status
        var error: String?
        var durationMs: Int
        var placeholders: [Placeholder]
        var apiCalls: Int
        var trace: [Event]

        struct Event: Codable {
            var seq: UInt64
            var event: TraceEvent.Kind
            var name: String
            var costMicros: Int?
            var savedMicros: Int?

            enum CodingKeys: String, CodingKey {
                case seq, event, name
                case costMicros = "cost_micros"
                case savedMicros = "saved_micros"
            }
        }

        enum CodingKeys: String, CodingKey {
            case episodeId = "episode_id"
            case attempt, status, error
            case durationMs = "duration_ms"
            case placeholders
            case apiCalls = "api_calls"
            case trace
        }

        init(_ r: EpisodeResult) {
            episodeId = r.episodeId
            attempt = r.attempt
            status = r.status
            error = r.error
            durationMs = r.durationMs
            placeholders = r.placeholders
            apiCalls = r.apiCalls
            trace = r.trace.map {
                Event(
                    seq: $0.seq,
                    event: $0.event,
                    name: $0.name,
                    costMicros: $0.costMicros,
                    savedMicros: $0.savedMicros
                )
            }
        }
    }

    struct Ref: Codable {
        var episodeId: String
        var attempt: Int

        enum CodingKeys: String, CodingKey {
            case episodeId = "episode_id"
            case attempt
        }
    }

    struct HeartbeatBody: Codable {
        var running: [Ref]

        init(_ h: Heartbeat) {
            running = h.running.map { Ref(episodeId: $0.episodeId, attempt: $0.attempt) }
        }
    }

    struct LeaseRequestBody: Codable {
        var requestId: String
        var provider: String
        var calls: Int
        var units: Int
        var episodeId: String?

        enum CodingKeys: String, CodingKey {
            case requestId = "request_id"
            case provider, calls, units
            case episodeId = "episode_id"
        }

        init(_ m: LeaseRequest) {
            (requestId, provider, calls, units, episodeId) = (m.requestId, m.provider, m.calls, m.units, m.episodeId)
        }
    }

    struct LeaseGrantBody: Codable {
        var requestId: String
        var leaseId: String
        var provider: String
        var calls: Int
        var useWithinMs: Int
        var queuedMs: Int
        var refused: LeaseGrant.Refusal?
        var detail: String

        enum CodingKeys: String, CodingKey {
            case requestId = "request_id"
            case leaseId = "lease_id"
            case provider, calls
            case useWithinMs = "use_within_ms"
            case queuedMs = "queued_ms"
            case refused, detail
        }

        init(_ m: LeaseGrant) {
            (requestId, leaseId, provider, calls, useWithinMs, queuedMs, refused, detail) =
                (m.requestId, m.leaseId, m.provider, m.calls, m.useWithinMs, m.queuedMs, m.refused, m.detail)
        }
    }

    struct LeaseStartedBody: Codable {
        var leaseId: String
        var calls: Int

        enum CodingKeys: String, CodingKey {
            case leaseId = "lease_id"
            case calls
        }

        init(_ m: LeaseStarted) {
            (leaseId, calls) = (m.leaseId, m.calls)
        }
    }

    struct LeaseReleaseBody: Codable {
        var leaseId: String
        var finished: Int
        var returned: Int
        var usedUnits: Int?

        enum CodingKeys: String, CodingKey {
            case leaseId = "lease_id"
            case finished, returned
            case usedUnits = "used_units"
        }

        init(_ m: LeaseRelease) {
            (leaseId, finished, returned, usedUnits) = (m.leaseId, m.finished, m.returned, m.usedUnits)
        }
    }

    /// The mirror of `message` as an encode and a decode closure, or `nil` for a kind without a mirror.
    static func mirror(of message: Message) -> (encode: () throws -> Data, decode: (Data) throws -> Void)? {
        func pair<T: Codable>(_ value: T) -> (encode: () throws -> Data, decode: (Data) throws -> Void) {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let decoder = JSONDecoder()
            return ({ try encoder.encode(value) }, { _ = try decoder.decode(T.self, from: $0) })
        }
        switch message {
        case .job(let m): return pair(JobBody(m))
        case .progress(let m): return pair(ProgressBody(m))
        case .result(let m): return pair(ResultBody(m))
        case .heartbeat(let m): return pair(HeartbeatBody(m))
        case .leaseRequest(let m): return pair(LeaseRequestBody(m))
        case .leaseGrant(let m): return pair(LeaseGrantBody(m))
        case .leaseStarted(let m): return pair(LeaseStartedBody(m))
        case .leaseRelease(let m): return pair(LeaseReleaseBody(m))
        default: return nil
        }
    }
}

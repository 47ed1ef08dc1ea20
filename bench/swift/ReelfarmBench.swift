import ArgumentParser
import Foundation
import Protocol
import Shared

/// `reelfarm-bench`: the measurements that need Reelfarm's own code in-process (bench/README.md).
///
/// - `transport`: the raw ceiling of W0's transport — pipelined DEALER/ROUTER round trips over TCP loopback
///   through the project's ZeroMQ wrapper, with W0's JOB and RESULT sizes (frames encoded once, before
///   the clock starts), so that W0's episodes per second can be read as a fraction of it.
/// - `codec`: encode and decode time of each message a W0 episode sends and of the lease messages, beside
///   Foundation's JSON with explicit `CodingKeys` (the fair baseline) and with key strategies.
@main
struct ReelfarmBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reelfarm-bench",
        abstract: "In-process measurements for bench/run: transport ceiling and codec cost.",
        subcommands: [Transport.self, CodecCost.self]
    )
}

/// The messages of one W0 episode (simulated providers, default script shape: 4 scenes, 6 lines,
/// 2 B-roll shots, 13 API calls), as the worker and coordinator send them.
enum W0Messages {
    static let session = "0123456789abcdef0123456789abcdef"

    static func job(_ n: Int) -> Envelope {
        Envelope(
            session: session,
            .job(
                Job(
                    batchId: "w0",
                    episodeId: "episode_\(n)",
                    attempt: 1,
                    spec: EpisodeSpec(topic: "the history of the lighthouse", id: "episode_\(n)")
                )
            )
        )
    }

    static func progress(_ n: Int) -> Envelope {
        Envelope(
            session: session,
            .progress(
                Progress(
                    episodeId: "episode_\(n)",
                    attempt: 1,
                    stage: .scenes,
                    state: .finished,
                    succeeded: 4,
                    total: 4
                )
            )
        )
    }

    static func result(_ n: Int) -> Envelope {
        var trace: [TraceEvent] = []
        var seq: UInt64 = 0
        func add(_ kind: TraceEvent.Kind, _ name: String) {
            seq += 1
            trace.append(TraceEvent(seq: seq, event: kind, name: name))
        }
        add(.episodeStart, "episode")
        let calls =
            ["llm:script"] + (1...6).map { "tts:line_\($0)" } + (1...4).map { "image:scene_\($0)" }
            + (1...2).map { "image:broll_\($0)" }
        for call in calls {
            add(.callStart, call)
            add(.callEnd, call)
        }
        add(.renderStart, "render")
        add(.renderEnd, "render")
        add(.episodeEnd, "episode")
        return Envelope(
            session: session,
            .result(
                EpisodeResult(
                    episodeId: "episode_\(n)",
                    attempt: 1,
                    status: .succeeded,
                    durationMs: 3,
                    apiCalls: calls.count,
                    trace: trace
                )
            )
        )
    }

    static func heartbeat() -> Envelope {
        Envelope(session: session, .heartbeat(Heartbeat(running: [JobRef(episodeId: "episode_1", attempt: 1)])))
    }

    /// The lease messages of one budgeted call (issue 4), as `LeaseClient` and `LeaseManager` send them.
    static func leaseRequest() -> Envelope {
        Envelope(
            session: session,
            .leaseRequest(LeaseRequest(requestId: "r42", provider: "image", calls: 1, units: 0, episodeId: "episode_1"))
        )
    }

    static func leaseGrant() -> Envelope {
        Envelope(
            session: session,
            .leaseGrant(
                LeaseGrant(
                    requestId: "r42",
                    leaseId: "l42",
                    provider: "image",
                    calls: 1,
                    useWithinMs: 5000,
                    queuedMs: 12
                )
            )
        )
    }

    static func leaseStarted() -> Envelope {
        Envelope(session: session, .leaseStarted(LeaseStarted(leaseId: "l42", calls: 1)))
    }

    static func leaseRelease() -> Envelope {
        Envelope(
            session: session,
            .leaseRelease(LeaseRelease(leaseId: "l42", finished: 1, returned: 0, usedUnits: 812))
        )
    }
}

struct Transport: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pipelined DEALER/ROUTER round trips (JOB out, RESULT back) over TCP loopback."
    )

    @Option(help: "Round trips in all.") var roundTrips = 200_000
    @Option(help: "DEALER peers, each on its own thread (W0 has 4 workers).") var workers = 4
    @Option(help: "Round trips in flight per peer (credit).") var window = 8
    @Flag(help: "Also decode and encode every message (the codec inside the round trip).") var codec = false

    func run() throws {
        // One measurement per process (bench/run starts it once per run): a fresh context each time.
        let rate = try Self.measure(roundTrips: roundTrips, workers: workers, window: window, codec: codec)
        print(String(format: "%.0f", rate))
    }

    /// Round trips per second. The ROUTER runs on the calling thread; each DEALER on a thread of its own
    /// (a socket has one owner).
    static func measure(roundTrips: Int, workers: Int, window: Int, codec: Bool) throws -> Double {
        let context = try ZMQContext()
        defer { context.shutdown() }
        let router = try ZMQSocket(context: context, type: .router)
        let endpoint = try router.bind("tcp://127.0.0.1:*")
        let job = Codec.encode(W0Messages.job(1))
        let result = Codec.encode(W0Messages.result(1))
        let quota = roundTrips / workers
        let done = DispatchGroup()
        for index in 0..<workers {
            done.enter()
            let thread = Thread {
                defer { done.leave() }
                do {
                    // Linger, so that closing after the last RESULT does not drop it.
                    let dealer = try ZMQSocket(context: context, type: .dealer, linger: .seconds(10))
                    try dealer.connect(endpoint)
                    try dealer.send([Array("ready".utf8)], dontWait: false)
                    for _ in 0..<quota {
                        guard let frames = try dealer.receive(dontWait: false) else { continue }
                        if codec {
                            _ = try Codec.decode(frames)
                            try dealer.send(Codec.encode(W0Messages.result(index)), dontWait: false)
                        } else {
                            try dealer.send(result, dontWait: false)
                        }
                    }
                    dealer.close()
                } catch {
                    FileHandle.standardError.write(Data("dealer \(index): \(error)\n".utf8))
                }
            }
            thread.start()
        }
        // Every peer says it is there before the clock starts.
        var peers: [[UInt8]] = []
        while peers.count < workers {
            if let frames = try router.receive(dontWait: false) { peers.append(frames[0]) }
        }
        let started = ContinuousClock.now
        var sent = [Int](repeating: 0, count: workers)
        var received = 0
        func next(_ peer: Int) -> [[UInt8]] {
            sent[peer] += 1
            return [peers[peer]] + (codec ? Codec.encode(W0Messages.job(sent[peer])) : job)
        }
        for peer in 0..<workers {
            for _ in 0..<min(window, quota) { try router.send(next(peer), dontWait: false) }
        }
        let byId = Dictionary(uniqueKeysWithValues: peers.enumerated().map { ($1, $0) })
        while received < quota * workers {
            guard let frames = try router.receive(dontWait: false) else { continue }
            received += 1
            if codec { _ = try Codec.decode(Array(frames.dropFirst())) }
            if let peer = byId[frames[0]], sent[peer] < quota { try router.send(next(peer), dontWait: false) }
        }
        let elapsed = ContinuousClock.now - started
        done.wait()
        router.close()
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return Double(received) / seconds
    }
}

struct CodecCost: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codec",
        abstract:
            "Microseconds to encode and to decode each message of a W0 episode and the lease messages, beside Foundation's JSON."
    )

    @Option(help: "Encodes and decodes per message kind.") var iterations = 20_000

    func run() throws {
        let messages: [(String, Envelope)] = [
            ("JOB", W0Messages.job(1)), ("PROGRESS", W0Messages.progress(1)), ("RESULT", W0Messages.result(1)),
            ("HEARTBEAT", W0Messages.heartbeat()), ("LEASE_REQUEST", W0Messages.leaseRequest()),
            ("LEASE_GRANT", W0Messages.leaseGrant()), ("LEASE_STARTED", W0Messages.leaseStarted()),
            ("LEASE_RELEASE", W0Messages.leaseRelease()),
        ]
        print(
            "| message | bytes | codec encode µs | codec decode µs | Codable path encode µs | Codable path decode µs "
                + "| Foundation, CodingKeys encode µs | decode µs | ÷ codec encode | ÷ codec decode "
                + "| Foundation, key strategies encode µs | decode µs |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for (name, envelope) in messages {
            let frames = Codec.encode(envelope)
            let bytes = frames.reduce(0) { $0 + $1.count }
            let encode = time { _ = Codec.encode(envelope) }
            let decode = try time { _ = try Codec.decode(frames) }
            let (codableEncode, codableDecode) = try Self.codablePath(envelope.message, time: time)
            var fair = ("-", "-")
            if let mirror = FairBaseline.mirror(of: envelope.message) {
                let data = try mirror.encode()
                guard Array(data) == frames[3] else {
                    throw ValidationError("\(name): Foundation with CodingKeys writes other bytes than the codec")
                }
                fair = (try time { _ = try mirror.encode() }, try time { try mirror.decode(data) })
            }
            let (foundationEncode, foundationDecode) = try Self.foundation(envelope.message, time: time)
            func ratio(_ baseline: String, _ codec: String) -> String {
                guard let b = Double(baseline), let c = Double(codec), c > 0 else { return "-" }
                return String(format: "%.1f×", b / c)
            }
            print(
                "| \(name) | \(bytes) | \(encode) | \(decode) | \(codableEncode) | \(codableDecode) "
                    + "| \(fair.0) | \(fair.1) | \(ratio(fair.0, encode)) | \(ratio(fair.1, decode)) "
                    + "| \(foundationEncode) | \(foundationDecode) |"
            )
        }
    }

    /// Microseconds per call of `body`, over `iterations` calls.
    func time(_ body: () throws -> Void) rethrows -> String {
        let start = ContinuousClock.now
        for _ in 0..<iterations { try body() }
        let d = ContinuousClock.now - start
        let s = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        return String(format: "%.2f", s * 1e6 / Double(iterations))
    }

    /// The body through the codec's `Codable` path (`JSONText`: its own encoder, parser and decoder), which
    /// every message without a hand-written path takes.
    static func codablePath(
        _ message: Message,
        time: (() throws -> Void) throws -> String
    ) throws -> (String, String) {
        func measure<T: Codable>(_ value: T) throws -> (String, String) {
            let bytes = try JSONText.encode(value)
            return (
                try time { _ = try JSONText.encode(value) }, try time { _ = try JSONText.decode(T.self, from: bytes) }
            )
        }
        switch message {
        case .job(let m): return try measure(m)
        case .progress(let m): return try measure(m)
        case .result(let m): return try measure(m)
        case .heartbeat(let m): return try measure(m)
        case .leaseRequest(let m): return try measure(m)
        case .leaseGrant(let m): return try measure(m)
        case .leaseStarted(let m): return try measure(m)
        case .leaseRelease(let m): return try measure(m)
        default: return ("-", "-")
        }
    }

    /// The same body through Foundation's `JSONEncoder`/`JSONDecoder` with the settings the codec used
    /// before it had its own JSON (snake_case key strategies, sorted).
    static func foundation(
        _ message: Message,
        time: (() throws -> Void) throws -> String
    ) throws -> (String, String) {
        func measure<T: Codable>(_ value: T) throws -> (String, String) {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            let data = try encoder.encode(value)
            return (try time { _ = try encoder.encode(value) }, try time { _ = try decoder.decode(T.self, from: data) })
        }
        switch message {
        case .job(let m): return try measure(m)
        case .progress(let m): return try measure(m)
        case .result(let m): return try measure(m)
        case .heartbeat(let m): return try measure(m)
        case .leaseRequest(let m): return try measure(m)
        case .leaseGrant(let m): return try measure(m)
        case .leaseStarted(let m): return try measure(m)
        case .leaseRelease(let m): return try measure(m)
        default: return ("-", "-")
        }
    }
}

import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Shared

/// Where `submit`, `status` and `scale` find the running coordinator.
struct ClientOptions: ParsableArguments {
    @Option(help: "The coordinator's HTTP address (env REELFARM_URL, default http://127.0.0.1:8090).")
    var url: String?

    @Option(help: "The coordinator's HTTP API token, if it has one (env REELFARM_HTTP_TOKEN).")
    var token: String?

    var apiToken: String? { token ?? ProcessInfo.processInfo.environment["REELFARM_HTTP_TOKEN"] }

    var baseURL: String {
        let raw = url ?? ProcessInfo.processInfo.environment["REELFARM_URL"] ?? "http://127.0.0.1:8090"
        let withScheme = raw.contains("://") ? raw : "http://\(raw)"
        return withScheme.hasSuffix("/") ? String(withScheme.dropLast()) : withScheme
    }
}

/// The body of an error answer of the HTTP API.
private struct APIError: Decodable { var error: String }

/// A small client of the coordinator's HTTP API (``ControlAPI``, ``StatusServer``).
struct APIClient {
    let base: String
    var token: String?

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Sends the request; returns the status code and the body. Throws ``Failure`` when the coordinator
    /// cannot be reached.
    func call(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil) async throws -> (Int, [UInt8]) {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.body = .bytes(ByteBuffer(bytes: body))
            request.headers.add(name: "Content-Type", value: "application/octet-stream")
        }
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            let bytes = try await response.body.collect(upTo: 64 << 20)
            return (Int(response.status.code), Array(bytes.readableBytesView))
        } catch {
            throw Failure(
                description:
                    "cannot reach the coordinator at \(base) (\(error)); is `coordinator serve` running there? Point to it with --url or REELFARM_URL."
            )
        }
    }

    /// The JSON answer decoded, or a ``Failure`` with the API's error message.
    func decode<T: Decodable>(
        _ type: T.Type,
        _ answer: (Int, [UInt8]),
        expect: ClosedRange<Int> = 200...299
    ) throws -> T {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        guard expect.contains(answer.0) else {
            let message = (try? decoder.decode(APIError.self, from: Data(answer.1)))?.error
            throw Failure(
                description:
                    "the coordinator answered \(answer.0): \(message ?? String(decoding: answer.1, as: UTF8.self))"
            )
        }
        do {
            return try decoder.decode(type, from: Data(answer.1))
        } catch {
            throw Failure(description: "unexpected answer from \(base): \(error)")
        }
    }

    static func fail(_ error: any Error) -> Never {
        FileHandle.standardError.write(Data("coordinator: error: \(error)\n".utf8))
        Foundation.exit(1)
    }
}

/// `coordinator submit`: queue a batch on a running `coordinator serve`.
struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Submit a batch to a running `coordinator serve`.",
        discussion: """
            Sends the batch file (JSON or YAML, as for `coordinator --batch`) or a count of generated \
            episodes to the coordinator's HTTP API and prints the batch's id and place in the queue. With \
            --wait, follows the batch until it ends: exit 0 if every episode succeeded, 1 otherwise.

            Examples:
              coordinator submit --episodes 24
              coordinator submit batch.yaml --id promo-week-48 --wait
            """
    )

    @Argument(help: "A JSON or YAML batch file.")
    var file: String?

    @Option(parsing: .unconditional, help: "Make N episodes with generated topics.")
    var episodes: Int?

    @Option(help: "The batch's name and output folder (default: batch-YYYYMMDD-HHMMSS).")
    var id: String?

    @Flag(help: "Wait until the batch ends, printing its progress.")
    var wait = false

    @OptionGroup var client: ClientOptions

    func validate() throws {
        if (file == nil) == (episodes == nil) {
            throw ValidationError("give a batch FILE or --episodes N (one of them)")
        }
        if let episodes, !(1...BatchFile.maxEpisodes).contains(episodes) {
            throw ValidationError("--episodes must be from 1 to \(BatchFile.maxEpisodes), got \(episodes)")
        }
    }

    func run() async throws {
        var query: [String] = []
        if let episodes { query.append("episodes=\(episodes)") }
        if let id { query.append("id=\(Self.escape(id))") }
        var body: [UInt8]?
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ConfigurationError("cannot read the batch file \(file)")
            }
            guard data.count <= BatchFile.maxBytes else {
                throw ConfigurationError("the batch file \(file) is over \(BatchFile.maxBytes >> 20) MiB")
            }
            body = Array(data)
        }
        let api = APIClient(base: client.baseURL, token: client.apiToken)
        do {
            let path = "/api/batches" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
            let listing = try api.decode(BatchListing.self, try await api.call(.POST, path, body: body))
            let place = listing.state == .queued ? "queued (position \(listing.position ?? 0))" : listing.state.rawValue
            print("submitted \(listing.id): \(listing.episodes) episodes, \(place)")
            print("files: \(listing.folder ?? "-")")
            guard wait else {
                print("follow it with: coordinator status --url \(client.baseURL)")
                return
            }
            var last = ""
            while true {
                try await Task.sleep(for: .seconds(1))
                let now = try api.decode(
                    BatchListing.self,
                    try await api.call(.GET, "/api/batches/\(Self.escape(listing.id))")
                )
                let line =
                    "\(now.id): \(now.state.rawValue), \(now.succeeded) succeeded, \(now.failed) failed of \(now.episodes)"
                if line != last { print(line) }
                last = line
                if now.state.isFinished {
                    if let summary = now.summary { print("summary: \(summary)") }
                    if let report = now.report { print("report: \(report)") }
                    throw ExitCode(now.state == .completed && now.succeeded == now.episodes ? 0 : 1)
                }
            }
        } catch let error as APIClient.Failure {
            APIClient.fail(error)
        }
    }

    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_.")))
            ?? text
    }
}

/// `coordinator status`: the fleet and its batches, from a running coordinator.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Print the fleet and batch state of a running coordinator.",
        discussion: "Reads GET /api/status. --json prints it as is."
    )

    @Flag(help: "Print the JSON status document instead of the table.")
    var json = false

    @OptionGroup var client: ClientOptions

    func run() async throws {
        let api = APIClient(base: client.baseURL, token: client.apiToken)
        do {
            let answer = try await api.call(.GET, "/api/status")
            if json {
                _ = try api.decode(FleetStatus.self, answer)
                FileHandle.standardOutput.write(Data(answer.1 + [0x0A]))
                return
            }
            print(Self.render(try api.decode(FleetStatus.self, answer), base: client.baseURL), terminator: "")
        } catch let error as APIClient.Failure {
            APIClient.fail(error)
        }
    }

    /// The status as a few aligned lines for a terminal.
    static func render(_ s: FleetStatus, base: String) -> String {
        var out = ""
        let slots = s.workers.reduce(0) { $0 + $1.slots }
        var head = "coordinator (\(s.mode)) at \(base): \(s.state) · \(s.workers.count) workers, \(slots) slots"
        if let pool = s.localWorkers {
            head +=
                " · local pool \(pool.active)/\(pool.target)"
                + (pool.retiring > 0 ? " (\(pool.retiring) draining)" : "")
        }
        out += head + "\n"
        if !s.batchId.isEmpty {
            let p = s.progress
            var line =
                "batch \(s.batchId): \(p.succeeded + p.failed)/\(p.total) done (\(p.failed) failed) · \(p.running) running · \(p.saving) saving · \(p.pending) pending"
            if let eta = p.etaSeconds, s.state == .running { line += " · ETA \(Int(eta)) s" }
            out += line + "\n"
        }
        for b in s.budgets {
            let limit = b.limit.map { "/\($0)" } ?? ""
            let signals = b.signals.values.reduce(0, +)
            out +=
                "budget \(b.provider): \(b.inWindow)\(limit) in window · \(b.inFlight) in flight · \(b.waiting) waiting"
            out += " · \(b.started) started · \(signals) provider signals\(b.paused ? " · PAUSED" : "")\n"
        }
        if !s.workers.isEmpty {
            out += "workers:\n"
            let width = s.workers.map(\.id.count).max() ?? 0
            for w in s.workers {
                let name = w.id.padding(toLength: width, withPad: " ", startingAt: 0)
                out +=
                    "  \(name)  \(w.host)  \(w.running)/\(w.slots) running  \(w.completed) done  heartbeat \(w.heartbeatAgeMs) ms\(w.draining ? "  draining" : "")\n"
            }
        }
        if !s.batches.isEmpty {
            out += "batches:\n"
            let width = s.batches.map(\.id.count).max() ?? 0
            for b in s.batches {
                let name = b.id.padding(toLength: width, withPad: " ", startingAt: 0)
                switch b.state {
                case .queued:
                    out += "  \(name)  queued #\(b.position ?? 0)  \(b.episodes) episodes\n"
                case .running:
                    out += "  \(name)  running    \(b.succeeded + b.failed)/\(b.episodes) done, \(b.failed) failed\n"
                default:
                    out +=
                        "  \(name)  \(b.state.rawValue)  \(b.succeeded)/\(b.episodes) succeeded, \(b.failed) failed  \(b.report ?? b.summary ?? "")\n"
                }
            }
        }
        return out
    }
}

/// `coordinator scale`: resize the local worker pool of a running coordinator.
struct ScaleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale",
        abstract: "Grow or shrink the local worker pool of a running coordinator.",
        discussion: """
            New workers start at once. Removed workers are drained: they get no new jobs, finish the \
            episodes they run (and hand over their files), then stop. Remote workers are not affected: \
            start or stop `worker --connect` on their boxes.
            """
    )

    @Option(parsing: .unconditional, help: "Local worker processes to run (0 to 256).")
    var workers: Int

    @OptionGroup var client: ClientOptions

    func validate() throws {
        if !(0...256).contains(workers) {
            throw ValidationError("--workers must be from 0 to 256, got \(workers)")
        }
    }

    func run() async throws {
        let api = APIClient(base: client.baseURL, token: client.apiToken)
        struct Answer: Decodable { var localWorkers: LocalWorkerPool.Snapshot }
        do {
            let answer = try api.decode(Answer.self, try await api.call(.POST, "/api/scale?workers=\(workers)"))
            let pool = answer.localWorkers
            print(
                "local workers: \(pool.active) running (target \(pool.target))"
                    + (pool.retiring > 0 ? ", \(pool.retiring) draining before they stop" : "")
            )
        } catch let error as APIClient.Failure {
            APIClient.fail(error)
        }
    }
}

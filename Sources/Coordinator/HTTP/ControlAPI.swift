import Foundation
import Hummingbird
import NIOCore
import Protocol
import Shared

/// The control side of the coordinator's HTTP API, used by `coordinator submit`, `status` and `scale`
/// (documented in docs/CLI.md, "A long-running coordinator"):
///
/// | request | answer |
/// |---|---|
/// | `POST /api/batches?episodes=N[&id=NAME]` | 202 and the queued batch (generated topics) |
/// | `POST /api/batches[?id=NAME]` with a JSON or YAML batch file as the body | 202 and the queued batch |
/// | `GET /api/batches` | `{"batches": [...]}`: queued, running and finished batches |
/// | `GET /api/batches/ID` | one batch, 404 if unknown |
/// | `GET /api/batches/ID/report` | the finished batch's `report.html` |
/// | `POST /api/scale?workers=N` (or the body `{"workers": N}`) | 200 and the local pool's new size |
///
/// Errors are JSON `{"error": "..."}` (at most ``maxErrorBytes`` of message) with 400 (bad request), 404, 409 (batch id taken; not `serve`),
/// 413 (body over 10 MiB) or 503 (stopping). Bodies are read up to ``BatchFile/maxBytes`` and parsed as
/// untrusted input by ``BatchFile``.
struct ControlAPI: Sendable {
    /// The longest error message in a reply, in UTF-8 bytes (before JSON escaping).
    static let maxErrorBytes = 400

    let board: StatusBoard
    let control: ControlChannel

    func register(on router: Router<BasicRequestContext>) {
        let board = self.board
        let control = self.control
        router.post("/api/batches") { request, context in
            let episodesParameter = request.uri.queryParameters.get("episodes")
            let id = request.uri.queryParameters.get("id").map { String($0) }
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: BatchFile.maxBytes)
            } catch {
                return Self.error(.contentTooLarge, "the batch file is over \(BatchFile.maxBytes >> 20) MiB")
            }
            let specs: EpisodeSpecs
            switch (episodesParameter, body.readableBytes) {
            case (nil, 0):
                return Self.error(.badRequest, "give ?episodes=N or a JSON or YAML batch file as the request body")
            case (.some, let n) where n > 0:
                return Self.error(.badRequest, "give either ?episodes=N or a batch file, not both")
            case (.some(let text), _):
                guard let count = Int(text), (1...BatchFile.maxEpisodes).contains(count) else {
                    return Self.error(
                        .badRequest,
                        "episodes must be from 1 to \(BatchFile.maxEpisodes), got \"\(text)\""
                    )
                }
                specs = Batch.generated(id: "submitted", count: count).episodes
            case (nil, _):
                let text = String(decoding: body.readableBytesView, as: UTF8.self)
                do throws(ConfigurationError) {
                    specs = try BatchFile.parse(text, name: "in the request", batchId: id ?? "submitted").episodes
                } catch {
                    return Self.error(.badRequest, error.message)
                }
            }
            switch await control.submit(id: id, episodes: specs) {
            case .success(let listing): return Self.json(.accepted, listing)
            case .failure(let error): return Self.error(error)
            }
        }
        router.get("/api/batches") { _, _ in
            Self.json(.ok, ["batches": board.status?.batches ?? []])
        }
        router.get("/api/batches/{id}") { _, context in
            let id = context.parameters.get("id") ?? ""
            guard let listing = board.status?.batches.first(where: { $0.id == id }) else {
                return Self.error(.notFound, "no batch \(id) on this coordinator")
            }
            return Self.json(.ok, listing)
        }
        router.get("/api/batches/{id}/report") { _, context in
            // Only a path the coordinator wrote itself is read: the id just selects a listing.
            let id = context.parameters.get("id") ?? ""
            guard let path = board.status?.batches.first(where: { $0.id == id })?.report,
                let data = FileManager.default.contents(atPath: path)
            else {
                return Self.error(.notFound, "no report for batch \(id) (yet)")
            }
            return Response(
                status: .ok,
                headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: data))
            )
        }
        router.post("/api/scale") { request, _ in
            var text = request.uri.queryParameters.get("workers").map { String($0) }
            if text == nil {
                let body = (try? await request.body.collect(upTo: 4096)) ?? ByteBuffer()
                struct Scale: Decodable { var workers: Int }
                if let decoded = try? JSONDecoder().decode(Scale.self, from: Data(body.readableBytesView)) {
                    text = "\(decoded.workers)"
                }
            }
            guard let text, let count = Int(text) else {
                return Self.error(.badRequest, "give ?workers=N or the body {\"workers\": N}")
            }
            switch await control.scale(workers: count) {
            case .success(let snapshot): return Self.json(.ok, ["local_workers": snapshot])
            case .failure(let error): return Self.error(error)
            }
        }
    }

    static func json(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        let data = (try? FleetStatus.encoder.encode(value)) ?? Data("{}".utf8)
        return Response(
            status: status,
            headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }

    /// An error reply. The message may echo the request (a batch file's bad line, an id), so it is cut to
    /// ``maxErrorBytes`` with "…" and its control characters are escaped: a 10 MiB body of junk gets a
    /// reply of a few hundred bytes, not a copy of itself.
    static func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        json(status, ["error": DisplayText.bounded(message, maxBytes: maxErrorBytes)])
    }

    static func error(_ error: ControlError) -> Response {
        let status: HTTPResponse.Status =
            switch error {
            case .badRequest: .badRequest
            case .conflict, .notServing: .conflict
            case .unavailable: .serviceUnavailable
            }
        return Self.error(status, error.message)
    }
}

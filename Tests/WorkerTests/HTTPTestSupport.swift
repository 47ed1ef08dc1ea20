import Foundation
import Logging
import Protocol
import Synchronization
import Testing

@testable import Worker

/// An ``HTTPTransport`` that answers from a script and records every request.
final class FakeTransport: HTTPTransport {
    enum Answer: Sendable {
        case response(ProviderResponse)
        case failure(HTTPTransportError)
    }

    private struct State {
        var answers: [Answer]
        var requests: [ProviderRequest] = []
        var timeouts: [Duration] = []
    }

    private let state: Mutex<State>
    private let handler: (@Sendable (ProviderRequest) -> Answer)?

    /// Answers in order; a request beyond the last answer is an issue (and a network failure).
    init(_ answers: [Answer]) {
        state = Mutex(State(answers: answers))
        handler = nil
    }

    /// Answers every request with `handler`.
    init(handler: @escaping @Sendable (ProviderRequest) -> Answer) {
        state = Mutex(State(answers: []))
        self.handler = handler
    }

    var requests: [ProviderRequest] { state.withLock { $0.requests } }
    var timeouts: [Duration] { state.withLock { $0.timeouts } }

    func send(_ request: ProviderRequest, timeout: Duration) async throws -> ProviderResponse {
        let answer: Answer? = state.withLock { state in
            state.requests.append(request)
            state.timeouts.append(timeout)
            if let handler { return handler(request) }
            return state.answers.isEmpty ? nil : state.answers.removeFirst()
        }
        switch answer {
        case .response(let response)?: return response
        case .failure(let error)?: throw error
        case nil:
            Issue.record("unexpected request \(request.method) \(request.url)")
            throw HTTPTransportError.network("no more scripted answers")
        }
    }
}

extension FakeTransport.Answer {
    static func status(_ status: Int, _ headers: HTTPHeaderFields = [:], json: String = "") -> Self {
        .response(ProviderResponse(status: status, headers: headers, body: Data(json.utf8)))
    }

    static func ok(_ body: Data, contentType: String) -> Self {
        .response(ProviderResponse(status: 200, headers: ["Content-Type": contentType], body: body))
    }

    static func okJSON(_ json: String) -> Self {
        ok(Data(json.utf8), contentType: "application/json")
    }
}

/// A caller over `transport` whose sleeps are only recorded, and whose backoff draws `random`.
func makeCaller(
    _ transport: FakeTransport,
    settings: HTTPCallSettings = .default,
    maxLoadingWait: Duration = .zero,
    random: Double = 0.5,
    sleeps: Collected<Duration> = Collected(),
    now: Date = Date(timeIntervalSince1970: 1_700_000_000)
) -> HTTPCaller {
    HTTPCaller(
        transport: transport,
        settings: settings,
        policy: RetryPolicy(settings, maxLoadingWait: maxLoadingWait, random: { random }),
        sleep: { sleeps.append($0) },
        now: { now }
    )
}

func makeContext(
    item: String = "line_1",
    workspace: URL? = nil,
    logger: Logger = quietLogger
) -> CallContext {
    CallContext(
        batchId: "batch_test",
        episodeId: "episode_1",
        attempt: 1,
        item: item,
        logger: logger,
        workspace: workspace
    )
}

/// A fresh empty folder, removed after `body`.
func withWorkspace<T>(_ body: (URL) async throws -> T) async throws -> T {
    let url = FileManager.default.temporaryDirectory.appending(
        path: "reelfarm-http-\(UUID().uuidString)",
        directoryHint: .isDirectory
    )
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try await body(url)
}

/// A logger that keeps everything, and the handler to read it back.
func capturingLogger() -> (Logger, CapturingLogHandler) {
    let handler = CapturingLogHandler()
    return (Logger(label: "test", factory: { _ in handler }), handler)
}

/// Every message and metadata value of the captured entries, as one string.
func allText(_ handler: CapturingLogHandler) -> String {
    handler.entries.all.map { entry in
        ([entry.message] + entry.metadata.map { "\($0.key)=\($0.value)" }).joined(separator: " ")
    }.joined(separator: "\n")
}

enum Fixture {
    /// One second of 16-bit mono silence at 24 kHz, as WAV.
    static let wavOneSecond = WAVFile.wav(pcm16: Data(count: 48_000), sampleRate: 24_000, channels: 1)

    /// PNG magic, the start of an IHDR chunk and the IEND chunk: enough for the checks made.
    static let png = Data(
        [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]
            + [0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82]
    )
    /// JPEG start and end markers around a JFIF header.
    static let jpeg = Data([0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 0x4A, 0x46, 0x49, 0x46, 0, 1, 0xFF, 0xD9])
    static let mp3 = Data(Array("ID3".utf8) + [4, 0, 0, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 32))

    static func imagesJSON(_ data: Data) -> String {
        #"{"created":1,"data":[{"b64_json":"\#(data.base64EncodedString())","revised_prompt":"x"}]}"#
    }

    /// A chat completion whose content is `content` (JSON-escaped here).
    static func chat(_ content: String, finishReason: String = "stop") -> String {
        let escaped = String(data: try! JSONEncoder().encode(content), encoding: .utf8)!
        return """
            {"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o-mini",\
            "choices":[{"index":0,"message":{"role":"assistant","content":\(escaped)},\
            "finish_reason":"\(finishReason)"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}
            """
    }

    /// A valid script reply with `scenes` scenes, two lines each, and one B-roll shot.
    static func script(scenes: Int = 4, characters: [String] = ["Ada", "Leo"]) -> String {
        let cast = characters.map { "\"\($0)\"" }.joined(separator: ",")
        let sceneList = (1...scenes).map { n in
            """
            {"description":"Scene \(n) visual","narration":"Narration \(n).","lines":[\
            {"character":"\(characters[0])","text":"Line A of \(n)."},\
            {"character":"\(characters[characters.count - 1])","text":"Line B of \(n)."}]}
            """
        }.joined(separator: ",")
        return
            #"{"title":"A Title","characters":[\#(cast)],"scenes":[\#(sceneList)],"broll":[{"description":"Clouds"}]}"#
    }
}

/// The JSON body of a request, as an object.
func jsonBody(_ request: ProviderRequest?) -> JSONValue? {
    request?.body.flatMap { JSONValue(data: $0, limit: 1 << 24) }
}

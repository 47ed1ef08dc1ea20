import Foundation
import Hummingbird
import HummingbirdTesting
import Protocol
import ProviderFixtures
import Synchronization
import Testing

@testable import MockProvider

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    private let current = Mutex(Duration.zero)

    var now: Duration { current.withLock { $0 } }

    func advance(by step: Duration) {
        current.withLock { $0 += step }
    }

    var function: @Sendable () -> Duration { { self.now } }
}

/// A config built from JSON, failing the test when the JSON is rejected.
func config(_ json: String) throws -> MockConfig {
    try MockConfig.decode(Data(json.utf8))
}

/// Runs `body` against an in-process app whose engine uses `clock` (real time when `nil`) and keeps the last
/// `requestLogCapacity` requests in `/stats/requests`.
func withMockApp<Value>(
    _ config: MockConfig = MockConfig(),
    clock: ManualClock? = nil,
    requestLogCapacity: Int = RequestLog.defaultCapacity,
    setup: TestingSetup = .router,
    _ body: @Sendable (any TestClientProtocol, MockEngine) async throws -> Value
) async throws -> Value {
    let engine = MockEngine(config: config, now: clock?.function, requestLogCapacity: requestLogCapacity)
    let app = MockProviderApp.application(config: config, engine: engine)
    return try await app.test(setup) { client in try await body(client, engine) }
}

extension TestClientProtocol {
    /// POSTs a JSON string.
    func post(_ uri: String, json: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        var headers = headers
        headers[.contentType] = "application/json"
        return try await execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: json))
    }

    func stats() async throws -> StatsSnapshot {
        let response = try await execute(uri: "/stats", method: .get)
        return try JSONDecoder().decode(StatsSnapshot.self, from: Data(response.body.readableBytesView))
    }

    /// `GET /stats/requests`, with `?since_ms=` when `sinceMs` is given.
    func requestLog(sinceMs: Double? = nil) async throws -> RequestLogSnapshot {
        let uri = sinceMs.map { "/stats/requests?since_ms=\($0)" } ?? "/stats/requests"
        let response = try await execute(uri: uri, method: .get)
        #expect(response.status == .ok)
        return try JSONDecoder().decode(RequestLogSnapshot.self, from: Data(response.body.readableBytesView))
    }
}

extension TestResponse {
    var bytes: [UInt8] { Array(body.readableBytesView) }

    /// The body parsed as JSON, `nil` when it is not JSON.
    var json: JSONValue? { JSONValue(data: Data(body.readableBytesView)) }

    func header(_ name: String) -> String? {
        headers[HTTPFields.Element.Name(name)!]
    }
}

/// The JSON body of a recorded fixture, with its recorded request's model and voice id replaced by `model` and
/// `voiceId` when given, as the mock sends it.
func recordedJSON(_ name: String, model: String? = nil, voiceId: String? = nil) throws -> JSONValue {
    let fixture = try ProviderFixtures.named(name).substituting(model: model, voiceId: voiceId)
    let body = try #require(fixture.json, "\(name) has no JSON body")
    return try #require(JSONValue(data: body.data))
}

/// Parses a JSON literal in a test.
func json(_ text: String) -> JSONValue {
    JSONValue(data: Data(text.utf8))!
}

extension JSONValue {
    subscript(index: Int) -> JSONValue? {
        guard case .array(let items) = self, items.indices.contains(index) else { return nil }
        return items[index]
    }

    var int: Int? { integer.map { Int($0) } }
}

/// A minimal reader of the WAV files the mock writes.
struct WAVInfo {
    var sampleRate: Int
    var channels: Int
    var bitsPerSample: Int
    var dataSize: Int
    var duration: Double { Double(dataSize) / Double(sampleRate * channels * bitsPerSample / 8) }

    init?(_ bytes: [UInt8]) {
        func u32(_ at: Int) -> Int {
            Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
        }
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        guard bytes.count >= 44, Array(bytes[0..<4]) == Array("RIFF".utf8), Array(bytes[8..<12]) == Array("WAVE".utf8),
            Array(bytes[12..<16]) == Array("fmt ".utf8), Array(bytes[36..<40]) == Array("data".utf8),
            u32(4) == bytes.count - 8, u16(20) == 1
        else { return nil }
        channels = u16(22)
        sampleRate = u32(24)
        bitsPerSample = u16(34)
        dataSize = u32(40)
        guard dataSize == bytes.count - 44, u32(28) == sampleRate * channels * bitsPerSample / 8 else { return nil }
    }
}

/// Checks a PNG completely: signature, every chunk's CRC, IHDR, and the zlib stream (stored blocks, Adler-32) holding
/// exactly the scanlines the header promises.
struct PNGInfo {
    var width: Int
    var height: Int
    var chunkTypes: [String]

    enum Failure: Error {
        case signature, truncated
        case crc(String)
        case header, zlib, size
    }

    init(_ bytes: [UInt8]) throws {
        func u32(_ at: Int) -> Int {
            Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
        }
        guard bytes.count > 8, Array(bytes[0..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] else {
            throw Failure.signature
        }
        var offset = 8
        var types: [String] = []
        var idat: [UInt8] = []
        var header: [UInt8] = []
        while offset < bytes.count {
            guard offset + 12 <= bytes.count else { throw Failure.truncated }
            let length = u32(offset)
            guard offset + 12 + length <= bytes.count else { throw Failure.truncated }
            let type = String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
            let data = Array(bytes[(offset + 8)..<(offset + 8 + length)])
            guard CRC32.checksum(bytes[(offset + 4)..<(offset + 8 + length)]) == UInt32(u32(offset + 8 + length)) else {
                throw Failure.crc(type)
            }
            types.append(type)
            if type == "IHDR" { header = data }
            if type == "IDAT" { idat += data }
            offset += 12 + length
        }
        guard types.first == "IHDR", types.last == "IEND", header.count == 13, header[8] == 8, header[9] == 2 else {
            throw Failure.header
        }
        width = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
        height = Int(header[4]) << 24 | Int(header[5]) << 16 | Int(header[6]) << 8 | Int(header[7])
        chunkTypes = types
        // zlib header, then stored deflate blocks only, then Adler-32.
        guard idat.count >= 6, (Int(idat[0]) << 8 | Int(idat[1])) % 31 == 0, idat[0] & 0x0F == 8 else {
            throw Failure.zlib
        }
        var raw: [UInt8] = []
        var position = 2
        var last = false
        while !last {
            guard position + 5 <= idat.count, idat[position] & 0b110 == 0 else { throw Failure.zlib }
            last = idat[position] & 1 == 1
            let length = Int(idat[position + 1]) | Int(idat[position + 2]) << 8
            let complement = Int(idat[position + 3]) | Int(idat[position + 4]) << 8
            guard length ^ 0xFFFF == complement, position + 5 + length <= idat.count else { throw Failure.zlib }
            raw += idat[(position + 5)..<(position + 5 + length)]
            position += 5 + length
        }
        guard position + 4 == idat.count else { throw Failure.zlib }
        let adler =
            UInt32(idat[position]) << 24 | UInt32(idat[position + 1]) << 16 | UInt32(idat[position + 2]) << 8
            | UInt32(idat[position + 3])
        guard adler == PNGWriter.adler32(raw) else { throw Failure.zlib }
        guard raw.count == height * (1 + width * 3) else { throw Failure.size }
    }
}

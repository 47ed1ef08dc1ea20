import Foundation
import Logging
import Protocol
import Testing

@testable import Shared

/// Issue 15: log lines that input cannot forge, key paths that look like keys, endpoints that can never
/// work.
@Suite struct OperatorInputTests {
    @Test func item10TextLogLinesEscapeControlCharactersInMessageAndMetadata() {
        let line = ReelfarmLogHandler.format(
            timestamp: "T",
            level: .info,
            label: "coordinator",
            message: "episode finished\n2026-01-01T00:00:00Z ERROR coordinator forged",
            metadata: [
                "episode": "e\r1",
                "topic": "\u{1B}[31mred\u{1B}[0m\nnext",
                "bidi": "a\u{202E}b",
                "list": .array(["x\ny"]),
            ]
        )
        #expect(!line.contains("\n") && !line.contains("\r") && !line.contains("\u{1B}") && !line.contains("\u{202E}"))
        #expect(line.contains(#"episode finished\n2026"#))
        #expect(line.contains(#"[e\r1]"#))
        #expect(line.contains(#"topic=\u{1B}[31mred\u{1B}[0m\nnext"#))
        #expect(line.contains(#"bidi=a\u{202E}b"#))
        // Ordinary text is untouched.
        let plain = ReelfarmLogHandler.format(
            timestamp: "T",
            level: .info,
            label: "w",
            message: "café 🎬 done",
            metadata: ["path": "/tmp/a b"]
        )
        #expect(plain.hasSuffix("café 🎬 done path=/tmp/a b"))
    }

    @Test func item10DisplayTextIsBoundedAndReadsNoFurtherThanItNeeds() {
        let huge = String(repeating: "\u{01}", count: 10 << 20)
        let start = ContinuousClock.now
        let shown = DisplayText.bounded(huge, maxBytes: 300)
        #expect(ContinuousClock.now - start < .seconds(2))
        #expect(shown.utf8.count <= 300 + "…".utf8.count && shown.hasSuffix("…"))
        #expect(DisplayText.bounded("short") == "short")
        #expect(DisplayText.bounded("é" + String(repeating: "é", count: 200), maxBytes: 5) == "éé…")
    }

    @Test func item12AnExistingKeyFileWinsOverALiteralKeyOfTheSameText() throws {
        // A path of exactly 40 Z85 characters, like /tmp/tmp.XXXXXXXXXX/keys/coordinator.key.
        let folder =
            "/tmp/t15." + String(UUID().uuidString.prefix(10)).lowercased().replacingOccurrences(of: "-", with: "x")
        let path = folder + "/keys/coordinator.key"
        #expect(path.utf8.count == 40)
        #expect(CurveKeyPair.decode(path) != nil, "the path must also read as a Z85 key")
        let pair = try CurveKeyPair.generate()
        _ = try pair.write(folder: URL(fileURLWithPath: folder + "/keys"), name: "coordinator")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (key, source) = try CurveKeyPair.publicKeyAndSource(keyOrPath: path)
        #expect(key == pair.publicKey && source == .file(path))
        #expect(try CurveKeyPair.publicKey(keyOrPath: path) == pair.publicKey)
        // No such file: the text is the key, and the caller can say so.
        try FileManager.default.removeItem(atPath: folder)
        #expect(try CurveKeyPair.publicKeyAndSource(keyOrPath: path) == (path, CurveKeyPair.KeySource.literal))
        #expect(
            try CurveKeyPair.publicKeyAndSource(keyOrPath: pair.publicKey) == (
                pair.publicKey, CurveKeyPair.KeySource.literal
            )
        )
    }

    @Test(arguments: [
        "tcp://127.0.0.1:99999", "tcp://127.0.0.1:0", "tcp://127.0.0.1:", "tcp://127.0.0.1", "tcp://127.0.0.1:http",
        "tcp://:5555", "tcp://*:5555", "tcp://[::1:5555", "tcp://no-such-host.invalid:5555", "udp://127.0.0.1:5555",
        "127.0.0.1:5555", "ipc://", "inproc://x",
    ])
    func item13ConnectEndpointsThatCanNeverWorkAreRefused(_ endpoint: String) {
        #expect(throws: ConfigurationError.self, "\(endpoint)") {
            try Endpoints.checkConnect(endpoint, flag: "--connect")
        }
    }

    @Test(arguments: [
        "tcp://127.0.0.1:5555", "tcp://localhost:1", "tcp://[::1]:65535", "tcp://127.0.0.1:5556;127.0.0.1:5555",
        "ipc:///tmp/reelfarm.sock",
    ])
    func item13EndpointsThatCanWorkPass(_ endpoint: String) throws {
        #expect(try Endpoints.checkConnect(endpoint, flag: "--connect") == nil)
    }
}

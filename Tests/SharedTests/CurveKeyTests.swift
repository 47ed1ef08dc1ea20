import Foundation
import Shared
import Testing

/// CURVE key files, allow-lists and the loopback rule, without sockets.
@Suite struct CurveKeyTests {
    func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "reelfarm-keys-\(UUID().uuidString.prefix(8))"
        )
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func aGeneratedPairRoundTripsThroughItsFiles() throws {
        let pair = try CurveKeyPair.generate()
        #expect(pair.publicKey.count == 40 && pair.secretKey?.count == 40)
        let raw = try #require(CurveKeyPair.decode(pair.publicKey))
        #expect(raw.count == 32 && CurveKeyPair.encode(raw) == pair.publicKey)
        let dir = try tempDir()
        let (publicFile, secretFile) = try pair.write(folder: dir, name: "w1")
        #expect(try CurveKeyPair.load(path: secretFile.path, needSecret: true) == pair)
        #expect(try CurveKeyPair.load(path: publicFile.path, needSecret: false).secretKey == nil)
        #expect(throws: ConfigurationError.self) { try CurveKeyPair.load(path: publicFile.path, needSecret: true) }
        #expect(throws: ConfigurationError.self) { try pair.write(folder: dir, name: "w1") }
        #expect(try CurveKeyPair.publicKey(keyOrPath: publicFile.path) == pair.publicKey)
        #expect(try CurveKeyPair.publicKey(keyOrPath: pair.publicKey) == pair.publicKey)
    }

    @Test(arguments: [
        "", "short", String(repeating: "a", count: 39), String(repeating: "~", count: 40),
        "é" + String(repeating: "a", count: 38),
    ])
    func notAKey(_ text: String) {
        #expect(CurveKeyPair.decode(text) == nil)
    }

    @Test func allowListsFromAFileOrAFolderNameTheirErrors() throws {
        let dir = try tempDir()
        let a = try CurveKeyPair.generate()
        let b = try CurveKeyPair.generate()
        let file = dir.appendingPathComponent("allowed.txt")
        try "# render boxes\n\(a.publicKey) render-b\npublic-key: \(b.publicKey)\n".write(
            to: file,
            atomically: true,
            encoding: .utf8
        )
        let list = try CurveAllowList.load(path: file.path)
        #expect(list.keys.count == 2 && list.keys[CurveKeyPair.decode(a.publicKey)!] == "render-b")

        try "\(a.publicKey)\nnot-a-key\n".write(to: file, atomically: true, encoding: .utf8)
        #expect {
            try CurveAllowList.load(path: file.path)
        } throws: { ($0 as? ConfigurationError)?.message.contains("line 2") == true }

        let folder = dir.appendingPathComponent("workers")
        _ = try a.write(folder: folder, name: "render-c")
        try "ignored".write(to: folder.appendingPathComponent("README"), atomically: true, encoding: .utf8)
        let fromFolder = try CurveAllowList.load(path: folder.path)
        #expect(fromFolder.keys == [CurveKeyPair.decode(a.publicKey)!: "render-c"], "only *.key files count")
        #expect(throws: ConfigurationError.self) {
            try CurveAllowList.load(path: dir.appendingPathComponent("nope").path)
        }
    }

    @Test(arguments: [
        ("tcp://127.0.0.1:5555", true), ("tcp://localhost:5555", true), ("tcp://[::1]:5555", true),
        ("tcp://127.0.0.1:*", true), ("ipc:///tmp/reelfarm.sock", true), ("tcp://lo:5555", true),
        ("tcp://0.0.0.0:5555", false), ("tcp://*:5555", false), ("tcp://eth0:5555", false),
        ("tcp://10.0.0.5:5555", false), ("tcp://[::]:5555", false), ("tcp://127.0.0.1;10.0.0.5:5555", false),
    ])
    func whatCountsAsLocal(endpoint: String, local: Bool) {
        #expect(Endpoints.isLocal(endpoint) == local)
    }
}

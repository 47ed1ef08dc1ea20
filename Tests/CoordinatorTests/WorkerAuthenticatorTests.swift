import Foundation
import Logging
import Shared
import Testing

@testable import Coordinator

/// The ZAP handler's decisions (RFC 27 frames in, reply frames out) and the allow-list's reloads.
@Suite struct WorkerAuthenticatorTests {
    func request(mechanism: String = "CURVE", key: [UInt8]?, id: String = "7") -> [[UInt8]] {
        var frames: [[UInt8]] = [
            Array("1.0".utf8), Array(id.utf8), Array("reelfarm".utf8), Array("10.0.0.9".utf8), [],
            Array(mechanism.utf8),
        ]
        if let key { frames.append(key) }
        return frames
    }

    func code(_ reply: [[UInt8]]) -> String { String(decoding: reply[2], as: UTF8.self) }

    @Test func onlyListedKeysAreLetIn() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "reelfarm-zap-\(UUID().uuidString.prefix(8))"
        )
        let allowed = try CurveKeyPair.generate()
        let other = try CurveKeyPair.generate()
        let local = try CurveKeyPair.generate()
        _ = try allowed.write(folder: dir, name: "render-b")
        let auth = try WorkerAuthenticator(
            path: dir.path,
            builtin: [CurveKeyPair.decode(local.publicKey)!: "local workers"]
        )
        let yes = auth.answer(request(key: CurveKeyPair.decode(allowed.publicKey)))
        #expect(code(yes.reply) == "200" && String(decoding: yes.reply[4], as: UTF8.self) == "render-b")
        #expect(yes.reply[1] == Array("7".utf8), "the reply carries the request id")
        #expect(code(auth.answer(request(key: CurveKeyPair.decode(local.publicKey))).reply) == "200")
        let no = auth.answer(request(key: CurveKeyPair.decode(other.publicKey)))
        #expect(code(no.reply) == "400" && no.metadata["public_key"] == "\(other.publicKey)")
        #expect(code(auth.answer(request(mechanism: "NULL", key: nil)).reply) == "400")
        #expect(code(auth.answer(request(key: [1, 2, 3])).reply) == "400", "a key of the wrong length")
        #expect(code(auth.answer([Array("2.0".utf8), [1]]).reply) == "500")
        #expect(auth.answer([]).reply.count == 6, "even garbage gets a well-formed reply")
        #expect(auth.status.accepted == 2 && auth.status.denied == 3)

        // A new key file is picked up on the next look; a broken one keeps the previous list.
        #expect(auth.reloadIfChanged() == nil)
        _ = try other.write(folder: dir, name: "render-c")
        #expect(auth.reloadIfChanged() == .success(2))
        #expect(code(auth.answer(request(key: CurveKeyPair.decode(other.publicKey))).reply) == "200")
        try "public-key: garbage\n".write(
            to: dir.appendingPathComponent("broken.key"),
            atomically: true,
            encoding: .utf8
        )
        guard case .failure = auth.reloadIfChanged() else {
            Issue.record("a broken key file must be reported")
            return
        }
        #expect(auth.status.allowedKeys == 2 && auth.reloadIfChanged() == nil, "reported once, old list kept")
    }

    @Test func tokensCompareWholly() {
        #expect(APIToken.matches("abc", "abc"))
        #expect(!APIToken.matches("abd", "abc"))
        #expect(!APIToken.matches("abcd", "abc") && !APIToken.matches("", "abc"))
    }
}

extension WorkerAuthenticatorTests {
    /// A Kubernetes ConfigMap volume: `KEY -> ..data/KEY`, `..data -> ..TIMESTAMP/`; an update repoints
    /// `..data` to a new folder, so the names and the links' own attributes stay the same.
    @Test func aKeyReplacedBehindASymlinkIsReloaded() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "reelfarm-cm-\(UUID().uuidString.prefix(8))"
        )
        let fm = FileManager.default
        let first = try CurveKeyPair.generate()
        let second = try CurveKeyPair.generate()
        _ = try first.write(folder: dir.appendingPathComponent("..v1"), name: "worker")
        _ = try second.write(folder: dir.appendingPathComponent("..v2"), name: "worker")
        try fm.createSymbolicLink(atPath: dir.appendingPathComponent("..data").path, withDestinationPath: "..v1")
        try fm.createSymbolicLink(
            atPath: dir.appendingPathComponent("worker.key").path,
            withDestinationPath: "..data/worker.key"
        )
        let auth = try WorkerAuthenticator(path: dir.path)
        let key2 = CurveKeyPair.decode(second.publicKey)!
        #expect(String(decoding: auth.answer(request(key: key2)).reply[2], as: UTF8.self) == "400")
        try fm.removeItem(at: dir.appendingPathComponent("..data"))
        try fm.createSymbolicLink(atPath: dir.appendingPathComponent("..data").path, withDestinationPath: "..v2")
        #expect(auth.reloadIfChanged() == .success(1))
        #expect(String(decoding: auth.answer(request(key: key2)).reply[2], as: UTF8.self) == "200")
    }
}

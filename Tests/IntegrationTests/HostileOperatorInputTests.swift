import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 15 with the real binaries: ids that would collide with the batch's files, an alias bomb, huge
/// error replies, key paths that look like keys, endpoints that can never work.
@Suite(.serialized) struct HostileOperatorInputTests {
    /// A request's status and raw body (up to 64 MiB, so an oversized reply is measured, not cut).
    static func request(
        _ method: String,
        _ url: String,
        body: [UInt8]? = nil
    ) async throws -> (status: UInt, body: String, bytes: Int) {
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method)
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        return (response.status.code, String(buffer: bytes), bytes.readableBytes)
    }

    /// Peak resident memory of a process in MiB (`VmHWM`), or nil.
    static func peakMemoryMiB(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return nil }
        return line.split(separator: " ").compactMap { Int($0) }.first.map { $0 / 1024 }
    }

    static func serve(_ dir: URL) throws -> Child {
        try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "serve", "--bind", "tcp://127.0.0.1:*", "--http", "127.0.0.1:0", "--output",
                dir.appendingPathComponent("output").path,
            ],
            environment: Harness.fastSimulation,
            cwd: dir
        )
    }

    static func run(_ executable: String, _ arguments: [String], in dir: URL) async throws -> (Int32, String) {
        let child = try Child(name: "child", executable: executable, arguments: arguments, cwd: dir)
        let status = await child.wait(timeout: .seconds(30))
        return (status, child.log)
    }

    @Test func item2IdsThatCollideWithBatchFilesAreRefusedWherever() async throws {
        let dir = try Harness.tempDir("ids")
        let file = dir.appendingPathComponent("b.yaml")
        for id in ["summary.json", "trace.jsonl", ".hidden", "a..b", ".work", "bidi\u{202E}lmth.exe"] {
            try "- topic: fine\n- topic: bad\n  id: \"\(id)\"\n".write(to: file, atomically: true, encoding: .utf8)
            let (status, log) = try await Self.run(
                Harness.coordinatorPath,
                [
                    "--batch", file.path, "--bind", "tcp://127.0.0.1:*", "--output",
                    dir.appendingPathComponent("o").path,
                ],
                in: dir
            )
            #expect(status == 2, "\(id): \(log)")
            #expect(log.contains("episode 2"), "\(log)")
        }
        let (status, log) = try await Self.run(
            Harness.coordinatorPath,
            ["--episodes", "1", "--batch-id", ".state", "--bind", "tcp://127.0.0.1:*"],
            in: dir
        )
        #expect(status == 2 && log.contains("--batch-id"), "\(log)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("o").path))

        let coordinator = try Self.serve(dir)
        defer { coordinator.signal(SIGKILL) }
        guard await coordinator.boundEndpoint() != nil, let base = await coordinator.httpBase() else { return }
        let body = Array(#"[{"topic": "t", "id": "report.html"}]"#.utf8)
        let reply = try await Self.request("POST", "\(base)api/batches", body: body)
        #expect(reply.status == 400 && reply.body.contains("report.html"), "\(reply)")
        let named = try await Self.request("POST", "\(base)api/batches?episodes=1&id=.incoming")
        #expect(named.status == 400, "\(named)")
        let fine = try await Self.request("POST", "\(base)api/batches?episodes=1&id=v1.2")
        #expect(fine.status == 202, "\(fine)")
    }

    /// 648 bytes of YAML that expand to 9^9 nodes.
    static let aliasBomb = """
        a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
        b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
        c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
        d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
        e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
        f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
        g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
        h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
        episodes: [*h,*h,*h,*h,*h,*h,*h,*h,*h]
        """

    @Test(.timeLimit(.minutes(2)))
    func item8YamlAliasBombIsRefusedQuicklyByTheCliAndTheHttpApi() async throws {
        let dir = try Harness.tempDir("bomb")
        let file = dir.appendingPathComponent("bomb.yaml")
        try Self.aliasBomb.write(to: file, atomically: true, encoding: .utf8)
        let start = ContinuousClock.now
        let (status, log) = try await Self.run(
            Harness.coordinatorPath,
            ["--batch", file.path, "--bind", "tcp://127.0.0.1:*"],
            in: dir
        )
        let cli = ContinuousClock.now - start
        #expect(status == 2 && log.contains("aliases"), "\(log.suffix(2000))")
        // Bounds well above a loaded machine's noise (13 s and 6.8 s seen under five parallel builds): expanding
        // the bomb would take minutes; the peak RSS check below is the sharper guard.
        #expect(cli < .seconds(30), "the CLI took \(cli)")

        let coordinator = try Self.serve(dir)
        defer { coordinator.signal(SIGKILL) }
        guard await coordinator.boundEndpoint() != nil, let base = await coordinator.httpBase() else { return }
        let before = Self.peakMemoryMiB(coordinator.pid) ?? 0
        let posted = ContinuousClock.now
        let reply = try await Self.request("POST", "\(base)api/batches", body: Array(Self.aliasBomb.utf8))
        let http = ContinuousClock.now - posted
        #expect(reply.status == 400 && reply.body.contains("aliases"), "\(reply)")
        #expect(http < .seconds(30), "the reply took \(http)")
        let peak = Self.peakMemoryMiB(coordinator.pid) ?? 0
        print("alias bomb: CLI refused in \(cli), HTTP in \(http); coordinator peak RSS \(before) → \(peak) MiB")
        #expect(peak < before + 300, "peak RSS \(before) → \(peak) MiB")
        #expect(try await Self.request("GET", "\(base)health").status == 200)
    }

    @Test func item10ErrorRepliesAreBoundedAndSurrogatePairsAccepted() async throws {
        let dir = try Harness.tempDir("errors")
        let coordinator = try Self.serve(dir)
        defer { coordinator.signal(SIGKILL) }
        guard await coordinator.boundEndpoint() != nil, let base = await coordinator.httpBase() else { return }
        // 10 MiB (just under the limit) of control bytes on one line: the YAML error quoted the whole line,
        // and the reply was 57 MB before the bound.
        let junk = [UInt8]((0..<(10 << 20) - 16).map { UInt8(1 + $0 % 8) })
        let reply = try await Self.request("POST", "\(base)api/batches", body: junk)
        print("10 MiB of control bytes: a \(reply.status) reply of \(reply.bytes) bytes")
        #expect(reply.status == 400)
        #expect(reply.bytes < 1_024, "\(reply.bytes) bytes")
        let error = try #require(
            try JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: String]
        )["error"]
        #expect(error?.unicodeScalars.contains { $0.value < 0x20 } == false)
        let episodes = String(repeating: "9", count: 100_000)
        let long = try await Self.request("POST", "\(base)api/batches?episodes=\(episodes)")
        #expect(long.status == 400 && long.bytes < 1_024, "\(long.bytes) bytes")

        // Python's json.dumps(ensure_ascii=True): 🎬 as an escaped surrogate pair.
        let python = Array(#"[{"topic": "\ud83c\udfac film night", "id": "film-\ud83c\udfac"}]"#.utf8)
        let accepted = try await Self.request("POST", "\(base)api/batches?id=python", body: python)
        #expect(accepted.status == 202, "\(accepted)")
        let lone = try await Self.request("POST", "\(base)api/batches", body: Array(#"["\ud83c film"]"#.utf8))
        #expect(lone.status == 400, "\(lone)")
    }

    @Test func item12KeyPathOf40Z85CharactersIsReadAsAFileAndARefusalIsNamed() async throws {
        // /tmp/t15.XXXXXXXXXX/keys/coordinator.key: 40 characters, every one of them Z85.
        let root =
            "/tmp/t15." + String(UUID().uuidString.prefix(10)).lowercased().replacingOccurrences(of: "-", with: "x")
        let dir = URL(fileURLWithPath: root)
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = dir.appendingPathComponent("keys")
        let serverKey = keys.appendingPathComponent("coordinator.key").path
        #expect(serverKey.utf8.count == 40)
        for name in ["coordinator", "w1", "stranger"] { try await CurveTests.keygen(name, into: keys) }
        let allow = dir.appendingPathComponent("allow")
        try FileManager.default.createDirectory(at: allow, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: keys.appendingPathComponent("w1.key").path,
            toPath: allow.appendingPathComponent("w1.key").path
        )
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--episodes", "2", "--batch-id", "curve40", "--bind", "tcp://127.0.0.1:*", "--output",
                dir.appendingPathComponent("output").path, "--curve-secret",
                keys.appendingPathComponent("coordinator.key_secret").path, "--allow-workers", allow.path,
            ],
            environment: Harness.fastSimulation,
            cwd: dir
        )
        defer { coordinator.signal(SIGKILL) }
        guard let endpoint = await coordinator.boundEndpoint() else { return }
        func worker(_ name: String, serverKey: String) throws -> Child {
            try Child(
                name: name,
                executable: Harness.workerPath,
                arguments: [
                    "--connect", endpoint, "--worker-id", name, "--curve-server-key", serverKey, "--curve-secret",
                    keys.appendingPathComponent("\(name).key_secret").path,
                ],
                environment: Harness.fastSimulation,
                cwd: dir
            )
        }
        // Not on the allow-list: the worker says what probably happened.
        let stranger = try worker("stranger", serverKey: serverKey)
        defer { stranger.signal(SIGKILL) }
        #expect(
            await stranger.waitForLog(within: .seconds(20), "the refusal named") {
                $0.contains("refused the CURVE handshake")
            }
        )
        // The 40-character path is read as the key file it is, and the log says so.
        let w1 = try worker("w1", serverKey: serverKey)
        defer { w1.signal(SIGKILL) }
        #expect(
            await w1.waitForLog(within: .seconds(10), "the key's source") { $0.contains("the key file \(serverKey)") }
        )
        #expect(await coordinator.wait(timeout: .seconds(60)) == 0, "\(coordinator.log.suffix(3000))")
    }

    @Test func item13EndpointsThatCanNeverWorkAndNegativeCountsExit2WithTheReason() async throws {
        let dir = try Harness.tempDir("endpoints")
        for (endpoint, expected) in [
            ("tcp://127.0.0.1:99999", "65535"), ("tcp://no-such-host.invalid:5555", "does not resolve"),
            ("tcp://127.0.0.1", "port"), ("udp://127.0.0.1:5555", "tcp://"),
        ] {
            let start = ContinuousClock.now
            let (status, log) = try await Self.run(Harness.workerPath, ["--connect", endpoint], in: dir)
            #expect(status == 2 && log.contains(expected), "\(endpoint): \(log.suffix(1500))")
            #expect(ContinuousClock.now - start < .seconds(15))
        }
        let (status, log) = try await Self.run(
            Harness.coordinatorPath,
            ["--episodes", "1", "--workers", "-1", "--bind", "tcp://127.0.0.1:*"],
            in: dir
        )
        #expect(status == 2 && log.contains("--workers must be from 0 to 256, got -1"), "\(log)")
        let (eStatus, eLog) = try await Self.run(
            Harness.coordinatorPath,
            ["--episodes", "-3", "--bind", "tcp://127.0.0.1:*"],
            in: dir
        )
        #expect(eStatus == 2 && eLog.contains("got -3"), "\(eLog)")
        // Every numeric option reads a negative number as a value and names its range.
        for (executable, arguments) in [
            (Harness.workerPath, ["--connect", "tcp://127.0.0.1:5555", "--max-parallel-episodes", "-1"]),
            (Harness.workerPath, ["--connect", "tcp://127.0.0.1:5555", "--shutdown-grace", "-5"]),
            (Harness.coordinatorPath, ["--episodes", "1", "--max-attempts", "-2"]),
            (Harness.coordinatorPath, ["--episodes", "1", "--liveness", "-1"]),
        ] {
            let (status, log) = try await Self.run(executable, arguments, in: dir)
            #expect(status == 2 && !log.contains("Missing value") && log.contains("-"), "\(arguments): \(log)")
        }
    }
}

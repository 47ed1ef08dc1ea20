import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// CURVE with the real binaries: only workers whose key is on the allow-list get jobs, a plaintext client
/// and an unknown key are refused and counted, a key added to the allow-list is let in without a restart,
/// local workers get keys of their own, and the guards against listening beyond loopback unprotected.
@Suite(.serialized) struct CurveTests {
    static func keygen(_ name: String, into dir: URL) async throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let (status, output) = try await ServeTests.client(["keygen", "--name", name, "--out", dir.path], in: dir)
        #expect(status == 0 && output.contains("public key:"), "\(output)")
    }

    @Test("keygen writes a public key file and a secret one only its owner can read")
    func keygenWritesKeyFiles() async throws {
        let dir = try Harness.tempDir("keygen")
        try await Self.keygen("render-b", into: dir)
        let secret = dir.appendingPathComponent("render-b.key_secret").path
        let attributes = try FileManager.default.attributesOfItem(atPath: secret)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let text = try String(contentsOfFile: secret, encoding: .utf8)
        #expect(text.contains("public-key: ") && text.contains("secret-key: "))
        let pub = try String(contentsOf: dir.appendingPathComponent("render-b.key"), encoding: .utf8)
        #expect(pub.contains("public-key: ") && !pub.contains("secret-key"))
        // Never overwritten.
        let (status, output) = try await ServeTests.client(
            ["keygen", "--name", "render-b", "--out", dir.path],
            in: dir
        )
        #expect(status == 2 && output.contains("exists"), "\(output)")
    }

    @Test("only allowed workers get jobs; unknown keys and plaintext are refused and counted; a key added is let in")
    func allowListDecidesWhoGetsJobs() async throws {
        let dir = try Harness.tempDir("curve")
        let keys = dir.appendingPathComponent("keys")
        let allow = dir.appendingPathComponent("allow")
        try FileManager.default.createDirectory(at: allow, withIntermediateDirectories: true)
        for name in ["coordinator", "allowed", "later"] { try await Self.keygen(name, into: keys) }
        try FileManager.default.copyItem(
            at: keys.appendingPathComponent("allowed.key"),
            to: allow.appendingPathComponent("allowed.key")
        )
        var env = Harness.fastSimulation
        env["REELFARM_SIM_LATENCY"] = "llm=200,tts=100,image=200,render=100"
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "serve", "--bind", "tcp://127.0.0.1:*", "--http", "127.0.0.1:0", "--output",
                dir.appendingPathComponent("output").path, "--curve-secret",
                keys.appendingPathComponent("coordinator.key_secret").path, "--allow-workers", allow.path,
            ],
            environment: env,
            cwd: dir
        )
        defer { coordinator.signal(SIGKILL) }
        guard let endpoint = await coordinator.boundEndpoint(), let base = await coordinator.httpBase() else {
            return
        }
        _ = try await EpisodeFileTests.http("POST", "\(base)api/batches?episodes=2000&id=curve")
        func worker(_ name: String, curve: Bool) throws -> Child {
            var arguments = ["--connect", endpoint, "--worker-id", name]
            if curve {
                arguments += [
                    "--curve-server-key", keys.appendingPathComponent("coordinator.key").path, "--curve-secret",
                    keys.appendingPathComponent("\(name).key_secret").path,
                ]
            }
            return try Child(
                name: name,
                executable: Harness.workerPath,
                arguments: arguments,
                environment: env,
                cwd: dir
            )
        }
        let allowed = try worker("allowed", curve: true)
        let later = try worker("later", curve: true)
        let plain = try worker("plain", curve: false)
        defer { for w in [allowed, later, plain] { w.signal(SIGKILL) } }

        #expect(
            await allowed.waitForLog(within: .seconds(30), "a job for the allowed worker") { $0.contains("[episode_") }
        )
        #expect(
            await coordinator.waitForLog(within: .seconds(30), "both refusals") {
                $0.contains("worker refused: its public key is not on the allow-list")
                    && $0.contains("mechanism mismatch")
            }
        )
        try await Task.sleep(for: .seconds(2))
        #expect(!later.log.contains("[episode_") && !plain.log.contains("[episode_"), "a refused worker got a job")
        #expect(!coordinator.log.contains("worker=later") && !coordinator.log.contains("worker=plain"))
        let metrics = try await StatusHTTPTests.text("\(base)metrics")
        #expect((StatusHTTPTests.metric(metrics, #"reelfarm_connections_refused_total{reason="key"}"#) ?? 0) >= 1)
        #expect((StatusHTTPTests.metric(metrics, #"reelfarm_connections_refused_total{reason="handshake"}"#) ?? 0) >= 1)
        #expect(StatusHTTPTests.metric(metrics, "reelfarm_allowed_worker_keys") == 1)

        // The key is added to the folder: the coordinator reloads it and the worker gets in, no restart.
        try FileManager.default.copyItem(
            at: keys.appendingPathComponent("later.key"),
            to: allow.appendingPathComponent("later.key")
        )
        #expect(
            await coordinator.waitForLog(within: .seconds(20), "the reload") {
                $0.contains("worker allow-list reloaded")
            }
        )
        #expect(
            await later.waitForLog(within: .seconds(90), "a job for the newly allowed worker") {
                $0.contains("[episode_")
            }
        )
        #expect(!plain.log.contains("[episode_"))
        let status = try await EpisodeFileTests.http("GET", "\(base)api/status")
        let security = status["security"] as? [String: Any] ?? [:]
        #expect(security["curve"] as? Bool == true && security["allowed_keys"] as? Int == 2, "\(security)")
    }

    @Test("local workers of a CURVE coordinator get keys of their own and finish the batch")
    func localWorkersWithCurve() async throws {
        let dir = try Harness.tempDir("curve-local")
        let keys = dir.appendingPathComponent("keys")
        try await Self.keygen("coordinator", into: keys)
        let allow = dir.appendingPathComponent("allow.txt")
        try "# no remote workers yet\n".write(to: allow, atomically: true, encoding: .utf8)
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--workers", "2", "--episodes", "6", "--bind", "tcp://127.0.0.1:*", "--http", "off", "--output",
                dir.appendingPathComponent("output").path, "--batch-id", "local", "--curve-secret",
                keys.appendingPathComponent("coordinator.key_secret").path, "--allow-workers", allow.path,
            ],
            environment: Harness.fastSimulation,
            cwd: dir
        )
        #expect(await coordinator.wait(timeout: .seconds(120)) == 0, "log:\n\(coordinator.log.suffix(3000))")
        #expect(try Summary.load(dir.appendingPathComponent("output"), batch: "local").totals.succeeded == 6)
        #expect(coordinator.log.contains("worker key accepted") && coordinator.log.contains("key=local workers"))
        #expect(!coordinator.log.contains("secret-key"))
    }

    @Test("listening beyond loopback needs keys (or --insecure) and an HTTP token")
    func guardsAgainstUnprotectedListening() async throws {
        let (status, log) = try await ServeTests.client(
            ["--episodes", "1", "--bind", "tcp://0.0.0.0:*", "--http", "off"],
            in: try Harness.tempDir("insecure")
        )
        #expect(status == 2 && log.contains("without CURVE") && log.contains("coordinator keygen"), "\(log)")
        let (status2, log2) = try await ServeTests.client(
            ["--episodes", "1", "--bind", "tcp://127.0.0.1:*", "--http", "0.0.0.0:0"],
            in: try Harness.tempDir("insecure")
        )
        #expect(status2 == 2 && log2.contains("REELFARM_HTTP_TOKEN"), "\(log2)")
        let (status3, log3) = try await ServeTests.client(
            ["--episodes", "1", "--bind", "tcp://0.0.0.0:*", "--http", "off", "--insecure", "--workers", "1"],
            in: try Harness.tempDir("insecure")
        )
        #expect(status3 == 0 && log3.contains("INSECURE"), "\(log3)")
    }

    @Test("an HTTP token guards every route but /health; the client commands send it")
    func httpToken() async throws {
        let dir = try Harness.tempDir("token")
        let token = "s3cret-token-0123456789"
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: ["serve", "--bind", "tcp://127.0.0.1:*", "--http", "127.0.0.1:0", "--http-token", token],
            cwd: dir
        )
        defer { coordinator.signal(SIGKILL) }
        guard let base = await coordinator.httpBase() else { return }
        func code(_ path: String, auth: String? = nil) async throws -> UInt {
            var request = HTTPClientRequest(url: base + path)
            if let auth { request.headers.add(name: "Authorization", value: auth) }
            return try await HTTPClient.shared.execute(request, timeout: .seconds(10)).status.code
        }
        #expect(try await code("api/status") == 401)
        #expect(try await code("metrics", auth: "Bearer wrong-token-0123456789") == 401)
        #expect(try await code("api/status", auth: "Bearer \(token)") == 200)
        #expect(try await code("api/status?token=\(token)") == 200)
        #expect(try await code("health") == 200)
        let url = String(base.dropLast())
        var (status, output) = try await ServeTests.client(["status", "--url", url], in: dir)
        #expect(status == 1 && output.contains("401"), "\(output)")
        (status, output) = try await ServeTests.client(["status", "--url", url, "--token", token], in: dir)
        #expect(status == 0 && output.contains("coordinator (serve)"), "\(output)")
        coordinator.signal(SIGTERM)
        #expect(await coordinator.wait(timeout: .seconds(30)) == 0)
    }
}

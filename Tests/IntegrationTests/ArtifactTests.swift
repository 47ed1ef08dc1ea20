import Foundation
import Shared
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// How finished episodes reach the coordinator's output folder, with the real binaries: pulled over ZeroMQ
/// from a worker with its own folder, or published by workers on a shared file system.
@Suite(.serialized) struct ArtifactTests {
    /// The mock provider for every stage but a simulated render: real voice and image files, fast.
    static func mockEnvironment(in dir: URL) async throws -> (Child, [String: String])? {
        guard let (mock, base) = try await EpisodeFileTests.startMock(in: dir) else { return nil }
        _ = try await EpisodeFileTests.http(
            "POST",
            "\(base)/admin/config",
            body: #"{"script_lines": 2, "script_broll": 1, "script_narration": false}"#
        )
        var env = BudgetTests.environment(base)
        env["REELFARM_SIM_LATENCY"] = "render=20"
        return (mock, env)
    }

    static func files(_ folder: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
    }

    @Test("a worker with its own folder: files pulled, identical, and deleted from the worker once acknowledged")
    func transferFromAWorkerWithItsOwnFolder() async throws {
        let dir = try Harness.tempDir("transfer")
        let out = dir.appendingPathComponent("output")
        let spool = dir.appendingPathComponent("worker-box")
        guard let (mock, env) = try await Self.mockEnvironment(in: dir) else { return }
        defer { mock.signal(SIGTERM) }
        let endpoint = "tcp://127.0.0.1:\(try ReconnectTests.freePort())"
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: ["--episodes", "3", "--bind", endpoint, "--output", out.path, "--batch-id", "t"],
            environment: env,
            cwd: dir
        )
        let worker = try Child(
            name: "worker",
            executable: Harness.workerPath,
            arguments: ["--connect", endpoint, "--output", spool.path, "--log-level", "debug"],
            environment: env,
            cwd: dir
        )
        defer { worker.signal(SIGKILL) }
        #expect(await coordinator.wait(timeout: .seconds(120)) == 0, "log:\n\(coordinator.log.suffix(4000))")
        let json = try BudgetTests.summaryJSON(out, "t")
        let artifacts = (json["counters"] as? [String: Any])?["artifacts"] as? [String: Any] ?? [:]
        #expect(artifacts["episodes_stored"] as? Int == 3, "\(artifacts)")
        #expect(artifacts["checksum_mismatches"] as? Int == 0)
        for n in 1...3 {
            let folder = out.appendingPathComponent("t/episode_\(n)")
            let names = Self.files(folder)
            #expect(names.contains("manifest.json") && names.contains("script.json") && names.contains("scene_1.png"))
            // Every asset the worker listed in its manifest arrived with that digest.
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            let manifest = try decoder.decode(
                EpisodeFileTests.Manifest.self,
                from: Data(contentsOf: folder.appendingPathComponent("manifest.json"))
            )
            for asset in manifest.assets {
                guard let file = asset.file else { continue }
                #expect(try DurableFiles.sha256(of: folder.appendingPathComponent(file)) == asset.sha256)
            }
        }
        // The worker deleted its copies once acknowledged (the last ACK may still be on its way when the
        // coordinator exits); nothing was ever published on its side.
        #expect(
            await worker.waitForLog(within: .seconds(10), "three deliveries") {
                $0.components(separatedBy: "episode files delivered").count - 1 == 3
            }
        )
        #expect(
            Self.files(spool.appendingPathComponent("t")).isEmpty,
            "\(Self.files(spool.appendingPathComponent("t")))"
        )
        #expect(Self.files(out.appendingPathComponent("t")).filter { $0.hasPrefix(".") }.isEmpty, "no .incoming left")
    }

    @Test("--artifacts shared: local workers publish, the coordinator checks every digest")
    func sharedWithLocalWorkers() async throws {
        let dir = try Harness.tempDir("shared")
        let out = dir.appendingPathComponent("output")
        guard let (mock, env) = try await Self.mockEnvironment(in: dir) else { return }
        defer { mock.signal(SIGTERM) }
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--workers", "2", "--episodes", "3", "--bind", "tcp://127.0.0.1:*", "--output", out.path,
                "--batch-id", "s", "--artifacts", "shared",
            ],
            environment: env,
            cwd: dir
        )
        #expect(await coordinator.wait(timeout: .seconds(120)) == 0, "log:\n\(coordinator.log.suffix(4000))")
        let json = try BudgetTests.summaryJSON(out, "s")
        let artifacts = (json["counters"] as? [String: Any])?["artifacts"] as? [String: Any] ?? [:]
        #expect(artifacts["episodes_stored"] as? Int == 3, "\(artifacts)")
        #expect(artifacts["bytes_received"] as? Int == 0, "nothing travels over ZeroMQ")
        #expect(Self.files(out.appendingPathComponent("s/episode_2")).contains("manifest.json"))
    }

    @Test("--artifacts shared without a shared folder: the attempt fails with a message that says why")
    func sharedWithoutASharedFolderIsExplained() async throws {
        let dir = try Harness.tempDir("notshared")
        let out = dir.appendingPathComponent("output")
        guard let (mock, env) = try await Self.mockEnvironment(in: dir) else { return }
        defer { mock.signal(SIGTERM) }
        let endpoint = "tcp://127.0.0.1:\(try ReconnectTests.freePort())"
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--episodes", "1", "--bind", endpoint, "--output", out.path, "--batch-id", "n", "--max-attempts", "1",
            ],
            environment: env,
            cwd: dir
        )
        let worker = try Child(
            name: "worker",
            executable: Harness.workerPath,
            arguments: [
                "--connect", endpoint, "--artifacts", "shared", "--output",
                dir.appendingPathComponent("elsewhere").path,
            ],
            environment: env,
            cwd: dir
        )
        defer { worker.signal(SIGKILL) }
        #expect(await coordinator.wait(timeout: .seconds(120)) == 1)
        let summary = try Summary.load(out, batch: "n")
        #expect(summary.totals.failed == 1)
        let errors = summary.episodes.first?.errors.joined() ?? ""
        #expect(errors.contains("is missing; is the worker's --output the coordinator's"), "\(errors)")
    }
}

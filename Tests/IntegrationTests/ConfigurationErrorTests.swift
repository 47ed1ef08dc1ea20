import Foundation
import Testing

/// Bad settings never start a batch: a clear message and exit status 2.
@Suite(.serialized) struct ConfigurationErrorTests {
    func run(
        _ executable: String,
        _ arguments: [String],
        env: [String: String] = [:],
        dotEnv: String? = nil
    ) async throws -> (Int32, String) {
        let dir = try Harness.tempDir("config")
        if let dotEnv { try dotEnv.write(to: dir.appendingPathComponent(".env"), atomically: true, encoding: .utf8) }
        let child = try Child(name: "child", executable: executable, arguments: arguments, environment: env, cwd: dir)
        let status = await child.wait(timeout: .seconds(30))
        return (status, child.log)
    }

    @Test(arguments: [
        ("MAX_PARALLEL_EPISODES", "0"), ("MAX_PARALLEL_EPISODES", "-2"), ("MAX_PARALLEL_EPISODES", "three"),
        ("MAX_PARALLEL_API_CALLS", "0"), ("MAX_PARALLEL_API_CALLS", "1.5"),
    ])
    func invalidEnvironmentValueExits2(key: String, value: String) async throws {
        let (status, log) = try await run(
            Harness.coordinatorPath,
            ["--episodes", "1", "--bind", "tcp://127.0.0.1:*"],
            env: [key: value]
        )
        #expect(status == 2)
        #expect(log.contains(key))
        let (wStatus, wLog) = try await run(Harness.workerPath, ["--connect", "tcp://127.0.0.1:1"], env: [key: value])
        #expect(wStatus == 2)
        #expect(wLog.contains(key))
    }

    @Test func invalidValueInDotEnvNamesTheFile() async throws {
        let (status, log) = try await run(
            Harness.coordinatorPath,
            ["--episodes", "1", "--bind", "tcp://127.0.0.1:*"],
            dotEnv: "MAX_PARALLEL_EPISODES=none\n"
        )
        #expect(status == 2)
        #expect(log.contains("MAX_PARALLEL_EPISODES") && log.contains(".env"))
    }

    @Test(arguments: [
        ["--episodes", "1", "--max-parallel-episodes", "0"],
        ["--episodes", "1", "--max-parallel-api-calls", "x"],
        ["--episodes", "0"],
        [],
        ["--episodes", "2", "--batch", "b.yaml"],
        ["--batch", "does-not-exist.yaml"],
        ["--episodes", "1", "--bind", "nonsense://x"],
        ["--episodes", "1", "--no-such-flag"],
    ])
    func usageErrorsExit2(arguments: [String]) async throws {
        let (status, log) = try await run(
            Harness.coordinatorPath,
            arguments + ["--bind", "tcp://127.0.0.1:*"].filter { _ in !arguments.contains("--bind") }
        )
        #expect(status == 2, "log: \(log)")
        #expect(log.contains("error") || log.contains("Error"))
    }

    @Test func workerWithoutEndpointExits2() async throws {
        let (status, log) = try await run(Harness.workerPath, [])
        #expect(status == 2)
        #expect(log.contains("--connect"))
    }

    @Test func badBatchFileIsRefusedByName() async throws {
        let dir = try Harness.tempDir("badbatch")
        let file = dir.appendingPathComponent("b.yaml")
        try "- topic: fine\n- topc: typo\n".write(to: file, atomically: true, encoding: .utf8)
        let child = try Child(
            name: "c",
            executable: Harness.coordinatorPath,
            arguments: ["--batch", file.path, "--bind", "tcp://127.0.0.1:*"],
            cwd: dir
        )
        #expect(await child.wait(timeout: .seconds(30)) == 2)
        #expect(child.log.contains("episode 2") && child.log.contains("topc"))
    }
}

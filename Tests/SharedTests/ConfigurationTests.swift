import Foundation
import Logging
import Testing

@testable import Shared

@Suite struct ConfigurationTests {
    @Test func defaultsAreThreeAndFive() throws {
        let s = try ParallelismSettings.resolve(
            episodesFlag: nil,
            apiCallsFlag: nil,
            environment: EnvironmentSettings([:])
        )
        #expect(s == ParallelismSettings(maxParallelEpisodes: 3, maxParallelAPICalls: 5))
    }

    @Test func flagWinsOverEnvironment() throws {
        let env = EnvironmentSettings(["MAX_PARALLEL_EPISODES": "7", "MAX_PARALLEL_API_CALLS": "2"])
        let s = try ParallelismSettings.resolve(episodesFlag: "1", apiCallsFlag: nil, environment: env)
        #expect(s == ParallelismSettings(maxParallelEpisodes: 1, maxParallelAPICalls: 2))
    }

    @Test(arguments: ["0", "-1", "abc", "2.5", "", "99999"])
    func invalidValuesAreRefusedWithTheirSource(value: String) {
        let env = EnvironmentSettings(["MAX_PARALLEL_EPISODES": value])
        if value.isEmpty {
            // An empty variable counts as unset.
            #expect(
                (try? ParallelismSettings.resolve(episodesFlag: nil, apiCallsFlag: nil, environment: env))?
                    .maxParallelEpisodes == 3
            )
            return
        }
        #expect {
            try ParallelismSettings.resolve(episodesFlag: nil, apiCallsFlag: nil, environment: env)
        } throws: { error in
            let message = (error as? ConfigurationError)?.message ?? ""
            return message.contains("MAX_PARALLEL_EPISODES") && message.contains("environment")
        }
        #expect(throws: ConfigurationError.self) {
            try ParallelismSettings.resolve(
                episodesFlag: value,
                apiCallsFlag: nil,
                environment: EnvironmentSettings([:])
            )
        }
    }

    @Test func dotEnvFileIsReadAndTheEnvironmentWins() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("reelfarm-env-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let file = dir.appendingPathComponent(".env").path
        try "# settings\nMAX_PARALLEL_EPISODES=4\nMAX_PARALLEL_API_CALLS=\"9\"\n".write(
            toFile: file,
            atomically: true,
            encoding: .utf8
        )
        let env = try await EnvironmentSettings.load(envFile: file, environment: ["MAX_PARALLEL_API_CALLS": "2"])
        let s = try ParallelismSettings.resolve(episodesFlag: nil, apiCallsFlag: nil, environment: env)
        #expect(s == ParallelismSettings(maxParallelEpisodes: 4, maxParallelAPICalls: 2))
        #expect(env.value("MAX_PARALLEL_EPISODES")?.source == file)

        try "MAX_PARALLEL_EPISODES=zero\n".write(toFile: file, atomically: true, encoding: .utf8)
        let bad = try await EnvironmentSettings.load(envFile: file, environment: [:])
        #expect {
            try ParallelismSettings.resolve(episodesFlag: nil, apiCallsFlag: nil, environment: bad)
        } throws: { error in
            ((error as? ConfigurationError)?.message ?? "").contains(".env")
        }
    }

    @Test func missingDotEnvIsFine() async throws {
        let env = try await EnvironmentSettings.load(envFile: "/nonexistent/.env", environment: [:])
        #expect(env.envFilePath == nil)
    }

    @Test func logLineCarriesEpisodeIdBeforeTheMessage() {
        let line = ReelfarmLogHandler.format(
            timestamp: "T",
            level: .info,
            label: "worker",
            message: "hello",
            metadata: ["episode": "episode_3", "attempt": "1", "a": "x"]
        )
        #expect(line == "T INFO     worker [episode_3] hello a=x attempt=1")
    }

    @Test("JSON log lines parse, keep every field, and escape what JSON must")
    func jsonLogLines() throws {
        let line = ReelfarmLogHandler.json(
            timestamp: "2026-11-26T18:40:01.123Z",
            level: .warning,
            label: "coordinator",
            message: "quote \" backslash \\ newline \n tab \t bell \u{07} é 🎬",
            metadata: [
                "episode": "episode_3", "message": "shadowed", "count": .stringConvertible(7),
                "list": .array(["a", "b"]), "nested": .dictionary(["k": "v"]),
            ]
        )
        #expect(!line.contains("\n"))
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        )
        #expect(object["ts"] as? String == "2026-11-26T18:40:01.123Z")
        #expect(object["level"] as? String == "warning")
        #expect(object["logger"] as? String == "coordinator")
        #expect(object["message"] as? String == "quote \" backslash \\ newline \n tab \t bell \u{07} é 🎬")
        #expect(object["meta.message"] as? String == "shadowed")
        #expect(object["episode"] as? String == "episode_3")
        #expect(object["count"] as? String == "7")
        #expect(object["list"] as? [String] == ["a", "b"])
        #expect((object["nested"] as? [String: String]) == ["k": "v"])
        #expect(try LoggingSetup.format("JSON") == .json)
        #expect(throws: ConfigurationError.self) { try LoggingSetup.format("yaml") }
    }

    @Test func logLevelsParse() throws {
        #expect(try LoggingSetup.level("DEBUG") == .debug)
        #expect(throws: ConfigurationError.self) { try LoggingSetup.level("loud") }
    }

    @Test func durationsFormatLikeThePredecessor() {
        #expect(Duration.milliseconds(12_400).shortDescription == "12.4s")
        #expect(Duration.milliseconds(18_230).secondsText == "18.23s")
        #expect(Duration.seconds(3).wholeMilliseconds == 3000)
    }
}

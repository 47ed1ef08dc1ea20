import Foundation
import Shared
import Testing

@testable import Worker

/// Which provider each stage uses, from REELFARM_PROVIDERS / --providers, the settings file and defaults.
@Suite struct ProviderConfigurationTests {
    func resolve(_ env: [String: String], flag: String? = nil, preset: String? = nil) throws -> ProviderConfiguration {
        try ProviderConfiguration.resolve(
            providersFlag: flag,
            presetFlag: preset,
            sources: SettingsSources(environment: EnvironmentSettings(env), file: nil)
        )
    }

    @Test func offlineByDefault() throws {
        let c = try resolve([:])
        #expect([c.script, c.voice, c.image, c.render] == ["offline", "offline", "offline", "ffmpeg"])
        #expect(c.renderSettings == .landscape)
        #expect(c.writesFiles)
    }

    @Test func wholeSetsAndPerStageChoices() throws {
        let sim = try resolve(["REELFARM_PROVIDERS": "simulated"])
        #expect(!sim.writesFiles)
        let mixed = try resolve(
            [
                "REELFARM_PROVIDERS": "script=openai, voice=elevenlabs,image=huggingface",
                "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
                "ELEVENLABS_API_KEY": "k", "HF_TOKEN": "t",
            ])
        #expect(
            [mixed.script, mixed.voice, mixed.image, mixed.render] == ["openai", "elevenlabs", "huggingface", "ffmpeg"]
        )
        #expect(mixed.openAI.baseURL == "http://127.0.0.1:9/v1")
        // The flag wins over the environment.
        #expect(try resolve(["REELFARM_PROVIDERS": "offline"], flag: "simulated").script == "simulated")
        #expect(try resolve([:], preset: "vertical").renderSettings == .vertical)
    }

    @Test(arguments: [
        ["REELFARM_PROVIDERS": "magic"],
        ["REELFARM_PROVIDERS": "voice=openai_tts"],
        ["REELFARM_PROVIDERS": "sound=offline"],
        ["REELFARM_RENDER_PRESET": "square"],
        ["OPENAI_BASE_URL": "ftp://example"],
    ])
    func badValuesAreRefusedByName(env: [String: String]) {
        #expect {
            try resolve(env)
        } throws: { error in
            let message = (error as? ConfigurationError)?.message ?? ""
            return env.keys.contains { message.contains($0) }
        }
    }

    @Test func hostedProvidersNeedAKeyUnlessPointedAtAnotherServer() throws {
        #expect(throws: ConfigurationError.self) { try resolve(["REELFARM_PROVIDERS": "openai"]) }
        #expect(throws: ConfigurationError.self) { try resolve(["REELFARM_PROVIDERS": "image=huggingface"]) }
        #expect(throws: ConfigurationError.self) { try resolve(["REELFARM_PROVIDERS": "voice=elevenlabs"]) }
        let local = try resolve(["REELFARM_PROVIDERS": "openai", "OPENAI_BASE_URL": "http://127.0.0.1:11434/v1"])
        #expect(local.openAI.apiKey == nil)
        // The summary never shows a key.
        let keyed = try resolve(["REELFARM_PROVIDERS": "openai", "OPENAI_API_KEY": "sk-secret"])
        #expect(!keyed.summary.contains("sk-secret") && !keyed.openAI.description.contains("sk-secret"))
    }

    @Test func settingsFileChoosesProvidersAndEnvironmentWins() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("reelfarm-cfg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("reelfarm.yaml").path
        try """
        providers: {script: simulated, voice: simulated, image: offline, render: ffmpeg}
        render: {preset: vertical}
        openai: {base_url: "http://127.0.0.1:1/v1", script_model: tiny}
        elevenlabs: {voices: ["Narrator=abc"]}
        http: {timeout_seconds: 5, max_retries: 1}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let file = try await ConfigFile.load(path)
        let sources = SettingsSources(
            environment: EnvironmentSettings(["OPENAI_BASE_URL": "http://127.0.0.1:2/v1"]),
            file: file
        )
        let c = try ProviderConfiguration.resolve(providersFlag: nil, presetFlag: nil, sources: sources)
        #expect([c.script, c.voice, c.image] == ["simulated", "simulated", "offline"])
        #expect(c.renderSettings == .vertical)
        #expect(c.openAI.baseURL == "http://127.0.0.1:2/v1")
        #expect(c.openAI.scriptModel == "tiny")
        #expect(c.elevenLabs.voiceIds == ["Narrator": "abc"])
        #expect(c.http.requestTimeout == .seconds(5) && c.http.maxRetries == 1)
    }
}

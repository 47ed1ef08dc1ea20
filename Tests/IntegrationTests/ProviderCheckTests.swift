import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `coordinator check` (issue 14) with the real binaries against the mock provider, told to answer in each
/// recorded real failure shape: the line a user reads must name the problem and the setting to change.
@Suite(.serialized) struct ProviderCheckTests {
    /// Every hosted stage against the mock: chat and images on the OpenAI shape, speech on ElevenLabs.
    static func environment(_ base: String, _ extra: [String: String] = [:]) -> [String: String] {
        [
            "REELFARM_PROVIDERS": "script=openai,voice=elevenlabs,image=openai,render=ffmpeg",
            "OPENAI_BASE_URL": "\(base)/v1", "OPENAI_API_KEY": "sk-test-good-key",
            "ELEVENLABS_BASE_URL": "\(base)/elevenlabs/v1", "ELEVENLABS_API_KEY": "xi-test-good-key",
            "HF_BASE_URL": "\(base)/hf/models", "HF_TOKEN": "hf_test_good_token",
        ].merging(extra) { $1 }
    }

    /// Starts a mock with `config`, runs `coordinator check`, and returns its exit status and output.
    static func check(
        _ name: String,
        config: String,
        environment extra: [String: String] = [:]
    ) async throws -> (status: Int32, log: String)? {
        let dir = try Harness.tempDir("check-\(name)")
        guard let (mock, base) = try await EpisodeFileTests.startMock(in: dir, config: config) else { return nil }
        defer { mock.signal(SIGTERM) }
        let check = try Child(
            name: "check",
            executable: Harness.coordinatorPath,
            arguments: ["check"],
            environment: Self.environment(base, extra),
            cwd: dir
        )
        let status = await check.wait(timeout: .seconds(120))
        return (status, check.log)
    }

    /// The output line of `stage`.
    static func line(_ log: String, _ stage: String) -> String {
        log.split(separator: "\n").map(String.init).first {
            $0.hasPrefix(stage.padding(toLength: 8, withPad: " ", startingAt: 0))
        }
            ?? ""
    }

    @Test func aHealthyMockPassesAndEveryStageSaysOK() async throws {
        guard let (status, log) = try await Self.check("healthy", config: "{}") else { return }
        #expect(status == 0, "\(log)")
        for stage in ["script", "voice", "image", "render"] {
            #expect(Self.line(log, stage).contains(" OK "), "\(stage): \(log)")
        }
        #expect(Self.line(log, "script").contains("gpt-6-luna"))
        #expect(Self.line(log, "image").contains("gpt-image-2.6-flare 1280x720 medium"))
        #expect(Self.line(log, "render").contains("ffmpeg"))
        #expect(log.contains("check: OK"))
    }

    @Test func aBadKeyIsNamedWithTheVariableToSet() async throws {
        guard
            let (status, log) = try await Self.check(
                "bad-key",
                config: #"{"openai": {"api_keys": ["sk-the-real-one"]}}"#
            )
        else { return }
        #expect(status == 1, "\(log)")
        let script = Self.line(log, "script")
        #expect(script.contains("FAIL") && script.contains("the key was refused"), "\(log)")
        #expect(script.contains("invalid_api_key") && script.contains("OPENAI_API_KEY"))
        #expect(!log.contains("sk-test-good-key"), "the key must never be printed")
    }

    @Test func anUnknownModelNamesTheModelSetting() async throws {
        guard
            let (status, log) = try await Self.check(
                "unknown-model",
                config: #"{"openai": {"known_models": ["gpt-6-luna", "dall-e-3"]}}"#,
                environment: ["OPENAI_IMAGE_MODEL": "gpt-image-2"]
            )
        else { return }
        #expect(status == 1, "\(log)")
        let image = Self.line(log, "image")
        #expect(image.contains("unknown model \"gpt-image-2\""), "\(log)")
        #expect(image.contains("OPENAI_IMAGE_MODEL"))
        #expect(Self.line(log, "script").contains(" OK "))
    }

    @Test func theLocalServerExampleWorksWithItsOwnModelName() async throws {
        // A server that knows only its own model names (as Ollama and vLLM do): the default model is
        // refused with a diagnosis; OPENAI_SCRIPT_MODEL fixes it.
        let config = #"{"openai": {"known_models": ["llama3.1:8b"]}}"#
        let local = ["REELFARM_PROVIDERS": "script=openai,voice=offline,image=offline,render=ffmpeg"]
        guard let (refused, log) = try await Self.check("local-default", config: config, environment: local) else {
            return
        }
        #expect(refused == 1, "\(log)")
        #expect(Self.line(log, "script").contains("OPENAI_SCRIPT_MODEL"), "\(log)")
        guard
            let (status, fixed) = try await Self.check(
                "local-model",
                config: config,
                environment: local.merging(["OPENAI_SCRIPT_MODEL": "llama3.1:8b"]) { $1 }
            )
        else { return }
        #expect(status == 0, "\(fixed)")
        #expect(Self.line(fixed, "script").contains("llama3.1:8b"))
        #expect(Self.line(fixed, "voice").contains("espeak-ng"))
    }

    @Test func aRetiredVoiceNamesTheVoiceSetting() async throws {
        guard
            let (status, log) = try await Self.check(
                "retired-voice",
                config: #"{"elevenlabs": {"known_voices": ["my-own-voice"]}}"#
            )
        else { return }
        #expect(status == 1, "\(log)")
        let voice = Self.line(log, "voice")
        #expect(voice.contains("unknown or retired voice") && voice.contains("ELEVENLABS_VOICE_IDS"), "\(log)")
        guard
            let (fixed, _) = try await Self.check(
                "own-voice",
                config: #"{"elevenlabs": {"known_voices": ["my-own-voice"]}}"#,
                environment: ["ELEVENLABS_VOICE_IDS": "my-own-voice"]
            )
        else { return }
        #expect(fixed == 0)
    }

    @Test func aLibraryVoiceOnAFreePlanSaysPaidPlan() async throws {
        guard
            let (status, log) = try await Self.check(
                "paid-voice",
                config: #"{"elevenlabs": {"paid_voices": ["CwhRBWXzGAHq8TQ4Fs17"]}}"#
            )
        else { return }
        #expect(status == 1, "\(log)")
        let voice = Self.line(log, "voice")
        #expect(voice.contains("CwhRBWXzGAHq8TQ4Fs17 needs a paid plan"), "\(log)")
    }

    @Test(
        "each recorded failure shape gets its diagnosis",
        arguments: [
            ("openai", "openai/insufficient_quota", "chat_completions", "script", "no credits", Int32(1)),
            ("elevenlabs", "elevenlabs/detected_unusual_activity", "text_to_speech", "voice", "free tier", 1),
            ("elevenlabs", "elevenlabs/quota_exceeded", "text_to_speech", "voice", "no credits", 1),
            ("openai", "openai/rate_limit_tokens", "chat_completions", "script", "rate limited; resets in", 0),
        ]
    )
    func recordedShape(
        provider: String,
        fixture: String,
        endpoint: String,
        stage: String,
        words: String,
        exit: Int32
    ) async throws {
        let config = """
            {"\(provider)": {"force_failures": [{"fixture": "\(fixture)", "count": 1, "endpoint": "\(endpoint)"}]}}
            """
        guard let (status, log) = try await Self.check(fixture.replacing("/", with: "-"), config: config) else {
            return
        }
        #expect(status == exit, "\(log)")
        #expect(Self.line(log, stage).contains(words), "\(log)")
    }

    @Test func huggingFaceWithoutCreditsSaysSo() async throws {
        guard
            let (status, log) = try await Self.check(
                "hf-credits",
                config: """
                    {"huggingface": {"force_failures": [{"fixture": "huggingface/credits_exhausted", "count": 1}]}}
                    """,
                environment: ["REELFARM_PROVIDERS": "script=offline,voice=offline,image=huggingface,render=ffmpeg"]
            )
        else { return }
        #expect(status == 1, "\(log)")
        let image = Self.line(log, "image")
        #expect(image.contains("no credits") && image.contains("402"), "\(log)")
    }

    @Test func aBatchWithABadKeyStopsBeforeItsFirstEpisode() async throws {
        let dir = try Harness.tempDir("check-batch")
        let out = dir.appendingPathComponent("output")
        let config = #"{"openai": {"api_keys": ["sk-the-real-one"]}, "elevenlabs": {"api_keys": ["xi-real"]}}"#
        guard let (mock, base) = try await EpisodeFileTests.startMock(in: dir, config: config) else { return }
        defer { mock.signal(SIGTERM) }
        let coordinator = try Child(
            name: "coordinator",
            executable: Harness.coordinatorPath,
            arguments: [
                "--workers", "2", "--episodes", "6", "--bind", "tcp://127.0.0.1:*", "--output", out.path,
                "--batch-id", "badkey",
            ],
            environment: Self.environment(base),
            cwd: dir
        )
        let status = await coordinator.wait(timeout: .seconds(120))
        #expect(status == 1, "\(coordinator.log)")
        #expect(coordinator.log.contains("no batch started"))
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("badkey/summary.json").path))
        // One call per hosted stage (the voice stage: one per default voice), not a batch of placeholders.
        let stats = try await EpisodeFileTests.http("GET", "\(base)/stats")
        let openai = (stats["openai"] as? [String: Any])?["requests"] as? Int
        #expect(openai == 2, "\(stats)")
    }
}

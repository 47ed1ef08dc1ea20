import ProviderFixtures
import Synchronization

/// The recorded provider answers of the `ProviderFixtures` module, as the mock serves them: each read once and kept.
///
/// The fixtures are resources copied at build time, so a fixture missing now stays missing for the life of the
/// process; the mock then falls back to its own reply.
enum RecordedFixtures {
    private static let cache = Mutex<[String: Result<ProviderFixture, ProviderFixtureError>]>([:])

    /// The fixture `<service>/<case>`, or the reason it cannot be read.
    static func load(_ name: String) -> Result<ProviderFixture, ProviderFixtureError> {
        if let cached = cache.withLock({ $0[name] }) { return cached }
        let result = Result { () throws(ProviderFixtureError) in try ProviderFixtures.named(name) }
        cache.withLock { $0[name] = result }
        return result
    }

    /// The fixture when it exists, is valid and has a body the mock can send (JSON or text).
    static func servable(_ name: String) -> ProviderFixture? {
        guard case .success(let fixture) = load(name) else { return nil }
        if case .binary = fixture.body { return nil }
        return fixture
    }

    /// The services whose fixtures a provider's routes may send: OpenAI-compatible servers share one API.
    static func services(of provider: Provider) -> Set<String> {
        switch provider {
        case .openai: ["openai", "ollama", "vllm"]
        case .huggingface: ["huggingface"]
        case .elevenlabs: ["elevenlabs"]
        }
    }

    /// `force_failures[].fixture` checked for `provider`: it must exist, belong to one of the provider's services and
    /// have a JSON or text body. The result says how `/stats` counts it.
    static func forcedFailure(_ name: String, provider: Provider) -> Result<FixtureFailure, ConfigError> {
        let fixture: ProviderFixture
        switch load(name) {
        case .failure(let error):
            return .failure(ConfigError(message: error.isNotFound ? "no fixture \(name)" : "\(error)"))
        case .success(let loaded): fixture = loaded
        }
        guard services(of: provider).contains(fixture.service) else {
            let allowed = services(of: provider).sorted().joined(separator: ", ")
            return .failure(
                ConfigError(message: "\(name) is not a \(provider.rawValue) fixture (services: \(allowed))")
            )
        }
        let body: String
        switch fixture.body {
        case .json(let data): body = String(decoding: data, as: UTF8.self)
        case .text(let text): body = text
        case .binary: return .failure(ConfigError(message: "\(name) has a binary body, which the mock cannot send"))
        }
        return .success(FixtureFailure(name: name, outcome: .ofFixture(status: fixture.status, body: body)))
    }

    /// How `/stats` counts a reply copied from `fixture`.
    static func outcome(of fixture: ProviderFixture) -> RequestOutcome {
        switch fixture.body {
        case .json(let data): .ofFixture(status: fixture.status, body: String(decoding: data, as: UTF8.self))
        case .text(let text): .ofFixture(status: fixture.status, body: text)
        case .binary: .ofFixture(status: fixture.status, body: "")
        }
    }
}

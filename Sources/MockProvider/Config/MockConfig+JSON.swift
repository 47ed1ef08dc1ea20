import Foundation
import Protocol
import ProviderFixtures

/// A configuration file or `/admin/config` body that could not be used.
struct ConfigError: Error, Equatable, CustomStringConvertible {
    /// Where and what, e.g. `openai.request_limit: expected a positive integer or null`.
    var message: String

    var description: String { message }
}

extension MockConfig {
    /// Reads configuration JSON (see ``MockConfig``) on top of `base`: the fields present replace those of `base`.
    static func decode(
        _ data: some DataProtocol,
        over base: MockConfig = MockConfig()
    ) throws(ConfigError) -> MockConfig {
        // Read key by key with exact error messages, as the fixtures are (integers stay integers, so `1.5` is
        // told from `1`).
        guard let root = JSONValue(data: Data(data)) else { throw ConfigError(message: "not valid JSON") }
        var config = base
        var reader = try ObjectReader(root, path: "")
        config.seed =
            try reader.optional("seed") { value, path throws(ConfigError) in
                guard let number = value.integer, number >= 0 else {
                    throw ConfigError(message: "\(path): expected a non-negative integer")
                }
                return UInt64(number)
            } ?? config.seed
        config.maxBodyBytes = try reader.optional("max_body_bytes", positiveInt) ?? config.maxBodyBytes
        config.imageMaxSide = try reader.optional("image_max_side", positiveInt) ?? config.imageMaxSide
        if let lines = reader.take("script_lines") {
            config.scriptLines =
                lines == .null ? nil : try atMost(maxScriptItems, positiveInt(lines, "script_lines"), "script_lines")
        }
        if let broll = reader.take("script_broll") {
            config.scriptBroll =
                broll == .null ? nil : try atMost(maxScriptItems, nonNegativeInt(broll, "script_broll"), "script_broll")
        }
        if let narration = reader.take("script_narration") {
            guard case .bool(let on) = narration else {
                throw ConfigError(message: "script_narration: expected true or false")
            }
            config.scriptNarration = on
        }
        for provider in Provider.allCases {
            if let value = reader.take(provider.rawValue) {
                config[provider] = try ProviderConfig.decode(value, over: config[provider], provider: provider)
            }
        }
        try reader.finish()
        return config
    }

    /// The configuration as JSON in the same schema, keys sorted.
    func jsonData() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        // Encoding these plain value types cannot fail.
        return try! encoder.encode(self)
    }
}

extension ProviderConfig {
    fileprivate static func decode(
        _ value: JSONValue,
        over base: ProviderConfig,
        provider: Provider
    ) throws(ConfigError)
        -> ProviderConfig
    {
        let path = provider.rawValue
        var config = base
        var reader = try ObjectReader(value, path: path)
        if let limit = reader.take("request_limit") {
            config.requestLimit = limit == .null ? nil : try positiveInt(limit, "\(path).request_limit")
        }
        if let limit = reader.take("max_concurrent") {
            config.maxConcurrent = limit == .null ? nil : try positiveInt(limit, "\(path).max_concurrent")
        }
        config.windowMs = try reader.optional("window_ms", positiveInt) ?? config.windowMs
        config.tokenLimit = try reader.optional("token_limit", positiveInt) ?? config.tokenLimit
        config.latencyMs = try reader.optional("latency_ms", nonNegativeInt) ?? config.latencyMs
        config.jitterPercent =
            try reader.optional("jitter_percent", number(in: 0...100)) ?? config.jitterPercent
        config.retryAfterMs = try reader.optional("retry_after_ms", nonNegativeInt) ?? config.retryAfterMs
        config.timeoutDelayMs =
            try reader.optional("timeout_delay_ms", nonNegativeInt) ?? config.timeoutDelayMs
        config.coldStartRequests =
            try reader.optional("cold_start_requests", nonNegativeInt) ?? config.coldStartRequests
        config.estimatedTimeS =
            try reader.optional("estimated_time_s", number(in: 0...86_400)) ?? config.estimatedTimeS
        if let rates = reader.take("failure_rates") {
            config.failureRates = try decodeRates(rates, path: "\(path).failure_rates")
        }
        if let forced = reader.take("force_failures") {
            config.forceFailures = try decodeForced(forced, provider: provider, path: "\(path).force_failures")
        }
        // Each list only where the provider has what it names; elsewhere it is an unknown key.
        let fields = ProviderConfig.listFields(of: provider)
        if fields.contains(.knownModels), let models = reader.take("known_models") {
            config.knownModels = try stringList(models, "\(path).known_models", nullable: true)
        }
        if fields.contains(.knownVoices), let voices = reader.take("known_voices") {
            config.knownVoices = try stringList(voices, "\(path).known_voices", nullable: true)
        }
        if fields.contains(.paidVoices), let voices = reader.take("paid_voices") {
            config.paidVoices = try stringList(voices, "\(path).paid_voices", nullable: false) ?? []
        }
        if fields.contains(.apiKeys), let keys = reader.take("api_keys") {
            config.apiKeys = try stringList(keys, "\(path).api_keys", nullable: true)
        }
        if fields.contains(.reasoningModels), let models = reader.take("reasoning_models") {
            config.reasoningModels = try stringList(models, "\(path).reasoning_models", nullable: false) ?? []
        }
        try reader.finish()
        return config
    }

    /// The list fields of the configuration, each used by some providers only.
    enum ListField: CaseIterable {
        case knownModels, knownVoices, paidVoices, apiKeys, reasoningModels
    }

    /// The list fields `provider` reads: `known_models` (OpenAI, Hugging Face), `known_voices` (OpenAI,
    /// ElevenLabs), `paid_voices` (ElevenLabs), `api_keys` (all), `reasoning_models` (OpenAI).
    static func listFields(of provider: Provider) -> Set<ListField> {
        switch provider {
        case .openai: [.knownModels, .knownVoices, .apiKeys, .reasoningModels]
        case .huggingface: [.knownModels, .apiKeys]
        case .elevenlabs: [.knownVoices, .paidVoices, .apiKeys]
        }
    }

    /// A list of 1 to 10 000 non-empty strings (`[]` too), or `nil` for JSON null when `nullable`.
    private static func stringList(_ value: JSONValue, _ path: String, nullable: Bool) throws(ConfigError) -> [String]?
    {
        if value == .null, nullable { return nil }
        let expected = nullable ? "a list of non-empty strings or null" : "a list of non-empty strings"
        guard case .array(let items) = value, items.count <= 10_000 else {
            throw ConfigError(message: "\(path): expected \(expected)")
        }
        var strings: [String] = []
        for (index, item) in items.enumerated() {
            guard case .string(let string) = item, !string.isEmpty else {
                throw ConfigError(message: "\(path)[\(index)]: expected a non-empty string")
            }
            strings.append(string)
        }
        return strings
    }

    private static func decodeRates(_ value: JSONValue, path: String) throws(ConfigError) -> [FailureKind: Double] {
        guard case .object(let fields) = value else { throw ConfigError(message: "\(path): expected an object") }
        var rates: [FailureKind: Double] = [:]
        for (key, rate) in fields {
            guard let kind = FailureKind(rawValue: key) else {
                throw ConfigError(message: "\(path).\(key): unknown failure kind")
            }
            rates[kind] = try number(rate, "\(path).\(key)", in: 0...1)
        }
        guard rates.values.reduce(0, +) <= 1 + 1e-9 else {
            throw ConfigError(message: "\(path): the probabilities add up to more than 1")
        }
        return rates
    }

    private static func decodeForced(
        _ value: JSONValue,
        provider: Provider,
        path: String
    ) throws(ConfigError) -> [ForcedFailure] {
        guard case .array(let items) = value else { throw ConfigError(message: "\(path): expected an array") }
        var forced: [ForcedFailure] = []
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            var reader = try ObjectReader(item, path: itemPath)
            let reply: ForcedFailure.Reply
            switch (reader.take("kind"), reader.take("fixture")) {
            case (let kind?, nil):
                guard case .string(let kindName) = kind, let kind = FailureKind(rawValue: kindName) else {
                    throw ConfigError(message: "\(itemPath).kind: expected a failure kind")
                }
                reply = .kind(kind)
            case (nil, let fixture?):
                guard case .string(let name) = fixture else {
                    throw ConfigError(
                        message: "\(itemPath).fixture: expected a fixture name like openai/insufficient_quota"
                    )
                }
                switch RecordedFixtures.forcedFailure(name, provider: provider) {
                case .success(let failure): reply = .fixture(failure)
                case .failure(let error): throw ConfigError(message: "\(itemPath).fixture: \(error.message)")
                }
            case (nil, nil):
                throw ConfigError(message: "\(itemPath).kind: expected a failure kind")
            case (_?, _?):
                throw ConfigError(message: "\(itemPath): give a kind or a fixture, not both")
            }
            let count = try reader.optional("count", nonNegativeInt) ?? 1
            let endpoint = try reader.optional("endpoint") { value, path throws(ConfigError) in
                guard case .string(let name) = value, let endpoint = Endpoint(rawValue: name) else {
                    throw ConfigError(message: "\(path): expected an endpoint name")
                }
                return endpoint
            }
            let retryAfterMs = try reader.optional("retry_after_ms", nonNegativeInt)
            try reader.finish()
            switch reply {
            case .kind(let kind):
                forced.append(ForcedFailure(kind: kind, count: count, endpoint: endpoint, retryAfterMs: retryAfterMs))
            case .fixture(let fixture):
                guard retryAfterMs == nil else {
                    throw ConfigError(message: "\(itemPath).retry_after_ms: a fixture sends its own headers")
                }
                forced.append(ForcedFailure(fixture: fixture, count: count, endpoint: endpoint))
            }
        }
        return forced
    }
}

/// Takes the fields of one JSON object one by one, then reports any left over as unknown.
private struct ObjectReader {
    private var fields: [String: JSONValue]
    private let path: String

    init(_ value: JSONValue, path: String) throws(ConfigError) {
        guard let members = value.members else {
            throw ConfigError(message: "\(path.isEmpty ? "configuration" : path): expected an object")
        }
        self.fields = Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
        self.path = path
    }

    mutating func take(_ key: String) -> JSONValue? {
        fields.removeValue(forKey: key)
    }

    /// The converted value of `key`, or `nil` when it is absent.
    mutating func optional<T>(
        _ key: String,
        _ convert: (JSONValue, String) throws(ConfigError) -> T
    ) throws(ConfigError) -> T? {
        guard let value = take(key) else { return nil }
        return try convert(value, path.isEmpty ? key : "\(path).\(key)")
    }

    func finish() throws(ConfigError) {
        if let key = fields.keys.sorted().first {
            throw ConfigError(message: "\(path.isEmpty ? key : "\(path).\(key)"): unknown key")
        }
    }
}

private func positiveInt(_ value: JSONValue, _ path: String) throws(ConfigError) -> Int {
    guard let number = value.integer, number > 0, number <= Int32.max else {
        throw ConfigError(message: "\(path): expected a positive integer")
    }
    return Int(number)
}

private func nonNegativeInt(_ value: JSONValue, _ path: String) throws(ConfigError) -> Int {
    guard let number = value.integer, number >= 0, number <= Int32.max else {
        throw ConfigError(message: "\(path): expected a non-negative integer")
    }
    return Int(number)
}

/// `value` when it is at most `maximum`.
private func atMost(_ maximum: Int, _ value: Int, _ path: String) throws(ConfigError) -> Int {
    guard value <= maximum else { throw ConfigError(message: "\(path): expected at most \(maximum)") }
    return value
}

private func number(in range: ClosedRange<Double>) -> (JSONValue, String) throws(ConfigError) -> Double {
    { value, path throws(ConfigError) in try number(value, path, in: range) }
}

private func number(_ value: JSONValue, _ path: String, in range: ClosedRange<Double>) throws(ConfigError) -> Double {
    guard let number = value.double else { throw ConfigError(message: "\(path): expected a number") }
    guard range.contains(number) else {
        throw ConfigError(message: "\(path): expected a number in \(range.lowerBound)...\(range.upperBound)")
    }
    return number
}

// MARK: - Encoding, in the same schema

extension MockConfig: Encodable {
    private enum CodingKeys: String, CodingKey {
        case seed
        case maxBodyBytes = "max_body_bytes"
        case imageMaxSide = "image_max_side"
        case scriptLines = "script_lines"
        case scriptBroll = "script_broll"
        case scriptNarration = "script_narration"
        case openai, huggingface, elevenlabs
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(seed, forKey: .seed)
        try container.encode(maxBodyBytes, forKey: .maxBodyBytes)
        try container.encode(imageMaxSide, forKey: .imageMaxSide)
        try container.encode(scriptLines, forKey: .scriptLines)
        try container.encode(scriptBroll, forKey: .scriptBroll)
        try container.encode(scriptNarration, forKey: .scriptNarration)
        try container.encode(ProviderConfig.Encoded(config: openai, provider: .openai), forKey: .openai)
        try container.encode(ProviderConfig.Encoded(config: huggingface, provider: .huggingface), forKey: .huggingface)
        try container.encode(ProviderConfig.Encoded(config: elevenlabs, provider: .elevenlabs), forKey: .elevenlabs)
    }
}

extension ProviderConfig {
    /// One provider's configuration in the JSON schema, with only the list fields that provider reads.
    fileprivate struct Encoded: Encodable {
        var config: ProviderConfig
        var provider: Provider

        func encode(to encoder: any Encoder) throws {
            try config.encode(to: encoder, fields: ProviderConfig.listFields(of: provider))
        }
    }

    private enum CodingKeys: String, CodingKey {
        case requestLimit = "request_limit"
        case windowMs = "window_ms"
        case maxConcurrent = "max_concurrent"
        case tokenLimit = "token_limit"
        case latencyMs = "latency_ms"
        case jitterPercent = "jitter_percent"
        case retryAfterMs = "retry_after_ms"
        case timeoutDelayMs = "timeout_delay_ms"
        case failureRates = "failure_rates"
        case forceFailures = "force_failures"
        case coldStartRequests = "cold_start_requests"
        case estimatedTimeS = "estimated_time_s"
        case knownModels = "known_models"
        case knownVoices = "known_voices"
        case paidVoices = "paid_voices"
        case apiKeys = "api_keys"
        case reasoningModels = "reasoning_models"
    }

    fileprivate func encode(to encoder: any Encoder, fields: Set<ListField>) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(requestLimit, forKey: .requestLimit)
        try container.encode(windowMs, forKey: .windowMs)
        try container.encode(maxConcurrent, forKey: .maxConcurrent)
        try container.encode(tokenLimit, forKey: .tokenLimit)
        try container.encode(latencyMs, forKey: .latencyMs)
        try container.encode(jitterPercent, forKey: .jitterPercent)
        try container.encode(retryAfterMs, forKey: .retryAfterMs)
        try container.encode(timeoutDelayMs, forKey: .timeoutDelayMs)
        try container.encode(failureRates, forKey: .failureRates)
        try container.encode(forceFailures, forKey: .forceFailures)
        try container.encode(coldStartRequests, forKey: .coldStartRequests)
        try container.encode(estimatedTimeS, forKey: .estimatedTimeS)
        if fields.contains(.knownModels) { try container.encode(knownModels, forKey: .knownModels) }
        if fields.contains(.knownVoices) { try container.encode(knownVoices, forKey: .knownVoices) }
        if fields.contains(.paidVoices) { try container.encode(paidVoices, forKey: .paidVoices) }
        if fields.contains(.apiKeys) { try container.encode(apiKeys, forKey: .apiKeys) }
        if fields.contains(.reasoningModels) { try container.encode(reasoningModels, forKey: .reasoningModels) }
    }
}

extension ForcedFailure: Encodable {
    private enum CodingKeys: String, CodingKey {
        case kind, fixture, count, endpoint
        case retryAfterMs = "retry_after_ms"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch reply {
        case .kind(let kind): try container.encode(kind, forKey: .kind)
        case .fixture(let fixture): try container.encode(fixture.name, forKey: .fixture)
        }
        try container.encode(count, forKey: .count)
        try container.encodeIfPresent(endpoint, forKey: .endpoint)
        try container.encodeIfPresent(retryAfterMs, forKey: .retryAfterMs)
    }
}

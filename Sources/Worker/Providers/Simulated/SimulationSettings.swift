import Shared

/// How the simulated providers behave: latency and failure rate per provider kind, forced failures,
/// and the seed that makes a run repeatable.
///
/// Whether a call fails and its latency jitter are derived from a stable hash of
/// (seed, provider kind, episode id, attempt, item), so the same settings give the same run, and a
/// retry (next attempt) of a failed call gets a fresh draw.
struct SimulationSettings: Sendable, Equatable {
    /// Mean latency per provider kind; each call's latency is this ±10%. Kinds not listed take
    /// ``defaultLatencies``.
    var latencies: [ProviderKind: Duration]
    /// Chance (0…1) that a call of the kind fails. The default is 0 for every kind.
    var failureRates: [ProviderKind: Double]
    /// Episode ids whose calls of the kind always fail (e.g. every `llm` call of `episode_3`).
    var forcedFailures: [ProviderKind: Set<String>]
    /// The default is 1.
    var seed: UInt64

    /// llm=400ms, tts=300ms, image=800ms, render=200ms.
    static let defaultLatencies: [ProviderKind: Duration] = [
        .llm: .milliseconds(400), .tts: .milliseconds(300), .image: .milliseconds(800), .render: .milliseconds(200),
    ]
    static let defaultSeed: UInt64 = 1

    init(
        latencies: [ProviderKind: Duration] = defaultLatencies,
        failureRates: [ProviderKind: Double] = [:],
        forcedFailures: [ProviderKind: Set<String>] = [:],
        seed: UInt64 = defaultSeed
    ) {
        self.latencies = latencies
        self.failureRates = failureRates
        self.forcedFailures = forcedFailures
        self.seed = seed
    }

    /// Default latencies, no failures, seed 1.
    static let `default` = SimulationSettings()

    /// Every latency zero, no failures: for tests.
    static let instant = SimulationSettings(
        latencies: Dictionary(uniqueKeysWithValues: ProviderKind.allCases.map { ($0, .zero) })
    )

    func latency(_ kind: ProviderKind) -> Duration {
        latencies[kind] ?? Self.defaultLatencies[kind] ?? .zero
    }

    func failureRate(_ kind: ProviderKind) -> Double {
        failureRates[kind] ?? 0
    }

    func isForcedToFail(_ kind: ProviderKind, episodeId: String) -> Bool {
        forcedFailures[kind]?.contains(episodeId) ?? false
    }

    /// One line for the start-up log, e.g.
    /// `latency llm=400ms tts=300ms image=800ms render=200ms; failure rate image=0.1; seed 1`.
    var summary: String {
        var parts = [
            "latency " + ProviderKind.allCases.map { "\($0)=\(latency($0).wholeMilliseconds)ms" }.joined(separator: " ")
        ]
        let rates = ProviderKind.allCases.filter { failureRate($0) > 0 }.map { "\($0)=\(failureRate($0))" }
        if !rates.isEmpty { parts.append("failure rate " + rates.joined(separator: " ")) }
        let forced = ProviderKind.allCases.compactMap { kind -> String? in
            guard let ids = forcedFailures[kind], !ids.isEmpty else { return nil }
            return "\(kind):\(ids.sorted().joined(separator: ","))"
        }
        if !forced.isEmpty { parts.append("forced failures " + forced.joined(separator: ";")) }
        parts.append("seed \(seed)")
        return parts.joined(separator: "; ")
    }
}

// MARK: - Parsing

extension SimulationSettings {
    /// A setting that could not be parsed; `description` names the setting and the bad piece.
    struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        /// `latency`, `failure rate`, `fail` or `seed`.
        var setting: String
        var message: String

        var description: String { "\(setting): \(message)" }
    }

    /// Parses the simulation's command-line settings. `nil` or blank leaves a setting at its default.
    ///
    /// - Parameters:
    ///   - latency: `kind=milliseconds,…`, e.g. `llm=400,image=800,tts=300,render=200`.
    ///   - failureRate: `kind=rate,…` with rates in 0…1, e.g. `image=0.1,tts=0.05`.
    ///   - fail: `kind:episode,episode;kind:episode`, e.g. `llm:episode_3,episode_7;image:episode_1`.
    ///   - seed: an unsigned 64-bit integer.
    static func parse(
        latency: String?,
        failureRate: String?,
        fail: String?,
        seed: String?
    ) throws(ParseError) -> SimulationSettings {
        var settings = SimulationSettings()
        for (kind, value) in try pairs(latency, setting: "latency") {
            guard let ms = Int(value), ms >= 0 else {
                throw ParseError(
                    setting: "latency",
                    message: "'\(kind)=\(value)': '\(value)' is not a whole number of milliseconds"
                )
            }
            settings.latencies[kind] = .milliseconds(ms)
        }
        for (kind, value) in try pairs(failureRate, setting: "failure rate") {
            guard let rate = Double(value), rate.isFinite else {
                throw ParseError(setting: "failure rate", message: "'\(kind)=\(value)': '\(value)' is not a number")
            }
            guard (0...1).contains(rate) else {
                throw ParseError(setting: "failure rate", message: "'\(kind)=\(value)': \(value) is outside 0…1")
            }
            settings.failureRates[kind] = rate
        }
        settings.forcedFailures = try forced(fail)
        if let seed = seed?.trimmed, !seed.isEmpty {
            guard let value = UInt64(seed) else {
                throw ParseError(setting: "seed", message: "'\(seed)' is not an unsigned integer")
            }
            settings.seed = value
        }
        return settings
    }

    /// `kind=value,kind=value` → pairs, each kind at most once.
    private static func pairs(_ text: String?, setting: String) throws(ParseError) -> [(ProviderKind, String)] {
        guard let text = text?.trimmed, !text.isEmpty else { return [] }
        var seen: Set<ProviderKind> = []
        var result: [(ProviderKind, String)] = []
        for piece in text.split(separator: ",", omittingEmptySubsequences: false).map({ String($0).trimmed }) {
            let parts = piece.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map {
                String($0).trimmed
            }
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw ParseError(setting: setting, message: "'\(piece)' is not kind=value")
            }
            let kind = try providerKind(parts[0], in: piece, setting: setting)
            guard seen.insert(kind).inserted else {
                throw ParseError(setting: setting, message: "'\(kind)' is given more than once")
            }
            result.append((kind, parts[1]))
        }
        return result
    }

    /// `kind:id,id;kind:id` → forced failures.
    private static func forced(_ text: String?) throws(ParseError) -> [ProviderKind: Set<String>] {
        guard let text = text?.trimmed, !text.isEmpty else { return [:] }
        var result: [ProviderKind: Set<String>] = [:]
        for group in text.split(separator: ";", omittingEmptySubsequences: false).map({ String($0).trimmed }) {
            let parts = group.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map {
                String($0).trimmed
            }
            guard parts.count == 2, !parts[0].isEmpty else {
                throw ParseError(setting: "fail", message: "'\(group)' is not kind:episode,episode")
            }
            let kind = try providerKind(parts[0], in: group, setting: "fail")
            let ids = parts[1].split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmed }
            guard !ids.contains(where: \.isEmpty) else {
                throw ParseError(setting: "fail", message: "'\(group)' has an empty episode id")
            }
            if let bad = ids.first(where: { $0.contains(where: \.isWhitespace) }) {
                throw ParseError(setting: "fail", message: "'\(bad)' in '\(group)' is not an episode id")
            }
            result[kind, default: []].formUnion(ids)
        }
        return result
    }

    private static func providerKind(
        _ name: String,
        in piece: String,
        setting: String
    ) throws(ParseError) -> ProviderKind {
        guard let kind = ProviderKind(rawValue: name.lowercased()) else {
            let known = ProviderKind.allCases.map(\.rawValue).joined(separator: ", ")
            throw ParseError(
                setting: setting,
                message: "unknown provider kind '\(name)' in '\(piece)' (known: \(known))"
            )
        }
        return kind
    }
}

extension String {
    fileprivate var trimmed: String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}

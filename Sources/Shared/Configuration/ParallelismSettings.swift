import Foundation

/// How much one worker runs at once. Carried over from the single-machine predecessor
/// (`MAX_PARALLEL_EPISODES`, `MAX_PARALLEL_API_CALLS`); 1 means strictly sequential.
public struct ParallelismSettings: Sendable, Equatable {
    /// Episodes one worker runs at once; also the worker's dispatch credit. The default is 3.
    public var maxParallelEpisodes: Int
    /// External API calls one episode makes at once (script, voices, scenes, B-roll). The default is 5.
    public var maxParallelAPICalls: Int

    public static let `default` = ParallelismSettings(maxParallelEpisodes: 3, maxParallelAPICalls: 5)

    public init(maxParallelEpisodes: Int, maxParallelAPICalls: Int) {
        self.maxParallelEpisodes = maxParallelEpisodes
        self.maxParallelAPICalls = maxParallelAPICalls
    }

    /// The upper bound accepted for either setting; far above any sane machine, low enough to catch typos.
    public static let maximum = 1024

    /// Resolves the settings: a CLI flag wins over the environment, which wins over `.env`, which wins
    /// over the default. Every value must be a whole number in 1…1024.
    ///
    /// - Parameters:
    ///   - episodesFlag: the raw `--max-parallel-episodes` value, if given.
    ///   - apiCallsFlag: the raw `--max-parallel-api-calls` value, if given.
    ///   - environment: the merged environment (see ``EnvironmentSettings``).
    public static func resolve(
        episodesFlag: String?,
        apiCallsFlag: String?,
        environment: EnvironmentSettings
    ) throws(ConfigurationError) -> ParallelismSettings {
        ParallelismSettings(
            maxParallelEpisodes: try positiveInt(
                flag: episodesFlag,
                flagName: "--max-parallel-episodes",
                environment: environment,
                key: "MAX_PARALLEL_EPISODES",
                default: Self.default.maxParallelEpisodes
            ),
            maxParallelAPICalls: try positiveInt(
                flag: apiCallsFlag,
                flagName: "--max-parallel-api-calls",
                environment: environment,
                key: "MAX_PARALLEL_API_CALLS",
                default: Self.default.maxParallelAPICalls
            )
        )
    }

    /// One positive whole-number setting from a flag, the environment or a default.
    public static func positiveInt(
        flag: String?,
        flagName: String,
        environment: EnvironmentSettings,
        key: String,
        default: Int,
        range: ClosedRange<Int> = 1...maximum
    ) throws(ConfigurationError) -> Int {
        if let flag {
            return try parse(flag, range: range, source: flagName)
        }
        if let (value, source) = environment.value(key) {
            return try parse(value, range: range, source: "\(key) (from \(source))")
        }
        return `default`
    }

    static func parse(_ raw: String, range: ClosedRange<Int>, source: String) throws(ConfigurationError) -> Int {
        let trimmed = raw.trimmingCharacters(in: .whitespaces)
        guard let value = Int(trimmed) else {
            throw ConfigurationError(
                "\(source) must be a whole number from \(range.lowerBound) to \(range.upperBound), got \"\(raw)\""
            )
        }
        guard range.contains(value) else {
            throw ConfigurationError("\(source) must be from \(range.lowerBound) to \(range.upperBound), got \(value)")
        }
        return value
    }
}

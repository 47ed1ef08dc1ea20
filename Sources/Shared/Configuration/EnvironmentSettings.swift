import Configuration
import Foundation
import SystemPackage

/// The process environment merged with an optional `.env` file; the real environment wins.
///
/// Built once at start-up with swift-configuration's `EnvironmentVariablesProvider` (one for the
/// process environment, one for the file), then read by the typed settings structs, which validate
/// every value and name its source in errors.
public struct EnvironmentSettings: Sendable {
    private let process: EnvironmentVariablesProvider
    private let file: EnvironmentVariablesProvider?
    /// Path of the `.env` file that was read, if any.
    public let envFilePath: String?

    /// Reads the process environment and, when it exists, the `.env` file at `envFile`.
    /// - Throws: ``ConfigurationError`` when the file exists but cannot be parsed.
    public static func load(
        envFile: String = ".env",
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws(ConfigurationError) -> EnvironmentSettings {
        let exists = FileManager.default.fileExists(atPath: envFile)
        var fileProvider: EnvironmentVariablesProvider?
        if exists {
            do {
                fileProvider = try await EnvironmentVariablesProvider(environmentFilePath: FilePath(envFile))
            } catch {
                throw ConfigurationError("cannot read \(envFile): \(error)")
            }
        }
        return EnvironmentSettings(
            process: EnvironmentVariablesProvider(environmentVariables: environment),
            file: fileProvider,
            envFilePath: exists ? envFile : nil
        )
    }

    /// An environment from literal values, for tests.
    public init(_ values: [String: String]) {
        self.init(
            process: EnvironmentVariablesProvider(environmentVariables: values),
            file: nil,
            envFilePath: nil
        )
    }

    private init(
        process: EnvironmentVariablesProvider,
        file: EnvironmentVariablesProvider?,
        envFilePath: String?
    ) {
        self.process = process
        self.file = file
        self.envFilePath = envFilePath
    }

    /// A swift-configuration reader over both sources (environment first), for settings read by key path.
    public var reader: ConfigReader {
        ConfigReader(providers: [process] + (file.map { [$0] } ?? []))
    }

    /// The raw value of an upper-case variable and where it came from ("environment" or the file path).
    public func value(_ key: String) -> (value: String, source: String)? {
        // MAX_PARALLEL_EPISODES is the environment spelling of the config key max.parallel.episodes.
        let configKey = ConfigKey(key.lowercased().split(separator: "_").map(String.init))
        if let v = ConfigReader(provider: process).string(forKey: configKey), !v.isEmpty {
            return (v, "environment")
        }
        if let file, let v = ConfigReader(provider: file).string(forKey: configKey), !v.isEmpty {
            return (v, envFilePath ?? ".env")
        }
        return nil
    }
}

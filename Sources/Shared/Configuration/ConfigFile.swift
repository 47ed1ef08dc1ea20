import Configuration
import Foundation
import SystemPackage

/// A JSON or YAML settings file (`--config FILE` or `REELFARM_CONFIG`), read once at start-up with
/// swift-configuration's `FileProvider`. Keys are dotted paths of the file's nesting, e.g.
/// `openai.base_url` for
///
/// ```yaml
/// openai:
///   base_url: http://127.0.0.1:8089/v1
/// ```
public struct ConfigFile: Sendable {
    /// The file's path, for error messages.
    public let path: String
    private let reader: ConfigReader

    /// Reads `path`; `.yaml`/`.yml` are YAML, anything else JSON.
    /// - Throws: ``ConfigurationError`` naming the file when it is missing or malformed.
    public static func load(_ path: String) async throws(ConfigurationError) -> ConfigFile {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ConfigurationError("config file \(path) does not exist")
        }
        let lower = path.lowercased()
        do {
            if lower.hasSuffix(".yaml") || lower.hasSuffix(".yml") {
                let provider = try await FileProvider<YAMLSnapshot>(filePath: FilePath(path))
                return ConfigFile(path: path, reader: ConfigReader(provider: provider))
            }
            let provider = try await FileProvider<JSONSnapshot>(filePath: FilePath(path))
            return ConfigFile(path: path, reader: ConfigReader(provider: provider))
        } catch {
            throw ConfigurationError("config file \(path) cannot be parsed: \(error)")
        }
    }

    private init(path: String, reader: ConfigReader) {
        self.path = path
        self.reader = reader
    }

    /// The text at a dotted key (numbers and booleans are given as their text).
    public func string(_ key: String) -> String? {
        let k = ConfigKey(key)
        if let s = reader.string(forKey: k) { return s }
        if let i = reader.int(forKey: k) { return String(i) }
        if let d = reader.double(forKey: k) { return String(d) }
        if let b = reader.bool(forKey: k) { return String(b) }
        return nil
    }

    /// A list of texts at a dotted key.
    public func strings(_ key: String) -> [String]? {
        reader.stringArray(forKey: ConfigKey(key))
    }
}

/// Where one setting comes from: the process environment, the `.env` file, then the config file.
public struct SettingsSources: Sendable {
    public let environment: EnvironmentSettings
    public let file: ConfigFile?

    public init(environment: EnvironmentSettings, file: ConfigFile?) {
        self.environment = environment
        self.file = file
    }

    /// The value of an environment variable (`env`), else of a config file key (`key`), with its source
    /// for error messages.
    public func value(env: String?, key: String?) -> (value: String, source: String)? {
        if let env, let found = environment.value(env) { return (found.value, "\(env) (from \(found.source))") }
        if let key, let file, let v = file.string(key), !v.isEmpty { return (v, "\(key) (from \(file.path))") }
        return nil
    }

    /// A whole number in `range`, or `default` when unset.
    public func int(env: String?, key: String?, default: Int, range: ClosedRange<Int>) throws(ConfigurationError) -> Int
    {
        guard let (raw, source) = value(env: env, key: key) else { return `default` }
        return try ParallelismSettings.parse(raw, range: range, source: source)
    }

    /// A number of seconds (fractions allowed) in `range`, or `default` when unset.
    public func seconds(
        env: String?,
        key: String?,
        default: Duration,
        range: ClosedRange<Double>
    ) throws(ConfigurationError) -> Duration {
        guard let (raw, source) = value(env: env, key: key) else { return `default` }
        guard let v = Double(raw.trimmingCharacters(in: .whitespaces)), range.contains(v) else {
            throw ConfigurationError(
                "\(source) must be a number of seconds from \(range.lowerBound) to \(range.upperBound), got \"\(raw)\""
            )
        }
        return .milliseconds(Int64((v * 1000).rounded()))
    }

    /// One of `allowed`, or `default` when unset.
    public func choice(
        env: String?,
        key: String?,
        default: String,
        allowed: [String]
    ) throws(ConfigurationError) -> String {
        guard let (raw, source) = value(env: env, key: key) else { return `default` }
        let v = raw.trimmingCharacters(in: .whitespaces).lowercased()
        guard allowed.contains(v) else {
            throw ConfigurationError("\(source) must be one of \(allowed.joined(separator: ", ")); got \"\(raw)\"")
        }
        return v
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`), or `default` when unset.
    public func flag(env: String?, key: String?, default: Bool) throws(ConfigurationError) -> Bool {
        guard let (raw, source) = value(env: env, key: key) else { return `default` }
        switch raw.trimmingCharacters(in: .whitespaces).lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw ConfigurationError("\(source) must be true or false, got \"\(raw)\"")
        }
    }

    /// An absolute http(s) URL, or `default` when unset.
    public func url(env: String?, key: String?, default: URL) throws(ConfigurationError) -> URL {
        guard let (raw, source) = value(env: env, key: key) else { return `default` }
        guard let url = URL(string: raw.trimmingCharacters(in: .whitespaces)), let scheme = url.scheme?.lowercased(),
            scheme == "http" || scheme == "https", url.host != nil
        else {
            throw ConfigurationError("\(source) must be an http or https URL, got \"\(raw)\"")
        }
        return url
    }
}

import Foundation
import Logging
import Protocol
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How log lines are written: for people (`text`) or for log shippers (`json`, one object per line).
public enum LogFormat: String, Sendable, CaseIterable {
    case text, json
}

/// Log lines for humans and for `grep`: `2026-11-26T18:40:01.123Z INFO  coordinator [episode_3] message key=value`,
/// or, with ``LogFormat/json``, one JSON object per line for Loki, Elasticsearch, Vector or journald:
/// `{"episode":"episode_3","level":"info","logger":"coordinator","message":"…","ts":"…",…}`.
///
/// The episode id (metadata key `episode`) is printed in brackets right before the message, as in the
/// predecessor's logs; all other metadata follows as sorted `key=value` pairs. In JSON, metadata keys are
/// top-level keys (a key that would shadow `ts`, `level`, `logger` or `message` is written `meta.KEY`).
/// In text lines, control and invisible characters of the message and the metadata are escaped
/// (``DisplayText/escaped(_:)``): a topic with a newline or an ANSI escape cannot forge a log line.
/// Lines go to standard error, written with one `write(2)` each so that lines of several processes sharing
/// a terminal do not interleave.
public struct ReelfarmLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String
    private let format: LogFormat

    public init(label: String, level: Logger.Level, format: LogFormat = .text) {
        self.label = label
        self.logLevel = level
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let line =
            format == .json
            ? Self.json(
                timestamp: Self.timestamp(),
                level: event.level,
                label: label,
                message: event.message.description,
                metadata: merged
            )
            : Self.format(
                timestamp: Self.timestamp(),
                level: event.level,
                label: label,
                message: event.message.description,
                metadata: merged
            )
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        // One write for the line (and, on a terminal with a progress bar, the bar redrawn below it).
        StatusLine.write(bytes)
    }

    /// Formats one line; exposed for tests.
    public static func format(
        timestamp: String,
        level: Logger.Level,
        label: String,
        message: String,
        metadata: Logger.Metadata
    ) -> String {
        // Messages and metadata carry untrusted text (topics, ids, provider replies): control characters
        // are escaped so that nothing can end the line early, forge another one or drive the terminal.
        let e = DisplayText.escaped
        var line =
            "\(timestamp) \(level.rawValue.uppercased().padding(toLength: 9, withPad: " ", startingAt: 0))\(e(label))"
        if let episode = metadata["episode"] { line += " [\(e("\(episode)"))]" }
        line += " " + e(message)
        for key in metadata.keys.sorted() where key != "episode" {
            line += " \(e(key))=\(e("\(metadata[key]!)"))"
        }
        return line
    }

    /// Formats one JSON line (sorted keys, no newline inside); exposed for tests.
    public static func json(
        timestamp: String,
        level: Logger.Level,
        label: String,
        message: String,
        metadata: Logger.Metadata
    ) -> String {
        var fields: [(String, String)] = [
            ("ts", quoted(timestamp)), ("level", quoted(level.rawValue)), ("logger", quoted(label)),
            ("message", quoted(message)),
        ]
        let reserved: Set<String> = ["ts", "level", "logger", "message"]
        for (key, value) in metadata {
            fields.append((reserved.contains(key) ? "meta.\(key)" : key, json(value)))
        }
        fields.sort { $0.0 < $1.0 }
        return "{" + fields.map { "\(quoted($0.0)):\($0.1)" }.joined(separator: ",") + "}"
    }

    private static func json(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let s): quoted(s)
        case .stringConvertible(let c): quoted(c.description)
        case .array(let items): "[" + items.map(json).joined(separator: ",") + "]"
        case .dictionary(let dict):
            "{" + dict.keys.sorted().map { "\(quoted($0)):\(json(dict[$0]!))" }.joined(separator: ",") + "}"
        }
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped; the rest as UTF-8.
    static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    private static func timestamp() -> String {
        Timestamp.now()
    }
}

/// Bootstraps swift-log once per process with ``ReelfarmLogHandler``.
public enum LoggingSetup {
    private static let done = Mutex(false)

    /// Parses a level name (`trace`, `debug`, `info`, `notice`, `warning`, `error`, `critical`).
    public static func level(_ name: String) throws(ConfigurationError) -> Logger.Level {
        guard let level = Logger.Level(rawValue: name.lowercased()) else {
            throw ConfigurationError(
                "log level must be one of trace, debug, info, notice, warning, error, critical; got \"\(name)\""
            )
        }
        return level
    }

    /// Parses a format name (`text`, `json`).
    public static func format(_ name: String) throws(ConfigurationError) -> LogFormat {
        guard let format = LogFormat(rawValue: name.lowercased()) else {
            throw ConfigurationError("log format must be text or json; got \"\(name)\"")
        }
        return format
    }

    /// Installs the handler; later calls do nothing (swift-log allows one bootstrap per process).
    public static func bootstrap(level: Logger.Level, format: LogFormat = .text) {
        let first = done.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        guard first else { return }
        LoggingSystem.bootstrap { label in ReelfarmLogHandler(label: label, level: level, format: format) }
    }
}

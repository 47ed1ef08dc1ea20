import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Log lines for humans and for `grep`: `2026-11-26T18:40:01.123Z INFO  coordinator [episode_3] message key=value`.
///
/// The episode id (metadata key `episode`) is printed in brackets right before the message, as in the
/// predecessor's logs; all other metadata follows as sorted `key=value` pairs. Lines go to standard error,
/// written with one `write(2)` each so that lines of several processes sharing a terminal do not interleave.
public struct ReelfarmLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String

    public init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let line = Self.format(
            timestamp: Self.timestamp(),
            level: event.level,
            label: label,
            message: event.message.description,
            metadata: merged
        )
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
    }

    /// Formats one line; exposed for tests.
    public static func format(
        timestamp: String,
        level: Logger.Level,
        label: String,
        message: String,
        metadata: Logger.Metadata
    ) -> String {
        var line =
            "\(timestamp) \(level.rawValue.uppercased().padding(toLength: 9, withPad: " ", startingAt: 0))\(label)"
        if let episode = metadata["episode"] { line += " [\(episode)]" }
        line += " " + message
        for key in metadata.keys.sorted() where key != "episode" {
            line += " \(key)=\(metadata[key]!)"
        }
        return line
    }

    private static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var time = ts.tv_sec
        var tm = tm()
        gmtime_r(&time, &tm)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec,
            Int(ts.tv_nsec / 1_000_000)
        )
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

    /// Installs the handler; later calls do nothing (swift-log allows one bootstrap per process).
    public static func bootstrap(level: Logger.Level) {
        let first = done.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        guard first else { return }
        LoggingSystem.bootstrap { label in ReelfarmLogHandler(label: label, level: level) }
    }
}

import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A live status line at the bottom of a terminal (the coordinator's progress bar), with log lines
/// scrolling above it.
///
/// Everything written to standard error goes through one lock while the line is active: each write
/// erases the status line (`\r` + erase-line), writes the log lines, and draws the status line again, so
/// log lines and the bar never mix. Log handlers call ``write(_:)``; the coordinator relays its local
/// workers' output through it too.
public enum StatusLine {
    private struct State {
        var active = false
        var text = ""
    }

    private static let state = Mutex(State())
    /// Where bytes go; standard error unless a test replaces it.
    nonisolated(unsafe) static var sink: @Sendable ([UInt8]) -> Void = { writeAll(2, $0) }

    /// Whether standard error is a terminal (where a live line makes sense).
    public static var standardErrorIsTerminal: Bool { isatty(2) == 1 }

    public static var isActive: Bool { state.withLock { $0.active } }

    /// Starts drawing the line (call once, before the first ``update(_:)``).
    public static func activate() {
        state.withLock { $0.active = true }
    }

    /// Replaces the status line's text and redraws it.
    public static func update(_ text: String) {
        state.withLock { s in
            guard s.active else { return }
            s.text = text
            sink(Array(("\r\u{1B}[K" + text).utf8))
        }
    }

    /// Writes whole lines (ending with a newline) above the status line, or straight to standard error
    /// when no line is active.
    public static func write(_ lines: [UInt8]) {
        state.withLock { s in
            guard s.active else {
                sink(lines)
                return
            }
            var bytes = Array("\r\u{1B}[K".utf8)
            bytes += lines
            if lines.last != 0x0A { bytes.append(0x0A) }
            bytes += Array(s.text.utf8)
            sink(bytes)
        }
    }

    /// Erases the line and stops drawing it; later writes go straight through.
    public static func finish() {
        state.withLock { s in
            guard s.active else { return }
            s.active = false
            s.text = ""
            sink(Array("\r\u{1B}[K".utf8))
        }
    }

    /// `write(2)` until every byte is out (or the descriptor fails).
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                #if canImport(Glibc)
                let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                #else
                let n = Darwin.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                #endif
                if n <= 0 { break }
                offset += n
            }
        }
    }
}

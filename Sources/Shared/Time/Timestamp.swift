import Foundation

/// UTC timestamps as text, `2026-11-27T05:33:19.903Z` (RFC 3339 with milliseconds), without a
/// `DateFormatter`: building an `ISO8601DateFormatter` costs ~100 µs, and the journal stamps every flush.
public enum Timestamp {
    /// Now.
    public static func now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return format(seconds: ts.tv_sec, milliseconds: Int(ts.tv_nsec / 1_000_000))
    }

    public static func string(from date: Date) -> String {
        let ms = (date.timeIntervalSince1970 * 1000).rounded(.down)
        let seconds = Int((ms / 1000).rounded(.down))
        return format(seconds: seconds, milliseconds: Int(ms) - seconds * 1000)
    }

    private static func format(seconds: Int, milliseconds: Int) -> String {
        var time = time_t(seconds)
        var tm = tm()
        gmtime_r(&time, &tm)
        var out: [UInt8] = []
        out.reserveCapacity(24)
        func digits(_ value: Int32, _ width: Int) {
            var v = Int(value)
            var buffer = [UInt8](repeating: UInt8(ascii: "0"), count: width)
            for i in stride(from: width - 1, through: 0, by: -1) {
                buffer[i] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
            }
            out += buffer
        }
        digits(tm.tm_year + 1900, 4)
        out.append(UInt8(ascii: "-"))
        digits(tm.tm_mon + 1, 2)
        out.append(UInt8(ascii: "-"))
        digits(tm.tm_mday, 2)
        out.append(UInt8(ascii: "T"))
        digits(tm.tm_hour, 2)
        out.append(UInt8(ascii: ":"))
        digits(tm.tm_min, 2)
        out.append(UInt8(ascii: ":"))
        digits(tm.tm_sec, 2)
        out.append(UInt8(ascii: "."))
        digits(Int32(milliseconds), 3)
        out.append(UInt8(ascii: "Z"))
        return String(decoding: out, as: UTF8.self)
    }
}

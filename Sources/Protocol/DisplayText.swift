/// Untrusted text made safe to show: in an error message, an HTTP error reply or a log line.
///
/// Control characters (C0, DEL, C1), line and paragraph separators and invisible format characters
/// (such as the bidi overrides U+202A…U+202E and U+2066…U+2069) are written as escapes (`\n`, `\r`, `\t`,
/// `\u{1B}`), so input cannot start a new log line, move the cursor or reorder what a terminal shows.
/// ``bounded(_:maxBytes:)`` also cuts the text to a few hundred bytes with "…", reading no further than
/// it needs: a 10 MiB body costs as little as a short one.
public enum DisplayText {
    /// The default bound for echoed input, in UTF-8 bytes.
    public static let defaultMaxBytes = 300

    /// `text` with control and invisible characters escaped, in full.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars { append(scalar, to: &out) }
        return out
    }

    /// `text` escaped and cut to at most `maxBytes` UTF-8 bytes (plus "…" when cut).
    public static func bounded(_ text: String, maxBytes: Int = defaultMaxBytes) -> String {
        var out = ""
        var piece = ""
        for scalar in text.unicodeScalars {
            piece.removeAll(keepingCapacity: true)
            append(scalar, to: &piece)
            if out.utf8.count + piece.utf8.count > maxBytes { return out + "…" }
            out += piece
        }
        return out
    }

    /// `bounded` in double quotes, for naming a value inside a sentence.
    public static func quoted(_ text: String, maxBytes: Int = 80) -> String {
        "\"" + bounded(text, maxBytes: maxBytes) + "\""
    }

    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) { return true }
        if scalar.isASCII { return false }
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate: return true
        default: return false
        }
    }

    private static func append(_ scalar: Unicode.Scalar, to out: inout String) {
        guard needsEscape(scalar) else {
            out.unicodeScalars.append(scalar)
            return
        }
        switch scalar {
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default: out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
        }
    }
}

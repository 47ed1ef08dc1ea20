/// The rule for batch and episode ids, which become folder names on the coordinator's and the workers'
/// disks: `<output>/<batch>/<episode>/`, beside the batch's own files (`summary.json`, `trace.jsonl`,
/// `report.html`) and hidden folders (`.work`, `.incoming`).
///
/// A name is a wire identifier (1…128 UTF-8 bytes, no control character, no `/` or `\`) that also
/// - does not start with a dot: names starting with a dot are reserved for Reelfarm's own folders;
/// - does not contain `..`;
/// - has no invisible or direction-changing character (Unicode categories Cc, Cf, Zl, Zp, Cs, Cn; for
///   example U+202E, which would make a listing lie about the name);
/// - does not end in `.json`, `.jsonl` or `.html` (any case): those are the batch's own files.
///
/// The coordinator applies it once, where a batch enters (a batch file, `POST /api/batches`, generated
/// topics, `--batch-id` and `?id=`), so a bad name is refused up front instead of failing every attempt.
public enum BatchNames {
    /// Suffixes reserved for the files a batch folder holds beside its episodes.
    public static let reservedSuffixes = [".json", ".jsonl", ".html"]

    /// Throws a ``DecodeError`` (`invalid_field`, naming `field`) when `value` breaks the rule.
    public static func check(_ value: String, field: String) throws(DecodeError) {
        try Validation.identifier(value, field)
        func invalid(_ why: String) -> DecodeError {
            DecodeError(.invalidField, "\(field) \(DisplayText.quoted(value)) \(why)")
        }
        guard !value.hasPrefix(".") else {
            throw invalid("starts with a dot (reserved for Reelfarm's own folders such as .work and .incoming)")
        }
        guard !value.contains("..") else { throw invalid("contains \"..\"") }
        for scalar in value.unicodeScalars {
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate, .unassigned:
                let hex = String(scalar.value, radix: 16, uppercase: true)
                throw invalid(
                    "contains the invisible or control character U+\(String(repeating: "0", count: max(0, 4 - hex.count)) + hex)"
                )
            default: break
            }
        }
        let lower = value.lowercased()
        if let suffix = reservedSuffixes.first(where: { lower.hasSuffix($0) }) {
            throw invalid(
                "ends in \(suffix), reserved for the batch's own files (summary.json, trace.jsonl, report.html)"
            )
        }
    }
}

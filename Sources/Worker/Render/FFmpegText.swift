import Foundation
import Synchronization

/// ffmpeg with the options every call of the worker uses: no stdin, no banner, errors only, overwrite.
struct FFmpeg: Sendable {
    var tool: ExternalTool
    var timeout: Duration

    init(tool: ExternalTool, timeout: Duration = ExternalTool.defaultTimeout) {
        self.tool = tool
        self.timeout = timeout
    }

    init(tools: ToolLocator, timeout: Duration = ExternalTool.defaultTimeout) throws(ProviderError) {
        self.init(tool: try tools.locate("ffmpeg"), timeout: timeout)
    }

    /// Runs `ffmpeg -nostdin -hide_banner -loglevel error -y <arguments>` in `directory`.
    func run(_ arguments: [String], in directory: URL) async throws {
        try await tool.run(
            ["-nostdin", "-hide_banner", "-loglevel", "error", "-y"] + arguments,
            timeout: timeout,
            workingDirectory: directory
        )
    }
}

/// Finds the TrueType font drawtext uses (DejaVu Sans Bold), once per process.
final class FontResolver: Sendable {
    /// Where Debian's fonts-dejavu-core puts it.
    static let fallbackPath = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"

    private let tools: ToolLocator
    private let found = Mutex<String?>(nil)

    init(tools: ToolLocator = .environment) {
        self.tools = tools
    }

    /// `fc-match -f '%{file}' 'DejaVu Sans:bold'`, or ``fallbackPath``.
    ///
    /// - Throws: ``ProviderError`` `toolFailed` when neither gives a font file.
    func fontFile() async throws -> String {
        if let path = found.withLock({ $0 }) { return path }
        var candidates: [String] = []
        if let fcMatch = try? tools.locate("fc-match"),
            let output = try? await fcMatch.run(["-f", "%{file}", "DejaVu Sans:bold"], timeout: .seconds(10))
        {
            candidates.append(output.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        candidates.append(Self.fallbackPath)
        guard let path = candidates.first(where: { !$0.isEmpty && FileManager.default.fileExists(atPath: $0) }) else {
            throw ProviderError(
                .toolFailed,
                "no DejaVu Sans font found; install fonts-dejavu-core (apt-get install fonts-dejavu-core)"
            )
        }
        found.withLock { $0 = path }
        return path
    }
}

/// Text for ffmpeg's drawtext filter.
enum FilterText {
    /// Escapes `value` for use as an option value inside a filtergraph (both levels of ffmpeg's escaping:
    /// the option's `\ ' :` and the graph's `\ ' [ ] , ;`).
    static func escaped(_ value: String) -> String {
        var level1 = ""
        for character in value {
            if "\\':".contains(character) { level1.append("\\") }
            level1.append(character)
        }
        var level2 = ""
        for character in level1 {
            if "\\'[],;".contains(character) { level2.append("\\") }
            level2.append(character)
        }
        return level2
    }

    /// Word-wraps `text` to lines of at most `width` characters (longer words are cut), at most
    /// `maxLines` lines with "…" when cut short. Whitespace, including newlines, is collapsed.
    static func wrapped(_ text: String, width: Int, maxLines: Int) -> [String] {
        let width = max(4, width)
        var lines: [String] = []
        var current = ""
        for word in text.split(whereSeparator: \.isWhitespace) {
            var word = Substring(word)
            while word.count > width {
                if !current.isEmpty {
                    lines.append(current)
                    current = ""
                }
                lines.append(String(word.prefix(width)))
                word = word.dropFirst(width)
            }
            if current.isEmpty {
                current = String(word)
            } else if current.count + 1 + word.count <= width {
                current += " " + word
            } else {
                lines.append(current)
                current = String(word)
            }
        }
        if !current.isEmpty { lines.append(current) }
        guard lines.count > maxLines, maxLines > 0 else { return lines }
        var kept = Array(lines.prefix(maxLines))
        var last = kept[maxLines - 1]
        if last.count >= width { last = String(last.prefix(width - 1)) }
        kept[maxLines - 1] = last + "…"
        return kept
    }

    /// Writes the lines for drawtext's `textfile=` (no trailing newline, which drawtext would draw as an
    /// empty line). Empty text becomes a single space so drawtext has something to load.
    static func write(_ lines: [String], to file: URL) throws {
        let text = lines.joined(separator: "\n")
        try Data((text.isEmpty ? " " : text).utf8).write(to: file, options: .atomic)
    }

    /// A drawtext filter for a text file, relative to ffmpeg's working directory.
    ///
    /// - Parameters:
    ///   - x, y: drawtext expressions (may use `w`, `h`, `text_w`, `text_h`).
    ///   - extra: further `key=value` options, already escaped.
    static func drawtext(
        font: String,
        textFile: String,
        size: Int,
        x: String,
        y: String,
        color: String = "white",
        box: String? = nil,
        extra: [String] = []
    ) -> String {
        var options = [
            "fontfile=\(escaped(font))", "textfile=\(escaped(textFile))", "expansion=none", "fontcolor=\(color)",
            "fontsize=\(size)", "line_spacing=\(max(4, size / 4))", "x=\(x)", "y=\(y)",
        ]
        if let box {
            options += ["box=1", "boxcolor=\(box)", "boxborderw=\(max(8, size / 2))"]
        } else {
            options += ["shadowcolor=black@0.7", "shadowx=\(max(2, size / 16))", "shadowy=\(max(2, size / 16))"]
        }
        return "drawtext=" + (options + extra).joined(separator: ":")
    }

    /// About how many characters of DejaVu Sans Bold at `fontSize` fit in `width` pixels.
    static func charactersPerLine(width: Int, fontSize: Int) -> Int {
        max(8, Int(Double(width) / (Double(fontSize) * 0.62)))
    }
}

import Foundation

/// Finds local tools by name on a search path (by default the worker's `PATH`).
///
/// Tests make a tool "unavailable" by giving a locator an empty search path or a folder without it.
struct ToolLocator: Sendable, Equatable {
    /// Folders searched in order; relative and empty entries are skipped.
    var searchPath: [String]

    init(searchPath: [String]) {
        self.searchPath = searchPath
    }

    /// The worker's `PATH`, or the usual system folders when it is unset.
    static var environment: ToolLocator {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return ToolLocator(searchPath: path.split(separator: ":").map(String.init))
    }

    /// The tool called `name`.
    ///
    /// - Throws: ``ProviderError`` `toolFailed`, e.g. "ffmpeg not found; install ffmpeg (apt-get install
    ///   ffmpeg)".
    func locate(_ name: String) throws(ProviderError) -> ExternalTool {
        for folder in searchPath where folder.hasPrefix("/") {
            let candidate = URL(fileURLWithPath: folder).appendingPathComponent(name).path
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
                FileManager.default.isExecutableFile(atPath: candidate)
            {
                return ExternalTool(name: name, path: candidate)
            }
        }
        throw ProviderError(.toolFailed, "\(name) not found; \(Self.installHint(name))")
    }

    /// Each tool, or the first that is missing as an error: for a start-up check.
    func locateAll(_ names: [String]) throws(ProviderError) -> [ExternalTool] {
        var tools: [ExternalTool] = []
        for name in names { tools.append(try locate(name)) }
        return tools
    }

    /// How to get a tool on Debian/Ubuntu.
    static func installHint(_ name: String) -> String {
        switch name {
        case "ffmpeg", "ffprobe": "install ffmpeg (apt-get install ffmpeg)"
        case "espeak-ng": "install espeak-ng (apt-get install espeak-ng)"
        case "fc-match": "install fontconfig (apt-get install fontconfig)"
        default: "install \(name)"
        }
    }
}

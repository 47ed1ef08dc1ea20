import Foundation
import Protocol

/// The recorded provider answers shipped with this module (`Fixtures/<service>/<case>.json`, copied as a resource).
///
/// SwiftPM puts them in `reelfarm_ProviderFixtures.resources` beside the executable or test bundle on Linux
/// (`.bundle` on macOS); `Bundle.module` finds them there, and in the build folder when the binary was copied away.
public enum ProviderFixtures {
    /// The fixture `<service>/<case>`, e.g. `openai/insufficient_quota`.
    ///
    /// - Throws: ``ProviderFixtureError`` when there is no such file or it is not a valid fixture.
    public static func named(_ name: String) throws(ProviderFixtureError) -> ProviderFixture {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy(isSafeComponent) else { throw .badName(name) }
        let file = "\(name).json"
        let url = folder.appending(path: String(parts[0])).appending(path: "\(parts[1]).json")
        guard let data = try? Data(contentsOf: url) else { throw .notFound(file) }
        return try decode(data, service: String(parts[0]), caseName: String(parts[1]))
    }

    /// Every fixture, sorted by name.
    ///
    /// - Throws: ``ProviderFixtureError`` naming the first file that is not a valid fixture.
    public static func all() throws(ProviderFixtureError) -> [ProviderFixture] {
        try names().map { name throws(ProviderFixtureError) in try named(name) }
    }

    /// The names of every fixture file, sorted, without reading them.
    public static func names() -> [String] {
        let manager = FileManager.default
        let services = (try? manager.contentsOfDirectory(atPath: folder.path)) ?? []
        var names: [String] = []
        for service in services where isSafeComponent(Substring(service)) {
            let files = (try? manager.contentsOfDirectory(atPath: folder.appending(path: service).path)) ?? []
            for file in files where file.hasSuffix(".json") {
                names.append("\(service)/\(file.dropLast(".json".count))")
            }
        }
        return names.sorted()
    }

    /// The folder holding one subfolder per service.
    public static let folder: URL = {
        #if os(Linux)
        // Beside the executable, even when it runs through a symlink or from a copy of the build folder.
        let bundleName = "reelfarm_ProviderFixtures.resources"
        let executable = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath()
        for base in [Bundle.main.bundleURL, executable.deletingLastPathComponent()] {
            let candidate = base.appending(path: bundleName).appending(path: "Fixtures")
            if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
        }
        #endif
        return Bundle.module.url(forResource: "Fixtures", withExtension: nil)
            ?? Bundle.module.bundleURL.appending(path: "Fixtures")
    }()

    private static func isSafeComponent(_ part: Substring) -> Bool {
        !part.isEmpty && !part.hasPrefix(".")
            && part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == ".") }
    }

    // MARK: - Decoding

    /// Reads one fixture file, checking every field, so a mistake names the file and the field.
    static func decode(_ data: Data, service: String, caseName: String) throws(ProviderFixtureError) -> ProviderFixture
    {
        let file = "\(service)/\(caseName).json"
        func fail(_ message: String) -> ProviderFixtureError { .malformed(file, message) }
        guard let root = JSONValue(data: data) else { throw fail("not valid JSON") }
        guard case .object = root else { throw fail("expected an object") }
        guard root["service"]?.string == service else { throw fail("service: expected \"\(service)\"") }
        guard root["case"]?.string == caseName else { throw fail("case: expected \"\(caseName)\"") }
        let summary = root["summary"]?.string ?? ""
        let sources: [String]
        switch root["source"] {
        case .string(let source): sources = [source]
        case .array(let items):
            sources = try items.map { item throws(ProviderFixtureError) in
                guard let source = item.string else { throw fail("source: expected strings") }
                return source
            }
        default: throw fail("source: expected a list of strings")
        }

        guard let request = root["request"], case .object = request else { throw fail("request: expected an object") }
        guard let method = request["method"]?.string, !method.isEmpty else {
            throw fail("request.method: expected a string")
        }
        guard let path = request["path"]?.string, !path.isEmpty else { throw fail("request.path: expected a string") }
        let model = try optionalString(request["model"]) { fail("request.model: expected a string or null") }
        let voiceId = try optionalString(request["voice_id"]) { fail("request.voice_id: expected a string or null") }

        guard let response = root["response"], case .object = response else {
            throw fail("response: expected an object")
        }
        guard let status = response["status"]?.integer, (100...599).contains(status) else {
            throw fail("response.status: expected an HTTP status")
        }
        var headers: [(String, String)] = []
        switch response["headers"] {
        case nil, .null: break
        case .object(let fields):
            for (name, value) in fields {
                if let text = value.string {
                    headers.append((name, text))
                } else if let number = value.integer {
                    headers.append((name, String(number)))
                } else {
                    throw fail("response.headers.\(name): expected a string")
                }
            }
        default: throw fail("response.headers: expected an object")
        }
        headers.sort { $0.0.lowercased() < $1.0.lowercased() }

        let bodies = ["json", "text", "binary"].filter { response[$0] != nil }
        guard bodies.count == 1 else { throw fail("response: expected exactly one of json, text and binary") }
        let body: ProviderFixture.Body
        switch bodies[0] {
        case "json":
            body = .json(response["json"]!.data)
        case "text":
            guard let text = response["text"]?.string else { throw fail("response.text: expected a string") }
            body = .text(text)
        default:
            guard let kind = response["binary"]?.string, !kind.isEmpty else {
                throw fail("response.binary: expected a media type such as png")
            }
            body = .binary(kind)
        }
        return ProviderFixture(
            service: service,
            name: "\(service)/\(caseName)",
            summary: summary,
            sources: sources,
            method: method,
            path: path,
            model: model,
            voiceId: voiceId,
            status: Int(status),
            headers: headers,
            body: body
        )
    }

    private static func optionalString(
        _ value: JSONValue?,
        _ error: () -> ProviderFixtureError
    ) throws(ProviderFixtureError) -> String? {
        switch value {
        case nil, .null: return nil
        case .string(let text): return text
        default: throw error()
        }
    }
}

import Foundation
import Protocol

/// The JSON an LLM must answer with, and its strict check (pure).
///
/// ```json
/// {"title": "…", "characters": ["Ada", "Leo"],
///  "scenes": [{"description": "…", "narration": "…", "lines": [{"character": "Ada", "text": "…"}]}],
///  "broll": [{"description": "…"}]}
/// ```
///
/// Numbers are ours, never the model's: scenes 1…, lines 1… across the whole episode, B-roll 1….
/// Unknown extra fields are ignored; everything else must be exactly right.
enum ScriptSchema {
    /// Why a reply is not a usable script; the message names the field (`scenes[2].lines[0].character`)
    /// and is sent back to the model in the repair request.
    struct ValidationError: Error, Sendable, Equatable, CustomStringConvertible {
        var message: String

        init(_ message: String) { self.message = message }

        var description: String { message }
    }

    static let maxCharacters = EpisodeSpec.maxCharacters
    static let maxScenes = EpisodeSpec.maxScenes
    static let maxLinesPerScene = 20
    static let maxBroll = 20
    /// Lengths in characters, after trimming whitespace.
    static let titleLength = 1...200
    static let nameLength = 1...60
    static let descriptionLength = 1...1_000
    /// A scene may have no narration (it is then not voiced; its lines carry it).
    static let narrationLength = 0...2_000
    /// OpenAI speech takes at most 4096 characters; a line is much shorter.
    static let lineLength = 1...1_000

    /// The number of scenes the spec asks for: `spec.scenes` (default 4), within 1…50.
    static func sceneCount(for spec: EpisodeSpec) -> Int {
        min(max(spec.scenes ?? EpisodeSpec.defaultScenes, 1), maxScenes)
    }

    /// A description of the shape, for the system prompt.
    static let shapeDescription = """
        {"title": string, "characters": [string, ...], \
        "scenes": [{"description": string, "narration": string, \
        "lines": [{"character": string, "text": string}, ...]}, ...], \
        "broll": [{"description": string}, ...]}
        """

    /// Checks a reply and turns it into a ``Script``.
    ///
    /// The reply must be one JSON object (a Markdown code fence around it is tolerated) with exactly
    /// ``sceneCount(for:)`` scenes, 1…12 distinct characters, every line's character among them, and
    /// every text non-empty and within its length bounds.
    static func parse(_ data: Data, spec: EpisodeSpec) throws(ValidationError) -> Script {
        guard let reply = String(data: data, encoding: .utf8) else { throw ValidationError("the reply is not UTF-8") }
        return try parse(reply, spec: spec)
    }

    static func parse(_ reply: String, spec: EpisodeSpec) throws(ValidationError) -> Script {
        let json = try document(reply)
        guard case .object = json else {
            throw ValidationError("the reply must be a JSON object, not \(json.kindName)")
        }

        let title = try string(json, "title", path: "title", length: titleLength)

        let names = try array(json, "characters", path: "characters")
        guard (1...maxCharacters).contains(names.count) else {
            throw ValidationError("characters: \(names.count) given, need 1…\(maxCharacters)")
        }
        var characters: [String] = []
        for (index, name) in names.enumerated() {
            let name = try checkedText(name, path: "characters[\(index)]", length: nameLength)
            guard !characters.contains(where: { $0.lowercased() == name.lowercased() }) else {
                throw ValidationError("characters[\(index)]: \"\(name)\" appears twice")
            }
            characters.append(name)
        }

        let sceneValues = try array(json, "scenes", path: "scenes")
        let expected = sceneCount(for: spec)
        guard sceneValues.count == expected else {
            throw ValidationError("scenes: \(sceneValues.count) given, need exactly \(expected)")
        }
        var scenes: [Script.Scene] = []
        var lineNumber = 0
        for (sceneIndex, value) in sceneValues.enumerated() {
            let path = "scenes[\(sceneIndex)]"
            try requireObject(value, path: path)
            let description = try string(value, "description", path: "\(path).description", length: descriptionLength)
            let narration = try string(value, "narration", path: "\(path).narration", length: narrationLength)
            let lineValues = try array(value, "lines", path: "\(path).lines")
            guard lineValues.count <= maxLinesPerScene else {
                throw ValidationError("\(path).lines: \(lineValues.count) given, at most \(maxLinesPerScene)")
            }
            var lines: [Script.Line] = []
            for (lineIndex, line) in lineValues.enumerated() {
                let linePath = "\(path).lines[\(lineIndex)]"
                try requireObject(line, path: linePath)
                let character = try string(line, "character", path: "\(linePath).character", length: nameLength)
                guard characters.contains(character) else {
                    let cast = characters.map { "\"\($0)\"" }.joined(separator: ", ")
                    throw ValidationError("\(linePath).character: \"\(character)\" is not one of characters [\(cast)]")
                }
                let text = try string(line, "text", path: "\(linePath).text", length: lineLength)
                lineNumber += 1
                lines.append(Script.Line(number: lineNumber, character: character, text: text))
            }
            scenes.append(
                Script.Scene(number: sceneIndex + 1, description: description, narration: narration, lines: lines)
            )
        }

        let brollValues = try array(json, "broll", path: "broll")
        guard brollValues.count <= maxBroll else {
            throw ValidationError("broll: \(brollValues.count) given, at most \(maxBroll)")
        }
        var broll: [Script.BrollShot] = []
        for (index, value) in brollValues.enumerated() {
            let path = "broll[\(index)]"
            try requireObject(value, path: path)
            let description = try string(value, "description", path: "\(path).description", length: descriptionLength)
            broll.append(Script.BrollShot(number: index + 1, description: description))
        }

        return Script(title: title, characters: characters, scenes: scenes, brollShots: broll)
    }

    // MARK: - Helpers

    private static func document(_ text: String) throws(ValidationError) -> JSONValue {
        var body = Substring(text.trimmingCharacters(in: .whitespacesAndNewlines))
        if body.hasPrefix("```") {
            // ```json … ```
            body = body.drop { $0 != "\n" }
            if body.hasSuffix("```") { body = body.dropLast(3) }
        }
        let trimmed = body.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw ValidationError("the reply is empty") }
        guard let json = JSONValue(data: Data(trimmed.utf8), limit: HTTPBodyLimit.chat) else {
            throw ValidationError("the reply is not valid JSON")
        }
        return json
    }

    private static func requireObject(_ value: JSONValue, path: String) throws(ValidationError) {
        guard case .object = value else { throw ValidationError("\(path): must be an object, not \(value.kindName)") }
    }

    private static func array(_ object: JSONValue, _ key: String, path: String) throws(ValidationError) -> [JSONValue] {
        guard let value = object[key] else { throw ValidationError("\(path): missing") }
        guard let array = value.array else { throw ValidationError("\(path): must be an array, not \(value.kindName)") }
        return array
    }

    private static func string(
        _ object: JSONValue,
        _ key: String,
        path: String,
        length: ClosedRange<Int>
    ) throws(ValidationError) -> String {
        guard let value = object[key] else { throw ValidationError("\(path): missing") }
        return try checkedText(value, path: path, length: length)
    }

    private static func checkedText(
        _ value: JSONValue,
        path: String,
        length: ClosedRange<Int>
    ) throws(ValidationError)
        -> String
    {
        guard let raw = value.string else { throw ValidationError("\(path): must be a string, not \(value.kindName)") }
        let text = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty || length.lowerBound == 0 else { throw ValidationError("\(path): must not be empty") }
        guard text.count <= length.upperBound else {
            throw ValidationError("\(path): \(text.count) characters, at most \(length.upperBound)")
        }
        guard text.count >= length.lowerBound else {
            throw ValidationError("\(path): \(text.count) characters, at least \(length.lowerBound)")
        }
        return text
    }
}

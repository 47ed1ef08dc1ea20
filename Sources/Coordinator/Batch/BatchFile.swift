import Foundation
import Protocol
import Shared
import Yams

/// Reads a batch file: a JSON or YAML list of episode specs (or a map with an `episodes:` list).
///
/// The file is untrusted input: its size is bounded, unknown keys are refused by name (a typo such as
/// `scene:` must not silently fall back to a default), every value is range-checked with the wire
/// protocol's rules, and missing ids become `episode_N` (N = position, 1-based). Duplicate ids are refused.
enum BatchFile {
    static let maxBytes = 10 << 20
    static let maxEpisodes = 100_000
    static let knownKeys = ["topic", "id", "characters", "scenes", "style"]
    /// The most YAML nodes a batch may have once its aliases are expanded: 100,000 episodes of a map with
    /// every key and 12 characters are 2.3 million. A "billion laughs" alias bomb of a few hundred bytes
    /// expands to billions and is refused after counting this many, before anything is built.
    static let maxNodes = 2_500_000
    /// The most scalar text a batch may have once its aliases are expanded, in UTF-8 bytes: twice what
    /// a file without aliases can hold.
    static let maxExpandedBytes = 2 * maxBytes

    /// The parsed document. JSON (text starting with `[` or `{`) is read by the protocol's strict JSON
    /// parser, which takes escaped surrogate pairs such as `"\ud83c\udfac"` (Python's default) that
    /// libyaml refuses; anything else, and JSON-looking text that is not JSON, is read as YAML, whose
    /// tree is counted with aliases expanded (``maxNodes``, ``maxExpandedBytes``) before it is built.
    static func document(_ text: String, name: String) throws(ConfigurationError) -> Any? {
        var jsonError: JSONTextError?
        if let first = text.utf8.first(where: { ![0x20, 0x0A, 0x0D, 0x09].contains($0) }),
            first == UInt8(ascii: "[") || first == UInt8(ascii: "{")
        {
            do {
                return try JSONText.foundationValue(from: Array(text.utf8))
            } catch {
                jsonError = error
            }
        }
        let node: Node?
        do {
            // YAML 1.2 is a superset of JSON, so this also reads the flow-style YAML JSON refused.
            node = try Yams.compose(yaml: text)
        } catch {
            let why = jsonError.map { "neither valid JSON (\($0)) nor YAML: " } ?? "neither valid JSON nor YAML: "
            throw ConfigurationError("batch file \(name) is \(why)" + DisplayText.bounded("\(error)"))
        }
        guard let node else { return nil }
        try checkExpandedSize(node, name: name)
        return node.any
    }

    /// Walks the composed tree (an alias shares its anchor's node, so composing stays cheap) and stops
    /// as soon as the expanded tree would be too big.
    private static func checkExpandedSize(_ root: Node, name: String) throws(ConfigurationError) {
        var stack = [root]
        var nodes = 0
        var bytes = 0
        while let node = stack.popLast() {
            nodes += 1
            guard nodes <= maxNodes else {
                throw ConfigurationError(
                    "batch file \(name) has more than \(maxNodes) YAML nodes once its aliases (*name) are expanded; refused (an alias bomb?)"
                )
            }
            switch node {
            case .scalar(let scalar):
                bytes += scalar.string.utf8.count
                guard bytes <= maxExpandedBytes else {
                    throw ConfigurationError(
                        "batch file \(name) has more than \(maxExpandedBytes >> 20) MiB of text once its aliases (*name) are expanded; refused"
                    )
                }
            case .mapping(let mapping):
                for pair in mapping {
                    stack.append(pair.key)
                    stack.append(pair.value)
                }
            case .sequence(let sequence):
                stack.append(contentsOf: sequence)
            case .alias:
                break
            }
        }
    }

    static func load(path: String, batchId: String) throws(ConfigurationError) -> Batch {
        let data: Data
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            if let size = attributes[.size] as? Int, size > maxBytes {
                throw ConfigurationError("batch file \(path) is \(size) bytes; the limit is \(maxBytes)")
            }
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError("cannot read batch file \(path): \((error as NSError).localizedDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError("batch file \(path) is not UTF-8 text")
        }
        return try parse(text, name: path, batchId: batchId)
    }

    static func parse(_ text: String, name: String, batchId: String) throws(ConfigurationError) -> Batch {
        let root = try document(text, name: name)
        let list: [Any]
        if let array = root as? [Any] {
            list = array
        } else if let map = root as? [String: Any], let array = map["episodes"] as? [Any] {
            let extra = map.keys.filter { $0 != "episodes" }.sorted()
            guard extra.isEmpty else {
                throw ConfigurationError(
                    "batch file \(name): unknown top-level key(s) \(DisplayText.bounded(extra.joined(separator: ", "))); expected only \"episodes\""
                )
            }
            list = array
        } else {
            throw ConfigurationError(
                "batch file \(name) must be a list of episode specs, or a map with an \"episodes\" list"
            )
        }
        guard !list.isEmpty else { throw ConfigurationError("batch file \(name) has no episodes") }
        guard list.count <= maxEpisodes else {
            throw ConfigurationError("batch file \(name) has \(list.count) episodes; the limit is \(maxEpisodes)")
        }
        var specs: [EpisodeSpec] = []
        var seen: [String: Int] = [:]
        for (i, item) in list.enumerated() {
            let position = i + 1
            let spec = try episode(item, position: position, name: name)
            let id = spec.id!
            if let first = seen[id] {
                throw ConfigurationError(
                    "batch file \(name): episode \(position) repeats id \(DisplayText.quoted(id)) of episode \(first)"
                )
            }
            seen[id] = position
            specs.append(spec)
        }
        return Batch(id: batchId, episodes: specs)
    }

    private static func episode(_ item: Any, position: Int, name: String) throws(ConfigurationError) -> EpisodeSpec {
        let at = "batch file \(name): episode \(position)"
        // A bare string is a topic.
        if let topic = item as? String {
            return try validated(EpisodeSpec(topic: topic, id: "episode_\(position)"), at: at)
        }
        guard let map = item as? [String: Any] else {
            throw ConfigurationError("\(at) must be a map with at least \"topic\", or a topic string")
        }
        let unknown = map.keys.filter { !knownKeys.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw ConfigurationError(
                "\(at): unknown key(s) \(DisplayText.bounded(unknown.joined(separator: ", "))) (known: \(knownKeys.joined(separator: ", ")))"
            )
        }
        guard let topic = map["topic"] as? String else {
            throw ConfigurationError("\(at): \"topic\" is required and must be text")
        }
        var spec = EpisodeSpec(topic: topic)
        if let id = map["id"] {
            guard let text = scalarText(id) else { throw ConfigurationError("\(at): \"id\" must be text") }
            spec.id = text
        } else {
            spec.id = "episode_\(position)"
        }
        if let characters = map["characters"] {
            guard let list = characters as? [Any], let names = Optional(list.compactMap(scalarText)),
                names.count == list.count
            else {
                throw ConfigurationError("\(at): \"characters\" must be a list of names")
            }
            spec.characters = names
        }
        if let scenes = map["scenes"] {
            guard let n = scenes as? Int else { throw ConfigurationError("\(at): \"scenes\" must be a whole number") }
            spec.scenes = n
        }
        if let style = map["style"] {
            guard let text = style as? String else { throw ConfigurationError("\(at): \"style\" must be text") }
            spec.style = text
        }
        return try validated(spec, at: at)
    }

    private static func scalarText(_ value: Any) -> String? {
        if let s = value as? String { return s }
        if let i = value as? Int { return String(i) }
        return nil
    }

    private static func validated(_ spec: EpisodeSpec, at: String) throws(ConfigurationError) -> EpisodeSpec {
        do {
            try spec.validate()
        } catch {
            throw ConfigurationError("\(at): \(error.detail)")
        }
        return spec
    }
}

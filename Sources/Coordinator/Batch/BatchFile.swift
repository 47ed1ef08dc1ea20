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
        let root: Any?
        do {
            // YAML 1.2 is a superset of JSON, so one parser reads both formats.
            root = try Yams.load(yaml: text)
        } catch {
            throw ConfigurationError("batch file \(name) is neither valid JSON nor YAML: \(error)")
        }
        let list: [Any]
        if let array = root as? [Any] {
            list = array
        } else if let map = root as? [String: Any], let array = map["episodes"] as? [Any] {
            let extra = map.keys.filter { $0 != "episodes" }.sorted()
            guard extra.isEmpty else {
                throw ConfigurationError(
                    "batch file \(name): unknown top-level key(s) \(extra.joined(separator: ", ")); expected only \"episodes\""
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
                    "batch file \(name): episode \(position) repeats id \"\(id)\" of episode \(first)"
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
                "\(at): unknown key(s) \(unknown.joined(separator: ", ")) (known: \(knownKeys.joined(separator: ", ")))"
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

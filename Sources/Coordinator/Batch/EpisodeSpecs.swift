import Protocol

/// A batch's episode specs in submission order: the specs of a batch file, or the episodes of
/// `--episodes N`, made when asked for (`episode_1` … with ``DemoTopics``) instead of held, so that a
/// demo batch of 100,000 episodes keeps no spec and no topic string per episode.
///
/// A value over one immutable, shared storage object: a copy (the batch, each ``EpisodeRecord`` that
/// points into it) costs one reference.
struct EpisodeSpecs: RandomAccessCollection, Sendable, Equatable, ExpressibleByArrayLiteral {
    private final class Storage: Sendable {
        enum Content {
            case listed([EpisodeSpec])
            case generated
        }

        let content: Content
        let count: Int

        init(_ content: Content, count: Int) {
            self.content = content
            self.count = count
        }
    }

    private let storage: Storage

    init(_ specs: [EpisodeSpec]) {
        storage = Storage(.listed(specs), count: specs.count)
    }

    init(arrayLiteral specs: EpisodeSpec...) {
        self.init(specs)
    }

    /// `count` episodes with generated topics, ids `episode_1` … `episode_N`.
    static func generated(count: Int) -> EpisodeSpecs {
        EpisodeSpecs(storage: Storage(.generated, count: count))
    }

    private init(storage: Storage) {
        self.storage = storage
    }

    var startIndex: Int { 0 }
    var endIndex: Int { storage.count }

    subscript(position: Int) -> EpisodeSpec {
        switch storage.content {
        case .listed(let specs): specs[position]
        case .generated: EpisodeSpec(topic: DemoTopics.topic(position), id: Self.generatedId(position))
        }
    }

    /// The id of the spec at `position`, without making its topic.
    func id(at position: Int) -> String? {
        switch storage.content {
        case .listed(let specs): specs[position].id
        case .generated: Self.generatedId(position)
        }
    }

    /// Whether both are the same storage (then equal without comparing a spec).
    func isIdentical(to other: EpisodeSpecs) -> Bool { storage === other.storage }

    static func == (lhs: EpisodeSpecs, rhs: EpisodeSpecs) -> Bool {
        if lhs.isIdentical(to: rhs) { return true }
        switch (lhs.storage.content, rhs.storage.content) {
        case (.generated, .generated): return lhs.count == rhs.count
        default: return lhs.elementsEqual(rhs)
        }
    }

    /// `episode_N`: 15 bytes at most up to episode 9,999,999, so `String` holds it inline (no allocation).
    private static func generatedId(_ position: Int) -> String { "episode_\(position + 1)" }
}

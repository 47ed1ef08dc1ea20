import Foundation
import Protocol

/// A batch of episodes to make: an id (its output folder name) and the specs in submission order,
/// every spec with an id.
struct Batch: Sendable, Equatable {
    let id: String
    let episodes: EpisodeSpecs

    init(id: String, episodes: EpisodeSpecs) {
        self.id = id
        self.episodes = episodes
    }

    init(id: String, episodes: [EpisodeSpec]) {
        self.init(id: id, episodes: EpisodeSpecs(episodes))
    }

    /// `batch-20261126-184501`, from the UTC wall clock: sortable, and a valid folder name.
    static func makeId(date: Date = Date()) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func two(_ v: Int?) -> String { v.map { $0 < 10 ? "0\($0)" : "\($0)" } ?? "00" }
        return "batch-\(c.year ?? 0)\(two(c.month))\(two(c.day))-\(two(c.hour))\(two(c.minute))\(two(c.second))"
    }

    /// `count` episodes with generated topics, ids `episode_1` … `episode_N` (made when read: see
    /// ``EpisodeSpecs/generated(count:)``).
    static func generated(id: String, count: Int) -> Batch {
        Batch(id: id, episodes: .generated(count: count))
    }
}

/// Topics for `--episodes N`: varied enough that a demo batch does not look like one episode 24 times.
enum DemoTopics {
    static let subjects = [
        "the secret life of lighthouse keepers", "how honeybees vote on a new home", "the first transatlantic cable",
        "why octopuses have three hearts", "the lost library of Alexandria", "a day inside a volcano observatory",
        "the invention of the bicycle", "how ships find their way without GPS", "the great emu war",
        "the mystery of the Voynich manuscript", "life at the bottom of the Mariana Trench",
        "the race to the South Pole",
        "how chocolate conquered the world", "the clockmakers of the Jura mountains",
        "the night the lights went out in New York",
        "the first women in space", "how tea changed the British Empire", "the bridges of Königsberg",
        "a rainforest that grows in the clouds", "the forgotten art of Morse code",
        "how the Eiffel Tower almost came down",
        "the wolves of Yellowstone", "the history of the humble pencil", "a journey along the Silk Road",
    ]

    static func topic(_ index: Int) -> String {
        let base = subjects[index % subjects.count]
        let round = index / subjects.count
        return round == 0 ? base : "\(base) (part \(round + 1))"
    }
}

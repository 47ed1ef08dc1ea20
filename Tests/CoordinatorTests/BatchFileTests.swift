import Protocol
import Shared
import Testing

@testable import Coordinator

@Suite struct BatchFileTests {
    @Test func yamlListWithDefaults() throws {
        let batch = try BatchFile.parse(
            """
            - topic: Lighthouses
              id: light
              characters: [Anne, Yann]
              scenes: 3
              style: noir
            - topic: Bees
            - Bicycles
            """,
            name: "b.yaml",
            batchId: "b"
        )
        #expect(batch.episodes.map(\.id) == ["light", "episode_2", "episode_3"])
        #expect(
            batch.episodes[0]
                == EpisodeSpec(
                    topic: "Lighthouses",
                    id: "light",
                    characters: ["Anne", "Yann"],
                    scenes: 3,
                    style: "noir"
                )
        )
        #expect(batch.episodes[2].topic == "Bicycles")
    }

    @Test func jsonAndTheEpisodesMapForm() throws {
        let list = try BatchFile.parse(#"[{"topic": "a"}, {"topic": "b", "scenes": 2}]"#, name: "b.json", batchId: "b")
        #expect(list.episodes.count == 2)
        let map = try BatchFile.parse(#"{"episodes": [{"topic": "a", "id": "x"}]}"#, name: "b.json", batchId: "b")
        #expect(map.episodes.map(\.id) == ["x"])
    }

    @Test(arguments: [
        ("- topc: typo", "unknown key"),
        ("- topic: a\n- topic: b\n  id: episode_1", "repeats id"),
        ("- topic: a\n  scenes: 0", "scenes"),
        ("- topic: a\n  scenes: many", "scenes"),
        ("- topic: a\n  id: ../etc", "id"),
        ("- topic: ''", "topic"),
        ("[]", "no episodes"),
        ("42", "list"),
        ("{episodes: [], other: 1}", "top-level"),
        ("- [nested]", "map"),
        ("- topic: a\n  characters: Anne", "characters"),
        ("{{{{", "neither"),
    ])
    func badFilesAreRefusedWithAReason(text: String, mention: String) {
        #expect {
            try BatchFile.parse(text, name: "b.yaml", batchId: "b")
        } throws: { error in
            let message = (error as? ConfigurationError)?.message ?? ""
            return message.contains(mention) && message.contains("b.yaml")
        }
    }

    @Test func generatedBatchesHaveDistinctTopics() {
        let batch = Batch.generated(id: "b", count: 30)
        #expect(batch.episodes.map(\.id) == (1...30).map { "episode_\($0)" })
        #expect(Set(batch.episodes.map(\.topic)).count == 30)
    }

    @Test func batchIdIsSortableAndAFolderName() {
        let id = Batch.makeId()
        #expect(id.hasPrefix("batch-") && id.count == "batch-20261126-184501".count)
    }
}

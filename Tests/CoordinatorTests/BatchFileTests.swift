import Foundation
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

    // MARK: - Issue 15

    /// Ids that would overwrite the batch's own files, hide the folder, or fail every attempt on a worker.
    @Test(arguments: [
        "summary.json", "trace.jsonl", "report.html", "Summary.JSON", "x.json", ".hidden", "a..b", ".work",
        ".incoming", ".state", "evil\u{202E}4pm.mp", "zero\u{200B}width", "tab\there",
    ])
    func item2IdsThatCollideWithBatchFilesOrHiddenFoldersAreRefused(_ id: String) {
        let yaml =
            "- topic: t\n  id: \"\(id.unicodeScalars.map { "\\u" + String(format: "%04x", $0.value) }.joined())\"\n"
        #expect(throws: ConfigurationError.self, "\(id)") { try BatchFile.parse(yaml, name: "b.yaml", batchId: "b") }
        let json = "[{\"topic\": \"t\", \"id\": \(JSONText.string(id))}]"
        #expect(throws: ConfigurationError.self, "\(id)") { try BatchFile.parse(json, name: "b.json", batchId: "b") }
        // The same rule for batch ids (`--batch-id`, `?id=`).
        #expect(throws: DecodeError.self, "\(id)") { try BatchNames.check(id, field: "batch id") }
    }

    @Test func item2OrdinaryIdsStillPass() throws {
        for id in ["episode_1", "Lighthouses of Brittany", "été-2026", "v1.2", "a.b.c", "json", "x.jsonx", "🎬"] {
            try BatchNames.check(id, field: "id")
        }
        let batch = try BatchFile.parse("- {topic: t, id: v1.2}\n", name: "b.yaml", batchId: "b")
        #expect(batch.episodes.map(\.id) == ["v1.2"])
        for n in [1, 100_000] { try BatchNames.check("episode_\(n)", field: "id") }
        try BatchNames.check(Batch.makeId(), field: "batch id")
    }

    /// "Billion laughs": 9 levels of 9 aliases, 648 bytes of YAML expanding to 9^9 (387 million) nodes.
    static let aliasBomb = """
        a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
        b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
        c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
        d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
        e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
        f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
        g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
        h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
        episodes: [*h,*h,*h,*h,*h,*h,*h,*h,*h]
        """

    @Test(.timeLimit(.minutes(1)))
    func item8YamlAliasBombIsRefusedWithinSeconds() {
        let start = ContinuousClock.now
        let error = #expect(throws: ConfigurationError.self) {
            try BatchFile.parse(Self.aliasBomb, name: "bomb.yaml", batchId: "b")
        }
        #expect(error?.message.contains("aliases") == true, "\(String(describing: error))")
        // 0.9 s alone in a debug build, 6.5 s once in CI's parallel phase; expanding the 387 million nodes
        // would take minutes and gigabytes, so a bound well above the noise still tells the two apart.
        #expect(ContinuousClock.now - start < .seconds(30))
        // Aliases within reason still work: a shared cast.
        let list = """
            - &first {topic: a, id: one, characters: &cast [Anne, Yann]}
            - {topic: b, id: two, characters: *cast}
            """
        #expect((try? BatchFile.parse(list, name: "l.yaml", batchId: "b"))?.episodes[1].characters == ["Anne", "Yann"])
    }

    @Test func item10JsonWithEscapedSurrogatePairsIsAccepted() throws {
        // Python's json.dumps writes 🎬 as "\ud83c\udfac".
        let batch = try BatchFile.parse(
            #"[{"topic": "\ud83c\udfac film night", "id": "film-\ud83c\udfac"}]"#,
            name: "b.json",
            batchId: "b"
        )
        #expect(batch.episodes.first?.topic == "🎬 film night")
        #expect(batch.episodes.first?.id == "film-🎬")
        let wrapped = try BatchFile.parse(
            #"{"episodes": ["caf\u00e9", {"topic": "x", "scenes": 3}]}"#,
            name: "w",
            batchId: "b"
        )
        #expect(wrapped.episodes.map(\.topic) == ["café", "x"] && wrapped.episodes[1].scenes == 3)
        // Lone surrogates stay invalid.
        for lone in [#"["\ud83c"]"#, #"["\udfac x"]"#, #"["\ud83c\u0041"]"#] {
            #expect(throws: ConfigurationError.self, "\(lone)") {
                try BatchFile.parse(lone, name: "b.json", batchId: "b")
            }
        }
        // Flow-style YAML that is not JSON still reads as YAML.
        #expect(try BatchFile.parse("[Bees, Lighthouses]", name: "f.yaml", batchId: "b").episodes.count == 2)
    }

    @Test func item10ErrorsEchoAtMostAFewHundredBytesOfInput() {
        let junk = String(repeating: "\u{01}\u{1B}[31m", count: 200_000)
        for text in [junk, "- topic: t\n  \(String(repeating: "k", count: 100_000)): 1\n"] {
            do {
                _ = try BatchFile.parse(text, name: "in the request", batchId: "b")
                Issue.record("junk accepted")
            } catch {
                #expect(error.message.utf8.count < 1_000, "\(error.message.utf8.count) bytes")
                #expect(!error.message.unicodeScalars.contains { $0.value < 0x20 })
            }
        }
    }
}

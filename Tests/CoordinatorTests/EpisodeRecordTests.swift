import Protocol
import Testing

@testable import Coordinator

/// A queued episode costs the coordinator about 60 bytes (W3: 100,000 queued under 64 MiB): the record
/// is small, shares the batch's specs, and allocates its activity only once dispatched.
@Suite struct EpisodeRecordTests {
    @Test func aRecordStaysSmall() {
        #expect(MemoryLayout<EpisodeRecord>.stride <= 48)
    }

    @Test func generatedSpecsAreMadeWhenReadAndShared() {
        let specs = EpisodeSpecs.generated(count: 30)
        #expect(specs.count == 30 && specs[0] == EpisodeSpec(topic: DemoTopics.topic(0), id: "episode_1"))
        #expect(specs[29].topic == DemoTopics.topic(29) && specs.id(at: 29) == "episode_30")
        #expect(specs == EpisodeSpecs(Array(specs)), "equal to the same specs listed")
        let record = EpisodeRecord(index: 29, id: "episode_30", specs: specs)
        #expect(record.spec == specs[29])
        let moved = EpisodeRecord(copying: record, index: 3)
        #expect(moved.index == 3 && moved.spec == specs[29], "at another position it keeps its own spec")
    }

    @Test func theActivityIsCopiedOnWrite() {
        var a = EpisodeRecord(index: 0, id: "e", spec: EpisodeSpec(topic: "t"))
        let fresh = a
        a.session = nil
        a.errors = []
        #expect(a == fresh && a.activity == .none, "setting nothing allocates nothing")
        a.workerId = "w1"
        a.errors.append("attempt 1 failed")
        var b = a
        b.errors.append("attempt 2 failed")
        b.workerId = "w2"
        #expect(a.errors == ["attempt 1 failed"] && a.workerId == "w1")
        #expect(b.errors.count == 2 && b.workerId == "w2")
        #expect(a != b && a != fresh)
    }
}

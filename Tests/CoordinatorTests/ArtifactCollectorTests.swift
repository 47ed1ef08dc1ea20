import Crypto
import Foundation
import Protocol
import Shared
import Testing

@testable import Coordinator

/// Bytes whose digest the tests know.
func digest(_ bytes: [UInt8]) -> String { DurableFiles.hex(SHA256.hash(data: bytes)) }

/// The collector driven with stepped time and a pretend disk.
@Suite("Artifact collector: credit, order, digests, give-ups")
struct ArtifactCollectorTests {
    let t0 = ContinuousClock.now
    let kib = 1024

    func settings(credit: Int = 4, maxTransfers: Int = 2) -> ArtifactSettings {
        var s = ArtifactSettings()
        s.chunkBytes = 256 * kib
        s.credit = credit
        s.maxTransfers = maxTransfers
        s.stallTimeout = .seconds(30)
        s.maxFileRetries = 2
        return s
    }

    func offer(_ episode: String = "e1", files: [ArtifactFile]) -> EpisodeResult {
        EpisodeResult(
            episodeId: episode,
            attempt: 1,
            status: .succeeded,
            durationMs: 10,
            artifacts: files,
            delivery: .transfer
        )
    }

    func fetches(_ outputs: [ArtifactCollector.Output]) -> [ArtifactFetch] {
        outputs.compactMap { if case .fetch(_, let f) = $0 { return f } else { return nil } }
    }

    func writes(_ outputs: [ArtifactCollector.Output]) -> [(id: Int, name: String, offset: Int, last: Bool)] {
        outputs.compactMap {
            if case .store(.write(let id, let file, let offset, _, let last)) = $0 {
                return (id, file.name, offset, last)
            }
            return nil
        }
    }

    func chunk(_ f: ArtifactFetch, _ data: [UInt8]? = nil) -> ArtifactChunk {
        ArtifactChunk(
            episodeId: f.episodeId,
            attempt: f.attempt,
            name: f.name,
            offset: f.offset,
            data: data ?? Array(repeating: 1, count: f.length)
        )
    }

    @Test("never more chunks outstanding than the credit; a credit comes back only once a chunk is on disk")
    func creditBoundsOutstandingChunks() {
        var c = ArtifactCollector(settings: settings(credit: 4))
        let big = ArtifactFile(name: "episode.mp4", size: 10 * 256 * kib + 5, sha256: digest([]))
        let start = c.begin(offer(files: [big]), session: "s", now: t0)
        #expect(start.first == .store(.begin(id: 1, ref: JobRef(episodeId: "e1", attempt: 1))))
        var due = fetches(start)
        #expect(due.map(\.offset) == [0, 1, 2, 3].map { $0 * 256 * kib })
        // A chunk arrives: handed to the disk, but no new fetch until the disk says it is written.
        let first = c.onChunk(chunk(due.removeFirst()), session: "s", now: t0)
        #expect(fetches(first).isEmpty)
        #expect(writes(first).map(\.offset) == [0])
        let refill = c.onEvent(.written(id: 1), now: t0)
        #expect(fetches(refill).map(\.offset) == [4 * 256 * kib])
        // The last piece is short (5 bytes) and marked last.
        due += fetches(refill)
        var outstanding = due
        var lastWrite: (id: Int, name: String, offset: Int, last: Bool)?
        var maxOutstanding = outstanding.count
        while let next = outstanding.first {
            outstanding.removeFirst()
            let out = c.onChunk(chunk(next), session: "s", now: t0)
            lastWrite = writes(out).last
            let event: ArtifactEvent = lastWrite!.last ? .fileStored(id: 1, name: big.name) : .written(id: 1)
            outstanding += fetches(c.onEvent(event, now: t0))
            maxOutstanding = max(maxOutstanding, outstanding.count)
        }
        #expect(maxOutstanding <= 4)
        #expect(lastWrite?.offset == 10 * 256 * kib && lastWrite?.last == true)
        #expect(c.counters.bytesReceived == big.size)
    }

    @Test("every file stored → publish → the episode is stored, with its result")
    func happyPath() {
        var c = ArtifactCollector(settings: settings())
        let files = [
            ArtifactFile(name: "a.wav", size: 3, sha256: digest([1, 1, 1])),
            ArtifactFile(name: "empty.txt", size: 0, sha256: digest([])),
        ]
        let result = offer(files: files)
        var due = fetches(c.begin(result, session: "s", now: t0))
        #expect(due.map(\.length) == [3, 0], "a zero-byte file is fetched once, with length 0")
        var outputs: [ArtifactCollector.Output] = []
        while !due.isEmpty {
            let f = due.removeFirst()
            _ = c.onChunk(chunk(f), session: "s", now: t0)
            outputs = c.onEvent(.fileStored(id: 1, name: f.name), now: t0)
            due += fetches(outputs)
        }
        #expect(outputs == [.store(.publish(id: 1, ref: result.ref))])
        #expect(c.isCollecting("e1"))
        let done = c.onEvent(.published(id: 1), now: t0)
        #expect(done == [.stored(result.ref, session: "s", result)])
        #expect(!c.isCollecting("e1"))
        #expect(c.counters.episodesStored == 1 && c.counters.filesStored == 2)
    }

    @Test("a digest mismatch fetches the file again, and gives up after the allowed retries")
    func corruptFileIsFetchedAgainThenGivenUp() {
        var c = ArtifactCollector(settings: settings())
        let file = ArtifactFile(name: "a.wav", size: 3, sha256: digest([1, 2, 3]))
        var due = fetches(c.begin(offer(files: [file]), session: "s", now: t0))
        for round in 1...3 {
            #expect(due.count == 1, "round \(round)")
            _ = c.onChunk(chunk(due.removeFirst()), session: "s", now: t0)
            let out = c.onEvent(.fileCorrupt(id: 1, name: "a.wav", actual: digest([1, 1, 1])), now: t0)
            due = fetches(out)
            if round == 3 {
                #expect(out.contains(.store(.discard(id: 1))))
                #expect(
                    out.contains {
                        if case .failed(_, "s", let reason) = $0 { return reason.contains("a.wav") }
                        return false
                    }
                )
            }
        }
        #expect(c.counters.checksumMismatches == 3 && c.counters.transfersFailed == 1)
        #expect(!c.isCollecting("e1"))
    }

    @Test("a chunk out of order, of the wrong length, or with an error ends the transfer")
    func faultsOfTheSenderEndTheTransfer() {
        let file = ArtifactFile(name: "a.wav", size: 600 * kib, sha256: digest([]))
        for fault in ["order", "length", "error"] {
            var c = ArtifactCollector(settings: settings())
            let due = fetches(c.begin(offer(files: [file]), session: "s", now: t0))
            let bad: ArtifactChunk
            switch fault {
            case "order": bad = chunk(due[1])
            case "length": bad = chunk(due[0], [1, 2])
            default:
                bad = ArtifactChunk(episodeId: "e1", attempt: 1, name: "a.wav", offset: 0, error: "disk gone", data: [])
            }
            let out = c.onChunk(bad, session: "s", now: t0)
            #expect(out.contains { if case .failed = $0 { true } else { false } }, "\(fault)")
            #expect(!c.isCollecting("e1"), "\(fault)")
        }
    }

    @Test("a chunk from another session, or for no transfer, is counted and changes nothing")
    func staleChunks() {
        var c = ArtifactCollector(settings: settings())
        let file = ArtifactFile(name: "a.wav", size: 3, sha256: digest([1, 1, 1]))
        let due = fetches(c.begin(offer(files: [file]), session: "s", now: t0))
        let foreign = c.onChunk(chunk(due[0]), session: "other", now: t0)
        #expect(foreign.count == 1 && c.counters.staleChunks == 1)
        #expect(writes(foreign).isEmpty)
        // The rightful chunk still goes through.
        #expect(writes(c.onChunk(chunk(due[0]), session: "s", now: t0)).count == 1)
    }

    @Test("at most maxTransfers run at once; the next starts when one ends")
    func transfersQueue() {
        var c = ArtifactCollector(settings: settings(maxTransfers: 2))
        let file = ArtifactFile(name: "a.wav", size: 3, sha256: digest([1, 1, 1]))
        for e in ["e1", "e2", "e3"] { _ = c.begin(offer(e, files: [file]), session: "s", now: t0) }
        #expect(c.activeCount == 2)
        let third = c.abort(session: "nobody", now: t0)
        #expect(third.isEmpty)
        // e1 ends (given up by a stall): e3 starts.
        let later = c.onTick(now: t0 + .seconds(31))
        #expect(later.contains(.store(.begin(id: 3, ref: JobRef(episodeId: "e3", attempt: 1)))))
        #expect(c.counters.transfersFailed == 2, "e1 and e2 stalled")
    }

    @Test("a lost worker's transfers are dropped; what they pulled is parked for a resume")
    func abortParks() {
        var c = ArtifactCollector(settings: settings())
        let file = ArtifactFile(name: "a.wav", size: 3, sha256: digest([1, 1, 1]))
        _ = c.begin(offer(files: [file]), session: "s", now: t0)
        #expect(c.refs(of: "s") == [JobRef(episodeId: "e1", attempt: 1)])
        #expect(c.abort(session: "s", now: t0).isEmpty)
        #expect(c.refs(of: "s").isEmpty && c.counters.transfersAborted == 1)
        #expect(c.parkedRefs == [JobRef(episodeId: "e1", attempt: 1)])
        // The disk's late event for it is kept for the resume, and starts nothing.
        #expect(c.onEvent(.fileStored(id: 1, name: "a.wav"), now: t0).isEmpty)
        // Another attempt of the episode is offered: the parked one's folder goes.
        var second = offer(files: [file])
        second.attempt = 2
        #expect(c.begin(second, session: "s2", now: t0).first == .store(.discard(id: 1)))
    }

    @Test("shared delivery: nothing is fetched, the disk checks the published folder")
    func sharedDelivery() {
        var c = ArtifactCollector(settings: settings())
        var result = offer(files: [ArtifactFile(name: "a.wav", size: 3, sha256: digest([1, 1, 1]))])
        result.delivery = .shared
        let out = c.begin(result, session: "s", now: t0)
        #expect(out == [.store(.verifyShared(id: 1, ref: result.ref, files: result.artifacts))])
        #expect(c.onEvent(.published(id: 1), now: t0) == [.stored(result.ref, session: "s", result)])
    }
}

@Suite("Artifact store: temp file, digest, fsync, rename")
struct ArtifactStoreTests {
    let ref = JobRef(episodeId: "episode_1", attempt: 2)

    func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("reelfarm-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test("chunks become a checked file; the folder is published whole and replaces an older one")
    func writeAndPublish() throws {
        let batch = try folder()
        defer { try? FileManager.default.removeItem(at: batch) }
        let store = ArtifactStore(batchFolder: batch)
        let bytes: [UInt8] = Array(0..<200).map { UInt8($0) }
        let file = ArtifactFile(name: "a.wav", size: bytes.count, sha256: digest(bytes))
        #expect(store.perform(.begin(id: 7, ref: ref)) == nil)
        #expect(
            store.perform(.write(id: 7, file: file, offset: 0, bytes: Array(bytes[0..<150]), last: false))
                == .written(id: 7)
        )
        // Nothing is visible under the episode's name before the publish.
        #expect(!FileManager.default.fileExists(atPath: batch.appendingPathComponent("episode_1").path))
        #expect(
            store.perform(.write(id: 7, file: file, offset: 150, bytes: Array(bytes[150...]), last: true))
                == .fileStored(id: 7, name: "a.wav")
        )
        // An older copy is replaced.
        let old = batch.appendingPathComponent("episode_1")
        try FileManager.default.createDirectory(at: old, withIntermediateDirectories: true)
        try Data("old".utf8).write(to: old.appendingPathComponent("stale.txt"))
        #expect(store.perform(.publish(id: 7, ref: ref)) == .published(id: 7))
        let stored = try Data(contentsOf: old.appendingPathComponent("a.wav"))
        #expect(Array(stored) == bytes)
        #expect(!FileManager.default.fileExists(atPath: old.appendingPathComponent("stale.txt").path))
        #expect(!FileManager.default.fileExists(atPath: store.incomingFolder.path), "empty .incoming is removed")
    }

    @Test("a digest mismatch deletes the partial file and says so")
    func corrupt() throws {
        let batch = try folder()
        defer { try? FileManager.default.removeItem(at: batch) }
        let store = ArtifactStore(batchFolder: batch)
        let file = ArtifactFile(name: "a.wav", size: 3, sha256: digest([1, 2, 3]))
        _ = store.perform(.begin(id: 1, ref: ref))
        let event = store.perform(.write(id: 1, file: file, offset: 0, bytes: [1, 2, 4], last: true))
        #expect(event == .fileCorrupt(id: 1, name: "a.wav", actual: digest([1, 2, 4])))
        let incoming = try FileManager.default.contentsOfDirectory(
            atPath: store.incomingFolder.appendingPathComponent("episode_1-attempt-2-1").path
        )
        #expect(incoming.isEmpty)
        // Fetched again from offset 0, it is accepted.
        #expect(
            store.perform(.write(id: 1, file: file, offset: 0, bytes: [1, 2, 3], last: true))
                == .fileStored(id: 1, name: "a.wav")
        )
        _ = store.perform(.discard(id: 1))
        #expect(
            !FileManager.default.fileExists(
                atPath: store.incomingFolder.appendingPathComponent("episode_1-attempt-2-1").path
            )
        )
    }

    @Test("a chunk that does not continue the open file fails the transfer")
    func gap() throws {
        let batch = try folder()
        defer { try? FileManager.default.removeItem(at: batch) }
        let store = ArtifactStore(batchFolder: batch)
        let file = ArtifactFile(name: "a.wav", size: 9, sha256: digest([]))
        _ = store.perform(.begin(id: 1, ref: ref))
        _ = store.perform(.write(id: 1, file: file, offset: 0, bytes: [1, 2, 3], last: false))
        let event = store.perform(.write(id: 1, file: file, offset: 6, bytes: [1, 2, 3], last: true))
        #expect({ if case .failed(1, _) = event { true } else { false } }())
    }

    @Test("shared delivery is checked: present and matching, missing, or different")
    func verifyShared() throws {
        let batch = try folder()
        defer { try? FileManager.default.removeItem(at: batch) }
        let store = ArtifactStore(batchFolder: batch)
        let episode = batch.appendingPathComponent("episode_1")
        try FileManager.default.createDirectory(at: episode, withIntermediateDirectories: true)
        try Data([1, 2, 3]).write(to: episode.appendingPathComponent("a.wav"))
        let good = ArtifactFile(name: "a.wav", size: 3, sha256: digest([1, 2, 3]))
        #expect(store.perform(.verifyShared(id: 1, ref: ref, files: [good])) == .published(id: 1))
        let missing = ArtifactFile(name: "b.wav", size: 3, sha256: digest([1, 2, 3]))
        let event = store.perform(.verifyShared(id: 2, ref: ref, files: [good, missing]))
        #expect(
            { if case .failed(2, let e) = event { e.contains("missing") && e.contains("shared") } else { false } }()
        )
        let different = ArtifactFile(name: "a.wav", size: 3, sha256: digest([9]))
        let other = store.perform(.verifyShared(id: 3, ref: ref, files: [different]))
        #expect({ if case .failed(3, let e) = other { e.contains("SHA-256") } else { false } }())
    }
}

import Crypto
import Foundation
import Protocol
import Shared

/// The coordinator's content-addressed store of paid provider answers (PROTOCOL §18): the voice clips,
/// images and scripts workers paid for, kept so that no retry, resumed batch or re-run pays for the same
/// request twice.
///
/// The key is the worker's SHA-256 of the request's identity (method, URL, `Accept`, body: provider,
/// model, voice, size, quality and the exact input text); the value is the answer's bytes, its SHA-256
/// and `Content-Type`. On disk, in one folder: `<key>.bin` (the answer) beside `<key>.json` (what it is),
/// answers being received in `.incoming/`. Bounded by ``Settings/maxBytes``: the least recently used
/// answers are evicted first.
///
/// Not thread-safe: owned by the coordinator's asset task (``AssetService``), which alone calls it.
/// Nothing here is synced to disk: an answer lost in a crash is paid for again, and every answer is
/// checked against its SHA-256 before it is served, so a damaged file is dropped, never handed out.
final class AssetStore {
    struct Settings: Sendable {
        var folder: URL
        /// Answers beyond this many bytes in total evict the least recently used. Default 2 GiB.
        var maxBytes: Int = 2 << 30
        /// An answer being received that gets no chunk for this long is dropped.
        var uploadTimeout: Duration = .seconds(300)
        /// At most this many answers are received at once; more offers are refused.
        var maxUploads = 64
    }

    struct Entry: Codable, Sendable, Equatable {
        var key: String
        var size: Int
        var sha256: String
        var contentType: String?
        var service: String
        var storedAt: Date
        /// Not in the `.json`: the `.bin`'s modification time, set on every hit.
        var lastUsed: Date

        enum CodingKeys: String, CodingKey {
            case key, size, sha256, service
            case contentType = "content_type"
            case storedAt = "stored_at"
        }

        init(key: String, size: Int, sha256: String, contentType: String?, service: String, storedAt: Date) {
            self.key = key
            self.size = size
            self.sha256 = sha256
            self.contentType = contentType
            self.service = service
            self.storedAt = storedAt
            self.lastUsed = storedAt
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            key = try c.decode(String.self, forKey: .key)
            size = try c.decode(Int.self, forKey: .size)
            sha256 = try c.decode(String.self, forKey: .sha256)
            contentType = try c.decodeIfPresent(String.self, forKey: .contentType)
            service = try c.decode(String.self, forKey: .service)
            storedAt = try c.decode(Date.self, forKey: .storedAt)
            lastUsed = storedAt
        }
    }

    /// What the store did, for logs, `/metrics` and the status API.
    struct Stats: Sendable, Equatable {
        var entries = 0
        var bytes = 0
        /// Gets answered with an answer (counted once per answer served, at offset 0).
        var hits = 0
        var misses = 0
        var stored = 0
        var evicted = 0
        /// Offers refused: a checksum that did not match, chunks out of order, too big, too many at once.
        var refused = 0
        /// Stored answers found damaged (checksum, unreadable) and dropped.
        var damaged = 0
    }

    /// How an ASSET_PUT chunk was taken.
    enum PutOutcome: Equatable, Sendable {
        case receiving
        case stored(Entry)
        /// The key was already stored; the offer is ignored.
        case known
        case refused(String)
    }

    let settings: Settings
    private var counters = Stats()
    /// What the store holds and did so far (`entries` is counted when asked).
    var stats: Stats {
        var s = counters
        s.entries = entries.count
        return s
    }
    private var entries: [String: Entry] = [:]
    private var uploads: [UploadKey: Upload] = [:]
    private let files = FileManager.default

    private struct UploadKey: Hashable {
        var session: String
        var key: String
    }

    private struct Upload {
        var put: AssetPut
        var handle: FileHandle
        var path: URL
        var received: Int
        var hasher: SHA256
        var lastChunk: ContinuousClock.Instant
    }

    private var incoming: URL { settings.folder.appendingPathComponent(".incoming", isDirectory: true) }

    /// Opens (or creates) the store: reads the `.json` of every answer whose `.bin` has the recorded size,
    /// drops the rest and whatever was being received when the last coordinator stopped, then evicts down
    /// to the bound.
    init(settings: Settings) throws {
        self.settings = settings
        try files.createDirectory(at: settings.folder, withIntermediateDirectories: true)
        try? files.removeItem(at: incoming)
        try files.createDirectory(at: incoming, withIntermediateDirectories: true)
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let names = (try? files.contentsOfDirectory(atPath: settings.folder.path)) ?? []
        for name in names where name.hasSuffix(".json") {
            let key = String(name.dropLast(5))
            guard Self.isKey(key) else { continue }
            let meta = settings.folder.appendingPathComponent(name)
            let bin = binPath(key)
            guard let data = try? Data(contentsOf: meta), data.count <= 4096,
                var entry = try? decoder.decode(Entry.self, from: data), entry.key == key,
                let attributes = try? files.attributesOfItem(atPath: bin.path),
                (attributes[.size] as? NSNumber)?.intValue == entry.size
            else {
                try? files.removeItem(at: meta)
                try? files.removeItem(at: bin)
                continue
            }
            entry.lastUsed = (attributes[.modificationDate] as? Date) ?? entry.storedAt
            entries[key] = entry
            counters.bytes += entry.size
        }
        evict(keeping: nil)
    }

    /// Whether `key` is a store key: 64 lowercase hex characters.
    static func isKey(_ key: String) -> Bool {
        key.utf8.count == 64 && key.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    func entry(_ key: String) -> Entry? { entries[key] }

    // MARK: - Get

    /// The answer to one ASSET_GET. The first chunk of an answer (offset 0) checks the whole file against
    /// its SHA-256 and counts a hit; a damaged or unreadable answer is dropped and reported as not found.
    func get(_ get: AssetGet, now: Date = Date()) -> AssetData {
        let miss = AssetData(requestId: get.requestId, key: get.key, found: false)
        guard let entry = entries[get.key], get.offset <= entry.size else {
            if get.offset == 0 { counters.misses += 1 }
            return miss
        }
        let bin = binPath(get.key)
        let length = min(get.length, entry.size - get.offset)
        let bytes: [UInt8]
        do {
            if get.offset == 0 {
                // The first chunk checks the whole answer (read once; at most 64 MiB) before any byte leaves.
                let whole = try Data(contentsOf: bin)
                guard whole.count == entry.size, DurableFiles.sha256(whole) == entry.sha256 else {
                    throw CocoaError(.fileReadCorruptFile)
                }
                bytes = [UInt8](whole.prefix(length))
                counters.hits += 1
                entries[get.key]?.lastUsed = now
                try? files.setAttributes([.modificationDate: now], ofItemAtPath: bin.path)
            } else {
                bytes = try DurableFiles.read(bin, offset: get.offset, length: length)
                guard bytes.count == length else { throw CocoaError(.fileReadCorruptFile) }
            }
        } catch {
            counters.damaged += 1
            if get.offset == 0 { counters.misses += 1 }
            remove(get.key)
            return miss
        }
        return AssetData(
            requestId: get.requestId,
            key: get.key,
            found: true,
            size: entry.size,
            sha256: entry.sha256,
            contentType: entry.contentType,
            offset: get.offset,
            data: bytes
        )
    }

    // MARK: - Put

    /// Takes one ASSET_PUT chunk from the worker of `session`. Chunks of one answer come in order from
    /// offset 0; a chunk at another offset than the next one drops what was received (the worker's later
    /// offer starts again at 0). The answer is kept once `size` bytes came and their SHA-256 matches.
    func put(_ put: AssetPut, session: String, now: ContinuousClock.Instant) -> PutOutcome {
        dropStaleUploads(now: now)
        let id = UploadKey(session: session, key: put.key)
        if put.offset == 0 {
            if let old = uploads.removeValue(forKey: id) { discard(old) }
            if entries[put.key] != nil { return .known }
            guard put.size <= settings.maxBytes else {
                return refuse("\(put.size) bytes is more than the store's \(settings.maxBytes)")
            }
            guard uploads.count < settings.maxUploads else {
                return refuse("\(settings.maxUploads) answers are being received already")
            }
            let path = incoming.appendingPathComponent(
                "\(put.key).\(uploads.count).\(UInt32.random(in: 0...UInt32.max))"
            )
            guard files.createFile(atPath: path.path, contents: nil),
                let handle = try? FileHandle(forWritingTo: path)
            else {
                return refuse("cannot create a file in \(incoming.path)")
            }
            uploads[id] = Upload(put: put, handle: handle, path: path, received: 0, hasher: SHA256(), lastChunk: now)
        }
        guard var upload = uploads[id] else {
            // The start of this answer was lost, refused or timed out: nothing to add to.
            if entries[put.key] != nil { return .known }
            return refuse("no answer of this key is being received")
        }
        guard put.offset == upload.received, put.size == upload.put.size, put.sha256 == upload.put.sha256 else {
            uploads[id] = nil
            discard(upload)
            return refuse("chunk at \(put.offset) where \(upload.received) was expected")
        }
        do {
            try upload.handle.write(contentsOf: put.data)
        } catch {
            uploads[id] = nil
            discard(upload)
            return refuse("cannot write: \(error)")
        }
        upload.hasher.update(data: put.data)
        upload.received += put.data.count
        upload.lastChunk = now
        guard upload.received >= upload.put.size else {
            uploads[id] = upload
            return .receiving
        }
        uploads[id] = nil
        try? upload.handle.close()
        let digest = DurableFiles.hex(upload.hasher.finalize())
        guard digest == upload.put.sha256 else {
            try? files.removeItem(at: upload.path)
            return refuse("SHA-256 \(digest) of the bytes received is not the \(upload.put.sha256) announced")
        }
        if entries[put.key] != nil {
            // Another worker's offer of the same answer finished first.
            try? files.removeItem(at: upload.path)
            return .known
        }
        let entry = Entry(
            key: put.key,
            size: upload.put.size,
            sha256: digest,
            contentType: upload.put.contentType,
            service: upload.put.service,
            storedAt: Date()
        )
        do {
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            encoder.outputFormatting = [.sortedKeys]
            try? files.removeItem(at: binPath(put.key))
            try files.moveItem(at: upload.path, to: binPath(put.key))
            try encoder.encode(entry).write(to: metaPath(put.key), options: .atomic)
        } catch {
            try? files.removeItem(at: upload.path)
            try? files.removeItem(at: binPath(put.key))
            return refuse("cannot store: \(error)")
        }
        entries[put.key] = entry
        counters.stored += 1
        counters.bytes += entry.size
        evict(keeping: put.key)
        return .stored(entry)
    }

    /// Drops what the worker of `session` was sending (its session ended).
    func sessionEnded(_ session: String) {
        for (id, upload) in uploads where id.session == session {
            uploads[id] = nil
            discard(upload)
        }
    }

    // MARK: - Helpers

    private func refuse(_ why: String) -> PutOutcome {
        counters.refused += 1
        return .refused(why)
    }

    private func dropStaleUploads(now: ContinuousClock.Instant) {
        for (id, upload) in uploads where now - upload.lastChunk > settings.uploadTimeout {
            uploads[id] = nil
            discard(upload)
        }
    }

    private func discard(_ upload: Upload) {
        try? upload.handle.close()
        try? files.removeItem(at: upload.path)
    }

    /// Evicts the least recently used answers (never `keeping`) until the store fits its bound.
    private func evict(keeping: String?) {
        guard counters.bytes > settings.maxBytes else { return }
        let order = entries.values.sorted { ($0.lastUsed, $0.key) < ($1.lastUsed, $1.key) }
        for entry in order where counters.bytes > settings.maxBytes && entry.key != keeping {
            remove(entry.key)
            counters.evicted += 1
        }
    }

    private func remove(_ key: String) {
        guard let entry = entries.removeValue(forKey: key) else { return }
        counters.bytes -= entry.size
        try? files.removeItem(at: metaPath(key))
        try? files.removeItem(at: binPath(key))
    }

    private func binPath(_ key: String) -> URL { settings.folder.appendingPathComponent("\(key).bin") }
    private func metaPath(_ key: String) -> URL { settings.folder.appendingPathComponent("\(key).json") }
}

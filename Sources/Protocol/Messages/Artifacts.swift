/// Minor 2: moving an episode's files from the worker that made them to the coordinator (PROTOCOL §17).
///
/// The successful RESULT is the offer: it lists the files (``ArtifactFile``). The coordinator pulls them
/// with ARTIFACT_FETCH, never more chunks outstanding than its credit, the worker answers each fetch
/// with one ARTIFACT_CHUNK whose bytes travel raw in frame F4, and once every file is checked against
/// its SHA-256 and durable the coordinator sends ARTIFACT_ACK: only then may the worker delete them.

/// One file of an episode, as listed in a RESULT.
public struct ArtifactFile: Codable, Sendable, Equatable, Hashable {
    /// The file's name inside the episode folder, e.g. `episode.mp4` (no folders: §17.1).
    public var name: String
    /// Its length in bytes.
    public var size: Int
    /// Lowercase hex SHA-256 of its bytes (64 characters).
    public var sha256: String

    public init(name: String, size: Int, sha256: String) {
        self.name = name
        self.size = size
        self.sha256 = sha256
    }
}

/// How a successful attempt's files reach the coordinator.
public enum ArtifactDelivery: String, Codable, Sendable, CaseIterable {
    /// The worker keeps the files until the coordinator has pulled them (ARTIFACT_FETCH) and says so
    /// (ARTIFACT_ACK).
    case transfer
    /// The worker already published them in the batch's output folder, on a file system it shares with
    /// the coordinator; the coordinator checks that they are there.
    case shared
}

/// ARTIFACT_FETCH (coordinator → worker): send `length` bytes of a file from `offset`.
public struct ArtifactFetch: Codable, Sendable, Equatable {
    public var episodeId: String
    public var attempt: Int
    public var name: String
    public var offset: Int
    public var length: Int

    public init(episodeId: String, attempt: Int, name: String, offset: Int, length: Int) {
        self.episodeId = episodeId
        self.attempt = attempt
        self.name = name
        self.offset = offset
        self.length = length
    }

    public var ref: JobRef { JobRef(episodeId: episodeId, attempt: attempt) }
}

/// ARTIFACT_CHUNK (worker → coordinator): the answer to one ARTIFACT_FETCH. ``data`` is frame F4, not
/// part of the JSON body; it holds `min(length, size - offset)` bytes, or none with ``error`` set.
public struct ArtifactChunk: Codable, Sendable, Equatable {
    public var episodeId: String
    public var attempt: Int
    public var name: String
    public var offset: Int
    /// Set when the worker cannot read the file (it was deleted, the disk failed); F4 is then empty.
    public var error: String?
    /// The bytes (frame F4).
    public var data: [UInt8]

    public init(episodeId: String, attempt: Int, name: String, offset: Int, error: String? = nil, data: [UInt8]) {
        self.episodeId = episodeId
        self.attempt = attempt
        self.name = name
        self.offset = offset
        self.error = error
        self.data = data
    }

    public var ref: JobRef { JobRef(episodeId: episodeId, attempt: attempt) }

    enum CodingKeys: String, CodingKey {
        case episodeId, attempt, name, offset, error
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        episodeId = try c.decode(String.self, forKey: .episodeId)
        attempt = try c.decode(Int.self, forKey: .attempt)
        name = try c.decode(String.self, forKey: .name)
        offset = try c.decode(Int.self, forKey: .offset)
        error = try c.decodeIfPresent(String.self, forKey: .error)
        data = []
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(episodeId, forKey: .episodeId)
        try c.encode(attempt, forKey: .attempt)
        try c.encode(name, forKey: .name)
        try c.encode(offset, forKey: .offset)
        try c.encodeIfPresent(error, forKey: .error)
    }
}

/// ARTIFACT_ACK (coordinator → worker): every file of the attempt is stored, checked and durable, and
/// the episode is recorded; the worker may delete its copy.
public struct ArtifactAck: Codable, Sendable, Equatable {
    public var episodeId: String
    public var attempt: Int

    public init(episodeId: String, attempt: Int) {
        self.episodeId = episodeId
        self.attempt = attempt
    }

    public var ref: JobRef { JobRef(episodeId: episodeId, attempt: attempt) }
}

extension ArtifactFile {
    /// Whether `name` may name an artifact: 1…128 characters of `A-Z a-z 0-9 . _ -`, no leading dot.
    public static func isValidName(_ name: String) -> Bool {
        do throws(DecodeError) {
            try Validation.artifactName(name, "name")
            return true
        } catch {
            return false
        }
    }
}

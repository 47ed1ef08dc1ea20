/// Minor 5: reusing paid assets through the coordinator's asset store (PROTOCOL §18).
///
/// A worker that got a provider's successful answer offers it (ASSET_PUT, in chunks); before it sends a
/// request to a provider it asks whether the store holds the answer to exactly that request (ASSET_GET),
/// and the coordinator answers with ASSET_DATA. The key is the lowercase hex SHA-256 of the request's
/// identity (method, URL, `Accept` and body: provider, model, voice, size, quality and the exact input
/// text), computed by the worker (§18.1). Both directions are best effort: a lost PUT only means a later
/// call is paid again, a lost GET is a miss.

/// ASSET_GET (worker → coordinator): send `length` bytes of the stored answer for `key` from `offset`.
public struct AssetGet: Codable, Sendable, Equatable {
    /// Chosen by the worker, echoed in the ASSET_DATA; unique among its unanswered gets.
    public var requestId: Int
    public var key: String
    public var offset: Int
    public var length: Int

    public init(requestId: Int, key: String, offset: Int = 0, length: Int) {
        self.requestId = requestId
        self.key = key
        self.offset = offset
        self.length = length
    }
}

/// ASSET_DATA (coordinator → worker): the answer to one ASSET_GET. The bytes travel raw in frame F4:
/// `min(length, size - offset)` of them when `found`, none otherwise.
public struct AssetData: Codable, Sendable, Equatable {
    public var requestId: Int
    public var key: String
    /// Whether the store holds the key (and could read it). `false`: call the provider.
    public var found: Bool
    /// The stored answer's length in bytes (0 when not found).
    public var size: Int
    /// Lowercase hex SHA-256 of the whole stored answer; the worker checks it once it has every byte.
    public var sha256: String?
    /// The answer's `Content-Type` as the provider sent it.
    public var contentType: String?
    public var offset: Int
    /// The bytes (frame F4).
    public var data: [UInt8]

    public init(
        requestId: Int,
        key: String,
        found: Bool,
        size: Int = 0,
        sha256: String? = nil,
        contentType: String? = nil,
        offset: Int = 0,
        data: [UInt8] = []
    ) {
        self.requestId = requestId
        self.key = key
        self.found = found
        self.size = size
        self.sha256 = sha256
        self.contentType = contentType
        self.offset = offset
        self.data = data
    }

    enum CodingKeys: String, CodingKey {
        case requestId, key, found, size, sha256, contentType, offset
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        requestId = try c.decode(Int.self, forKey: .requestId)
        key = try c.decode(String.self, forKey: .key)
        found = try c.decode(Bool.self, forKey: .found)
        size = try c.decode(Int.self, forKey: .size)
        sha256 = try c.decodeIfPresent(String.self, forKey: .sha256)
        contentType = try c.decodeIfPresent(String.self, forKey: .contentType)
        offset = try c.decode(Int.self, forKey: .offset)
        data = []
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(requestId, forKey: .requestId)
        try c.encode(key, forKey: .key)
        try c.encode(found, forKey: .found)
        try c.encode(size, forKey: .size)
        try c.encodeIfPresent(sha256, forKey: .sha256)
        try c.encodeIfPresent(contentType, forKey: .contentType)
        try c.encode(offset, forKey: .offset)
    }
}

/// ASSET_PUT (worker → coordinator): one chunk of a paid answer offered to the store, in order from
/// offset 0; the bytes travel raw in frame F4. The coordinator keeps the answer once `size` bytes have
/// come and their SHA-256 is `sha256`. No reply.
public struct AssetPut: Codable, Sendable, Equatable {
    public var key: String
    public var size: Int
    public var sha256: String
    public var contentType: String?
    /// What made it, for the store's listing: `openai speech`, `elevenlabs`, …
    public var service: String
    public var offset: Int
    /// The bytes (frame F4).
    public var data: [UInt8]

    public init(
        key: String,
        size: Int,
        sha256: String,
        contentType: String? = nil,
        service: String,
        offset: Int = 0,
        data: [UInt8] = []
    ) {
        self.key = key
        self.size = size
        self.sha256 = sha256
        self.contentType = contentType
        self.service = service
        self.offset = offset
        self.data = data
    }

    enum CodingKeys: String, CodingKey {
        case key, size, sha256, contentType, service, offset
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        key = try c.decode(String.self, forKey: .key)
        size = try c.decode(Int.self, forKey: .size)
        sha256 = try c.decode(String.self, forKey: .sha256)
        contentType = try c.decodeIfPresent(String.self, forKey: .contentType)
        service = try c.decode(String.self, forKey: .service)
        offset = try c.decode(Int.self, forKey: .offset)
        data = []
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(key, forKey: .key)
        try c.encode(size, forKey: .size)
        try c.encode(sha256, forKey: .sha256)
        try c.encodeIfPresent(contentType, forKey: .contentType)
        try c.encode(service, forKey: .service)
        try c.encode(offset, forKey: .offset)
    }
}

/// Constants of the Reelfarm worker protocol, version 1. `docs/PROTOCOL.md` is the normative text.
public enum WireProtocol {
    /// Frame 0 of every message: protocol identifier and major version, as ASCII bytes.
    public static let identifier: [UInt8] = Array("reelfarm/1".utf8)
    /// The prefix shared by every major version, used to tell "another version" from "not us".
    public static let identifierPrefix: [UInt8] = Array("reelfarm/".utf8)
    /// The major version carried in frame 0. A peer with another major version is refused.
    public static let majorVersion = 1
    /// The minor version this build speaks. Minor versions only add optional body keys and message kinds.
    public static let minorVersion = 5

    /// The largest JSON body (frame 3) a receiver accepts, in bytes.
    public static let maxBodyBytes = 1 << 20
    /// The longest session token (frame 2), in bytes.
    public static let maxSessionBytes = 64
    /// The most frames a message may have (4 fixed frames plus blob frames).
    public static let maxFrames = 4 + 16
    /// The largest whole message in bytes; the sockets' `ZMQ_MAXMSGSIZE` is set to this.
    public static let maxMessageBytes = 16 << 20
    /// The longest identifier (worker id, episode id, batch id) in UTF-8 bytes.
    public static let maxIdentifierBytes = 128
    /// The largest chunk of a file in one ARTIFACT_CHUNK (its frame F4), in bytes.
    public static let maxChunkBytes = 4 << 20
    /// The most files one attempt may offer, and the largest file, in bytes.
    public static let maxArtifacts = 1000
    public static let maxArtifactBytes = 1 << 40
    /// Minor 5: the largest provider answer the asset store takes (ASSET_PUT `size`), in bytes.
    public static let maxAssetBytes = 64 << 20
    /// The longest free text (topic, error, reason, detail) in UTF-8 bytes.
    public static let maxTextBytes = 4096
}

import CZMQ
import Foundation

/// CURVE keys (libzmq's CurveZMQ: Curve25519, encrypted and authenticated connections), as the 40-character
/// Z85 text that libzmq's options take.
///
/// Key files are plain text, one `key: value` per line, `#` comments allowed:
///
/// ```
/// # reelfarm CURVE key pair: keep this file secret (mode 0600)
/// public-key: rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7
/// secret-key: JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6
/// ```
///
/// `NAME.key_secret` holds both keys, `NAME.key` only the public one (safe to copy to other boxes). An
/// allow-list is a file with one public key per line (a bare key or `public-key: KEY`, optionally followed
/// by a name), or a folder of `*.key` files.
public struct CurveKeyPair: Sendable, Equatable {
    public let publicKey: String
    public let secretKey: String?

    public init(publicKey: String, secretKey: String?) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// A new key pair from libzmq's `zmq_curve_keypair` (the system's random source).
    public static func generate() throws(ConfigurationError) -> CurveKeyPair {
        var pub = [CChar](repeating: 0, count: 41)
        var sec = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&pub, &sec) == 0 else {
            throw ConfigurationError("this libzmq has no CURVE support (zmq_curve_keypair failed)")
        }
        return CurveKeyPair(
            publicKey: String(decoding: pub.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self),
            secretKey: String(decoding: sec.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        )
    }

    /// The 32 raw bytes of a Z85 key, or nil when `text` is not 40 valid Z85 characters.
    public static func decode(_ text: String) -> [UInt8]? {
        let bytes = Array(text.utf8)
        guard bytes.count == 40, bytes.allSatisfy({ z85Alphabet.contains($0) }) else { return nil }
        var out = [UInt8](repeating: 0, count: 32)
        let ok = text.withCString { zmq_z85_decode(&out, $0) } != nil
        return ok ? out : nil
    }

    /// The Z85 text of 32 raw key bytes.
    public static func encode(_ raw: [UInt8]) -> String? {
        guard raw.count == 32 else { return nil }
        var out = [CChar](repeating: 0, count: 41)
        guard zmq_z85_encode(&out, raw, 32) != nil else { return nil }
        return String(decoding: out.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static let z85Alphabet = Set(
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".utf8
    )

    /// Reads a key file (`public-key:` and, for a secret file, `secret-key:`). Errors name the file.
    public static func load(path: String, needSecret: Bool) throws(ConfigurationError) -> CurveKeyPair {
        guard let data = FileManager.default.contents(atPath: path), data.count <= 64 << 10 else {
            throw ConfigurationError("cannot read the key file \(path)")
        }
        var publicKey: String?
        var secretKey: String?
        for (n, raw) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else {
                throw ConfigurationError(
                    "key file \(path), line \(n + 1): expected `public-key: KEY` or `secret-key: KEY`"
                )
            }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            guard decode(value) != nil else {
                throw ConfigurationError("key file \(path), line \(n + 1): \(key) is not a 40-character Z85 CURVE key")
            }
            switch key {
            case "public-key": publicKey = value
            case "secret-key": secretKey = value
            default:
                throw ConfigurationError("key file \(path), line \(n + 1): unknown entry \"\(key)\"")
            }
        }
        guard let publicKey else { throw ConfigurationError("key file \(path) has no public-key line") }
        if needSecret, secretKey == nil {
            throw ConfigurationError(
                "key file \(path) has no secret-key line: give the .key_secret file written by `coordinator keygen`"
            )
        }
        return CurveKeyPair(publicKey: publicKey, secretKey: secretKey)
    }

    /// Where ``publicKey(keyOrPath:)`` found a key.
    public enum KeySource: Sendable, Equatable, CustomStringConvertible {
        /// The key file at this path.
        case file(String)
        /// The text itself was the key (no file of that name exists).
        case literal

        public var description: String {
            switch self {
            case .file(let path): "the key file \(path)"
            case .literal: "the literal key given (no file of that name exists)"
            }
        }
    }

    /// A public key given as the path of a key file or as the key itself. An existing file always wins:
    /// a path of exactly 40 Z85 characters (`/tmp/tmp.XXXXXXXXXX/keys/coordinator.key` is one) is read,
    /// not taken as a key. The text is taken as a key only when no such file exists.
    public static func publicKey(keyOrPath text: String) throws(ConfigurationError) -> String {
        try publicKeyAndSource(keyOrPath: text).key
    }

    /// ``publicKey(keyOrPath:)`` and where the key came from, for the log.
    public static func publicKeyAndSource(
        keyOrPath text: String
    ) throws(ConfigurationError) -> (key: String, source: KeySource) {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: text, isDirectory: &isFolder), !isFolder.boolValue {
            return (try load(path: text, needSecret: false).publicKey, .file(text))
        }
        if decode(text) != nil { return (text, .literal) }
        return (try load(path: text, needSecret: false).publicKey, .file(text))
    }

    /// Writes `DIR/NAME.key` (public) and `DIR/NAME.key_secret` (mode 0600); refuses to overwrite.
    public func write(folder: URL, name: String) throws(ConfigurationError) -> (publicFile: URL, secretFile: URL) {
        let publicFile = folder.appendingPathComponent("\(name).key")
        let secretFile = folder.appendingPathComponent("\(name).key_secret")
        let fm = FileManager.default
        for file in [publicFile, secretFile] where fm.fileExists(atPath: file.path) {
            throw ConfigurationError("\(file.path) exists; remove it first or choose another --name")
        }
        do {
            try fm.createDirectory(at: folder, withIntermediateDirectories: true)
            let header = "# reelfarm CURVE key \(name), made \(ISO8601DateFormatter().string(from: Date()))\n"
            try (header + "public-key: \(publicKey)\n").write(to: publicFile, atomically: true, encoding: .utf8)
            guard fm.createFile(atPath: secretFile.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw ConfigurationError("cannot create \(secretFile.path)")
            }
            let secret =
                header.replacingOccurrences(of: "key ", with: "key pair ") + "# keep this file secret\n"
                + "public-key: \(publicKey)\nsecret-key: \(secretKey ?? "")\n"
            try Data(secret.utf8).write(to: secretFile)
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError("cannot write keys into \(folder.path): \(error)")
        }
        return (publicFile, secretFile)
    }
}

/// The public keys allowed to connect, by raw key, with a name each (the file or the comment they came from).
public struct CurveAllowList: Sendable, Equatable {
    public var keys: [[UInt8]: String] = [:]

    public init(keys: [[UInt8]: String] = [:]) {
        self.keys = keys
    }

    /// Reads a file (one key per line: `KEY [name]` or `public-key: KEY`) or a folder of `*.key` files.
    /// A line that is not a key is an error naming the file and line: a typo must not lock a worker out
    /// silently.
    public static func load(path: String) throws(ConfigurationError) -> CurveAllowList {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ConfigurationError("the worker allow-list \(path) does not exist")
        }
        var list = CurveAllowList()
        if isDirectory.boolValue {
            let names: [String]
            do {
                names = try FileManager.default.contentsOfDirectory(atPath: path)
            } catch {
                throw ConfigurationError("cannot list the worker allow-list folder \(path): \(error)")
            }
            for name in names.sorted() where name.hasSuffix(".key") {
                let file = URL(fileURLWithPath: path).appendingPathComponent(name).path
                let pair = try CurveKeyPair.load(path: file, needSecret: false)
                if let raw = CurveKeyPair.decode(pair.publicKey) { list.keys[raw] = String(name.dropLast(4)) }
            }
            return list
        }
        guard let data = FileManager.default.contents(atPath: path), data.count <= 16 << 20 else {
            throw ConfigurationError("cannot read the worker allow-list \(path)")
        }
        for (n, raw) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() {
            var line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("public-key:") { line = String(line.dropFirst("public-key:".count)) }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let key = fields.first, let rawKey = CurveKeyPair.decode(key) else {
                throw ConfigurationError("worker allow-list \(path), line \(n + 1): not a 40-character Z85 CURVE key")
            }
            list.keys[rawKey] = fields.count > 1 ? fields.dropFirst().joined(separator: " ") : "line \(n + 1)"
        }
        return list
    }
}

import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What both sides need to make a file durable and to name its contents: `fsync` of files and folders
/// and SHA-256 digests. A rename is durable only once the folder that holds it is synced too.
public enum DurableFiles {
    /// Flushes a file's (or a folder's) data and metadata to stable storage.
    public static func sync(_ url: URL) throws {
        let fd = url.withUnsafeFileSystemRepresentation { path in path.map { open($0, O_RDONLY) } ?? -1 }
        guard fd >= 0 else { throw POSIXError(errno, "open \(url.path) to sync it") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw POSIXError(errno, "fsync \(url.path)") }
    }

    /// Syncs every regular file directly inside `folder`, then the folder itself.
    public static func syncContents(of folder: URL) throws {
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() {
            let file = folder.appendingPathComponent(name)
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: file.path, isDirectory: &isFolder), !isFolder.boolValue {
                try sync(file)
            }
        }
        try sync(folder)
    }

    /// Renames `folder` to `destination`. An existing `destination` is first moved into `asideFolder`
    /// (under a unique name), put back if the rename fails, and deleted once the new folder is in place,
    /// so `destination` is always either the old folder or the new one, never a mix. Sync the parent of
    /// `destination` afterwards to make the rename durable.
    public static func moveReplacing(_ folder: URL, to destination: URL, asideIn asideFolder: URL) throws {
        let files = FileManager.default
        var aside: URL?
        if files.fileExists(atPath: destination.path) {
            let old = asideFolder.appendingPathComponent(
                "\(destination.lastPathComponent)-replaced-\(UUID().uuidString.lowercased())",
                isDirectory: true
            )
            try files.moveItem(at: destination, to: old)
            aside = old
        }
        do {
            try files.moveItem(at: folder, to: destination)
        } catch {
            if let aside { try? files.moveItem(at: aside, to: destination) }
            throw error
        }
        if let aside { try? files.removeItem(at: aside) }
    }

    /// The lowercase hex SHA-256 of a file, read in 64 KiB chunks.
    public static func sha256(of file: URL) throws -> String {
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 16), !chunk.isEmpty {
            hasher.update(data: chunk)
        }
        return hex(hasher.finalize())
    }

    /// Up to `length` bytes of a file from `offset` (fewer at its end): what a chunk of a file transfer
    /// holds.
    public static func read(_ file: URL, offset: Int, length: Int) throws -> [UInt8] {
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(offset))
        var bytes: [UInt8] = []
        bytes.reserveCapacity(length)
        while bytes.count < length, let more = try handle.read(upToCount: length - bytes.count), !more.isEmpty {
            bytes.append(contentsOf: more)
        }
        return bytes
    }

    /// The lowercase hex SHA-256 of bytes in memory.
    public static func sha256<D: DataProtocol>(_ bytes: D) -> String {
        hex(SHA256.hash(data: bytes))
    }

    /// Lowercase hex of a digest.
    public static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension POSIXError {
    /// A POSIX error from `errno`, with what was being done.
    init(_ code: Int32, _ what: String) {
        self.init(POSIXErrorCode(rawValue: code) ?? .EIO, userInfo: [NSLocalizedDescriptionKey: what])
    }
}

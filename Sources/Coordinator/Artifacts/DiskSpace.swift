import Foundation
import Shared

#if canImport(Glibc)
import Glibc
#endif

/// The output folder's fitness for a batch, checked before anything is dispatched: it can be written,
/// and its file system has at least `--min-free-space` free (env `REELFARM_MIN_FREE_SPACE`, default
/// 1 GiB; 0 turns the free-space check off).
enum DiskSpace {
    /// 1 GiB: a few episodes' videos and images, enough that a batch does not run into a full disk at once.
    static let defaultMinimum: Int64 = 1 << 30

    /// The check's outcome: pure, so that the decision is tested without a full disk.
    enum Verdict: Equatable, Sendable {
        case ok
        case unwritable(path: String, reason: String)
        case tooLittle(path: String, free: Int64, minimum: Int64)

        var message: String? {
            switch self {
            case .ok:
                return nil
            case .unwritable(let path, let reason):
                return
                    "the output folder \(path) cannot be written (\(reason)): no episode could be stored. Fix its permissions or mount, or give another --output"
            case .tooLittle(let path, let free, let minimum):
                return
                    "the output folder \(path) has \(DiskSpace.describe(free)) free, less than the minimum of \(DiskSpace.describe(minimum)) (--min-free-space, env REELFARM_MIN_FREE_SPACE): free some space, give another --output, or lower the minimum (0 turns the check off)"
            }
        }
    }

    /// The decision: a write error wins, then the free space against the minimum (0: not checked).
    static func decide(path: String, writeError: String?, free: Int64?, minimum: Int64) -> Verdict {
        if let writeError { return .unwritable(path: path, reason: writeError) }
        if minimum > 0, let free, free < minimum { return .tooLittle(path: path, free: free, minimum: minimum) }
        return .ok
    }

    /// Writes and removes a probe file in `folder` (or, when it does not exist yet, in the nearest existing
    /// folder above it), and reads the free space there. Creates nothing.
    static func check(_ folder: URL, minimum: Int64) -> Verdict {
        // The check leaves nothing behind: a folder that does not exist yet is judged by the nearest existing
        // one above it, where it would be made (a batch refused later must not leave an empty folder).
        var existing = folder.standardizedFileURL
        while !FileManager.default.fileExists(atPath: existing.path), existing.path != "/" {
            existing.deleteLastPathComponent()
        }
        var writeError: String?
        let probe = existing.appendingPathComponent(".reelfarm-write-probe-\(getpid())")
        let fd = open(probe.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 {
            writeError = String(cString: strerror(errno))
        } else {
            let byte: [UInt8] = [0x0A]
            if byte.withUnsafeBytes({ write(fd, $0.baseAddress, 1) }) != 1 {
                writeError = String(cString: strerror(errno))
            }
            close(fd)
            unlink(probe.path)
        }
        return decide(path: folder.path, writeError: writeError, free: freeBytes(existing), minimum: minimum)
    }

    /// Bytes an unprivileged process may still write on the file system holding `url`.
    static func freeBytes(_ url: URL) -> Int64? {
        var stats = statvfs()
        guard statvfs(url.path, &stats) == 0 else { return nil }
        return Int64(stats.f_bavail) * Int64(stats.f_frsize)
    }

    /// `1GiB`, `500MiB`, `2G` (binary units; `KB`, `MB`, `GB`, `TB` are decimal), a plain number of bytes,
    /// or `0`.
    static func parse(_ text: String) throws -> Int64 {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let digits = trimmed.prefix { $0.isNumber || $0 == "." }
        let unit = trimmed.dropFirst(digits.count).trimmingCharacters(in: .whitespaces).lowercased()
        let kib = 1024.0
        let factors: [String: Double] = [
            "": 1, "b": 1,
            "k": kib, "kib": kib, "m": kib * kib, "mib": kib * kib, "g": kib * kib * kib, "gib": kib * kib * kib,
            "t": kib * kib * kib * kib, "tib": kib * kib * kib * kib,
            "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
        ]
        guard let value = Double(digits), value >= 0, let factor = factors[unit], value * factor < 9e18 else {
            throw ConfigurationError(
                "--min-free-space must be a size like 1GiB, 500MiB or 0 (off), got \"\(text)\""
            )
        }
        return Int64((value * factor).rounded())
    }

    /// `1.0 GiB`, `512.0 MiB`, `300 B`.
    static func describe(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var i = 0
        while value >= 1024, i < units.count - 1 {
            value /= 1024
            i += 1
        }
        return i == 0 ? "\(bytes) B" : "\((value * 10).rounded() / 10) \(units[i])"
    }
}

import Foundation
import Shared

#if canImport(Glibc)
import Glibc
#endif

/// The exclusive hold of one coordinator on a `--state` folder: `flock` on `DIR/coordinator.lock`, taken
/// before the journal is opened and held for the life of the process. The kernel releases it when the
/// process ends, however it ends (SIGKILL included), so a stale lock file never blocks a restart. The
/// holder writes its PID into the file, so a second coordinator can say who holds it.
///
/// The descriptor is opened with `O_CLOEXEC`: local workers started by the coordinator do not inherit
/// it, and so cannot keep the folder locked after the coordinator died.
final class StateLock: Sendable {
    static let fileName = "coordinator.lock"

    /// Another process holds the folder.
    struct Held: Error, CustomStringConvertible {
        var path: String
        /// The PID the holder wrote, if the file could be read.
        var pid: Int32?
        var description: String {
            "--state \(path) is in use by another coordinator"
                + (pid.map { " (PID \($0))" } ?? "")
                + ": two coordinators on one journal would run the batch twice. Stop that one first, or give another --state"
        }
    }

    let url: URL
    private let descriptor: Int32

    /// Takes the lock on `directory` (created if needed) without waiting.
    /// - Throws: ``Held`` when another process holds it; ``ConfigurationError`` when the file cannot be opened.
    init(directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        url = directory.appendingPathComponent(Self.fileName)
        let fd = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw ConfigurationError("cannot open \(url.path): \(String(cString: strerror(errno)))")
        }
        var result: Int32
        repeat { result = flock(fd, LOCK_EX | LOCK_NB) } while result != 0 && errno == EINTR
        guard result == 0 else {
            let failure = errno
            let holder = Self.readPID(fd)
            close(fd)
            if failure == EWOULDBLOCK {
                throw Held(path: directory.path, pid: holder)
            }
            throw ConfigurationError("cannot lock \(url.path): \(String(cString: strerror(failure)))")
        }
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        descriptor = fd
    }

    private static func readPID(_ fd: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        return Int32(String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Releases the lock (tests; a coordinator keeps it until it exits).
    deinit {
        close(descriptor)
    }
}

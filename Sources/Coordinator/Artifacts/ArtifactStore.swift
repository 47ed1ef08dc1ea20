import Crypto
import Foundation
import Protocol
import Shared

/// Writes the files the ``ArtifactCollector`` pulls from workers into the batch folder, durably.
///
/// Each transfer gets `<batch>/.incoming/<episode>-attempt-<n>-<id>/`. A file is written to
/// `<name>.part` while its SHA-256 is computed on the fly; after its last chunk the digest is compared with
/// the worker's offer, the file is synced (`fsync`) and renamed to `<name>`. When every file is in, the
/// folder is synced and renamed to `<batch>/<episode>/` (an older copy there is moved aside first), and
/// the batch folder is synced so the rename survives a power cut. Only then does the episode count as
/// done. Nothing is ever visible under `<batch>/<episode>/` half-written.
///
/// Owned by one task (the coordinator's disk task), which carries out commands one at a time in order:
/// it is not thread-safe and need not be.
final class ArtifactStore {
    static let incomingFolderName = ".incoming"

    private struct OpenFile {
        var name: String
        var handle: FileHandle
        var hasher: SHA256
        var written: Int
    }

    private struct Transfer {
        var ref: JobRef
        var folder: URL
        var open: OpenFile?
    }

    let batchFolder: URL
    private var transfers: [Int: Transfer] = [:]

    init(batchFolder: URL) {
        self.batchFolder = batchFolder
    }

    var incomingFolder: URL { batchFolder.appendingPathComponent(Self.incomingFolderName, isDirectory: true) }

    /// Removes what a crashed coordinator left in `.incoming` (transfers start afresh).
    func clearIncoming() {
        try? FileManager.default.removeItem(at: incomingFolder)
    }

    /// Carries out one command; returns its event (`discard` has none).
    func perform(_ command: ArtifactCommand) -> ArtifactEvent? {
        switch command {
        case .begin(let id, let ref):
            do {
                let folder = incomingFolder.appendingPathComponent(
                    try SafeName.component("\(ref.episodeId)-attempt-\(ref.attempt)-\(id)"),
                    isDirectory: true
                )
                try? FileManager.default.removeItem(at: folder)
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                transfers[id] = Transfer(ref: ref, folder: folder)
                return nil
            } catch {
                if let full = noSpace(id: id, error) { return full }
                return .failed(id: id, error: "cannot create the incoming folder: \(error.localizedDescription)")
            }
        case .write(let id, let file, let offset, let bytes, let last):
            guard var t = transfers[id] else { return .failed(id: id, error: "no incoming folder") }
            do {
                let event = try write(&t, id: id, file: file, offset: offset, bytes: bytes, last: last)
                transfers[id] = t
                return event
            } catch {
                close(&t)
                transfers[id] = t
                if let full = noSpace(id: id, error) { return full }
                return .failed(id: id, error: "writing \(file.name): \(error.localizedDescription)")
            }
        case .publish(let id, let ref):
            guard let t = transfers.removeValue(forKey: id) else { return .failed(id: id, error: "no incoming folder") }
            do {
                try publish(t.folder, episodeId: ref.episodeId)
                return .published(id: id)
            } catch {
                try? FileManager.default.removeItem(at: t.folder)
                if let full = noSpace(id: id, error) { return full }
                return .failed(id: id, error: "publishing \(ref.episodeId): \(error.localizedDescription)")
            }
        case .verifyShared(let id, let ref, let files):
            return verify(id: id, ref: ref, files: files)
        case .discard(let id):
            if var t = transfers.removeValue(forKey: id) {
                close(&t)
                try? FileManager.default.removeItem(at: t.folder)
            }
            return nil
        }
    }

    // MARK: - Internals

    /// The event for a failure that is the coordinator's full disk (ENOSPC, EDQUOT, anywhere in the error's
    /// chain, or a file system with less than 64 KiB left), not the attempt's fault; nil for other errors.
    private func noSpace(id: Int, _ error: any Error) -> ArtifactEvent? {
        var current: NSError? = error as NSError
        var full = false
        while let e = current, !full {
            full =
                (e.domain == NSPOSIXErrorDomain && (e.code == Int(ENOSPC) || e.code == Int(EDQUOT)))
                || (e.domain == NSCocoaErrorDomain && e.code == CocoaError.fileWriteOutOfSpace.rawValue)
            current = e.userInfo[NSUnderlyingErrorKey] as? NSError
        }
        if !full, let free = DiskSpace.freeBytes(batchFolder), free < 64 * 1024 { full = true }
        return full ? .noSpace(id: id, error: error.localizedDescription) : nil
    }

    private func write(
        _ t: inout Transfer,
        id: Int,
        file: ArtifactFile,
        offset: Int,
        bytes: [UInt8],
        last: Bool
    ) throws -> ArtifactEvent {
        let part = t.folder.appendingPathComponent(file.name + ".part")
        if offset == 0 {
            close(&t)
            try? FileManager.default.removeItem(at: part)
            guard FileManager.default.createFile(atPath: part.path, contents: nil) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: part.path])
            }
            t.open = OpenFile(name: file.name, handle: try FileHandle(forWritingTo: part), hasher: SHA256(), written: 0)
        }
        guard var open = t.open, open.name == file.name, open.written == offset else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "chunk out of order"])
        }
        try open.handle.write(contentsOf: bytes)
        open.hasher.update(data: bytes)
        open.written += bytes.count
        t.open = open
        guard last else { return .written(id: id) }
        let digest = DurableFiles.hex(open.hasher.finalize())
        t.open = nil
        guard digest == file.sha256, open.written == file.size else {
            try? open.handle.close()
            try? FileManager.default.removeItem(at: part)
            return .fileCorrupt(id: id, name: file.name, actual: digest)
        }
        try open.handle.synchronize()
        try open.handle.close()
        let final = t.folder.appendingPathComponent(file.name)
        try? FileManager.default.removeItem(at: final)
        try FileManager.default.moveItem(at: part, to: final)
        return .fileStored(id: id, name: file.name)
    }

    private func close(_ t: inout Transfer) {
        try? t.open?.handle.close()
        t.open = nil
    }

    /// Syncs the folder, renames it to `<batch>/<episode>/` (moving an older copy aside, then deleting
    /// it), and syncs the batch folder.
    private func publish(_ folder: URL, episodeId: String) throws {
        let files = FileManager.default
        try DurableFiles.sync(folder)
        let destination = batchFolder.appendingPathComponent(try SafeName.component(episodeId), isDirectory: true)
        try DurableFiles.moveReplacing(folder, to: destination, asideIn: incomingFolder)
        try DurableFiles.sync(batchFolder)
        if (try? files.contentsOfDirectory(atPath: incomingFolder.path).isEmpty) == true {
            try? files.removeItem(at: incomingFolder)
        }
    }

    /// Shared delivery: the worker published `<batch>/<episode>/`; check every offered file's digest.
    private func verify(id: Int, ref: JobRef, files: [ArtifactFile]) -> ArtifactEvent {
        let folder = batchFolder.appendingPathComponent(ref.episodeId, isDirectory: true)
        for file in files {
            let url = folder.appendingPathComponent(file.name)
            guard FileManager.default.fileExists(atPath: url.path) else {
                return .failed(
                    id: id,
                    error:
                        "shared delivery: \(url.path) is missing; is the worker's --output the coordinator's, on a shared file system?"
                )
            }
            guard let digest = try? DurableFiles.sha256(of: url), digest == file.sha256 else {
                return .failed(id: id, error: "shared delivery: \(url.path) does not match its SHA-256")
            }
        }
        return .published(id: id)
    }
}

/// Ids from the wire as single path components (the protocol already refuses slashes and dot paths;
/// this is the second lock on the door).
enum SafeName {
    struct Unsafe: Error, CustomStringConvertible {
        var description: String
    }

    static func component(_ name: String) throws -> String {
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/"), !name.contains("\0") else {
            throw Unsafe(description: "\"\(name)\" cannot be a file name")
        }
        return name
    }
}

import Foundation
import Protocol
import Shared

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The folders of one attempt's files.
///
/// Providers write into ``directory`` (`<output>/<batch>/.work/<episode>-attempt-<n>/`); a successful
/// attempt is published by renaming it to ``destination`` (`<output>/<batch>/<episode>/`), so readers
/// never see a half-written episode; a failed or cancelled one is deleted.
struct AttemptWorkspace: Sendable {
    /// The hidden folder beside the episodes that holds attempts in progress.
    static let workFolderName = ".work"

    /// `<output>/<batch>/.work/<episode>-attempt-<n>/`.
    let directory: URL
    /// `<output>/<batch>/<episode>/`.
    let destination: URL
    /// `<output>/<batch>/.work/`.
    let workFolder: URL

    /// Creates the attempt's (empty) folder, replacing a stale one left by a crash.
    ///
    /// - Throws: ``SafePath/UnsafeComponent`` for an id that cannot be a folder name, or the file
    ///   system's error.
    static func create(output: URL, batchId: String, episodeId: String, attempt: Int) throws -> AttemptWorkspace {
        let batch = output.appendingPathComponent(try SafePath.component(batchId), isDirectory: true)
        let episode = try SafePath.component(episodeId)
        let workFolder = batch.appendingPathComponent(workFolderName, isDirectory: true)
        let workspace = AttemptWorkspace(
            directory: workFolder.appendingPathComponent(
                try SafePath.component("\(episode)-attempt-\(attempt)"),
                isDirectory: true
            ),
            destination: batch.appendingPathComponent(episode, isDirectory: true),
            workFolder: workFolder
        )
        let files = FileManager.default
        if files.fileExists(atPath: workspace.directory.path) {
            try files.removeItem(at: workspace.directory)
        }
        // Another attempt may remove the empty `.work` folder between our two steps: try again.
        var attempts = 0
        while true {
            do {
                try files.createDirectory(at: workFolder, withIntermediateDirectories: true)
                try files.createDirectory(at: workspace.directory, withIntermediateDirectories: false)
                return workspace
            } catch {
                attempts += 1
                if attempts >= 3 { throw error }
            }
        }
    }

    /// Renames the workspace to ``destination``. An older episode folder there (an earlier attempt's) is
    /// moved aside first and deleted once the new one is in place.
    func publish() throws {
        try DurableFiles.moveReplacing(directory, to: destination, asideIn: workFolder)
        removeWorkFolderIfEmpty()
    }

    /// The files of the finished attempt as it offers them (PROTOCOL §17): every file of ``directory``
    /// with its size and SHA-256, in name order. A file whose name cannot travel fails the attempt.
    func artifacts() throws -> [ArtifactFile] {
        try Self.artifacts(in: directory)
    }

    static func artifacts(in folder: URL) throws -> [ArtifactFile] {
        let files = FileManager.default
        var out: [ArtifactFile] = []
        for name in try files.contentsOfDirectory(atPath: folder.path).sorted() {
            let url = folder.appendingPathComponent(name)
            var isFolder: ObjCBool = false
            guard files.fileExists(atPath: url.path, isDirectory: &isFolder), !isFolder.boolValue else { continue }
            guard ArtifactFile.isValidName(name) else {
                throw AttemptWorkspaceError("\(name) is not a name an episode file may have (A-Z a-z 0-9 . _ -)")
            }
            let size = (try files.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue ?? 0
            out.append(ArtifactFile(name: name, size: size, sha256: try DurableFiles.sha256(of: url)))
        }
        return out
    }

    /// Makes the published episode durable: its files, its folder, and the batch folder that names it.
    func syncPublished() throws {
        try DurableFiles.syncContents(of: destination)
        try DurableFiles.sync(destination.deletingLastPathComponent())
    }

    /// Deletes a workspace whose files were delivered (or are no longer wanted), and `.work` if that
    /// leaves it empty.
    static func deleteOffered(_ folder: URL) throws {
        try FileManager.default.removeItem(at: folder)
        _ = folder.deletingLastPathComponent().withUnsafeFileSystemRepresentation { path in path.map { rmdir($0) } }
    }

    /// Deletes the workspace and everything in it.
    func discard() {
        try? FileManager.default.removeItem(at: directory)
        removeWorkFolderIfEmpty()
    }

    /// `rmdir`, which only ever removes an empty folder, so attempts still in progress are never touched.
    private func removeWorkFolderIfEmpty() {
        _ = workFolder.withUnsafeFileSystemRepresentation { path in path.map { rmdir($0) } }
    }
}

/// A workspace that cannot be offered.
struct AttemptWorkspaceError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

import Foundation
import Protocol
import Shared

/// What a coordinator with `--state` checks in its output folder before it dispatches anything: that the
/// journal knows every finished episode on disk (a damaged journal must not make it run them again), and
/// that every finished batch of the journal has its `summary.json` and `report.html`.
///
/// Each batch folder a coordinator with `--state` starts gets a marker, `.reelfarm-state`, holding the
/// resolved path of that state folder: the output folder may be shared with other runs, and only the
/// batches of this journal are its business.
enum OutputCheck {
    static let markerName = ".reelfarm-state"

    /// A state folder as written into markers: absolute, symbolic links resolved.
    static func stateTag(_ directory: URL) -> String {
        directory.standardizedFileURL.resolvingSymlinksInPath().path
    }

    /// Marks `batchDir` as a batch of the journal in `stateTag` (created if needed).
    static func writeMarker(batchDir: URL, stateTag: String) throws {
        try FileManager.default.createDirectory(at: batchDir, withIntermediateDirectories: true)
        try Data((stateTag + "\n").utf8).write(to: batchDir.appendingPathComponent(markerName), options: .atomic)
    }

    /// A finished episode folder as found on disk: its attempt (from `manifest.json`) and every file in it.
    struct FoundEpisode: Sendable, Equatable {
        var id: String
        var attempt: Int
        var files: [ArtifactFile]
    }

    /// Episodes on disk of one batch of this journal that the journal does not record as succeeded.
    struct Finding: Sendable, Equatable {
        var batchId: String
        /// The batch's status in the journal; nil when the journal does not know the batch at all.
        var journalStatus: String?
        /// Finished on disk, and `pending` or `failed` (or unknown) in the journal: the journal lost them.
        var lost: [FoundEpisode]
        /// Finished on disk and `running` in the journal (the coordinator stopped between storing the files
        /// and recording the end, or the journal lost the end): re-announced by their worker if it is
        /// still there, else adopted by `--rebuild-journal`.
        var running: [FoundEpisode]
    }

    private struct Manifest: Decodable {
        struct Asset: Decodable {
            var file: String?
            var sha256: String?
        }
        var episodeId: String
        var attempt: Int
        var assets: [Asset]
    }

    /// The folder's episode if it is a checked, finished one: `manifest.json` names it, and every file the
    /// manifest lists is there with its SHA-256. Nil otherwise (a partial or foreign folder).
    static func checkedEpisode(_ folder: URL) -> FoundEpisode? {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        guard let data = try? Data(contentsOf: folder.appendingPathComponent("manifest.json")),
            let manifest = try? decoder.decode(Manifest.self, from: data),
            manifest.episodeId == folder.lastPathComponent
        else { return nil }
        for asset in manifest.assets {
            guard let name = asset.file else { continue }
            guard let expected = asset.sha256,
                let actual = try? DurableFiles.sha256(of: folder.appendingPathComponent(name)),
                actual == expected
            else { return nil }
        }
        var files: [ArtifactFile] = []
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        for name in names.sorted() where !name.hasPrefix(".") {
            let url = folder.appendingPathComponent(name)
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
                attributes[.type] as? FileAttributeType == .typeRegular,
                let digest = try? DurableFiles.sha256(of: url)
            else { continue }
            files.append(ArtifactFile(name: name, size: (attributes[.size] as? Int) ?? 0, sha256: digest))
        }
        return FoundEpisode(id: manifest.episodeId, attempt: manifest.attempt, files: files)
    }

    /// Subfolders of `folder` that are not hidden.
    private static func subfolders(_ folder: URL) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.sorted().filter { !$0.hasPrefix(".") }.compactMap { name in
            var isDirectory: ObjCBool = false
            let url = folder.appendingPathComponent(name, isDirectory: true)
            return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
                ? url : nil
        }
    }

    /// Cross-checks the batch folders of this journal (`stateTag`) in `output` against it: finished
    /// episodes on disk that a batch not `completed` in the journal does not record as succeeded.
    /// `statuses` are the journal's batch statuses; `episodes(batch)` its episode statuses by id.
    static func findings(
        output: URL,
        stateTag: String,
        statuses: [String: String],
        episodes: (String) throws -> [String: String]
    ) rethrows -> [Finding] {
        var out: [Finding] = []
        for batchDir in subfolders(output) {
            let marker = batchDir.appendingPathComponent(markerName)
            guard let text = try? String(contentsOf: marker, encoding: .utf8),
                text.trimmingCharacters(in: .whitespacesAndNewlines) == stateTag
            else { continue }
            let batchId = batchDir.lastPathComponent
            let status = statuses[batchId]
            if status == "completed" { continue }
            let known = try status == nil ? [:] : episodes(batchId)
            var finding = Finding(batchId: batchId, journalStatus: status, lost: [], running: [])
            for folder in subfolders(batchDir) {
                let state = known[folder.lastPathComponent]
                if state == "succeeded" { continue }
                guard let found = checkedEpisode(folder) else { continue }
                if state == "running" { finding.running.append(found) } else { finding.lost.append(found) }
            }
            if !finding.lost.isEmpty || !finding.running.isEmpty { out.append(finding) }
        }
        return out
    }

    /// The refusal for findings with lost episodes: which batch, which episodes, and the fix.
    static func refusal(_ findings: [Finding], stateDir: String, output: URL, runningBatch: String?) -> String? {
        guard let finding = findings.first(where: { !$0.lost.isEmpty }) else { return nil }
        let names = finding.lost.map(\.id)
        let listed = names.prefix(10).joined(separator: ", ") + (names.count > 10 ? ", … (\(names.count) in all)" : "")
        let folder = output.appendingPathComponent(finding.batchId).path
        let how =
            finding.batchId == runningBatch
            ? "run the same command again with --rebuild-journal to adopt them (each checked against its manifest's SHA-256) and run only the rest"
            : "run that batch again with --batch-id \(finding.batchId) --rebuild-journal (and its --episodes or --batch) to adopt them (each checked against its manifest's SHA-256) and run only the rest"
        return
            "the journal in --state \(stateDir) does not record \(names.count) finished episode(s) of batch \(finding.batchId) that are in \(folder) (\(listed)): it was damaged or replaced, and running them again would redo finished work. To fix: \(how); or move \(folder) aside to start over"
    }
}

/// `summary.json` and `report.html` of a batch rewritten from the journal alone: after a coordinator was
/// killed between recording the batch's end and writing them, or by `coordinator summary`. What only the
/// running coordinator knew is missing: per-episode times, workers seen, budget figures.
enum SummaryRewrite {
    /// Rewrites the files of `batchId` into `output/<batchId>/`; returns the summary, or nil when the
    /// journal does not hold the batch.
    @discardableResult
    static func rewrite(journal: Journal, batchId: String, output: URL) throws -> BatchSummary? {
        guard let stored = try journal.storedBatch(id: batchId) else { return nil }
        let dispatcher = Dispatcher(
            batchId: stored.id,
            restored: stored.episodes,
            counters: stored.counters,
            settings: DispatchSettings(),
            holdUntil: .now,
            makeSession: { "" }
        )
        let times = try journal.batchTimes(id: batchId)
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let started = times.flatMap { iso.date(from: $0.created) } ?? Date()
        let finished = times.flatMap { iso.date(from: $0.updated) } ?? started
        let dir = output.appendingPathComponent(batchId)
        let summary = BatchSummary(
            dispatcher: dispatcher,
            batchDir: dir,
            startedAt: started,
            finishedAt: finished,
            wallSeconds: max(0, finished.timeIntervalSince(started)),
            workersSeen: 0,
            slots: 0
        )
        try summary.write(to: dir)
        try BatchReport.write(summary: summary, rates: [], to: dir)
        return summary
    }

    /// Whether a finished batch's folder lacks its summary or report.
    static func isMissing(batchId: String, output: URL) -> Bool {
        let dir = output.appendingPathComponent(batchId)
        return !FileManager.default.fileExists(atPath: dir.appendingPathComponent("summary.json").path)
            || !FileManager.default.fileExists(atPath: dir.appendingPathComponent("report.html").path)
    }
}

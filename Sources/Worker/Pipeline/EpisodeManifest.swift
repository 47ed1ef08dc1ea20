import Crypto
import Foundation
import Protocol
import Shared

/// `manifest.json`: what an episode folder holds, written next to the files before the folder is
/// published. Keys are snake_case, as everywhere in Reelfarm's JSON (see ``EpisodeFiles``).
struct EpisodeManifest: Codable, Sendable, Equatable {
    var batchId: String
    var episodeId: String
    var attempt: Int
    var title: String
    /// ISO 8601, UTC.
    var createdAt: String
    var render: Render
    /// Every voice clip, scene image and B-roll image, in script order, then the video.
    var assets: [Asset]
    /// What the attempt's paid calls cost, in micro-dollars (the script's included); calls of models
    /// without a price count 0 and their models are in ``unpricedModels``.
    var costMicros: Int = 0
    /// What the script call cost, in micro-dollars; `nil` when unknown.
    var scriptCostMicros: Int?
    /// Models called that have no price in the worker's table.
    var unpricedModels: [String] = []
    /// What the answers taken from the coordinator's asset store would have cost, in micro-dollars;
    /// `nil` when none was.
    var savedMicros: Int?

    struct Render: Codable, Sendable, Equatable {
        var provider: String
        var preset: String?
        var width: Int?
        var height: Int?
        var durationSeconds: Double?
    }

    struct Asset: Codable, Sendable, Equatable {
        enum Kind: String, Codable, Sendable {
            case voice, scene, broll, video
        }

        /// `line_3`, `scene_2`, `broll_1` or `episode`.
        var item: String
        var kind: Kind
        /// The file name within the episode folder; `nil` for a file-less placeholder.
        var file: String?
        /// Who made it: `espeak-ng`, `offline`, `ffmpeg`, `placeholder`, `silence`, `openai`, …
        var provider: String
        var placeholder: Bool
        /// Probed length of audio and video; `nil` for images.
        var durationSeconds: Double?
        var sizeBytes: Int?
        /// Hex SHA-256 of the file.
        var sha256: String?
        /// What the call that made it cost, in micro-dollars; `nil` for a placeholder, the video, or a model
        /// without a price.
        var costMicros: Int?
        /// `true` when the answer came from the coordinator's asset store (paid for by an earlier attempt
        /// or batch); absent otherwise.
        var reused: Bool?
    }
}

/// What an attempt's calls cost, from their `call_end` trace events, for the manifest.
struct CallCosts: Sendable, Equatable {
    /// Micro-dollars by item (`script`, `line_3`, `scene_2`, …), summed over the item's calls.
    var byItem: [String: Int] = [:]
    var totalMicros = 0
    var unpricedModels: [String] = []
    /// Items whose call was answered (in part) from the asset store.
    var reusedItems: Set<String> = []
    /// What those answers would have cost; `nil` when none was reused.
    var savedMicros: Int?

    init(byItem: [String: Int] = [:], totalMicros: Int = 0, unpricedModels: [String] = []) {
        self.byItem = byItem
        self.totalMicros = totalMicros
        self.unpricedModels = unpricedModels
    }

    /// From trace events named `KIND:ITEM`.
    init(events: [TraceEvent], unpricedModels: [String]) {
        for event in events where event.event == .callEnd {
            let item = event.name.split(separator: ":", maxSplits: 1).last.map(String.init) ?? event.name
            if let saved = event.savedMicros {
                reusedItems.insert(item)
                savedMicros = (savedMicros ?? 0) + saved
            }
            guard let cost = event.costMicros else { continue }
            byItem[item, default: 0] += cost
            totalMicros += cost
        }
        self.unpricedModels = unpricedModels
    }
}

/// Writing an attempt's files: `script.json`, `manifest.json`, file digests.
enum EpisodeFiles {
    static let scriptName = "script.json"
    static let manifestName = "manifest.json"

    /// Pretty, sorted, snake_case JSON.
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return encoder
    }

    /// Reads what ``encoder()`` wrote.
    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }

    /// The hex SHA-256 of a file.
    static func sha256(of file: URL) throws -> String {
        try DurableFiles.sha256(of: file)
    }

    /// Writes `script.json` and `manifest.json` into the workspace. Asset files outside the workspace are
    /// copied in first, so the published folder is complete.
    static func write(
        script: Script,
        assets: EpisodeAssets,
        rendered: RenderedEpisode,
        job: (batchId: String, episodeId: String, attempt: Int),
        workspace: URL,
        probe: MediaProbe?,
        costs: CallCosts = CallCosts(),
        now: Date = Date()
    ) async throws -> EpisodeManifest {
        var entries: [EpisodeManifest.Asset] = []
        for clip in assets.voices {
            entries.append(
                try await entry(
                    clip.item,
                    .voice,
                    path: clip.path,
                    provider: clip.provider,
                    placeholder: clip.isPlaceholder,
                    workspace: workspace,
                    probe: probe
                )
            )
        }
        for (kind, images) in [(EpisodeManifest.Asset.Kind.scene, assets.scenes), (.broll, assets.broll)] {
            for image in images {
                entries.append(
                    try await entry(
                        image.item,
                        kind,
                        path: image.path,
                        provider: image.provider,
                        placeholder: image.isPlaceholder,
                        workspace: workspace,
                        probe: probe
                    )
                )
            }
        }
        let video = try await entry(
            "episode",
            .video,
            path: rendered.path,
            provider: rendered.provider,
            placeholder: false,
            workspace: workspace,
            probe: probe
        )
        entries.append(video)

        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let manifest = EpisodeManifest(
            batchId: job.batchId,
            episodeId: job.episodeId,
            attempt: job.attempt,
            title: script.title,
            createdAt: formatter.string(from: now),
            render: EpisodeManifest.Render(
                provider: rendered.provider,
                preset: rendered.preset,
                width: rendered.width,
                height: rendered.height,
                durationSeconds: video.durationSeconds ?? rendered.duration / .seconds(1)
            ),
            assets: entries.map { entry in
                var entry = entry
                if !entry.placeholder, entry.kind != .video {
                    entry.costMicros = costs.byItem[entry.item]
                    if costs.reusedItems.contains(entry.item) { entry.reused = true }
                }
                return entry
            },
            costMicros: costs.totalMicros,
            scriptCostMicros: costs.byItem["script"],
            unpricedModels: costs.unpricedModels,
            savedMicros: costs.savedMicros
        )
        let encoder = encoder()
        try encoder.encode(script).write(to: workspace.appendingPathComponent(scriptName), options: .atomic)
        try encoder.encode(manifest).write(to: workspace.appendingPathComponent(manifestName), options: .atomic)
        return manifest
    }

    private static func entry(
        _ item: String,
        _ kind: EpisodeManifest.Asset.Kind,
        path: String?,
        provider: String,
        placeholder: Bool,
        workspace: URL,
        probe: MediaProbe?
    ) async throws -> EpisodeManifest.Asset {
        var asset = EpisodeManifest.Asset(item: item, kind: kind, provider: provider, placeholder: placeholder)
        guard let path else { return asset }
        try Task.checkCancellation()
        var file = FFmpegRenderer.resolve(path, in: workspace).standardizedFileURL
        let folder = workspace.standardizedFileURL.path
        if file.deletingLastPathComponent().path != folder {
            // Not in the workspace (a provider that writes elsewhere): copy it in under the item's name.
            let copy = workspace.appendingPathComponent(
                file.pathExtension.isEmpty ? item : "\(item).\(file.pathExtension)"
            )
            try? FileManager.default.removeItem(at: copy)
            try FileManager.default.copyItem(at: file, to: copy)
            file = copy
        }
        asset.file = file.lastPathComponent
        asset.sizeBytes = (try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? NSNumber)?.intValue
        asset.sha256 = try sha256(of: file)
        if kind == .voice || kind == .video {
            var duration = kind == .voice ? WAVFile.duration(of: file) : nil
            if duration == nil, let probe { duration = try? await probe.duration(file) }
            asset.durationSeconds = duration.map { ($0 / .seconds(1) * 1_000).rounded() / 1_000 }
        }
        return asset
    }
}

extension EpisodeManifest.Asset {
    init(item: String, kind: Kind, provider: String, placeholder: Bool) {
        self.init(
            item: item,
            kind: kind,
            file: nil,
            provider: provider,
            placeholder: placeholder,
            durationSeconds: nil,
            sizeBytes: nil,
            sha256: nil
        )
    }
}

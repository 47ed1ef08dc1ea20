import Foundation

/// Renders an episode into `<workspace>/episode.mp4` with ffmpeg: H.264 + AAC in an MP4 with
/// `+faststart`, at the size of its ``RenderSettings``.
///
/// How (see ``RenderPlan`` for the timeline):
/// 1. Measure every voice clip (WAV header, else ffprobe): the real lengths decide the timeline.
/// 2. Encode one silent video segment per still, a few at once (``RenderSettings/parallelSegments``):
///    scene images are scaled/cropped to fill the frame and held; B-roll gets a Ken Burns move
///    (zoompan driven by the output frame number, so it is deterministic); file-less placeholder
///    images become a plain card. Captions ("Speaker: text") are drawn at the bottom with drawtext.
/// 3. Join the segments without re-encoding (concat demuxer) and mux them with the voice clips,
///    each resampled to 48 kHz stereo and padded/trimmed to its measured length (silence for
///    file-less placeholders), encoded to AAC.
///
/// Temporary files live in `<workspace>/render/` and are removed afterwards. Any ffmpeg failure throws
/// ``ProviderError`` `toolFailed` with the tail of ffmpeg's standard error.
struct FFmpegRenderer: RenderProvider {
    static let providerName = "ffmpeg"
    static let outputName = "episode.mp4"

    var settings: RenderSettings
    var tools: ToolLocator
    var fonts: FontResolver

    init(settings: RenderSettings = .landscape, tools: ToolLocator = .environment, fonts: FontResolver? = nil) {
        self.settings = settings
        self.tools = tools
        self.fonts = fonts ?? FontResolver(tools: tools)
    }

    func render(_ script: Script, assets: EpisodeAssets, context: CallContext) async throws -> RenderedEpisode {
        let workspace = try context.requireWorkspace(for: "episode")
        let ffmpeg = try FFmpeg(tools: tools, timeout: settings.toolTimeout)
        let probe = try? MediaProbe(tools: tools)
        let font = try await fonts.fontFile()
        let voiceSeconds = try await measure(assets.voices, in: workspace, probe: probe)
        let plan = RenderPlan(script: script, assets: assets, voiceSeconds: voiceSeconds, frameRate: settings.frameRate)
        guard plan.frames > 0 else {
            throw ProviderError(.invalidResponse, "nothing to render: the episode has no scenes")
        }

        let scratchName = "render"
        let scratch = workspace.appendingPathComponent(scratchName)
        try? FileManager.default.removeItem(at: scratch)
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }

        var jobs: [[String]] = []
        for (index, segment) in plan.segments.enumerated() {
            jobs.append(
                try segmentArguments(
                    segment,
                    index: index,
                    assets: assets,
                    workspace: workspace,
                    scratch: scratchName,
                    font: font
                )
            )
        }
        try await encode(jobs, with: ffmpeg, in: workspace)

        let list = plan.segments.indices.map { "file '\(Self.segmentName($0))'" }.joined(separator: "\n") + "\n"
        try Data(list.utf8).write(to: scratch.appendingPathComponent("segments.txt"))
        try await ffmpeg.run(
            muxArguments(plan, assets: assets, workspace: workspace, list: "\(scratchName)/segments.txt"),
            in: workspace
        )

        let output = workspace.appendingPathComponent(Self.outputName)
        var duration = Duration.seconds(plan.seconds)
        if let probe, let probed = try? await probe.duration(output) { duration = probed }
        return RenderedEpisode(
            path: output.path,
            duration: duration,
            provider: Self.providerName,
            preset: settings.preset,
            width: settings.width,
            height: settings.height
        )
    }

    // MARK: - Steps

    /// The real length of each clip in seconds: from the WAV header, else ffprobe; a clip without a file
    /// keeps its reported length (it becomes silence).
    private func measure(_ voices: [VoiceClip], in workspace: URL, probe: MediaProbe?) async throws -> [Double] {
        var seconds: [Double] = []
        for clip in voices {
            guard let path = clip.path else {
                seconds.append(max(0, clip.duration / .seconds(1)))
                continue
            }
            let file = Self.resolve(path, in: workspace)
            guard FileManager.default.fileExists(atPath: file.path) else {
                throw ProviderError(.invalidResponse, "the voice clip of \(clip.item) is missing (\(path))")
            }
            if let duration = WAVFile.duration(of: file) {
                seconds.append(duration / .seconds(1))
            } else if let probe {
                seconds.append(try await probe.duration(file) / .seconds(1))
            } else {
                throw ProviderError(.toolFailed, "ffprobe not found; \(ToolLocator.installHint("ffprobe"))")
            }
        }
        return seconds
    }

    /// Runs the segment encodes, at most ``RenderSettings/parallelSegments`` at once. The first failure
    /// cancels (and kills) the others.
    private func encode(_ jobs: [[String]], with ffmpeg: FFmpeg, in workspace: URL) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            func startNext() {
                guard next < jobs.count else { return }
                let arguments = jobs[next]
                next += 1
                group.addTask { try await ffmpeg.run(arguments, in: workspace) }
            }
            for _ in 0..<max(1, settings.parallelSegments) { startNext() }
            while try await group.next() != nil { startNext() }
        }
    }

    private static func segmentName(_ index: Int) -> String {
        let digits = String(index)
        return "seg_" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits + ".mp4"
    }

    private func segmentArguments(
        _ segment: RenderPlan.Segment,
        index: Int,
        assets: EpisodeAssets,
        workspace: URL,
        scratch: String,
        font: String
    ) throws -> [String] {
        let (width, height, fps, frames) = (settings.width, settings.height, settings.frameRate, segment.frames)
        let image: Image
        let kenBurns: Int?
        switch segment.visual {
        case .scene(let scene):
            image = assets.scenes[scene]
            kenBurns = nil
        case .broll(let shot):
            image = assets.broll[shot]
            kenBurns = shot
        }

        var inputs: [String]
        var filters: [String]
        if let path = image.path {
            // image2 without patterns: a `%` in the path (from an id) is just a character.
            inputs = ["-f", "image2", "-pattern_type", "none", "-i", Self.resolve(path, in: workspace).path]
            if let shot = kenBurns {
                // Upscale first (the longer side to about 3840) so zoompan's whole-pixel steps do not jitter.
                let factor = max(1, 3_840 / max(width, height))
                let (bigWidth, bigHeight) = (width * factor, height * factor)
                let x = shot.isMultiple(of: 2) ? "iw/2-(iw/zoom/2)" : "(iw-iw/zoom)*on/\(frames)"
                filters = [
                    "scale=\(bigWidth):\(bigHeight):force_original_aspect_ratio=increase",
                    "crop=\(bigWidth):\(bigHeight)",
                    "zoompan=z='1+0.12*on/\(frames)':d=\(frames):x='\(x)':y='ih/2-(ih/zoom/2)'"
                        + ":s=\(width)x\(height):fps=\(fps)",
                    "setsar=1", "format=yuv420p",
                ]
            } else {
                filters = [
                    "scale=\(width):\(height):force_original_aspect_ratio=increase", "crop=\(width):\(height)",
                    "setsar=1", "format=yuv420p", "loop=loop=\(frames - 1):size=1:start=0", "setpts=N/\(fps)/TB",
                ]
            }
        } else {
            // A file-less placeholder: a plain card naming the item.
            inputs = ["-f", "lavfi", "-i", "color=c=0x202020:s=\(width)x\(height):r=\(fps)"]
            let card = "\(scratch)/card_\(index).txt"
            try FilterText.write(
                [image.item, "image unavailable"],
                to: workspace.appendingPathComponent(card)
            )
            filters = [
                "format=yuv420p",
                FilterText.drawtext(
                    font: font,
                    textFile: card,
                    size: settings.shortSide / 16,
                    x: "(w-text_w)/2",
                    y: "h*0.4-text_h/2",
                    color: "white@0.8"
                ),
            ]
        }

        let captionSize = max(16, settings.shortSide * 9 / 200)
        let captionWidth = FilterText.charactersPerLine(width: width * 9 / 10, fontSize: captionSize)
        for (number, caption) in segment.captions.enumerated() {
            let file = "\(scratch)/caption_\(index)_\(number).txt"
            try FilterText.write(
                FilterText.wrapped(caption.text, width: captionWidth, maxLines: 3),
                to: workspace.appendingPathComponent(file)
            )
            // The last caption stays to the end, so rounding never leaves a frame without one.
            let last = number == segment.captions.count - 1
            let from = number == 0 ? "0" : Self.seconds(caption.start)
            let enable = last ? "gte(t,\(from))" : "gte(t,\(from))*lt(t,\(Self.seconds(caption.end)))"
            filters.append(
                FilterText.drawtext(
                    font: font,
                    textFile: file,
                    size: captionSize,
                    x: "(w-text_w)/2",
                    y: "h-text_h-\(settings.shortSide / 14)",
                    box: "black@0.55",
                    extra: ["enable='\(enable)'"]
                )
            )
        }

        return inputs + [
            "-vf", filters.joined(separator: ","), "-frames:v", String(frames), "-r", String(fps), "-c:v", "libx264",
            "-preset", settings.encoderPreset, "-crf", String(settings.crf), "-pix_fmt", "yuv420p", "-an",
            "\(scratch)/\(Self.segmentName(index))",
        ]
    }

    private func muxArguments(_ plan: RenderPlan, assets: EpisodeAssets, workspace: URL, list: String) -> [String] {
        var inputs = ["-f", "concat", "-safe", "0", "-i", list]
        var graph: [String] = []
        var labels = ""
        var nextInput = 1
        let rate = settings.audioSampleRate
        for (index, piece) in plan.audio.enumerated() {
            let seconds = Self.seconds(piece.seconds)
            if let voice = piece.voice, let path = assets.voices[voice].path {
                inputs += ["-i", Self.resolve(path, in: workspace).path]
                graph.append(
                    "[\(nextInput):a]aresample=\(rate),aformat=sample_fmts=fltp:channel_layouts=stereo,"
                        + "apad=whole_dur=\(seconds),atrim=duration=\(seconds)[a\(index)]"
                )
                nextInput += 1
            } else {
                graph.append(
                    "anullsrc=r=\(rate):cl=stereo,aformat=sample_fmts=fltp,atrim=duration=\(seconds)[a\(index)]"
                )
            }
            labels += "[a\(index)]"
        }
        graph.append("\(labels)concat=n=\(plan.audio.count):v=0:a=1[audio]")
        return inputs + [
            "-filter_complex", graph.joined(separator: ";"), "-map", "0:v", "-map", "[audio]", "-c:v", "copy",
            "-c:a", "aac", "-b:a", settings.audioBitrate, "-ar", String(rate), "-ac", "2", "-movflags", "+faststart",
            Self.outputName,
        ]
    }

    // MARK: - Helpers

    /// A provider's path: absolute as it is, relative to the workspace otherwise.
    static func resolve(_ path: String, in workspace: URL) -> URL {
        path.hasPrefix("/") ? URL(fileURLWithPath: path) : workspace.appendingPathComponent(path)
    }

    /// Seconds with 6 decimals, never in exponent notation (ffmpeg expressions and durations).
    static func seconds(_ value: Double) -> String {
        let micros = Int((max(0, value) * 1_000_000).rounded())
        let fraction = String(micros % 1_000_000)
        return "\(micros / 1_000_000).\(String(repeating: "0", count: 6 - fraction.count))\(fraction)"
    }
}

/// The timeline of an episode, worked out before any ffmpeg runs: which still shows when, which lines
/// are captioned, and the audio in order. Pure, so tests check it without rendering.
///
/// - The voice clips play back to back in script order; the episode lasts exactly as long as they do
///   (plus ``silentSceneSeconds`` for a scene without any line).
/// - Each scene's image shows while its lines play.
/// - B-roll shot `k` is a cut-away during scene `2k` (the next free scene if that one is taken or
///   missing): it covers the scene's last line, or the second half of a scene with a single line.
/// - Segment boundaries are rounded to whole frames from the episode's start, so rounding never adds up.
struct RenderPlan: Sendable, Equatable {
    /// What a segment shows: an index into ``EpisodeAssets/scenes`` or ``EpisodeAssets/broll``.
    enum Visual: Sendable, Equatable {
        case scene(Int)
        case broll(Int)
    }

    /// A caption, in seconds from the start of its segment.
    struct Caption: Sendable, Equatable {
        var text: String
        var start: Double
        var end: Double
    }

    /// One stretch of video with a single still (static or with a Ken Burns move).
    struct Segment: Sendable, Equatable {
        var visual: Visual
        /// Its first frame, counted from the start of the episode.
        var firstFrame: Int
        var frames: Int
        var captions: [Caption]
    }

    /// One piece of the audio track: a voice clip (index into ``EpisodeAssets/voices``) or silence.
    struct AudioPiece: Sendable, Equatable {
        var voice: Int?
        var seconds: Double
    }

    var frameRate: Int
    var segments: [Segment]
    var audio: [AudioPiece]

    /// How long a scene without any line stays on screen, in seconds.
    static let silentSceneSeconds = 2.0

    /// Total frames of the video.
    var frames: Int { segments.reduce(0) { $0 + $1.frames } }
    /// Total seconds of the audio (the sum of the voice clips).
    var seconds: Double { audio.reduce(0) { $0 + $1.seconds } }

    /// - Parameters:
    ///   - voiceSeconds: the real length of each of `assets.voices`, in the same order.
    init(script: Script, assets: EpisodeAssets, voiceSeconds: [Double], frameRate: Int) {
        precondition(voiceSeconds.count == assets.voices.count)
        self.frameRate = frameRate
        var voiceByItem: [String: Int] = [:]
        for (index, clip) in assets.voices.enumerated() where voiceByItem[clip.item] == nil {
            voiceByItem[clip.item] = index
        }

        // The audio pieces of each scene, with their captions.
        struct Piece {
            var audio: AudioPiece
            var caption: String
        }
        let sceneCount = min(script.scenes.count, assets.scenes.count)
        var scenePieces: [[Piece]] = []
        for scene in script.scenes.prefix(sceneCount) {
            var pieces: [Piece] = []
            for line in scene.lines {
                let caption = "\(line.character): \(line.text)"
                if let index = voiceByItem[line.item] {
                    pieces.append(
                        Piece(audio: AudioPiece(voice: index, seconds: voiceSeconds[index]), caption: caption)
                    )
                } else {
                    let seconds = VoiceClip.estimatedSpeakingTime(line.text) / .seconds(1)
                    pieces.append(Piece(audio: AudioPiece(voice: nil, seconds: seconds), caption: caption))
                }
            }
            if pieces.isEmpty {
                let audio = AudioPiece(voice: nil, seconds: Self.silentSceneSeconds)
                pieces.append(Piece(audio: audio, caption: scene.narration))
            }
            scenePieces.append(pieces)
        }

        let brollOfScene = Self.assignBroll(count: assets.broll.count, scenes: sceneCount)

        // Visual spans in seconds, then whole frames.
        var segments: [Segment] = []
        var audio: [AudioPiece] = []
        var time = 0.0
        func frame(_ seconds: Double) -> Int { Int((seconds * Double(frameRate)).rounded()) }
        for (sceneIndex, pieces) in scenePieces.enumerated() {
            var starts: [Double] = []
            for piece in pieces {
                starts.append(time)
                time += piece.audio.seconds
                audio.append(piece.audio)
            }
            let sceneStart = starts[0]
            let sceneEnd = time
            var spans: [(Visual, Double, Double)] = [(.scene(sceneIndex), sceneStart, sceneEnd)]
            if let broll = brollOfScene[sceneIndex] {
                let cut = pieces.count >= 2 ? starts[pieces.count - 1] : (sceneStart + sceneEnd) / 2
                spans = [(.scene(sceneIndex), sceneStart, cut), (.broll(broll), cut, sceneEnd)]
            }
            for (visual, start, end) in spans {
                let first = frame(start)
                let frames = frame(end) - first
                guard frames > 0 else { continue }
                // Captions in whole frames too, so a line never shows for a sliver of a frame.
                var captions: [Caption] = []
                for (index, piece) in pieces.enumerated() {
                    let pieceEnd = index + 1 < starts.count ? starts[index + 1] : sceneEnd
                    let from = max(frame(starts[index]), first)
                    let to = min(frame(pieceEnd), first + frames)
                    guard to > from, !piece.caption.isEmpty else { continue }
                    captions.append(
                        Caption(
                            text: piece.caption,
                            start: Double(from - first) / Double(frameRate),
                            end: Double(to - first) / Double(frameRate)
                        )
                    )
                }
                segments.append(Segment(visual: visual, firstFrame: first, frames: frames, captions: captions))
            }
        }
        self.segments = segments
        self.audio = audio
    }

    /// Which B-roll shot (if any) cuts away in each scene: shot `k` (1-based) in scene `2k`, else the next
    /// free scene after it, else the nearest free one before it; shots beyond the scene count are dropped.
    static func assignBroll(count: Int, scenes: Int) -> [Int: Int] {
        var assigned: [Int: Int] = [:]
        guard scenes > 0 else { return assigned }
        for shot in 0..<count {
            let preferred = min(2 * (shot + 1), scenes) - 1
            let candidates = Array(preferred..<scenes) + Array((0..<preferred).reversed())
            guard let scene = candidates.first(where: { assigned[$0] == nil }) else { break }
            assigned[scene] = shot
        }
        return assigned
    }
}

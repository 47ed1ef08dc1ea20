/// How episodes are rendered: frame size, frame rate and encoder settings.
///
/// The defaults give H.264 (libx264 `veryfast`, CRF 23, yuv420p, 30 fps) and AAC (128 kb/s, 48 kHz
/// stereo) in an MP4 with `+faststart`.
struct RenderSettings: Sendable, Equatable {
    /// The preset's name, recorded in the manifest: `landscape`, `vertical`, or anything for custom sizes.
    var preset: String
    /// Frame width in pixels (even). Images of other sizes are scaled and cropped to fill the frame.
    var width: Int
    /// Frame height in pixels (even).
    var height: Int
    /// The default is 30.
    var frameRate: Int = 30
    /// libx264 preset. The default is `veryfast` (about 0.25–0.4× real time for 720p on 2 cores).
    var encoderPreset: String = "veryfast"
    /// libx264 constant rate factor. The default is 23.
    var crf: Int = 23
    /// The default is `128k`.
    var audioBitrate: String = "128k"
    /// The default is 48000.
    var audioSampleRate: Int = 48_000
    /// Video segments encoded at once. The default is 2.
    var parallelSegments: Int = 2
    /// Longest any single ffmpeg run may take before it is killed. The default is 10 minutes.
    var toolTimeout: Duration = .seconds(600)

    init(preset: String, width: Int, height: Int) {
        precondition(width >= 16 && height >= 16 && width % 2 == 0 && height % 2 == 0, "even sizes of 16 or more")
        self.preset = preset
        self.width = width
        self.height = height
    }

    /// 1280x720 (the default).
    static let landscape = RenderSettings(preset: "landscape", width: 1_280, height: 720)
    /// 1080x1920, for phones.
    static let vertical = RenderSettings(preset: "vertical", width: 1_080, height: 1_920)

    /// `landscape` or `vertical` by name (for configuration), else `nil`.
    static func named(_ name: String) -> RenderSettings? {
        switch name.lowercased() {
        case "landscape", "720p": .landscape
        case "vertical", "portrait": .vertical
        default: nil
        }
    }

    /// `1280x720`.
    var size: String { "\(width)x\(height)" }
    /// The shorter side, which text sizes follow.
    var shortSide: Int { min(width, height) }
}

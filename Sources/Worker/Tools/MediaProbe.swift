import Foundation

/// What ffprobe says about a media file.
struct MediaInfo: Sendable, Equatable {
    struct Stream: Sendable, Equatable {
        /// `video`, `audio`, …
        var codecType: String
        /// `h264`, `aac`, `pcm_s16le`, `png`, …
        var codecName: String
        var width: Int?
        var height: Int?
        var sampleRate: Int?
        var channels: Int?
    }

    /// The container's duration; `nil` for a still image.
    var duration: Duration?
    var streams: [Stream]

    var video: Stream? { streams.first { $0.codecType == "video" } }
    var audio: Stream? { streams.first { $0.codecType == "audio" } }
}

/// Reads durations, codecs and sizes of media files with ffprobe.
struct MediaProbe: Sendable {
    var ffprobe: ExternalTool
    var timeout: Duration

    init(ffprobe: ExternalTool, timeout: Duration = .seconds(30)) {
        self.ffprobe = ffprobe
        self.timeout = timeout
    }

    /// ffprobe from `tools`. Throws ``ProviderError`` `toolFailed` when it is not installed.
    init(tools: ToolLocator) throws(ProviderError) {
        self.init(ffprobe: try tools.locate("ffprobe"))
    }

    /// - Throws: ``ProviderError`` `toolFailed` when ffprobe fails (not a media file), `invalidResponse`
    ///   when its answer cannot be read.
    func info(_ file: URL) async throws -> MediaInfo {
        let output = try await ffprobe.run(
            [
                "-v", "error", "-show_entries",
                "format=duration:stream=codec_type,codec_name,width,height,sample_rate,channels",
                "-of", "json", "--", file.path,
            ],
            timeout: timeout
        )
        return try Self.parse(output.standardOutput)
    }

    /// The duration of an audio or video file.
    ///
    /// - Throws: as ``info(_:)``; `invalidResponse` when the file has no duration.
    func duration(_ file: URL) async throws -> Duration {
        guard let duration = try await info(file).duration else {
            throw ProviderError(.invalidResponse, "ffprobe found no duration in \(file.lastPathComponent)")
        }
        return duration
    }

    // MARK: - Parsing

    private struct Answer: Decodable {
        struct Format: Decodable {
            var duration: String?
        }

        struct Stream: Decodable {
            var codecType: String?
            var codecName: String?
            var width: Int?
            var height: Int?
            var sampleRate: String?
            var channels: Int?
        }

        var format: Format?
        var streams: [Stream]?
    }

    /// Parses `ffprobe -of json` output.
    static func parse(_ json: String) throws(ProviderError) -> MediaInfo {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let answer: Answer
        do {
            answer = try decoder.decode(Answer.self, from: Data(json.utf8))
        } catch {
            throw ProviderError(.invalidResponse, "ffprobe printed something that is not its JSON: \(error)")
        }
        let seconds = answer.format?.duration.flatMap(Double.init).flatMap { $0.isFinite && $0 >= 0 ? $0 : nil }
        return MediaInfo(
            duration: seconds.map { Duration.seconds($0) },
            streams: (answer.streams ?? []).map {
                MediaInfo.Stream(
                    codecType: $0.codecType ?? "",
                    codecName: $0.codecName ?? "",
                    width: $0.width,
                    height: $0.height,
                    sampleRate: $0.sampleRate.flatMap { Int($0) },
                    channels: $0.channels
                )
            }
        )
    }
}

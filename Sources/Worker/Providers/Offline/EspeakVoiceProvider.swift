import Foundation

/// Speaks character lines with espeak-ng: a distinct voice per character, written to
/// `<workspace>/<item>.wav` (22.05 kHz mono 16-bit).
///
/// The voice of a character follows its position in the script's cast (``CallContext/characters``):
/// position 0 (the narrator in offline scripts) gets `en-us+m3`, then `en-gb+f3`, `en-us+m7`, … with
/// speed and pitch varied too; characters not in the cast get a voice by a stable hash of their name.
struct EspeakVoiceProvider: VoiceProvider {
    static let providerName = "espeak-ng"

    var tools: ToolLocator
    var timeout: Duration

    init(tools: ToolLocator = .environment, timeout: Duration = .seconds(60)) {
        self.tools = tools
        self.timeout = timeout
    }

    /// How one character sounds.
    struct Voice: Sendable, Equatable {
        /// espeak-ng voice and variant, e.g. `en-us+m3`.
        var name: String
        /// Words per minute.
        var speed: Int
        /// 0…99.
        var pitch: Int

        var arguments: [String] { ["-v", name, "-s", String(speed), "-p", String(pitch)] }
    }

    /// Base voices in the order characters get them; past the end the list repeats with other speeds and
    /// pitches. No `mb-*` voices (they need mbrola).
    static let voices: [Voice] = [
        Voice(name: "en-us+m3", speed: 165, pitch: 45),
        Voice(name: "en-gb+f3", speed: 160, pitch: 60),
        Voice(name: "en-us+m7", speed: 150, pitch: 35),
        Voice(name: "en-gb+f5", speed: 170, pitch: 65),
        Voice(name: "en-us+f2", speed: 155, pitch: 55),
        Voice(name: "en-gb+m1", speed: 170, pitch: 40),
        Voice(name: "en-us+m5", speed: 160, pitch: 50),
        Voice(name: "en-gb+f4", speed: 150, pitch: 70),
    ]

    /// The voice of the character at `position` in the cast.
    static func voice(at position: Int) -> Voice {
        let base = voices[position % voices.count]
        let round = position / voices.count
        guard round > 0 else { return base }
        let shift = (round % 2 == 1 ? 1 : -1) * (8 * ((round + 1) / 2))
        return Voice(name: base.name, speed: base.speed - shift / 2, pitch: min(99, max(0, base.pitch + shift)))
    }

    /// The voice of `character` in an episode whose cast is `characters`.
    static func voice(for character: String, characters: [String]) -> Voice {
        if let position = characters.firstIndex(of: character) { return voice(at: position) }
        return voice(at: Int(StableHash.of(0, ["voice", character]).value % UInt64(voices.count * 3)))
    }

    func voice(for line: Script.Line, context: CallContext) async throws -> VoiceClip {
        let workspace = try context.requireWorkspace(for: "voice clip")
        context.meter.free()
        let voice = Self.voice(for: line.character, characters: context.characters)
        let file = workspace.appendingPathComponent("\(line.item).wav")
        let duration = try await Self.speak(
            line.text,
            voice: voice,
            to: file,
            espeak: try tools.locate("espeak-ng"),
            tools: tools,
            timeout: timeout
        )
        return VoiceClip(item: line.item, path: file.path, duration: duration, provider: Self.providerName)
    }

    /// Runs espeak-ng and returns the clip's duration (from the WAV header, else ffprobe).
    static func speak(
        _ text: String,
        voice: Voice,
        to file: URL,
        espeak: ExternalTool,
        tools: ToolLocator,
        timeout: Duration
    ) async throws -> Duration {
        let spoken = text.trimmingCharacters(in: .whitespacesAndNewlines)
        // The text goes in on standard input, so a line starting with "-" is never taken for an option.
        try await espeak.run(
            voice.arguments + ["-w", file.path, "--stdin"],
            timeout: timeout,
            input: spoken.isEmpty ? "." : spoken
        )
        if let duration = WAVFile.duration(of: file), duration > .zero { return duration }
        let probed = try await MediaProbe(tools: tools).duration(file)
        guard probed > .zero else {
            throw ProviderError(.toolFailed, "espeak-ng wrote an empty clip for \(file.lastPathComponent)")
        }
        return probed
    }
}

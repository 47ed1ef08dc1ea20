/// Colours of one episode's offline images: a base hue from the episode id and topic, turned by the
/// golden angle for each scene, so scenes of an episode differ visibly and episodes differ from each other.
struct Palette: Sendable, Equatable {
    /// 0..<360.
    var baseHue: Double

    init(baseHue: Double) {
        self.baseHue = baseHue
    }

    init(episodeId: String, topic: String) {
        self.init(baseHue: StableHash.of(0, ["palette", episodeId, topic]).unitInterval * 360)
    }

    /// Top and bottom of a vertical gradient, as `0xRRGGBB`.
    struct Gradient: Sendable, Equatable {
        var top: String
        var bottom: String
    }

    /// Dark at the top, lighter and shifted at the bottom.
    func scene(_ number: Int) -> Gradient {
        let hue = baseHue + Double(number) * 137.508
        return Gradient(top: Self.hex(hue, 0.55, 0.16), bottom: Self.hex(hue + 30, 0.65, 0.46))
    }

    /// Light at the top, dark at the bottom, on the opposite side of the colour wheel from the scenes.
    func broll(_ number: Int) -> Gradient {
        let hue = baseHue + 180 + Double(number) * 97.3
        return Gradient(top: Self.hex(hue, 0.45, 0.52), bottom: Self.hex(hue - 20, 0.60, 0.12))
    }

    /// A grey card for placeholders.
    static let placeholder = Gradient(top: "0x2b2b2b", bottom: "0x111111")

    /// HSL (hue in degrees, saturation and lightness 0…1) as `0xRRGGBB`.
    static func hex(_ hue: Double, _ saturation: Double, _ lightness: Double) -> String {
        let h = (hue.truncatingRemainder(dividingBy: 360) + 360).truncatingRemainder(dividingBy: 360) / 60
        let chroma = (1 - abs(2 * lightness - 1)) * saturation
        let x = chroma * (1 - abs(h.truncatingRemainder(dividingBy: 2) - 1))
        let (r, g, b): (Double, Double, Double) =
            switch Int(h) {
            case 0: (chroma, x, 0)
            case 1: (x, chroma, 0)
            case 2: (0, chroma, x)
            case 3: (0, x, chroma)
            case 4: (x, 0, chroma)
            default: (chroma, 0, x)
            }
        let m = lightness - chroma / 2
        let bytes = [r, g, b].map { Int(((($0 + m) * 255).rounded()).clamped(0, 255)) }
        return "0x" + bytes.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }
}

extension Double {
    fileprivate func clamped(_ low: Double, _ high: Double) -> Double { Swift.min(high, Swift.max(low, self)) }
}

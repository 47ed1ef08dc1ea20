extension Duration {
    /// The duration in seconds as a floating-point number (for logs and JSON).
    public var secondsDouble: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }

    /// The duration in whole milliseconds, rounded down.
    public var wholeMilliseconds: Int {
        let c = components
        return Int(c.seconds) * 1000 + Int(c.attoseconds / 1_000_000_000_000_000)
    }

    /// `12.4s` style text with one decimal, as in the log lines of the predecessor.
    public var shortDescription: String {
        Self.formatSeconds(secondsDouble)
    }

    /// Formats seconds with one decimal (`12.4s`), without Foundation's locale-dependent formatters.
    public static func formatSeconds(_ seconds: Double, decimals: Int = 1) -> String {
        let scale = decimals == 2 ? 100.0 : 10.0
        let scaled = (seconds * scale).rounded()
        let whole = Int(scaled / scale)
        let frac = Int(abs(scaled.truncatingRemainder(dividingBy: scale)))
        let fracText = decimals == 2 ? (frac < 10 ? "0\(frac)" : "\(frac)") : "\(frac)"
        return "\(whole).\(fracText)s"
    }
}
